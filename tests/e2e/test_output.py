"""The output API, differentially: each script runs through golapis
(/NAME.lua) and through the real lua-nginx-module (/ref/NAME.lua) in the
same nginx, and the answers must match.  ngx.say/print, flush, eof, exit,
status, header, resp.get_headers, ngx.resp.add_header, send_headers,
headers_sent, redirect."""

import http.client
import os
import re
import threading
import time

from harness import (Nginx, arrival, assert_same, diff_setup, http_get,
                     http_timed, wait_for)

HOST = {"Host": "localhost"}
REF_ONLY = os.environ.get("GL_REF_ONLY")


def _same(n, path, **kw):
    kw.setdefault("headers", HOST)
    return assert_same(n.port, path, **kw)


def _log_has(text, needle, who):
    assert needle in text, "%s: no %r in the error log:\n%s" % (
        who, needle, text[-3000:])


def _lua_error(log, script):
    """The message of the 'lua entry thread aborted' line about `script`
    (without the file path, which differs)."""
    m = re.search(r"lua entry thread aborted: runtime error: \S*/%s:(\d+: "
                  r"[^\n]*)" % re.escape(script), log)
    return m and m.group(1)


# ---------------------------------------------------------------------------
# ngx.say, ngx.print

SAY = r'''
ngx.say("s", 1, 2.5, 0.1, 123456789012, 2^53, 1e20, -7, 1/0)
ngx.say(true, false, nil, ngx.null)
ngx.say({"a", {"b", {"c", 3}, true}, 4.5, ngx.null})
ngx.say({})
ngx.say({[1] = "x", [3] = "z"})
ngx.say()
ngx.print("no newline", "|", "")
ngx.print()
ngx.print("\n")
ngx.say("a", "b", "c", 1, 2, 3)
local r1, r2 = ngx.say("ret")
p("say returns", r1, r2)
r1, r2 = ngx.print("")
p("print returns", r1, r2)
local ok, err = pcall(ngx.say, {a = 1})
p("non-array", ok, err)
ok, err = pcall(ngx.print, {1, {b = 2}})
p("nested non-array", ok, err)
ok, err = pcall(ngx.say, {[0] = 1})
p("zero key", ok, err)
ok, err = pcall(ngx.say, {[1.5] = 1})
p("float key", ok, err)
ok, err = pcall(ngx.say, "a", function() end)
p("function", ok, err)
ok, err = pcall(ngx.print, coroutine.create(function() end))
p("thread", ok, err)
ok, err = pcall(ngx.say, {"a", {print}})
p("function in table", ok, err)
done()
'''


def test_say_print_values():
    g, n, d = diff_setup({"say.lua": SAY})
    _, (rs, rh, rb) = _same(n, "/say.lua", check_headers=["Content-Type"],
                            ref_status=200)
    # the ref answer is what we think it is
    assert rb.startswith(b"s12.50.11234567890129.007199254741e+151e+20-7inf\n"
                         b"truefalsenilnull\nabc3true4.5null\n\nxnilz\n\n"
                         b"no newline|\nabc123\nret\n"), rb
    assert b"non-array false bad argument #1 to '?' (non-array table found)" \
        in rb, rb


def test_say_print_errors_logged():
    # not caught: a 500 and the message in the error log, as upstream
    g, n, d = diff_setup({
        "e1.lua": "ngx.say({a = 1})\n",
        "e2.lua": "ngx.print(\"a\", {1, {x = 1}})\n",
        "e3.lua": "ngx.say(print)\n",
    })
    for name in ("e1.lua", "e2.lua", "e3.lua"):
        _same(n, "/" + name, ref_status=500)
    glog, rlog = g.log(), n.log()
    want = {
        "e1.lua": "bad argument #1 to 'say' (non-array table found)",
        "e2.lua": "bad argument #2 to 'print' (non-array table found)",
        "e3.lua": "bad argument #1 to 'say' (string, number, boolean, "
                  "nil, ngx.null, or array table expected, but got "
                  "function)",
    }
    for name, msg in want.items():
        ref = _lua_error(rlog, name)
        assert ref and ref.endswith(": " + msg), (name, ref)
        assert REF_ONLY or _lua_error(glog, name) == ref, \
            "%s: golapis logged %r, want %r\n%s" % (
                name, _lua_error(glog, name), ref, glog[-2000:])


# ---------------------------------------------------------------------------
# ngx.flush, ngx.eof

FLUSH = r'''
ngx.say("first")
local r1, r2 = ngx.flush(@WAIT@)
ngx.sleep(1)
ngx.say("second ", tostring(r1), " ", tostring(r2))
'''


def test_flush_streams():
    # with fastcgi_buffering off nginx passes on each record as it comes,
    # so a flushed "first" reaches the client a second before "second"
    g, n, d = diff_setup({"flush_%s.lua" % w: FLUSH.replace("@WAIT@", w)
                      for w in ("true", "false", "")},
                     nginx_kw={"extra_location": "fastcgi_buffering off;"})
    results = {}

    def one(path):
        try:
            results[path] = http_timed(n.port, path)
        except Exception as e:
            results[path] = (repr(e).encode(), [])

    paths = [pre + "/flush_%s.lua" % w
             for pre in ("", "/ref") for w in ("true", "false", "")
             if pre or not REF_ONLY]
    ts = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    for path in paths:
        raw, events = results[path]
        first = arrival(raw, events, b"first\n")
        second = arrival(raw, events, b"second 1 nil\n")
        assert first is not None and second is not None, (path, raw)
        assert first < 0.7, "%s: 'first' came after %.2fs" % (path, first)
        assert second >= 0.9, "%s: 'second' came after %.2fs" % (path,
                                                                 second)


EOF_SCRIPT = r'''
ngx.header["X-Eof"] = "1"
ngx.say("before eof")
local r1, r2 = ngx.eof()
local a, b = ngx.eof()
local c, d = ngx.say("after")
local e, f = ngx.print("after")
local g, h = ngx.flush()
ngx.sleep(1.5)
local fh = io.open("@DIR@/@NAME@", "w")
fh:write(table.concat({tostring(r1), tostring(r2), tostring(a), tostring(b),
                       tostring(c), tostring(d), tostring(e), tostring(f),
                       tostring(g), tostring(h)}, ","))
fh:close()
'''


def test_eof_then_code_runs_on():
    # the client has the whole response at ngx.eof(); the script goes on
    # (sleeps, then writes a file) after that
    g, n, d = diff_setup({"eof_%s.lua" % x: EOF_SCRIPT.replace("@NAME@", x)
                      for x in ("g", "r", "gk")})
    nk = Nginx(g, lua=True, keepalive=True)
    results = {}

    def one(port, path):
        t0 = time.monotonic()
        try:
            s, h, b = http_get(port, path, headers=HOST)
            results[path] = (s, h.get("X-Eof"), b, time.monotonic() - t0)
        except Exception as e:
            results[path] = (None, None, repr(e), time.monotonic() - t0)

    cases = [(n.port, "/ref/eof_r.lua")]
    names = ["r"]
    if not REF_ONLY:
        cases += [(n.port, "/eof_g.lua"), (nk.port, "/eof_gk.lua")]
        names += ["g", "gk"]
    ts = [threading.Thread(target=one, args=c) for c in cases]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    for _, path in cases:
        s, xeof, body, took = results[path]
        assert (s, xeof, body) == (200, "1", b"before eof\n"), (path, s, body)
        assert took < 1.0, "%s: the response took %.2fs" % (path, took)
    for name in names:
        f = os.path.join(d, name)
        wait_for(lambda: os.path.exists(f) and os.path.getsize(f) > 0, 5,
                 what="the file written after eof (%s)" % name)
    with open(os.path.join(d, "r")) as f:
        ref = f.read()
    assert ref == "1,nil,nil,seen eof,nil,seen eof,nil,seen eof,nil," \
                  "seen eof", ref
    for name in names[1:]:
        with open(os.path.join(d, name)) as f:
            got = f.read()
        assert got == ref, "%s: %r, ref %r" % (name, got, ref)


# ---------------------------------------------------------------------------
# ngx.exit

EXIT = r"""
ngx.header["X-A"] = "1"
if @OUT@ then ngx.say("before") end
ngx.exit(@CODE@)
ngx.say("not reached")
io.open("@DIR@/reached-@NAME@", "w"):close()
"""

EXIT_BEFORE = {"200": 200, "201": 201, "204": 204, "301": 301, "302": 302,
               "404": 404, "500": 500, "503": 503, "ngx.OK": 200, "0": 200,
               "ngx.HTTP_FORBIDDEN": 403}
EXIT_AFTER = ["200", "201", "301", "404", "500", "503", "ngx.OK", "0"]


def _exit_scripts(codes):
    files = {}
    for code in codes:
        for out in ("true", "false"):
            name = "exit_%s_%s" % (re.sub(r"\W", "_", code), out)
            files[name + ".lua"] = (EXIT.replace("@OUT@", out)
                                    .replace("@CODE@", code)
                                    .replace("@NAME@", name))
    return files


def test_exit_statuses():
    g, n, d = diff_setup(_exit_scripts(list(EXIT_BEFORE) + EXIT_AFTER))
    for code, want in EXIT_BEFORE.items():
        name = "exit_%s_false" % re.sub(r"\W", "_", code)
        _, (rs, rh, rb) = _same(n, "/%s.lua" % name, all_headers=True,
                                ref_status=want)
        assert b"not reached" not in rb
    # after output the status is already out: 200 and what was printed
    for code in EXIT_AFTER:
        name = "exit_%s_true" % re.sub(r"\W", "_", code)
        _, (rs, rh, rb) = _same(n, "/%s.lua" % name, all_headers=True,
                                ref_status=200)
        assert rb == b"before\n", (code, rb)
    assert not [f for f in os.listdir(d) if f.startswith("reached")], \
        os.listdir(d)
    msg = ("attempt to set status 404 via ngx.exit after sending out the "
           "response status 200")
    _log_has(n.log(), msg, "ref")
    if not REF_ONLY:
        _log_has(g.log(), msg, "golapis")


def test_exit_error():
    # upstream, ngx.exit(ngx.ERROR) finalizes the request with an error:
    # nginx closes the client connection without a response.  golapis
    # cannot close nginx's client connection; it must stop the script
    # and not answer as if all went well: a 5xx (its own, or nginx's 502
    # when golapis drops the FastCGI request) or a closed connection.
    g, n, d = diff_setup(_exit_scripts(["ngx.ERROR"]))
    for out in ("true", "false"):
        path = "/exit_ngx_ERROR_%s.lua" % out
        try:
            s, h, b = http_get(n.port, "/ref" + path, headers=HOST)
            raise AssertionError("ref answered %s %r" % (s, b))
        except (http.client.HTTPException, ConnectionError):
            pass
        if REF_ONLY:
            continue
        try:
            s, h, b = http_get(n.port, path, headers=HOST)
            assert s >= 500 and b"not reached" not in b, (path, s, b)
        except (http.client.HTTPException, ConnectionError):
            pass
    time.sleep(0.2)
    assert not [f for f in os.listdir(d) if f.startswith("reached")], \
        os.listdir(d)


# ---------------------------------------------------------------------------
# ngx.status, ngx.headers_sent, ngx.send_headers

STATUS = r'''
p("initial", ngx.status, type(ngx.status))
ngx.status = 202
p("set", ngx.status, type(ngx.status))
ngx.status = "203"
p("string", ngx.status, type(ngx.status))
local ok = pcall(function() ngx.status = "abc" end)
p("bad string raises", ok, ngx.status)
ok = pcall(function() ngx.status = {} end)
p("table raises", ok, ngx.status)
p("headers_sent", ngx.headers_sent)
ngx.status = ngx.HTTP_CREATED
done()
ngx.say("headers_sent ", tostring(ngx.headers_sent))
ngx.status = 404
ngx.say("after ", ngx.status)
'''

SEND_HEADERS = r'''
ngx.status = 202
ngx.header["X-Sent"] = "yes"
p("before", ngx.headers_sent)
local r1, r2 = ngx.send_headers()
p("send_headers", r1, r2)
p("after", ngx.headers_sent)
r1, r2 = ngx.send_headers()
p("again", r1, r2)
ngx.header["X-Late"] = "late"
p("late header", ngx.header["X-Late"])
p("flush", ngx.flush(true))
done()
'''


def test_status_and_headers_sent():
    g, n, d = diff_setup({"status.lua": STATUS, "send.lua": SEND_HEADERS})
    _, (rs, rh, rb) = _same(n, "/status.lua", all_headers=True,
                            ref_status=201)
    assert rb == (b"initial 0 number\nset 202 number\nstring 203 number\n"
                  b"bad string raises false 203\ntable raises false 203\n"
                  b"headers_sent false\nheaders_sent true\nafter 201\n"), rb
    msg = "attempt to set ngx.status after sending out response headers"
    _log_has(n.log(), msg, "ref")
    if not REF_ONLY:
        _log_has(g.log(), msg, "golapis")

    _, (rs, rh, rb) = _same(n, "/send.lua", all_headers=True,
                            ref_status=202)
    assert rh.get("X-Sent") == "yes" and rh.get("X-Late") is None, rh
    assert rb == (b"before false\nsend_headers 1 nil\nafter true\n"
                  b"again 1 nil\nlate header nil\nflush 1\n"), rb
    msg = "attempt to set ngx.header.HEADER after sending out response headers"
    _log_has(n.log(), msg, "ref")
    if not REF_ONLY:
        _log_has(g.log(), msg, "golapis")


# ---------------------------------------------------------------------------
# ngx.header

HEADER = r'''
ngx.header["X-One"] = "1"
ngx.header.x_two = "2"
ngx.header["X_Three"] = "3"
ngx.header["x-four"] = 4
ngx.header["X-Multi"] = {"a", "b", "c"}
ngx.header["X-Gone"] = "g"
ngx.header["X-Gone"] = nil
ngx.header["X-Gone-Tab"] = {"g1", "g2"}
ngx.header["X-Gone-Tab"] = nil
ngx.header["X-Empty"] = {}
ngx.header["X-Bool"] = true
ngx.header["Set-Cookie"] = {"a=1; Path=/", "b=2"}
ngx.header["X-Over"] = "old"
ngx.header["X-Over"] = "new"
ngx.header["X-OVER"] = "newer"
ngx.header["X-Num"] = 3.5
ngx.header["X-Single-Tab"] = {"only"}
ngx.header["X-Crlf"] = "a\r\nX-Injected: 1"
ngx.header["X-Empty-Str"] = ""
ngx.header.content_type = "text/plain; charset=utf-8"
ngx.header["Cache-Control"] = "no-store"
p("x-one", ngx.header["x-one"], ngx.header.X_ONE, ngx.header["X-ONE"])
p("x_two", ngx.header["X-Two"], ngx.header.x_two)
p("three", ngx.header["X-Three"], ngx.header["X_Three"], ngx.header.x_three)
p("four", ngx.header["X-Four"], type(ngx.header["X-Four"]))
p("multi", ngx.header["X-Multi"])
p("gone", ngx.header["X-Gone"], ngx.header["X-Gone-Tab"])
p("empty", ngx.header["X-Empty"])
p("bool", ngx.header["X-Bool"])
p("cookie", ngx.header["Set-Cookie"], ngx.header.set_cookie)
p("over", ngx.header["X-Over"])
p("num", ngx.header["X-Num"])
p("single", ngx.header["X-Single-Tab"])
p("crlf", ngx.header["X-Crlf"])
p("empty-str", ngx.header["X-Empty-Str"])
p("ct", ngx.header.content_type, ngx.header["Content-Type"],
  ngx.header["content-type"])
p("cc", ngx.header.cache_control)
p("missing", ngx.header["X-Missing"], ngx.header.x_missing)
p("content-length", ngx.header["Content-Length"])
done()
'''

HEADER_CT = {
    "ct_clear.lua": """
ngx.header.content_type = "text/plain"
ngx.header.content_type = nil
ngx.say("ct=", tostring(ngx.header.content_type))
""",
    "ct_none.lua": """
ngx.header["Content-Type"] = nil
ngx.say("ct=", tostring(ngx.header.content_type))
""",
    "ct_default.lua": """
ngx.say("ct=", tostring(ngx.header.content_type))
""",
    "ct_override.lua": """
ngx.header["content-type"] = "text/x-a"
ngx.header.Content_Type = "text/x-b"
ngx.say("ct=", tostring(ngx.header["CONTENT-TYPE"]))
""",
}

HEADER_EMPTY = r'''
ngx.header["X-Only"] = "1"
ngx.exit(200)
'''


def test_header_set_and_read():
    files = {"header.lua": HEADER, "empty.lua": HEADER_EMPTY}
    files.update(HEADER_CT)
    g, n, d = diff_setup(files)
    _, (rs, rh, rb) = _same(n, "/header.lua", all_headers=True,
                            ref_status=200)
    assert rh.get_all("X-Multi") == ["a", "b", "c"], rh
    assert rh.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"], rh
    assert rh.get("x-two") == "2" and rh.get("X-Three") == "3", rh
    assert rh.get("X-Gone") is None and rh.get("X-Over") == "newer", rh
    assert rh.get("X-Crlf") == "a%0D%0AX-Injected: 1", rh
    assert b'multi {1="a",2="b",3="c"}' in rb, rb
    for name in HEADER_CT:
        _same(n, "/" + name, all_headers=True, ref_status=200)
    _same(n, "/empty.lua", all_headers=True, ref_status=200)


# ---------------------------------------------------------------------------
# ngx.resp.get_headers, require "ngx.resp".add_header

# "connection" (and "content-length") in upstream's ngx.resp.get_headers()
# come from nginx's own request state, not from the script: left out here
RESP = r'''
local resp = require "ngx.resp"
local function strip(h)
    h.connection = nil
    h.Connection = nil
    return h
end
p("empty", strip(ngx.resp.get_headers()))
ngx.header["X-A"] = "1"
ngx.header.X_B = {"2", "3"}
ngx.header.content_type = "text/plain"
ngx.header["Cache-Control"] = "no-cache"
resp.add_header("X-A", "1b")
resp.add_header("X-C", "c")
resp.add_header("X-D", {"d1", "d2"})
ngx.header["X-E"] = "e"
resp.add_header("X-E", "e2")
resp.add_header("X-F", 5)
p("header x-a", ngx.header["X-A"])
local h = ngx.resp.get_headers()
p("metatable", getmetatable(h) ~= nil)
p("index", h["X-A"], h.x_b, h.X_B, h["CONTENT-TYPE"])
p("all", strip(h))
local n = 0
for _ in pairs(strip(ngx.resp.get_headers(0))) do n = n + 1 end
p("count", n)
local h2, err = ngx.resp.get_headers(3)
local n2 = 0
for _ in pairs(h2) do n2 = n2 + 1 end
p("max 3", n2 <= 3, err)
local _, err2 = ngx.resp.get_headers(100)
p("max 100", err2)
local ok, e = pcall(resp.add_header, "X-G")
p("no value", ok, e)
done()
'''

RESP_RAW = r'''
ngx.header["X-A"] = "1"
ngx.header.x_b = {"2", "3"}
ngx.header["Cache-Control"] = "no-cache"
local h = ngx.resp.get_headers(0, true)
h.connection = nil
p("raw", h)
p("metatable", getmetatable(h))
done()
'''


def test_resp_get_headers_and_add_header():
    g, n, d = diff_setup({"resp.lua": RESP, "raw.lua": RESP_RAW})
    _, (rs, rh, rb) = _same(n, "/resp.lua", all_headers=True,
                            ref_status=200)
    assert rh.get_all("X-A") == ["1", "1b"], rh
    assert rh.get_all("X-D") == ["d1", "d2"], rh
    assert (b'all {"cache-control"="no-cache","content-type"="text/plain",'
            b'"x-a"={1="1",2="1b"}' in rb), rb
    assert b"max 3 true truncated\nmax 100 nil\n" in rb, rb
    _, (rs, rh, rb) = _same(n, "/raw.lua", all_headers=True, ref_status=200)
    assert b'"Cache-Control"="no-cache"' in rb and b'"x-b"' in rb, rb


# ---------------------------------------------------------------------------
# ngx.redirect

REDIRECT = r"""
ngx.header["X-Before"] = "1"
ngx.redirect(@ARGS@)
ngx.say("not reached")
"""

REDIRECTS = [("/foo", None, 302), ("http://example.com/x?y=1", None, 302),
             ("foo/relative", None, 302), ("/q?a=b%20c&d", None, 302)]
REDIRECTS += [("/bar", s, int(w)) for s, w in (
    ("301", 301), ("302", 302), ("303", 303), ("307", 307),
    ("308", 308), ("ngx.HTTP_MOVED_PERMANENTLY", 301),
    ("ngx.HTTP_MOVED_TEMPORARILY", 302), ("ngx.HTTP_SEE_OTHER", 303),
    ("ngx.HTTP_TEMPORARY_REDIRECT", 307),
    ("ngx.HTTP_PERMANENT_REDIRECT", 308))]

REDIRECT_ERRORS = r'''
for _, s in ipairs({200, 304, 404, 300, 309, 500}) do
    local ok, err = pcall(ngx.redirect, "/x", s)
    p(s, ok, err)
end
local ok, err = pcall(ngx.redirect)
p("no args", ok, err)
ok, err = pcall(ngx.redirect, {})
p("table", ok, err)
ok, err = pcall(ngx.redirect, "/x", nil)
p("nil status", ok, err)
ok, err = pcall(ngx.redirect, "/x", 302, 3)
p("three args", ok, err)
ngx.header["X-Still"] = "here"
done()
ok, err = pcall(ngx.redirect, "/late")
ngx.say("after output ", tostring(ok), " ", tostring(err))
'''


def test_redirect():
    files = {"rderr.lua": REDIRECT_ERRORS}
    for i, (uri, st, want) in enumerate(REDIRECTS):
        args = "%r" % uri if st is None else "%r, %s" % (uri, st)
        files["rd%d.lua" % i] = REDIRECT.replace("@ARGS@", args)
    g, n, d = diff_setup(files)
    for i, (uri, st, want) in enumerate(REDIRECTS):
        _, (rs, rh, rb) = _same(n, "/rd%d.lua" % i, all_headers=True,
                                ref_status=want)
        assert rh.get("Location") == uri, (uri, rh.get("Location"))
        assert b"not reached" not in rb
    _, (rs, rh, rb) = _same(n, "/rderr.lua", all_headers=True,
                            ref_status=200)
    allowed = (b"only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY,"
               b" ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and "
               b"ngx.HTTP_TEMPORARY_REDIRECT are allowed")
    assert b"200 false " + allowed in rb, rb
    assert b"after output false attempt to call ngx.redirect after sending " \
           b"out the headers" in rb, rb


def test_resp_set_status():
    # require("ngx.resp").set_status(status, reason): newer lua-resty-core
    # has it (Debian's 0.1.25 does not, so golapis only): the reason
    # phrase goes into the status line nginx sends
    g, n, d = diff_setup({"setst.lua": r'''
local resp = require "ngx.resp"
resp.set_status(299, "Just Fine")
ngx.say("status ", ngx.status)
'''})
    conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
    try:
        conn.request("GET", "/setst.lua", headers=HOST)
        resp = conn.getresponse()
        body = resp.read()
        assert (resp.status, resp.reason, body) == (
            299, "Just Fine", b"status 299\n"), (resp.status, resp.reason,
                                                 body)
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# ngx.flush's and ngx.print's answers where nginx sends no body, the
# arguments ngx.flush takes; test_compat.py has those before any output

BODYLESS = r'''
ngx.status = tonumber(ngx.var.arg_s) or 200
local a, b = ngx.print("x")
local c, d = ngx.say("y")
local e, f = ngx.flush()
local g, h = ngx.flush(true)
ngx.log(ngx.ERR, "@@", ngx.var.arg_s or "head", " ", tostring(a), " ",
        tostring(b), " ", tostring(c), " ", tostring(d), " ", tostring(e),
        " ", tostring(f), " ", tostring(g), " ", tostring(h), " ",
        tostring(ngx.header.content_type))
'''

FLUSH_ARGS = r'''
local ok, err = pcall(ngx.flush, nil)
p("nil", ok, err)
ok, err = pcall(ngx.flush, 1)
p("number", ok, err)
ok, err = pcall(ngx.flush, true, true)
p("two", ok, err)
ngx.send_headers()
p("send_headers again", ngx.send_headers())
done()
'''


def test_print_flush_header_only():
    # a HEAD request, a 204, a 304: once the header is out there is no
    # body to send: nil, "header only" (for a 304 lua-nginx-module adds
    # no default Content-Type either)
    g, n, d = diff_setup({"bl.lua": BODYLESS, "fa.lua": FLUSH_ARGS},
                         workers=1)
    runs = [("HEAD", ""), ("GET", "?s=204"), ("GET", "?s=304")]
    for method, q in runs:
        for pre in ["/ref"] + ([] if REF_ONLY else [""]):
            http_get(n.port, pre + "/bl.lua" + q, method=method,
                     headers=HOST)
    want = ["%s 1 nil nil header only nil header only nil header only %s"
            % (s, ct) for s, ct in (("head", "text/html"), ("204", "nil"),
                                    ("304", "nil"))]

    wait_for(lambda: len(_at_lines(n.log())) == 3
             and (REF_ONLY or len(_at_lines(g.log())) == 3), 5,
             what="the log lines")
    assert _at_lines(n.log()) == want, n.log()
    if not REF_ONLY:
        assert _at_lines(g.log()) == want, g.log()
    _, (rs, rh, rb) = _same(n, "/fa.lua", ref_status=200)
    assert rb.startswith(b"nil false ") and b"two false " in rb, rb


HEADER_VALUES = r'''
local resp = require "ngx.resp"
local function t(k, v)
    local ok, err = pcall(function() ngx.header[k] = v end)
    p("set", k, ok, err, ngx.header[k])
end
t("X-Num", 1.5) t("X-Big", 2^53) t("X-Bool", true) t("X-Tab", {1, true, "c"})
t("ETag", {"a", "b"}) t("Cache-Control", {"a", "b"})
t("Content-Type", {"t/a", "t/b"}) t("X_Under_Score", "u")
t("x-multi", {"1", "", "2"}) t("x-empty-first", {"", "z"})
t("X-Fn", print) t(12, "twelve") t("", "empty name")
p("read", ngx.header.x_under_score, ngx.header["X-Under-Score"],
  ngx.header[12], ngx.header[""])
resp.add_header("ETag", "c")
resp.add_header("X-Add", "1")
resp.add_header("X-Add", "")
resp.add_header("X-Add", {"2", "3"})
resp.add_header("X-Add", {})
resp.add_header("Cache-Control", "c")
resp.add_header("Content-Type", "t/c")
p("added", ngx.header.ETag, ngx.header["X-Add"], ngx.header.cache_control,
  ngx.header.content_type)
local ok, err = pcall(resp.add_header, "X-Nil")
p("add nil", ok, err)
ok = pcall(resp.add_header, "Content-Length", "x")
p("add content-length x", ok, ngx.header.content_length)
local h = ngx.resp.get_headers(0, true)
h["X-Fn"] = h["X-Fn"] and h["X-Fn"]:match("^function: ") ~= nil
p("all", h)
done()
'''


def test_header_values_as_lua_resty_core():
    # values go through tostring(), tables value by value (an empty one
    # is skipped, or clears when first); the headers nginx holds one value
    # of keep the last; an empty name sets nothing
    g, n, d = diff_setup({"hv.lua": HEADER_VALUES}, workers=1)
    _, (rs, rh, rb) = _same(n, "/hv.lua", ref_status=200, norm=lambda b:
                            re.sub(rb"function: [^\n\"]+", b"function", b))
    assert rh.get_all("ETag") == ["c"], rh
    assert rh.get_all("X-Add") == ["1", "2", "3"], rh
    assert b'\nset X-Tab true nil {1="1",2="true",3="c"}\n' in rb, rb
    assert b'\nread u u twelve nil\n' in rb, rb


CONNECTION = r"""
local function show()
    local h = ngx.resp.get_headers()
    return h.connection .. " " .. tostring(h["transfer-encoding"]) .. " "
           .. tostring(ngx.var.sent_http_connection) .. " "
           .. tostring(ngx.var.sent_http_transfer_encoding)
end
local id = ngx.var.arg_id
ngx.header["Content-Length"] = ngx.var.arg_cl
local before = show()
ngx.print("x\n")
ngx.flush(true)
ngx.log(ngx.ERR, "@@", id, ": ", before, " / ", show())
"""


def test_resp_connection_and_chunked():
    # nginx's Connection answer for the client's version and Connection
    # header; after output without a Content-Length, chunked for HTTP/1.1.
    # (Not an HTTP/1.0 keep-alive client without a Content-Length: there
    # lua-nginx-module holds the whole answer back to count its length,
    # golapis sends it and nginx ends the connection: docs/api-request.md)
    g, n, d = diff_setup({"cn.lua": CONNECTION}, workers=1)
    cases = [
        (b"GET {PATH}?id=1 HTTP/1.1\r\nHost: localhost\r\n"
         b"Connection: close\r\n\r\n",
         "close nil close nil / close chunked close chunked"),
        (b"GET {PATH}?id=2 HTTP/1.1\r\nHost: localhost\r\n"
         b"Connection: Keep-Alive\r\n\r\n",
         "keep-alive nil keep-alive nil / keep-alive chunked keep-alive "
         "chunked"),
        (b"GET {PATH}?id=3&cl=2 HTTP/1.0\r\nHost: localhost\r\n"
         b"Connection: keep-alive\r\n\r\n",
         "keep-alive nil keep-alive nil / keep-alive nil keep-alive nil"),
        (b"GET {PATH}?id=4&cl=2 HTTP/1.1\r\nHost: localhost\r\n"
         b"Connection: close\r\n\r\n",
         "close nil close nil / close nil close nil"),
    ]
    for raw, want in cases:
        _same(n, "/cn.lua", raw=raw, ref_status=200)
    want = ["%d: %s" % (i + 1, w) for i, (raw, w) in enumerate(cases)]
    for who, log in (("ref", n.log), ("golapis", g.log)):
        if who == "golapis" and REF_ONLY:
            continue
        wait_for(lambda: len(_at_lines(log())) == len(cases), 5,
                 what="the log lines")
        assert sorted(_at_lines(log())) == want, (who, log())


def _at_lines(text):
    """What the "@@" log lines say, without their tail."""
    return [line.split("@@", 1)[1].split(", client:", 1)[0]
            for line in text.splitlines() if "@@" in line]
