"""The request body, differentially (golapis at /NAME.lua, the real
lua-nginx-module at /ref/NAME.lua in the same nginx): ngx.req.read_body,
discard_body, get_body_data, get_body_file, get_post_args, set_body_data,
set_body_file, init_body, append_body, finish_body; bodies in memory and
in temp files (client_body_buffer_size), client_max_body_size."""

import os

from harness import assert_same, diff_setup, mktemp, wait_for

HOST = {"Host": "localhost"}
FORM = {"Host": "localhost",
        "Content-Type": "application/x-www-form-urlencoded"}
REF_ONLY = os.environ.get("GL_REF_ONLY")


def _setup(files, nginx_kw=None, **golapis_kw):
    """diff_setup, with both sides keeping bodies of up to 8k in memory
    and golapis's temp files in a dir of their own; returns (golapis,
    nginx, docroot, temp dir)."""
    tmp = mktemp("body-")
    golapis_kw["conf_extra"] = ("client_body_buffer_size 8k;\n"
                                "client_body_temp_path %s;\n" % tmp
                                + golapis_kw.get("conf_extra", ""))
    nginx_kw = dict(nginx_kw or {})
    nginx_kw["extra_http"] = ("client_body_buffer_size 8k; "
                              + nginx_kw.get("extra_http", ""))
    g, n, d = diff_setup(files, nginx_kw, **golapis_kw)
    return g, n, d, tmp


def _same(n, path, **kw):
    kw.setdefault("headers", HOST)
    return assert_same(n.port, path, **kw)


BODY = r'''
local ok, a, err = pcall(ngx.req.get_post_args)
p("post args unread", ok, a, err)
p("data unread", ngx.req.get_body_data(), ngx.req.get_body_file())
p("read_body", select("#", ngx.req.read_body()))
p("read_body again", select("#", ngx.req.read_body()))
a, err = ngx.req.get_post_args()
p("post args", a, err)
a, err = ngx.req.get_post_args(2)
p("post args 2", a, err)
a, err = ngx.req.get_post_args(0)
p("post args 0", err)
local d = ngx.req.get_body_data()
p("data", d and #d, d and d:sub(1, 40))
p("file", ngx.req.get_body_file())
p("vars", ngx.var.content_length, ngx.var.content_type,
  ngx.req.get_headers()["content-length"])
done()
'''

BODY_FILE = r'''
ngx.req.read_body()
local path = ngx.req.get_body_file()
ngx.header["X-Body-File"] = path
local data = ngx.req.get_body_data()
p("data", data and #data)
p("file", type(path))
if path then
    local f = io.open(path)
    local text = f:read("*a")
    f:close()
    p("file size", #text, text:sub(1, 12), text:sub(-5))
end
local a, err = ngx.req.get_post_args()
p("post args", a and a.b, err)
done()
'''


def test_read_body_and_post_args():
    g, n, d, tmp = _setup({"body.lua": BODY})
    body = b"a=1&b=2&a=3&c&d=%20x+y&=skip&e=&&f=%E2%82%AC"
    _, (rs, rh, rb) = _same(n, "/body.lua", method="POST", body=body,
                            headers=FORM, ref_status=200)
    lines = rb.decode().splitlines()
    assert lines[0] == ("post args unread false no request body found; "
                        "maybe you should turn on lua_need_request_body? "
                        "nil"), lines[0]
    assert lines[1:4] == ["data unread nil nil", "read_body 0",
                          "read_body again 0"], lines
    assert lines[4] == ('post args {"a"={1="1",2="3"},"b"="2","c"=true,'
                        '"d"=" x y","e"="","f"="\u20ac"} nil'), lines[4]
    assert lines[5] == 'post args 2 {"a"="1","b"="2"} truncated', lines[5]
    assert lines[7] == "data %d a=1&b=2&a=3&c&d=%%20x+y&=skip&e=&&f=%%E2%%8" \
        % len(body), lines[7]
    assert lines[8:] == ["file nil", "vars %d application/x-www-form-"
                         "urlencoded %d" % (len(body), len(body))], lines[8:]
    # no body at all; an empty one; one that is not a form
    _, (rs, rh, rb) = _same(n, "/body.lua", ref_status=200)
    assert rb.endswith(b"data nil nil\nfile nil\nvars nil nil nil\n"), rb
    _, (rs, rh, rb) = _same(n, "/body.lua", method="POST", body=b"",
                            headers=FORM, ref_status=200)
    assert rb.endswith(b"data nil nil\nfile nil\nvars 0 application/"
                       b"x-www-form-urlencoded 0\n"), rb
    _, (rs, rh, rb) = _same(n, "/body.lua", method="PUT", body=b'{"a": 1}',
                            headers={"Host": "localhost",
                                     "Content-Type": "application/json"},
                            ref_status=200)
    assert b'post args {"{\\"a\\": 1}"=true} nil\n' in rb, rb


def test_body_in_temp_file():
    # a body larger than client_body_buffer_size (8k) is kept in a temp
    # file: no data, a file name, which is gone after the request
    g, n, d, tmp = _setup({"bfile.lua": BODY_FILE})
    body = b"a=" + b"x" * 12000 + b"&b=2"
    g_, (rs, rh, rb) = _same(n, "/bfile.lua", method="POST", body=body,
                             headers=FORM, ref_status=200)
    assert rb == (b"data nil\nfile string\nfile size 12006 a=xxxxxxxxxx "
                  b"x&b=2\npost args nil request body in temp file not "
                  b"supported\n"), rb
    assert rh["X-Body-File"].startswith("/"), rh
    # removed when the request ends, which may be just after the answer
    wait_for(lambda: not os.path.exists(rh["X-Body-File"]), 3,
             what="the ref's removal of %s" % rh["X-Body-File"])
    if not REF_ONLY:
        path = g_[1]["X-Body-File"]
        assert os.path.dirname(path) == tmp, (path, tmp)
        wait_for(lambda: not os.path.exists(path), 3,
                 what="golapis's removal of %s" % path)
        assert os.listdir(tmp) == [], os.listdir(tmp)
    # within the buffer: in memory
    _, (rs, rh, rb) = _same(n, "/bfile.lua", method="POST",
                            body=b"a=" + b"x" * 6000 + b"&b=2",
                            headers=FORM, ref_status=200)
    assert rb == b"data 6006\nfile nil\npost args 2 nil\n", rb


DISCARD = r'''
p("discard", select("#", ngx.req.discard_body()))
p("data", ngx.req.get_body_data(), ngx.req.get_body_file())
local ok, e = pcall(ngx.req.read_body)
p("read after discard", ok, e)
p("post args", ngx.req.get_post_args())
p("data", ngx.req.get_body_data(), ngx.req.get_body_file())
done()
'''


def test_discard_body():
    g, n, d, tmp = _setup({"discard.lua": DISCARD})
    for body in (b"a=1", b"a=" + b"y" * 12000):
        _, (rs, rh, rb) = _same(n, "/discard.lua", method="POST", body=body,
                                headers=FORM, ref_status=200)
        assert rb == (b"discard 0\ndata nil nil\nread after discard true "
                      b"nil\npost args {}\ndata nil nil\n"), rb


SET_BODY = r'''
ngx.req.read_body()
ngx.req.set_body_data("x=1&y=2")
p("set_body_data", ngx.req.get_body_data(), ngx.req.get_body_file(),
  ngx.req.get_post_args(), ngx.req.get_headers()["content-length"])
ngx.req.set_body_data("")
p("empty", ngx.req.get_body_data(), ngx.req.get_headers()["content-length"])
ngx.req.init_body()
ngx.req.append_body("aa=")
ngx.req.append_body("bb")
ngx.req.finish_body()
p("init_body", ngx.req.get_body_data(), ngx.req.get_post_args(),
  ngx.req.get_headers()["content-length"])
-- a buffer smaller than the body: the body goes to a temp file
ngx.req.init_body(4)
ngx.req.append_body("0123456789")
ngx.req.append_body("abc")
ngx.req.finish_body()
local path = ngx.req.get_body_file()
local f = path and io.open(path)
p("init_body small", ngx.req.get_body_data(), f and f:read("*a"),
  ngx.req.get_headers()["content-length"])
if f then f:close() end
-- the default buffer is client_body_buffer_size (8k)
ngx.req.init_body()
ngx.req.append_body(string.rep("z", 5000))
ngx.req.append_body(string.rep("z", 5000))
ngx.req.finish_body()
p("init_body over 8k", ngx.req.get_body_data(),
  type(ngx.req.get_body_file()), ngx.req.get_headers()["content-length"])
local fn = "@DIR@/body.txt"
f = io.open(fn, "w")
f:write("from=file")
f:close()
ngx.req.set_body_file(fn)
p("set_body_file", ngx.req.get_body_data(), ngx.req.get_body_file() == fn,
  ngx.req.get_post_args(), ngx.req.get_headers()["content-length"])
ngx.req.set_body_data("z=1")
p("kept", io.open(fn) ~= nil)
ngx.req.set_body_file(fn, true)
p("auto_clean before", io.open(fn) ~= nil)
ngx.req.set_body_data("z=2")
p("auto_clean after", io.open(fn) == nil)
local ok, e = pcall(ngx.req.set_body_file, "@DIR@/no-such-file")
p("missing file", ok, e)
done()
'''

SET_BODY_UNREAD = r'''
local ok, e = pcall(ngx.req.set_body_data, "x")
p("set_body_data", ok, e)
ok, e = pcall(ngx.req.init_body)
p("init_body", ok, e)
ok, e = pcall(ngx.req.append_body, "x")
p("append_body", ok, e)
ok, e = pcall(ngx.req.finish_body)
p("finish_body", ok, e)
ok, e = pcall(ngx.req.set_body_file, "/etc/hostname")
p("set_body_file", ok, e)
done()
'''


def test_set_body():
    g, n, d, tmp = _setup({"setbody.lua": SET_BODY,
                           "unread.lua": SET_BODY_UNREAD})
    for method, body in (("POST", b"orig=1"), ("GET", None)):
        _, (rs, rh, rb) = _same(n, "/setbody.lua", method=method,
                                body=body, headers=FORM, ref_status=200)
        lines = rb.decode().splitlines()
        assert lines[:6] == [
            'set_body_data x=1&y=2 nil {"x"="1","y"="2"} 7',
            'empty nil 0',
            'init_body aa=bb {"aa"="bb"} 5',
            'init_body small nil 0123456789abc 13',
            'init_body over 8k nil string 10000',
            'set_body_file nil true nil 9'], lines
        assert lines[6:10] == ["kept true", "auto_clean before true",
                               "auto_clean after true",
                               'missing file false stat() "%s/no-such-file"'
                               ' failed' % d], lines
    if not REF_ONLY:
        assert os.listdir(tmp) == [], os.listdir(tmp)
    _, (rs, rh, rb) = _same(n, "/unread.lua", method="POST", body=b"a=1",
                            headers=FORM, ref_status=200)
    assert rb == (b"set_body_data false request body not read yet\n"
                  b"init_body false request body not read yet\n"
                  b"append_body false request_body not initialized\n"
                  b"finish_body false request_body not initialized\n"
                  b"set_body_file false request body not read yet\n"), rb


CHUNKED = r'''
ngx.req.read_body()
local d = ngx.req.get_body_data()
p("data", d)
p("post args", ngx.req.get_post_args())
done()
'''


def test_chunked_request_body():
    # nginx reads a chunked body whole before the script (and golapis)
    # sees it
    g, n, d, tmp = _setup({"chunked.lua": CHUNKED})
    req = (b"POST {PATH} HTTP/1.1\r\nHost: localhost\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"4\r\na=1&\r\n3\r\nb=2\r\n0\r\n\r\n")
    _, (rs, rh, rb) = _same(n, "/chunked.lua", raw=req, ref_status=200)
    assert rb == b'data a=1&b=2\npost args {"a"="1","b"="2"}\n', rb


def test_body_too_large():
    # golapis's own client_max_body_size (16k) gives the 413; nginx's
    # limit for the golapis location is larger (1m) so that the body gets
    # there, while the ref location has nginx's limit of 16k
    g, n, d, tmp = _setup(
        {"big.lua": "ngx.req.read_body()\nngx.say('read')\n"},
        conf_extra="client_max_body_size 16k;\n",
        nginx_kw={"extra_server": "client_max_body_size 16k;",
                  "extra_location": "client_max_body_size 1m;"})
    _same(n, "/big.lua", method="POST", body=b"x" * 20000, headers=FORM,
          all_headers=True, ref_status=413)
    _same(n, "/big.lua", method="POST", body=b"x" * 15000, headers=FORM,
          ref_status=200)
    # the connection from nginx is still good after a 413
    _same(n, "/big.lua", ref_status=200)
