"""Scripts through nginx: hello, error statuses, the basic ngx API."""

import os
import re

from harness import (Golapis, Nginx, SCRIPTS, expect_hello, fcgi_get,
                     free_port, http_get, make_docroot, mktemp, mux)


def test_hello():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/hello.lua")
    assert status == 200, (status, body)
    assert body == b"hello, world\n", body
    assert headers.get("Content-Type") == "text/plain", \
        headers.get("Content-Type")


def test_hello_direct_fcgi():
    # the CGI response itself, without nginx in the way
    g = Golapis()
    status, headers, body = fcgi_get(g.sock, os.path.join(SCRIPTS,
                                                          "hello.lua"))
    assert status == 200, (status, headers, body)
    assert headers.get("content-type") == "text/plain", headers
    assert body == b"hello, world\n", body


def test_not_found():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/no-such-script.lua")
    assert status == 404, (status, body)
    assert b"404 Not Found" in body, body
    expect_hello(n.port)


def _outside_setup():
    """A document root with symlinks in it, and files beside it."""
    top = mktemp("forbidden-")
    outside = os.path.join(top, "outside")
    os.makedirs(outside)
    secret = os.path.join(outside, "secret.lua")
    with open(secret, "w") as f:
        f.write('ngx.say("secret")\n')
    www = os.path.join(top, "www")
    os.makedirs(www)
    with open(os.path.join(SCRIPTS, "hello.lua")) as f:
        hello = f.read()
    with open(os.path.join(www, "hello.lua"), "w") as f:
        f.write(hello)
    # a sibling whose name starts with the document root's name
    www2 = os.path.join(top, "www2")
    os.makedirs(www2)
    with open(os.path.join(www2, "evil.lua"), "w") as f:
        f.write('ngx.say("secret")\n')
    os.symlink(secret, os.path.join(www, "link.lua"))
    os.symlink(outside, os.path.join(www, "linkdir"))
    os.symlink(os.path.join(www, "hello.lua"), os.path.join(www, "in.lua"))
    return top, www, secret


def test_forbidden_outside_document_root():
    top, www, secret = _outside_setup()
    g = Golapis(docroot=www)
    cases = [
        secret,
        os.path.join(www, "..", "outside", "secret.lua"),
        os.path.join(www, "link.lua"),
        os.path.join(www, "linkdir", "secret.lua"),
        os.path.join(top, "www2", "evil.lua"),
    ]
    for path in cases:
        status, headers, body = fcgi_get(g.sock, path)
        assert status == 403, "%s: status %s body %r" % (path, status, body)
        assert b"secret" not in body, (path, body)
    # a symlink that stays inside is fine
    status, headers, body = fcgi_get(g.sock, os.path.join(www, "in.lua"))
    assert (status, body) == (200, b"hello, world\n"), (status, body)


def test_forbidden_symlink_through_nginx():
    top, www, secret = _outside_setup()
    g = Golapis(docroot=www)
    n = Nginx(g)
    status, headers, body = n.get("/link.lua")
    assert status == 403, (status, body)
    assert b"403 Forbidden" in body, body
    assert b"secret" not in body, body
    expect_hello(n.port)


def test_runtime_error():
    g = Golapis()
    n = Nginx(g)
    mark = g.mark()
    status, headers, body = n.get("/error.lua")
    assert status == 500, (status, body)
    assert b"500 Internal Server Error" in body, body
    assert b"not reached" not in body, body
    log = g.log_since(mark)
    assert "boom" in log, "no 'boom' in the error log"
    assert "stack traceback" in log, "no 'stack traceback' in the error log"
    assert "lua entry thread aborted: runtime error:" in log, \
        "no 'lua entry thread aborted: runtime error:' in the error log"
    assert "error.lua:2" in log, "the traceback should name error.lua:2"
    expect_hello(n.port)


def test_syntax_error():
    g = Golapis()
    n = Nginx(g)
    mark = g.mark()
    status, headers, body = n.get("/syntax.lua")
    assert status == 500, (status, body)
    assert b"this never runs" not in body, body
    assert "syntax.lua" in g.log_since(mark), \
        "the error log should name syntax.lua"
    expect_hello(n.port)
    # twice: a failed load must not leave a broken cache entry behind
    status, headers, body = n.get("/syntax.lua")
    assert status == 500, (status, body)
    expect_hello(n.port)


def test_status_and_header():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/status.lua")
    assert status == 201, (status, body)
    assert headers.get("X-Foo") == "bar", dict(headers)
    assert body == b"created\n", body


def test_exit_404():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/exit404.lua")
    assert status == 404, (status, body)
    assert b"not reached" not in body, body
    assert b"404 Not Found" in body, body


def test_exit_after_output():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/exit_after_output.lua")
    assert (status, body) == (200, b"a\n"), (status, body)


def test_print_nested_tables():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/print_nested.lua")
    assert (status, body) == (200, b"ab12.5"), (status, body)


def test_default_type():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/default_type.lua")
    assert status == 200, (status, body)
    assert headers.get("Content-Type", "").startswith("text/html"), \
        dict(headers)
    g2 = Golapis("default_type text/x-golapis;")
    n2 = Nginx(g2)
    status, headers, body = n2.get("/default_type.lua")
    assert headers.get("Content-Type", "").startswith("text/x-golapis"), \
        dict(headers)


def test_golapis_is_ngx():
    g = Golapis()
    n = Nginx(g)
    status, headers, body = n.get("/same_table.lua")
    assert (status, body) == (200, b"true\n"), (status, body)


def test_per_request_globals():
    g = Golapis(workers=1)
    n = Nginx(g, keepalive=True)
    for i in range(5):
        status, headers, body = n.get("/globals.lua", keepalive=True)
        assert (status, body) == (200, b"1\n"), (i, status, body)


# the same scripts through golapis and through the real lua-nginx-module

DIFF_SAME = ["hello.lua", "print_nested.lua", "status.lua",
             "exit_after_output.lua", "default_type.lua"]
DIFF_STATUS = ["exit404.lua", "error.lua", "syntax.lua", "missing.lua"]


def test_differential_lua_module():
    g = Golapis()
    n = Nginx(g, lua=True)
    for name in DIFF_SAME + DIFF_STATUS:
        a = http_get(n.port, "/" + name)
        b = http_get(n.port, "/ref/" + name)
        assert a[0] == b[0], "%s: status golapis %s, lua module %s" % (
            name, a[0], b[0])
        if name in DIFF_SAME:
            assert a[2] == b[2], "%s: body golapis %r, lua module %r" % (
                name, a[2], b[2])
            for h in ("Content-Type", "X-Foo"):
                assert a[1].get(h) == b[1].get(h), \
                    "%s: %s golapis %r, lua module %r" % (
                        name, h, a[1].get(h), b[1].get(h))


def test_error_after_sleep():
    g = Golapis()
    n = Nginx(g)
    mark = g.mark()
    status, headers, body = n.get("/error_after_sleep.lua")
    assert status == 500, (status, body)
    log = g.log_since(mark)
    assert "late boom" in log, "no 'late boom' in the error log"
    expect_hello(n.port)


def test_error_page_format():
    g = Golapis()
    status, headers, body = fcgi_get(g.sock, os.path.join(SCRIPTS,
                                                          "missing.lua"))
    assert status == 404, (status, body)
    assert headers.get("content-type", "").startswith("text/html"), headers
    assert b"<title>404 Not Found</title>" in body, body
    status, headers, body = fcgi_get(g.sock, os.path.join(SCRIPTS,
                                                          "error.lua"))
    assert status == 500, (status, body)
    assert b"<title>500 Internal Server Error</title>" in body, body


LOG_LINE_RE = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
    r"\[(debug|info|notice|warn|error|crit|alert|emerg)\] (\d+)#(m|\d+): ")


def test_error_log_format():
    g = Golapis(log_level="debug")
    n = Nginx(g)
    n.get("/error.lua")
    expect_hello(n.port)
    g.stop()
    lines = [l for l in g.log().splitlines() if re.match(r"^\d{4}/", l)]
    assert len(lines) >= 3, g.log()
    for l in lines:
        m = LOG_LINE_RE.match(l)
        assert m, "a log line not in the nginx format: %r" % l
        assert m.group(2) == str(g.pid), "wrong pid in %r" % l
        assert m.group(3) == "m" or int(m.group(3)) < 2, \
            "worker number out of range in %r" % l


def test_code_cache_off():
    www = make_docroot({"changing.lua": 'ngx.say("one")\n'})
    g = Golapis("lua_code_cache off;", docroot=www, workers=1)
    n = Nginx(g)
    status, headers, body = n.get("/changing.lua")
    assert body == b"one\n", body
    with open(os.path.join(www, "changing.lua"), "w") as f:
        f.write('ngx.say("two")\n')
    status, headers, body = n.get("/changing.lua")
    assert body == b"two\n", \
        "lua_code_cache off, but the old code ran: %r" % body


def test_code_cache_on_syntax_error_fixed():
    # a script that failed to load is not cached as a failure for good
    www = make_docroot({"fixme.lua": 'ngx.say("broken"\n'})
    g = Golapis(docroot=www, workers=1)
    n = Nginx(g)
    status, headers, body = n.get("/fixme.lua")
    assert status == 500, (status, body)
    with open(os.path.join(www, "fixme.lua"), "w") as f:
        f.write('ngx.say("fixed")\n')
    status, headers, body = n.get("/fixme.lua")
    assert (status, body) == (200, b"fixed\n"), (status, body)


def test_content_by_lua_file_front_controller():
    g = Golapis('content_by_lua_file front.lua;', start=False)
    # relative to the config file's directory
    with open(os.path.join(g.dir, "front.lua"), "w") as f:
        f.write('ngx.header["Content-Type"] = "text/plain"\n'
                'ngx.say("front")\n')
    g.start()
    n = Nginx(g)
    for path in ("/hello.lua", "/no-such.lua", "/a/b/c"):
        status, headers, body = n.get(path)
        assert (status, body) == (200, b"front\n"), (path, status, body)


def test_lua_package_path():
    mods = mktemp("mods-")
    with open(os.path.join(mods, "glmod.lua"), "w") as f:
        f.write('return { hi = function() return "hi from glmod" end }\n')
    www = make_docroot({"req.lua": 'local m = require "glmod"\n'
                                   'ngx.say(m.hi())\n'
                                   'ngx.say(package.path:find(";;") '
                                   'and "raw" or "expanded")\n'})
    g = Golapis('lua_package_path "%s/?.lua;;";' % mods, docroot=www)
    n = Nginx(g)
    status, headers, body = n.get("/req.lua")
    assert (status, body) == (200, b"hi from glmod\nexpanded\n"), \
        (status, body)


def test_workers_auto():
    g = Golapis(workers="auto")
    fcgi_get(g.sock, os.path.join(SCRIPTS, "hello.lua"))
    assert g.stop() == 0
    n = len(g.worker_exits())
    assert n == os.cpu_count(), \
        "workers auto: %d workers exited, %d CPUs" % (n, os.cpu_count())


def test_listen_tcp():
    port = free_port()
    g = Golapis("listen 127.0.0.1:%d;" % port)
    r = mux("127.0.0.1:%d" % port, ["-r", "-f",
                                     os.path.join(SCRIPTS, "hello.lua")])
    assert r.rc == 0, r
    assert r.http(1)[2] == b"hello, world\n", r
    n = Nginx(g, extra_location="")
    expect_hello(n.port)
