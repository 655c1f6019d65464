"""ngx.var and ngx.ctx, differentially where they can be (golapis at
/NAME.lua, the real lua-nginx-module at /ref/NAME.lua in the same nginx).
golapis takes its variables from the FastCGI params nginx sends
(/etc/nginx/fastcgi_params plus any fastcgi_param)."""

import os
import re
import threading

from harness import (Golapis, Nginx, assert_same, diff_setup, http_get,
                     make_docroot)

HOST = {"Host": "localhost"}
REF_ONLY = os.environ.get("GL_REF_ONLY")


def _same(n, path, **kw):
    kw.setdefault("headers", HOST)
    return assert_same(n.port, path, **kw)


VARS = r'''
for _, name in ipairs({"uri", "args", "request_uri", "request_method",
                       "scheme", "host", "server_name", "server_addr",
                       "server_port", "remote_addr", "content_type",
                       "content_length", "query_string", "document_root",
                       "document_uri", "server_protocol", "is_args",
                       "http_host", "http_x_my_header", "HTTP_X_MY_HEADER",
                       "http_x_two_dashes_here", "http_user_agent",
                       "cookie_a", "cookie_b", "cookie_c", "cookie_A",
                       "arg_q", "arg_Q", "arg_r", "arg_empty", "arg_bare",
                       "arg_missing", "nonexistent_var", "http_nope",
                       "cookie_nope"}) do
    local v = ngx.var[name]
    p(name, type(v), v)
end
local port = ngx.var.remote_port
p("remote_port", type(port), tonumber(port) ~= nil and tonumber(port) > 0)
local ok, e = pcall(function() return ngx.var[nil] end)
p("nil_name", ok)
done()
'''


def test_builtin_vars():
    g, n, d = diff_setup({"vars.lua": VARS})
    hdrs = {"Host": "localhost", "X-My-Header": "hv",
            "X-Two-Dashes-Here": "2d", "User-Agent": "ua/1",
            "Cookie": "a=1; b=x y; A=up", "Content-Type": "text/x-foo"}
    path = "/vars.lua?q=1&r=a%20b&empty=&bare"
    _, (rs, rh, rb) = _same(n, path, method="POST", body=b"12345",
                            headers=hdrs, ref_status=200)
    got = dict(line.split(" ", 1) for line in rb.decode().splitlines())
    want = {
        "uri": "string /vars.lua",
        "args": "string q=1&r=a%20b&empty=&bare",
        "request_uri": "string %s" % path,
        "request_method": "string POST",
        "scheme": "string http",
        "host": "string localhost",
        "server_name": "string localhost",
        "server_addr": "string 127.0.0.1",
        "server_port": "string %d" % n.port,
        "remote_addr": "string 127.0.0.1",
        "content_type": "string text/x-foo",
        "content_length": "string 5",
        "query_string": "string q=1&r=a%20b&empty=&bare",
        "document_root": "string %s" % d,
        "document_uri": "string /vars.lua",
        "server_protocol": "string HTTP/1.1",
        "is_args": "string ?",
        "http_host": "string localhost",
        "http_x_my_header": "string hv",
        "HTTP_X_MY_HEADER": "string hv",
        "http_x_two_dashes_here": "string 2d",
        "http_user_agent": "string ua/1",
        "cookie_a": "string 1",
        "cookie_b": "string x y",
        "cookie_c": "nil nil",
        "cookie_A": "string 1",
        "arg_q": "string 1",
        "arg_Q": "string 1",
        "arg_r": "string a%20b",
        "arg_empty": "string ",
        "arg_bare": "nil nil",
        "arg_missing": "nil nil",
        "nonexistent_var": "nil nil",
        "http_nope": "nil nil",
        "cookie_nope": "nil nil",
        "remote_port": "string true",
        "nil_name": "false",
    }
    assert got == want, "\n".join(
        "%s: got %r, want %r" % (k, got.get(k), want.get(k))
        for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))
    # no query string, no body
    _, (rs, rh, rb) = _same(n, "/vars.lua", ref_status=200)
    got = dict(line.split(" ", 1) for line in rb.decode().splitlines())
    for k in ("args", "query_string", "content_type", "content_length",
              "is_args", "arg_q"):
        assert got[k] in ("nil nil", "string "), (k, got[k])


HOST_PORT = r'''
p("host", ngx.var.host)
p("http_host", ngx.var.http_host)
p("header", ngx.req.get_headers().host)
'''


def test_host_with_port():
    # Debian's fastcgi_params sends HTTP_HOST as $host (the name without
    # the port, a workaround for a security issue) and nginx then leaves
    # the client's Host header out; so through golapis http_host is the
    # bare host name where lua-nginx-module sees "localhost:8080"
    g, n, d = diff_setup({"hp.lua": HOST_PORT + "done()\n"})
    hdrs = {"Host": "localhost:8080"}
    s, h, b = http_get(n.port, "/ref/hp.lua", headers=hdrs)
    assert b == (b"host localhost\nhttp_host localhost:8080\n"
                 b"header localhost:8080\n"), b
    if not REF_ONLY:
        s, h, b = http_get(n.port, "/hp.lua", headers=hdrs)
        assert b == (b"host localhost\nhttp_host localhost\n"
                     b"header localhost\n"), b


PARAMS = r'''
local id = ngx.var.request_id
ngx.header["X-Seen-Id"] = id
p("request_id", type(id), id and #id, id and id:match("^%x+$") ~= nil)
done()
'''

MY_PARAM = r'''
p("MY_PARAM", ngx.var.MY_PARAM)
p("EMPTY_PARAM", ngx.var.EMPTY_PARAM)
done()
'''


def test_request_id_and_custom_params():
    # nginx passes $request_id to golapis only when told to
    # (fastcgi_param REQUEST_ID $request_id); the X-Req-Id header shows
    # nginx's value for the same request, on both locations
    loc = ("fastcgi_param REQUEST_ID $request_id; "
           "fastcgi_param MY_PARAM hello; "
           "fastcgi_param EMPTY_PARAM ''; "
           "add_header X-Req-Id $request_id;")
    g, n, d = diff_setup({"params.lua": PARAMS, "myparam.lua": MY_PARAM},
                     nginx_kw={"extra_location": loc,
                               "extra_server":
                                   "add_header X-Req-Id $request_id;"})
    (gs, gh, gb), (rs, rh, rb) = _same(n, "/params.lua", ref_status=200)
    assert rb == b"request_id string 32 true\n", rb
    assert rh["X-Seen-Id"] == rh["X-Req-Id"], rh
    if not REF_ONLY:
        assert gh["X-Seen-Id"] == gh["X-Req-Id"], gh
        assert gh["X-Seen-Id"] != rh["X-Seen-Id"], (gh, rh)
        # golapis only: the params nginx sends are variables
        s, h, b = http_get(n.port, "/myparam.lua", headers=HOST)
        assert (s, b) == (200, b"MY_PARAM hello\nEMPTY_PARAM \n"), (s, b)


VAR_WRITE = r'''
p("before", ngx.var.my_var)
if ngx.var.arg_set then
    ngx.var.my_var = "x"
    p("after", ngx.var.my_var)
end
done()
'''


def test_var_write_stays_in_request():
    # upstream a variable must be declared (set $my_var '') to be written;
    # golapis has no config to declare one, so any name can be written,
    # and the value lives as long as the request
    g, n, d = diff_setup({"vw.lua": VAR_WRITE}, workers=1)
    s, h, b = http_get(n.port, "/ref/vw.lua?set=1", headers=HOST)
    assert s == 500, (s, b)
    assert 'variable "my_var" not found for writing' in n.log(), n.log()
    if REF_ONLY:
        return
    s, h, b = http_get(n.port, "/vw.lua?set=1", headers=HOST)
    assert (s, b) == (200, b"before nil\nafter x\n"), (s, b)
    s, h, b = http_get(n.port, "/vw.lua", headers=HOST)
    assert (s, b) == (200, b"before nil\n"), (s, b)


# ---------------------------------------------------------------------------
# ngx.ctx

CTX = r'''
local shared = package.loaded["ctx_test_shared"] or {}
package.loaded["ctx_test_shared"] = shared
p("initial", ngx.ctx)
p("same as the previous request's", shared.last == ngx.ctx)
shared.last = ngx.ctx
ngx.ctx.id = ngx.var.arg_id
ngx.ctx.t = {1}
local before = ngx.ctx
p("same table twice", ngx.ctx == ngx.ctx)
ngx.sleep(tonumber(ngx.var.arg_sleep or "0.05"))
p("after sleep", ngx.ctx.id, ngx.ctx == before, ngx.ctx.t[1])
local function f() return ngx.ctx.id end
p("in a function", f())
p("in a coroutine", coroutine.wrap(function() return ngx.ctx.id end)())
ngx.ctx = {fresh = true}
p("assigned", ngx.ctx.fresh, ngx.ctx.id, ngx.ctx == before)
local ok = pcall(function() ngx.ctx = 5 end)
p("assign a number", ok, ngx.ctx.fresh)
done()
'''

CTX_ALIAS = r'''
ngx.ctx.x = 1
p("alias", golapis.ctx == ngx.ctx, golapis.ctx.x)
golapis.ctx = {y = 2}
p("assign through golapis", ngx.ctx.y, ngx.ctx.x)
done()
'''


def test_ctx():
    g, n, d = diff_setup({"ctx.lua": CTX, "alias.lua": CTX_ALIAS}, workers=1)
    want = (b"initial {}\nsame as the previous request's false\n"
            b"same table twice true\nafter sleep 7 true 1\n"
            b"in a function 7\nin a coroutine 7\n"
            b"assigned true nil false\nassign a number false true\n")
    for i in range(2):
        _, (rs, rh, rb) = _same(n, "/ctx.lua?id=7", ref_status=200)
        assert rb == want, rb
    # two requests at once, each sleeping: each keeps its own ctx
    results = {}

    def one(path):
        try:
            results[path] = http_get(n.port, path, headers=HOST)
        except Exception as e:
            results[path] = (None, None, repr(e))

    paths = ["/ref/ctx.lua?id=1&sleep=0.3", "/ref/ctx.lua?id=2&sleep=0.3"]
    if not REF_ONLY:
        paths += ["/ctx.lua?id=3&sleep=0.3", "/ctx.lua?id=4&sleep=0.3"]
    ts = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    for path in paths:
        i = re.search(r"id=(\d)", path).group(1).encode()
        s, h, b = results[path]
        assert s == 200 and b"\nafter sleep %s true 1\n" % i in b, (path, b)
    if not REF_ONLY:
        s, h, b = http_get(n.port, "/alias.lua", headers=HOST)
        assert (s, b) == (200, b"alias true 1\nassign through golapis 2 "
                                b"nil\n"), (s, b)


# ---------------------------------------------------------------------------
# the rest of nginx's core variables; test_compat.py has the ones golapis
# lacked before (binary_remote_addr, request, sent_http_*, status, ...)

MORE_VARS = r'''
local function try(name, val)
    local ok, err = pcall(function() ngx.var[name] = val end)
    p("write", name, ok, err)
end
ngx.header["Cache-Control"] = {"a", "b"}
ngx.header["Location"] = "/x"
ngx.header["Last-Modified"] = "Thu, 01 Jan 2015 00:00:00 GMT"
ngx.header["X-Two"] = {"1", "2"}
for _, n in ipairs({"sent_http_cache_control", "sent_http_location",
    "sent_http_last_modified", "sent_http_x_two", "Sent_Http_X_Two",
    "sent_http_keep_alive", "sent_http_connection",
    "sent_http_transfer_encoding", "sent_trailer_x", "http_x_forwarded_for",
    "http_cookie", "nginx_version", "https", "limit_rate"}) do
    p(n, ngx.var[n])
end
local id = ngx.var.request_id
-- (nginx makes a new one at each read unless its config uses
-- $request_id; golapis keeps the first, as nginx does then)
p("request_id", #id, id:match("^%x+$") ~= nil)
p("bad name", pcall(function() return ngx.var[true] end))
try("uri", "/y") try("query_string", "a") try("http_x_h", "v")
try("arg_a", "1") try("args", true) try("status", 1)
try("limit_rate", 10000000)
try("request_id", "x")
p("written", ngx.var.args, ngx.var.limit_rate)
p("bad name w", pcall(function() ngx.var[1] = "x" end))
ngx.say("x")
p("after output", ngx.var.sent_http_content_type, ngx.var.status,
  ngx.var.sent_http_transfer_encoding)
done()
'''


def test_more_core_variables():
    # headers joined as nginx joins them, the variables nginx does not
    # let a script change, a $request_id made when nginx does not pass one
    g, n, d = diff_setup({"mv.lua": MORE_VARS}, workers=1)
    raw = (b"GET {PATH}?a=1 HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\nX-Forwarded-For: 1.1.1.1\r\n"
           b"X-Forwarded-For: 2.2.2.2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n")
    _, (rs, rh, rb) = _same(n, "/mv.lua", raw=raw, ref_status=200)
    for want in (b"\nsent_http_cache_control a, b\n",
                 b"\nSent_Http_X_Two 1\n",
                 b"\nhttp_x_forwarded_for 1.1.1.1, 2.2.2.2\n",
                 b"\nhttp_cookie a=1; b=2\n",
                 b"\nrequest_id 32 true\n",
                 b'\nwrite uri false ', b' variable "uri" not changeable\n',
                 b'\nwrite args true nil\n', b"\nwritten true 10000000\n",
                 b"\nafter output text/html 200 chunked\n"):
        assert want in rb, (want, rb)



def test_remote_port_is_the_clients():
    # REMOTE_PORT is the client's port as nginx saw it, not the server's
    import socket as _socket
    d = make_docroot(copy_scripts=False)
    with open(os.path.join(d, "port.lua"), "w") as f:
        f.write("ngx.say(ngx.var.remote_port, ' ', ngx.var.server_port)\n")
    g = Golapis(docroot=d)
    n = Nginx(g)
    s = _socket.create_connection(("127.0.0.1", n.port), timeout=10)
    try:
        s.sendall(b"GET /port.lua HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
        mine = s.getsockname()[1]
    finally:
        s.close()
    body = data.partition(b"\r\n\r\n")[2].decode()
    assert body == "%d %d\n" % (mine, n.port), (body, mine, n.port)
