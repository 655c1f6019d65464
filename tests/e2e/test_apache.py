"""The "proxy:fcgi://HOST/PATH" SCRIPT_FILENAME Apache's mod_proxy_fcgi
sends, straight over FastCGI: stripped as php-fpm does, then checked as
any path."""

import os

from harness import SCRIPTS, Golapis, make_docroot, mktemp
from test_security import _fcgi_raw

FILES = {
    "vars.lua": r'''
ngx.header["Content-Type"] = "text/plain"
for _, k in ipairs{"request_uri", "uri", "script_name",
                   "fastcgi_script_name", "path_info", "document_root",
                   "request_filename", "args", "request_method", "host",
                   "server_protocol", "scheme"} do
    ngx.say(k, "=", tostring(ngx.var[k]))
end
''',
}


def _lines(body):
    return dict(line.split("=", 1)
                for line in body.decode().splitlines() if "=" in line)


# ---------------------------------------------------------------------------
# the prefix, straight over FastCGI

def _raw(g, filename):
    base = {b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/x.lua"}
    if isinstance(filename, str):
        filename = filename.encode()
    return _fcgi_raw(g.sock, {**base, b"SCRIPT_FILENAME": filename})


def test_prefix_stripped():
    d = make_docroot(FILES)
    g = Golapis(docroot=d)
    hello = os.path.join(d, "hello.lua")
    for prefix in ("proxy:fcgi://localhost", "proxy:fcgi://127.0.0.1:9000",
                   "proxy:fcgi://[::1]:9000", "proxy:fcgi://[::1]",
                   "proxy:fcgi://golapis.example.com",
                   "proxy:fcgi://a_b-c.d:1",
                   "proxy:balancer://mycluster", "PROXY:FCGI://LOCALHOST",
                   "Proxy:Balancer://x"):
        st, _, body = _raw(g, prefix + hello)
        assert (st, body) == (200, b"hello, world\n"), (prefix, st, body,
                                                        g.tail())
    # the path a script sees is the one that ran
    st, _, body = _raw(g, "proxy:fcgi://localhost" + os.path.join(
        d, "vars.lua"))
    assert st == 200, (st, body)
    assert _lines(body)["request_filename"] == os.path.join(d, "vars.lua")
    # a missing file is a 404, as without the prefix
    st, _, body = _raw(g, "proxy:fcgi://localhost" + os.path.join(
        d, "nope.lua"))
    assert st == 404, (st, body)


def test_prefix_checked():
    """Whatever follows the prefix goes through the same checks as a plain
    SCRIPT_FILENAME; a malformed prefix is refused, never read past."""
    top = mktemp("prefix-")
    www = os.path.join(top, "www")
    os.makedirs(www)
    with open(os.path.join(SCRIPTS, "hello.lua")) as f:
        hello_text = f.read()
    with open(os.path.join(www, "hello.lua"), "w") as f:
        f.write(hello_text)
    with open(os.path.join(top, "secret.lua"), "w") as f:
        f.write('ngx.say("secret")\n')
    with open(os.path.join(www, "notes.txt"), "w") as f:
        f.write('ngx.say("secret")\n')
    os.symlink(os.path.join(top, "secret.lua"),
               os.path.join(www, "link.lua"))
    g = Golapis(docroot=www)
    hello = os.path.join(www, "hello.lua")
    P = "proxy:fcgi://localhost"

    refused = [
        # what follows must pass document_root, extensions, NUL
        P + os.path.join(top, "secret.lua"),
        P + os.path.join(www, "..", "secret.lua"),
        P + os.path.join(www, "link.lua"),
        P + os.path.join(www, "notes.txt"),
        P + hello + "\0.php",
        P + hello + "?a=1",
        P + hello + "/x",
        # malformed prefixes: left whole, so not an absolute path
        "proxy:fcgi://" + hello,                 # no host: "/..." as host
        "proxy:fcgi://local host" + hello,
        "proxy:fcgi://user@localhost" + hello,
        "proxy:fcgi://localhost:" + hello,
        "proxy:fcgi://localhost:x9" + hello,
        "proxy:fcgi://[::1" + hello,
        "proxy:fcgi://[]" + hello,
        "proxy:fcgi://localhost\0" + hello,
        "proxy:fcgi://localhost%2f" + hello,
        "proxy:fcgi://localhost",
        "proxy:fcgi://localhost/",
        "proxy:fcgi:/" + hello,
        "proxy:http://localhost" + hello,
        "proxy:ajp://localhost" + hello,
        "proxy:unix:/run/golapis.sock|fcgi://localhost" + hello,
        "fcgi://localhost" + hello,
        "proxy:" + hello,
        " proxy:fcgi://localhost" + hello,
    ]
    for bad in refused:
        st, _, body = _raw(g, bad)
        assert st in (403, 404), (bad, st, body)
        assert b"secret" not in body and b"hello" not in body, (bad, body)
    log = g.log()
    assert "is outside the document root" in log, g.tail()
    assert "not a possible path" in log, g.tail()
    # stripped once only: a second prefix is part of the path
    st, _, body = _raw(g, P + "/" + P + hello)
    assert st in (403, 404), (st, body)
    st, _, body = _raw(g, P + hello)
    assert (st, body) == (200, b"hello, world\n"), (st, body, g.tail())


