"""The phase handlers: rewrite_by_lua, access_by_lua, content_by_lua,
header_filter_by_lua, body_filter_by_lua, log_by_lua, init_by_lua and
init_worker_by_lua.

golapis has them as daemon-level directives (one handler per phase, for
every request).  The differential reference is a location /refphase/ of
the nginx in front, holding the same *_by_lua_block code; golapis answers
under /p/ (nginx's location / passes it on).  Most configs dispatch on
?t=NAME so that one pair of servers covers several cases."""

import os
import re
import time

from harness import (Golapis, Nginx, golapis_cmd, header_list,
                     http_get, make_docroot, mktemp, wait_for)

PHASES = ("rewrite", "access", "content", "header_filter", "body_filter",
          "log")


def blocks(b, phases=PHASES):
    """Config text: a *_by_lua_block for each phase in b ({phase: code})."""
    return "".join("%s_by_lua_block {\n%s\n}\n" % (p, b[p])
                   for p in phases if p in b)


def setup(b, conf_extra="", extra_http="", workers=2, docroot=None,
          **golapis_kw):
    """golapis with b's blocks, and nginx with the same blocks in
    location /refphase/ (extra_http: nginx's http{} level, for init)."""
    d = docroot or make_docroot(copy_scripts=False)
    g = Golapis(docroot=d, workers=workers, conf_extra=blocks(b) + conf_extra,
                **golapis_kw)
    loc = ("location /refphase/ {\n default_type text/html;\n%s}\n"
           % blocks(b))
    n = Nginx(g, lua=True, extra_http=extra_http, extra_server=loc)
    return g, n


def both(n, path="/", **kw):
    """(golapis result, ref result) of the same request."""
    return (http_get(n.port, "/p" + path, **kw),
            http_get(n.port, "/refphase" + path, **kw))


FOOTER_RE = re.compile(rb"(?i)<hr><center>[^<]*</center>")


def norm_page(body):
    """An error page with its server footer neutralized, in any case (a
    body filter may have changed it)."""
    return FOOTER_RE.sub(b"<hr><center>SERVER</center>", body)


def same(res, what, headers=(), all_headers=False, status=None):
    """Asserts the golapis and ref results are alike: status, body (the
    error page footer neutralized), the named headers."""
    (gs, gh, gb), (rs, rh, rb) = res
    if status is not None:
        assert rs == status, "%s: the ref status is %s, not %s: %r" % (
            what, rs, status, rb[:300])
    assert gs == rs, "%s: status golapis %s, ref %s\n%r\n%r" % (
        what, gs, rs, gb[:500], rb[:500])
    assert norm_page(gb) == norm_page(rb), \
        "%s: body\ngolapis %r\nref     %r" % (what, gb[:1000], rb[:1000])
    for name in headers:
        assert gh.get_all(name) == rh.get_all(name), \
            "%s: header %s: golapis %r, ref %r" % (
                what, name, gh.get_all(name), rh.get_all(name))
    if all_headers:
        assert header_list(gh) == header_list(rh), \
            "%s: headers\ngolapis %r\nref     %r" % (
                what, header_list(gh), header_list(rh))
    return res


def marks(text):
    """The "@@..." messages of a log, without the request context nginx and
    golapis append."""
    out = []
    for line in text.split("\n"):
        i = line.find("@@")
        if i >= 0:
            out.append(re.sub(r"(?: while logging request)?, client: .*$",
                              "", line[i:]))
    return out


ERR_RE = re.compile(r"(lua entry thread aborted: runtime error|"
                    r"failed to run \w+\*|failed to load inline Lua code): "
                    r"(\w+)\((?:golapis|nginx)\.conf:\d+\):(\d+): (.*?)"
                    r"(?:, client: .*)?$")


def errors(text):
    """[(what failed, chunk kind, line in the block, message)] of the Lua
    error lines of a log.  The config line in the chunk name is left out
    (test_conf_blocks checks it)."""
    return [m.groups() for m in map(ERR_RE.search, text.split("\n")) if m]


def logs_since(g, n, gmark, nmark, pred, what):
    """Waits until pred(golapis log text) and pred(nginx log text) hold
    (log_by_lua runs after the answer); returns both texts."""
    wait_for(lambda: pred(g.log()[gmark:]) and pred(n.log()[nmark:]), 5,
             what=what)
    return g.log()[gmark:], n.log()[nmark:]


def nmark(n):
    return len(n.log())


# ---------------------------------------------------------------------------
# the order of the phases, ngx.ctx, ngx.get_phase

ORDER = {
    "rewrite": r'''
ngx.ctx.t = {"rewrite:" .. ngx.get_phase()}
''',
    "access": r'''
table.insert(ngx.ctx.t, "access:" .. ngx.get_phase())
''',
    "content": r'''
table.insert(ngx.ctx.t, "content:" .. ngx.get_phase())
ngx.say(table.concat(ngx.ctx.t, ","))
ngx.say("second")
''',
    "header_filter": r'''
table.insert(ngx.ctx.t, "header_filter:" .. ngx.get_phase())
ngx.header["X-Phases"] = table.concat(ngx.ctx.t, ",")
''',
    "body_filter": r'''
if ngx.arg[2] then
    table.insert(ngx.ctx.t, "body_filter:" .. ngx.get_phase())
    ngx.arg[1] = ngx.arg[1] .. table.concat(ngx.ctx.t, ",") .. "\n"
end
''',
    "log": r'''
table.insert(ngx.ctx.t, "log:" .. ngx.get_phase())
ngx.log(ngx.ERR, "@@log ", table.concat(ngx.ctx.t, ","), " status=",
        ngx.status, " x=", ngx.header["X-Phases"])
''',
}


def test_phase_order():
    g, n = setup(ORDER)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/"), "phase order", headers=("X-Phases",),
               status=200)
    assert res[0][2] == (
        b"rewrite:rewrite,access:access,content:content\nsecond\n"
        b"rewrite:rewrite,access:access,content:content,"
        b"header_filter:header_filter,body_filter:body_filter\n"), res[0][2]
    gl, nl = logs_since(g, n, gm, nm, lambda t: "@@log" in t, "@@log")
    assert marks(gl) == marks(nl), (marks(gl), marks(nl))
    assert marks(gl) == [
        "@@log rewrite:rewrite,access:access,content:content,"
        "header_filter:header_filter,body_filter:body_filter,log:log "
        "status=200 x=rewrite:rewrite,access:access,content:content,"
        "header_filter:header_filter"], marks(gl)


CTX = {
    "rewrite": r'''
-- a fresh ngx.ctx for each request
ngx.ctx.seen_before = tostring(ngx.ctx.rw)
ngx.ctx.rw = ngx.var.arg_n
ngx.ctx.tbl = {}
''',
    "access": r'''
local old = ngx.ctx
if ngx.var.arg_replace then
    -- a new table for ngx.ctx: the later phases see it
    ngx.ctx = {rw = old.rw .. "+", seen_before = old.seen_before,
               tbl = old.tbl, replaced = true}
end
ngx.ctx.tbl.access = true
''',
    "content": r'''
local c = ngx.ctx
-- before the output: the header filter runs at the first ngx.say
c.content = "c"
ngx.say("rw=", c.rw, " seen_before=", c.seen_before, " access=",
        tostring(c.tbl.access), " replaced=", tostring(c.replaced))
''',
    "header_filter": r'''
ngx.header["X-Ctx"] = ngx.ctx.rw .. ngx.ctx.content
''',
    "body_filter": r'''
if ngx.arg[2] then ngx.arg[1] = "bf:" .. ngx.ctx.rw .. ngx.ctx.content end
''',
    "log": r'''
ngx.log(ngx.ERR, "@@ctx ", ngx.ctx.rw, " ", ngx.ctx.content, " ",
        tostring(ngx.ctx.replaced))
''',
}


def test_ctx_shared_across_phases():
    g, n = setup(CTX, workers=1)
    gm, nm = g.mark(), nmark(n)
    for q in ("?n=1", "?n=2", "?n=3&replace=1"):
        r = same(both(n, "/" + q), "ctx " + q, headers=("X-Ctx",),
                 status=200)[0]
    assert r[2] == (b"rw=3+ seen_before=nil access=true replaced=true\n"
                    b"bf:3+c"), r[2]
    assert r[1]["X-Ctx"] == "3+c", r[1]["X-Ctx"]
    gl, nl = logs_since(g, n, gm, nm, lambda t: t.count("@@ctx") >= 3,
                        "@@ctx")
    assert marks(gl) == marks(nl), (marks(gl), marks(nl))
    assert marks(gl) == ["@@ctx 1 c nil", "@@ctx 2 c nil", "@@ctx 3+ c true"]


GLOBALS = {
    "rewrite": "ngx.ctx.before = tostring(RWG) RWG = 'rw'",
    "access": "ACG = tostring(RWG) .. '+ac'",
    "content": "ngx.say(ngx.ctx.before, ' ', tostring(RWG), ' ', "
               "tostring(ACG)) CTG = 'ct'",
    "header_filter": "ngx.header['X-G'] = tostring(RWG) .. tostring(CTG) "
                     "HFG = 'hf'",
    "body_filter": "if ngx.arg[2] then ngx.arg[1] = tostring(RWG) .. "
                   "tostring(HFG) .. tostring(CTG) BFG = 'bf' end",
    "log": "ngx.log(ngx.ERR, '@@g ', tostring(RWG), tostring(HFG), "
           "tostring(BFG))",
}


def test_globals_shared_across_phases():
    # the phases of a request share its global variables (the header
    # filter runs at the first ngx.say, before CTG is set)
    g, n = setup(GLOBALS, workers=1)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/"), "globals", headers=("X-G",), status=200)
    assert res[0][2] == b"nil rw rw+ac\nrwhfct", res[0][2]
    assert res[0][1]["X-G"] == "rwnil", res[0][1]["X-G"]
    gl, nl = logs_since(g, n, gm, nm, lambda x: "@@g" in x, "@@g")
    assert marks(gl) == marks(nl) == ["@@g rwhfbf"], (marks(gl), marks(nl))
    # golapis differs on purpose here: the next request starts with fresh
    # globals (lua-nginx-module 0.10.23 writes them to the worker's _G,
    # with a warning, and the next request sees RWG = "rw")
    s, _, body = http_get(n.port, "/p/")
    assert (s, body) == (200, b"nil rw rw+ac\nrwhfct"), (s, body)


# ---------------------------------------------------------------------------
# rewrite and access: ngx.exit, output, redirect, errors

FLOW = {
    "rewrite": r'''
local t = ngx.var.arg_t
ngx.ctx.t = {"rw"}
if t == "rwok" then
    ngx.exit(ngx.OK)
    ngx.ctx.t[#ngx.ctx.t + 1] = "after-exit"
end
if t == "rwsay" then ngx.say("said in rewrite") return end
if t == "rwsayexit" then ngx.say("said in rewrite") ngx.exit(200) end
if t == "rwexit200" then ngx.exit(200) end
if t == "rwexit404" then ngx.exit(404) end
if t == "rwredir" then return ngx.redirect("/elsewhere?a=1") end
if t == "rw301" then return ngx.redirect("http://example.com/x", 301) end
''',
    "access": r'''
local t = ngx.var.arg_t
table.insert(ngx.ctx.t, "ac")
if t == "acok" then
    ngx.exit(ngx.OK)
    ngx.ctx.t[#ngx.ctx.t + 1] = "after-exit"
end
if t == "ac403" then ngx.exit(403) end
if t == "acerr" then
    local x = nil
    error("access boom")
end
if t == "acsleep" then ngx.sleep(0.01) table.insert(ngx.ctx.t, "slept") end
''',
    "content": r'''
table.insert(ngx.ctx.t, "ct")
ngx.log(ngx.ERR, "@@content ", ngx.var.arg_t)
ngx.say(table.concat(ngx.ctx.t, ","))
''',
    "header_filter": r'''
table.insert(ngx.ctx.t, "hf")
ngx.header["X-Phases"] = table.concat(ngx.ctx.t, ",")
''',
    "log": r'''
ngx.log(ngx.ERR, "@@log ", ngx.var.arg_t, " ", table.concat(ngx.ctx.t, ","),
        " status=", ngx.status)
''',
}


def _flow(cases):
    """Runs FLOW's cases ({t: (status, body or None)}); returns (golapis
    log, nginx log) once every case's @@log line is in."""
    g, n = setup(FLOW)
    gm, nm = g.mark(), nmark(n)
    for t, (status, body) in cases.items():
        res = same(both(n, "/?t=" + t), t, headers=("X-Phases", "Location"),
                   status=status)
        if body is not None:
            assert res[0][2] == body, "%s: %r" % (t, res[0][2])
    gl, nl = logs_since(g, n, gm, nm,
                        lambda x: x.count("@@log") >= len(cases), "@@log")
    assert marks(gl) == marks(nl), "\n%r\n%r" % (marks(gl), marks(nl))
    return gl, nl


def test_exit_ok_goes_on():
    gl, _ = _flow({"rwok": (200, b"rw,ac,ct\n"),
                   "acok": (200, b"rw,ac,ct\n"),
                   "acsleep": (200, b"rw,ac,slept,ct\n")})
    assert "@@log rwok rw,ac,ct,hf status=200" in marks(gl), marks(gl)


def test_access_exit_403():
    gl, nl = _flow({"ac403": (403, None)})
    assert "@@content" not in gl, gl
    assert marks(gl) == ["@@log ac403 rw,ac,hf status=403"], marks(gl)


def test_rewrite_output_ends_request():
    gl, _ = _flow({"rwsay": (200, b"said in rewrite\n"),
                   "rwsayexit": (200, b"said in rewrite\n"),
                   "rwexit200": (200, b""),
                   "rwexit404": (404, None)})
    # neither access nor content ran
    assert "@@content" not in gl, gl
    assert marks(gl) == ["@@log rwsay rw,hf status=200",
                         "@@log rwsayexit rw,hf status=200",
                         "@@log rwexit200 rw,hf status=200",
                         "@@log rwexit404 rw,hf status=404"], marks(gl)


def test_rewrite_redirect():
    gl, _ = _flow({"rwredir": (302, None), "rw301": (301, None)})
    assert "@@content" not in gl, gl
    assert marks(gl) == ["@@log rwredir rw,hf status=302",
                         "@@log rw301 rw,hf status=301"], marks(gl)


def test_access_runtime_error():
    gl, nl = _flow({"acerr": (500, None)})
    assert "@@content" not in gl, gl
    assert errors(gl) == errors(nl), (errors(gl), errors(nl))
    assert errors(gl) == [("lua entry thread aborted: runtime error",
                           "access_by_lua", "12", "access boom")], errors(gl)


# ---------------------------------------------------------------------------
# header_filter_by_lua

HF = {
    "content": r'''
local t = ngx.var.arg_t
ngx.header["X-C"] = "from content"
ngx.header["X-Gone"] = "will be cleared"
if t == "st202" then ngx.status = 202 end
if t == "e404" then ngx.exit(404) end
if t == "nobody" then return end
ngx.say("body of ", t)
''',
    "header_filter": r'''
local t = ngx.var.arg_t
if ngx.var.arg_s then ngx.header["X-Status-Seen"] = ngx.status end
if t == "change" then
    ngx.status = 201
    ngx.header["X-New"] = "added"
    ngx.header["X-C"] = "changed: " .. ngx.header["X-C"]
    ngx.header["X-Gone"] = nil
    ngx.header["X-Multi"] = {"a", "b"}
    ngx.header.content_type = "text/plain; charset=utf-8"
end
''',
}


def test_header_filter_changes_response():
    g, n = setup(HF)
    for t in ("change", "nobody"):
        same(both(n, "/?t=" + t), t, all_headers=True, status=200 if
             t == "nobody" else 201)
    r = http_get(n.port, "/p/?t=change")
    assert r[0] == 201 and r[1]["X-New"] == "added", r
    assert r[1]["X-C"] == "changed: from content", r[1]["X-C"]
    assert r[1]["X-Gone"] is None and r[1].get_all("X-Multi") == ["a", "b"]
    assert r[1]["Content-Type"] == "text/plain; charset=utf-8"
    assert r[2] == b"body of change\n"


def test_header_filter_reads_status():
    # ngx.status in the header filter is the status about to be sent: 200
    # when the content handler set none
    g, n = setup(HF)
    for t, status in (("plain", 200), ("st202", 202), ("e404", 404),
                      ("nobody", 200)):
        same(both(n, "/?s=1&t=" + t), t, headers=("X-Status-Seen",),
             status=status)


def test_exit_in_header_filter():
    # lua-nginx-module allows ngx.exit in a header filter: ngx.exit(ngx.OK)
    # does not even stop the filter's code; a status >= 300 sends that
    # status's error page instead of the response
    b = {
        "content": 'ngx.say("body")',
        "header_filter": r'''
local t = ngx.var.arg_t
ngx.header["X-Before"] = "1"
if t == "ok" then ngx.exit(ngx.OK) end
if t == "e404" then ngx.exit(404) end
ngx.header["X-After"] = "1"
''',
    }
    g, n = setup(b)
    gm = g.mark()
    same(both(n, "/?t=ok"), "exit ok", headers=("X-Before", "X-After"),
         status=200)
    same(both(n, "/?t=e404"), "exit 404", status=404)
    assert "API disabled" not in g.log_since(gm), g.log_since(gm)


# ---------------------------------------------------------------------------
# body_filter_by_lua

BF = {
    "content": r'''
local t = ngx.var.arg_t
for i = 1, 5 do
    ngx.say("chunk ", i)
    if i == 2 and t == "flush" then ngx.flush() end
    if i == 4 and t == "flush" then ngx.flush(true) end
end
ngx.print("")
ngx.print("tail")
''',
    "body_filter": r'''
local t = ngx.var.arg_t
local c = ngx.ctx
c.calls = c.calls or {}
c.calls[#c.calls + 1] = (ngx.arg[1]:gsub("\n", "~")) .. ":"
                        .. tostring(ngx.arg[2])
if t == "upper" or t == "flush" then
    ngx.arg[1] = string.upper(ngx.arg[1])
    if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. "<eof>" end
elseif t == "trunc" then
    if ngx.arg[1]:find("chunk 3", 1, true) then
        ngx.arg[1] = "[cut]"
        ngx.arg[2] = true
    end
elseif t == "drop" then
    if ngx.arg[1]:find("4", 1, true) then ngx.arg[1] = nil end
elseif t == "table" then
    ngx.arg[1] = {"<", ngx.arg[1]:upper(), ">"}
elseif t == "last" then
    if ngx.arg[2] then ngx.arg[1] = "the end" end
end
''',
    "log": r'''
local eofs = 0
for _, call in ipairs(ngx.ctx.calls) do
    if call:sub(-5) == ":true" then eofs = eofs + 1 end
end
ngx.log(ngx.ERR, "@@bf ", ngx.var.arg_t, " eofs=", eofs, " last=",
        ngx.ctx.calls[#ngx.ctx.calls])
ngx.log(ngx.ERR, "@@calls ", ngx.var.arg_t, " ",
        table.concat(ngx.ctx.calls, " | "))
''',
}


def _bf(cases, calls=True):
    """Runs BF's cases ({t: expected body}); compares the bodies and the
    @@bf log lines, and the @@calls lines (every call of the filter) with
    calls=True."""
    g, n = setup(BF)
    gm, nm = g.mark(), nmark(n)
    for t, body in cases.items():
        res = same(both(n, "/?t=" + t), t, status=200)
        assert res[0][2] == body, "%s: %r" % (t, res[0][2])
    gl, nl = logs_since(g, n, gm, nm,
                        lambda x: x.count("@@calls") >= len(cases), "@@bf")
    gb = [m for m in marks(gl) if m.startswith("@@bf")]
    nb = [m for m in marks(nl) if m.startswith("@@bf")]
    assert gb == nb, "\n%r\n%r" % (gb, nb)
    if calls:
        assert marks(gl) == marks(nl), "\n%r\n%r" % (marks(gl), marks(nl))
    return marks(gl)


def test_body_filter_upper_chunks():
    got = _bf({"upper": b"CHUNK 1\nCHUNK 2\nCHUNK 3\nCHUNK 4\nCHUNK 5\n"
                        b"TAIL<eof>",
               "flush": b"CHUNK 1\nCHUNK 2\nCHUNK 3\nCHUNK 4\nCHUNK 5\n"
                        b"TAIL<eof>",
               "last": b"chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n"
                       b"tailthe end"}, calls=False)
    # eof seen once, in the last call, which carries no data
    assert "@@bf upper eofs=1 last=:true" in got, got


def test_body_filter_calls():
    # a filter sees each ngx.say/ngx.print as a chunk of its own (not
    # ngx.print("")), then an empty chunk with eof
    got = _bf({"upper": b"CHUNK 1\nCHUNK 2\nCHUNK 3\nCHUNK 4\nCHUNK 5\n"
                        b"TAIL<eof>"})
    assert ("@@calls upper chunk 1~:false | chunk 2~:false | chunk 3~:false"
            " | chunk 4~:false | chunk 5~:false | tail:false | :true"
            in got), got


def test_body_filter_flush_calls():
    # ngx.flush sends an empty chunk through the filter in nginx
    _bf({"flush": b"CHUNK 1\nCHUNK 2\nCHUNK 3\nCHUNK 4\nCHUNK 5\nTAIL<eof>"})


def test_body_filter_truncate():
    # ngx.arg[2] = true ends the body: the rest of the output is dropped
    # and the filter is not called again
    got = _bf({"trunc": b"chunk 1\nchunk 2\n[cut]",
               "drop": b"chunk 1\nchunk 2\nchunk 3\nchunk 5\ntail"})
    assert ("@@calls trunc chunk 1~:false | chunk 2~:false | chunk 3~:false"
            in got), got


def test_body_filter_table_chunk():
    # ngx.arg[1] may be set to a table of strings, sent concatenated
    _bf({"table": b"<CHUNK 1\n><CHUNK 2\n><CHUNK 3\n><CHUNK 4\n><CHUNK 5\n>"
                  b"<TAIL><>"})


def test_body_filter_error_page():
    # nginx's error page goes through the body filter too
    b = {
        "access": 'if ngx.var.arg_t == "e403" then ngx.exit(403) end',
        "content": 'ngx.exit(ngx.HTTP_NO_CONTENT)',
        "body_filter": r'''
ngx.ctx.calls = (ngx.ctx.calls or "") .. #ngx.arg[1] .. ":"
                .. tostring(ngx.arg[2]) .. " "
ngx.arg[1] = ngx.arg[1]:upper()
''',
        "log": 'ngx.log(ngx.ERR, "@@calls ", ngx.var.arg_t, " ", '
               'tostring(ngx.ctx.calls))',
    }
    g, n = setup(b)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/?t=e403"), "403 page", status=403)
    assert b"<TITLE>403 FORBIDDEN</TITLE>" in res[0][2], res[0][2]
    same(both(n, "/?t=e204"), "204", status=204)
    gl, nl = logs_since(g, n, gm, nm, lambda x: x.count("@@calls") >= 2,
                        "@@calls")
    # the page and eof in one call; a 204 has no body to filter.  The
    # page's length differs: its footer says "golapis", not "nginx/1.22.1".
    # The log phase runs after the response is sent, so the two requests'
    # lines may come in either order (two workers)
    def pagelen(ms):
        return sorted(re.sub(r"^(@@calls e403 )\d+:", r"\1N:", m)
                      for m in ms)
    assert pagelen(marks(gl)) == pagelen(marks(nl)), \
        "\n%r\n%r" % (marks(gl), marks(nl))


# ---------------------------------------------------------------------------
# log_by_lua

def test_log_after_response():
    # the answer is out before the log handler runs: a slow log handler
    # does not delay it, whether nginx keeps its connections to golapis
    # (it then needs END_REQUEST only) or not (it then waits for the
    # connection to close)
    d = mktemp("logfile-")
    b = {
        "content": 'ngx.say("answer")',
        "log": r'''
local f = io.open("@DIR@/" .. ngx.var.arg_w, "w")
f:write("start\n") f:close()
os.execute("sleep 0.4")
f = io.open("@DIR@/" .. ngx.var.arg_w, "a")
f:write("status=" .. ngx.status .. " body_sent\n") f:close()
'''.replace("@DIR@", d),
    }
    g, n = setup(b)
    nk = Nginx(g, keepalive=True)
    for port, prefix, w in ((nk.port, "/p", "gk"), (n.port, "/p", "g"),
                            (n.port, "/refphase", "n")):
        t0 = time.monotonic()
        s, _, body = http_get(port, prefix + "/?w=" + w)
        dt = time.monotonic() - t0
        assert (s, body) == (200, b"answer\n"), (prefix, s, body)
        assert dt < 0.3, "%s: the answer took %.2fs" % (w, dt)
        path = os.path.join(d, w)
        wait_for(lambda: os.path.exists(path)
                 and "body_sent" in open(path).read(), 5,
                 what="%s's log handler" % prefix)
        assert open(path).read() == "start\nstatus=200 body_sent\n"


# ---------------------------------------------------------------------------
# ngx.get_phase everywhere, APIs disabled in the filters and log

def test_get_phase_every_phase():
    init = r'''
package.loaded.phases = {init = ngx.get_phase()}
'''
    init_worker = r'''
package.loaded.phases.init_worker = ngx.get_phase()
'''
    b = {
        "rewrite": 'ngx.ctx.p = {ngx.get_phase()}',
        "access": 'table.insert(ngx.ctx.p, ngx.get_phase())',
        "content": r'''
table.insert(ngx.ctx.p, ngx.get_phase())
local ph = require "phases"
ngx.say(ph.init, " ", ph.init_worker, " ", table.concat(ngx.ctx.p, " "))
''',
        "header_filter": 'ngx.header["X-P"] = ngx.get_phase()',
        "body_filter": 'if ngx.arg[2] then ngx.arg[1] = ngx.get_phase() end',
        "log": 'ngx.log(ngx.ERR, "@@phase ", ngx.get_phase())',
    }
    inits = ("init_by_lua_block {%s}\ninit_worker_by_lua_block {%s}\n"
             % (init, init_worker))
    g, n = setup(b, conf_extra=inits, extra_http=inits)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/"), "get_phase", headers=("X-P",), status=200)
    assert res[0][2] == (b"init init_worker rewrite access content\n"
                         b"body_filter"), res[0][2]
    assert res[0][1]["X-P"] == "header_filter"
    gl, nl = logs_since(g, n, gm, nm, lambda x: "@@phase" in x, "@@phase")
    assert marks(gl) == marks(nl) == ["@@phase log"], (marks(gl), marks(nl))


DISABLED = {
    "content": 'ngx.say("body")',
    "header_filter": r'''
local t = ngx.var.arg_t
if t == "hf_sleep" then ngx.sleep(0.01) end
if t == "hf_say" then ngx.say("x") end
if t == "hf_redirect" then ngx.redirect("/x") end
''',
    "body_filter": r'''
local t = ngx.var.arg_t
if t == "bf_sleep" then ngx.sleep(0.01) end
if t == "bf_say" then ngx.say("x") end
if t == "bf_exit" then ngx.exit(ngx.OK) end
''',
    "log": r'''
local t = ngx.var.arg_t
if t == "log_sleep" then ngx.sleep(0.01) end
if t == "log_say" then ngx.say("x") end
if t == "log_exit" then ngx.exit(ngx.OK) end
if t == "log_redirect" then ngx.redirect("/x") end
ngx.log(ngx.ERR, "@@done ", t)
''',
}


def get_failing(n, t):
    """/?t=T from golapis and from nginx; a filter's failure may cut the
    answer (nginx drops the connection), so no answer is checked."""
    for prefix in ("/p", "/refphase"):
        try:
            http_get(n.port, prefix + "/?t=" + t, timeout=5)
        except Exception:
            pass


def _disabled(cases):
    """Each case's failure must be logged as lua-nginx-module logs it (the
    answers differ: nginx drops the connection when a filter fails)."""
    g, n = setup(DISABLED)
    for t in cases:
        gm, nm = g.mark(), nmark(n)
        get_failing(n, t)
        want = "failed to run %s_by_lua*" % {
            "hf": "header_filter", "bf": "body_filter",
            "log": "log"}[t.split("_")[0]]
        # a failing log handler writes no @@done line
        gl, nl = logs_since(g, n, gm, nm, lambda x: "failed to run" in x
                            and ("@@done %s" % t in x or t[:4] == "log_"),
                            "the error of " + t)
        ge, ne = errors(gl), errors(nl)
        assert ge and ge[0][0] == want, (t, ge)
        assert "API disabled in the context of" in ge[0][3], (t, ge)
        assert ge[:1] == ne[:1], "%s:\ngolapis %r\nref     %r" % (t, ge, ne)


def test_output_disabled_in_filters_and_log():
    _disabled(("hf_say", "hf_redirect", "bf_say", "bf_exit", "log_say",
               "log_exit", "log_redirect"))


def test_sleep_disabled_in_filters_and_log():
    _disabled(("hf_sleep", "bf_sleep", "log_sleep"))


# the whole entry of a failing filter or log handler, traceback included:
# its bottom frame is "in main chunk" (golapis calls the chunk as a
# function of its code cache), and a log handler's entry has nginx's
# log action, "while logging request"

FAIL_TB = {
    "header_filter": r'''
local function f() error("hf fails") end
if ngx.var.arg_t == "hf" then f() end
''',
    "log": r'''
local function g() error("log fails") end
if ngx.var.arg_t == "log" then g() end
''',
}

TB_CONF_RE = re.compile(r"\((?:golapis|nginx)\.conf:\d+\)")


def entry_of(text, start):
    """The error entry that begins with start: its lines up to the client
    tail, the config file names left out."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if start in line:
            out = [line[line.index(start):]]
            for more in lines[i + 1:]:
                if not (more.startswith("\t") or more == "stack traceback:"):
                    break
                out.append(more)
            entry = TB_CONF_RE.sub("(CONF)", "\n".join(out))
            return entry.split(", client: ")[0]
    return None


def test_filter_and_log_error_traceback():
    g, n = setup(FAIL_TB)
    for t, start in (("hf", "failed to run header_filter_by_lua*"),
                     ("log", "failed to run log_by_lua*")):
        gm, nm = g.mark(), nmark(n)
        get_failing(n, t)
        gl, nl = logs_since(g, n, gm, nm, lambda x: start in x, start)
        ge, ne = entry_of(gl, start), entry_of(nl, start)
        assert ge == ne, "golapis:\n%s\nnginx:\n%s" % (ge, ne)
        assert ge.endswith(" in main chunk" + (
            " while logging request" if t == "log" else "")), ge


# ---------------------------------------------------------------------------
# init_by_lua, init_worker_by_lua

INIT = r'''
-- a global, a module, a local captured by a module's function
INIT_GLOBAL = "from init"
local count = 0
package.loaded.initmod = {n = 42, bump = function()
    count = count + 1
    return count
end}
'''

INIT_WORKER = r'''
IW_GLOBAL = "from init_worker"
'''

INIT_READ = r'''
local m = require "initmod"
ngx.say(tostring(INIT_GLOBAL), " ", tostring(IW_GLOBAL), " ", m.n, " ",
        type(m.bump()))
'''


def test_init_globals_and_modules():
    # what init_by_lua and init_worker_by_lua leave in _G and in
    # package.loaded is there for every request
    inits = ("init_by_lua_block {%s}\ninit_worker_by_lua_block {%s}\n"
             % (INIT, INIT_WORKER))
    g, n = setup({"content": INIT_READ}, conf_extra=inits, extra_http=inits)
    res = same(both(n, "/"), "init values", status=200)
    assert res[0][2] == b"from init from init_worker 42 number\n", res[0][2]


def test_init_api_without_request():
    init = r'''
local out = {}
package.loaded.initres = out
local function try(name, f)
    local ok, err = pcall(f)
    out[#out + 1] = name .. " " .. tostring(ok) .. " "
                    .. tostring(err):gsub("^.*: ", "")
end
try("sleep", function() ngx.sleep(0.001) end)
try("say", function() ngx.say("x") end)
try("ctx", function() return ngx.ctx.x end)
try("var", function() return ngx.var.uri end)
try("exit", function() ngx.exit(200) end)
'''
    content = 'ngx.say(table.concat(require("initres"), "\\n"))'
    inits = "init_by_lua_block {%s}\n" % init
    g, n = setup({"content": content}, conf_extra=inits, extra_http=inits)
    same(both(n, "/"), "init api", status=200)


def test_init_worker_runs_per_worker():
    # golapis runs init_by_lua and init_worker_by_lua in each worker's Lua
    # state (nginx runs init_by_lua once, in the master, before forking):
    # with 3 workers each runs once
    d = mktemp("iw-")
    inits = r'''
init_by_lua_block {
    local f = io.open("@DIR@/init", "a")
    f:write(ngx.get_phase(), "\n") f:close()
}
init_worker_by_lua_block {
    package.loaded.worker_at_init = ngx.worker.id()
    local f = io.open("@DIR@/init_worker", "a")
    f:write(ngx.worker.id(), " ", ngx.worker.count(), "\n") f:close()
}
'''.replace("@DIR@", d)
    content = r'''
ngx.say(ngx.worker.id(), " ",
        tostring(require("worker_at_init") == ngx.worker.id()))
'''
    g = Golapis(workers=3, conf_extra=inits + blocks({"content": content}))

    def read(name):
        try:
            with open(os.path.join(d, name)) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # the socket may accept before every worker is initialized
    wait_for(lambda: read("init_worker").count("\n") >= 3, 5,
             what="3 init_worker runs")
    assert read("init") == "init\ninit\ninit\n", read("init")
    assert sorted(read("init_worker").splitlines()) == ["0 3", "1 3", "2 3"]
    n = Nginx(g)
    seen = set()
    for _ in range(9):
        s, _, body = http_get(n.port, "/")
        wid, match = body.decode().split()
        assert s == 200 and match == "true", body
        seen.add(wid)
    assert seen == {"0", "1", "2"}, seen


def _conf_line(path, text):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError("%r not in %s" % (text, path))


def test_init_error_stops_start():
    init = ('init_by_lua_block {\n    local x = 1\n'
            '    error("init failed here")\n}\n')
    g = Golapis(conf_extra=init, start=False)
    line = _conf_line(g.conf_path, "init_by_lua_block")
    # -t compiles the handlers but runs none, as nginx -t
    rc, out, err = golapis_cmd(["-t", "-c", g.conf_path])
    assert rc == 0, (rc, out, err)
    g.start(wait=False)
    assert g.wait(10) != 0, "golapis started with a failing init_by_lua"
    text = g.all_output()
    assert ("init_by_lua(golapis.conf:%d):3: init failed here" % line
            in text), text


def test_init_syntax_error():
    init = 'init_by_lua_block {\n    local x = = 1\n}\n'
    g = Golapis(conf_extra=init, start=False)
    line = _conf_line(g.conf_path, "init_by_lua_block")
    want = "init_by_lua(golapis.conf:%d):2:" % line
    rc, out, err = golapis_cmd(["-t", "-c", g.conf_path])
    assert rc == 1 and want in err and "test failed" in err, (rc, out, err)
    g.start(wait=False)
    assert g.wait(10) != 0
    assert want in g.all_output(), g.all_output()


def test_init_worker_error_logged():
    # as nginx: "init_worker_by_lua error: MSG" and its traceback, whose
    # bottom frame is the chunk ("in main chunk"), and the worker goes on
    iw = 'init_worker_by_lua_block {\n    error("iw failed")\n}\n'
    g = Golapis(conf_extra=iw, start=False, workers=1)
    line = _conf_line(g.conf_path, "init_worker_by_lua_block")
    g.start()
    chunk = "init_worker_by_lua(golapis.conf:%d)" % line
    want = ("init_worker_by_lua error: %s:2: iw failed\n"
            "stack traceback:\n"
            "\t[C]: in function 'error'\n"
            "\t%s:2: in main chunk\n" % (chunk, chunk))
    wait_for(lambda: want in g.all_output(), 5, what=want)
    n = Nginx(g)
    s, _, b = http_get(n.port, "/hello.lua")
    assert s == 200, (s, b, g.tail())


# ---------------------------------------------------------------------------
# *_by_lua_file with relative paths

FILES = {
    "rw.lua": 'ngx.ctx.t = {"rw-file"}\n',
    "ac.lua": ('table.insert(ngx.ctx.t, "ac-file")\n'
               'if ngx.var.arg_t == "err" then\n'
               '    error("file boom")\nend\n'),
    "ct.lua": 'table.insert(ngx.ctx.t, "ct-file")\n'
              'ngx.say(table.concat(ngx.ctx.t, ","))\n',
    "hf.lua": 'ngx.header["X-HF"] = "hf-file"\n',
    "bf.lua": 'ngx.arg[1] = ngx.arg[1]:upper()\n',
    "log.lua": 'ngx.log(ngx.ERR, "@@log-file ", ngx.var.arg_t)\n',
}


def test_by_lua_file_relative_paths():
    # relative to the config file's directory (not golapis's working
    # directory, which the harness makes the config's parent here)
    g = Golapis(conf_extra="".join(
        "%s_by_lua_file lua/%s.lua;\n" % (p, {"rewrite": "rw",
                                               "access": "ac",
                                               "content": "ct",
                                               "header_filter": "hf",
                                               "body_filter": "bf",
                                               "log": "log"}[p])
        for p in PHASES), start=False)
    etc = os.path.join(g.dir, "etc")
    os.makedirs(os.path.join(etc, "lua"))
    for name, text in FILES.items():
        with open(os.path.join(etc, "lua", name), "w") as f:
            f.write(text)
    conf = os.path.join(etc, "golapis.conf")
    os.rename(g.conf_path, conf)
    g.conf_path = conf
    rc, out, err = golapis_cmd(["-t", "-c", conf])
    assert rc == 0, (rc, out, err)
    g.start()
    loc = "".join("%s_by_lua_file %s/lua/%s;\n" % (p, etc, f) for p, f in (
        ("rewrite", "rw.lua"), ("access", "ac.lua"), ("content", "ct.lua"),
        ("header_filter", "hf.lua"), ("body_filter", "bf.lua"),
        ("log", "log.lua")))
    n = Nginx(g, lua=True, extra_server="location /refphase/ {\n"
              "default_type text/html;\n%s}\n" % loc)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/?t=ok"), "files", headers=("X-HF",), status=200)
    assert res[0][2] == b"RW-FILE,AC-FILE,CT-FILE\n", res[0][2]
    same(both(n, "/?t=err"), "file error", status=500)
    gl, nl = logs_since(g, n, gm, nm, lambda x: x.count("@@log-file") >= 2,
                        "@@log-file")
    assert marks(gl) == marks(nl), (marks(gl), marks(nl))
    want = "runtime error: %s/lua/ac.lua:3: file boom" % etc
    assert want in gl and want in nl, gl


# ---------------------------------------------------------------------------
# coroutine.* outside rewrite/access/content: Lua's own functions in the
# filters (as lua-nginx-module), ours (and their context error) in log

def test_coroutines_in_filters_and_log():
    gen = r'''
local w = coroutine.wrap(function()
    for i = 1, 3 do coroutine.yield(i) end
end)
local c = coroutine.create(function(a) local b = coroutine.yield(a + 1)
                                       return b * 2 end)
local _, x = coroutine.resume(c, 1)
local _, y = coroutine.resume(c, 10)
'''
    b = {
        "rewrite": 'ngx.ctx.rw = "x"',
        "content": 'ngx.say("body")',
        "header_filter": gen + r'''
ngx.header["X-Co"] = w() .. w() .. w() .. ":" .. x .. ":" .. y
        .. ":" .. coroutine.status(c)
''',
        "body_filter": gen + r'''
if ngx.arg[2] then
    ngx.arg[1] = "bf " .. w() .. w() .. w() .. ":" .. x .. ":" .. y .. "\n"
end
''',
        "log": r'''
local ok, err = pcall(coroutine.create, function() end)
ngx.log(ngx.ERR, "@@co ", tostring(ok), " ", err)
''',
    }
    g, n = setup(b)
    gm, nm = g.mark(), nmark(n)
    res = same(both(n, "/"), "coroutines in filters", headers=("X-Co",),
               status=200)
    assert res[0][1]["X-Co"] == "123:2:20:dead", res[0][1]
    assert res[0][2] == b"body\nbf 123:2:20\n", res[0][2]
    gl, nl = logs_since(g, n, gm, nm, lambda x: "@@co" in x, "@@co")
    assert marks(gl) == marks(nl), "\n%r\n%r" % (marks(gl), marks(nl))
    assert "API disabled in the context of log_by_lua*" in marks(gl)[0], \
        marks(gl)


def test_exit_worker_by_lua():
    # exit_worker_by_lua_block runs once per worker as it exits, as
    # lua-nginx-module's: its phase is "exit_worker", shared dicts work,
    # timers cannot be made any more
    d = make_docroot(copy_scripts=False)
    out = os.path.join(d, "exit.txt")
    g = Golapis(workers=2, docroot=d, conf_extra=r'''
lua_shared_dict x 1m;
exit_worker_by_lua_block {
    local n = ngx.shared.x:incr("n", 1, 0)
    local ok, err = pcall(ngx.timer.at, 0, function() end)
    local f = io.open("%s", "a")
    f:write(ngx.get_phase(), " ", n, " ", tostring(ok), " ", err, "\n")
    f:close()
}
''' % out)
    assert g.stop() == 0
    with open(out) as f:
        lines = sorted(f.read().splitlines())
    assert lines == [
        "exit_worker 1 false API disabled in the context of "
        "exit_worker_by_lua*",
        "exit_worker 2 false API disabled in the context of "
        "exit_worker_by_lua*"], lines
