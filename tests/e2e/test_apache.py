"""Apache httpd in front of golapis (docs/apache.md): Debian's apache2 with
mod_proxy_fcgi on the shipped etc/apache-golapis.conf, in both of its
forms (SetHandler, and ProxyPassMatch with -DGOLAPIS_PROXYPASSMATCH); and
the "proxy:fcgi://HOST/PATH" SCRIPT_FILENAME Apache sends, straight over
FastCGI: stripped as php-fpm does, then checked as any path."""

import grp
import hashlib
import http.client
import os
import pwd
import re
import signal
import subprocess

import servers
from harness import (REPO, SCRIPTS, Golapis, StartError, base_dir,
                     free_port, http_get, make_docroot, mktemp,
                     tcp_connectable)
from test_security import _fcgi_raw

APACHE_BIN = os.environ.get("APACHE_BIN", "apache2")
APACHE_MODULES = "/usr/lib/apache2/modules"
SNIPPET = os.path.join(REPO, "etc", "apache-golapis.conf")

# the paths of the snippet, replaced by the test's own
SNIPPET_SOCK = "/run/golapis/golapis.sock"
SNIPPET_ROOT = "/srv/www"


class Apache(servers.Server):
    """apache2 -DFOREGROUND in a temp dir (its own ServerRoot, PidFile,
    error log), listening on 127.0.0.1:port, with `conf` (the text of a
    site, "@PORT@" replaced) included; `defines` are -D names.  As root,
    its children run as nobody, who must reach golapis's socket and the
    document root."""

    name = "apache"

    def __init__(self, conf, defines=(), modules=("proxy", "proxy_fcgi")):
        super().__init__()
        self.port = free_port()
        self.conf_path = os.path.join(self.dir, "httpd.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.defines = list(defines)
        site = os.path.join(self.dir, "site.conf")
        with open(site, "w") as f:
            f.write(conf.replace("@PORT@", str(self.port)))
        lines = [
            "ServerRoot %s" % self.dir,
            "DefaultRuntimeDir %s" % self.dir,
            "PidFile %s/httpd.pid" % self.dir,
            "ErrorLog %s" % self.error_log,
            "LogLevel warn",
            "ServerName localhost",
            "Listen 127.0.0.1:%d" % self.port,
            "LoadModule mpm_event_module %s/mod_mpm_event.so"
            % APACHE_MODULES,
            "LoadModule authz_core_module %s/mod_authz_core.so"
            % APACHE_MODULES,
            "LoadModule dir_module %s/mod_dir.so" % APACHE_MODULES,
        ]
        lines += ["LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                  for m in modules]
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            lines += ["User nobody",
                      "Group %s" % grp.getgrgid(nobody.pw_gid).gr_name]
        lines.append("Include %s" % site)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        rc = subprocess.run([APACHE_BIN, "-t", "-f", self.conf_path]
                            + ["-D" + d for d in self.defines],
                            capture_output=True, text=True)
        if rc.returncode != 0:
            raise StartError("apache2 -t: %s%s" % (rc.stdout, rc.stderr))
        self.start()

    def argv(self):
        return ([APACHE_BIN, "-f", self.conf_path, "-DFOREGROUND"]
                + ["-D" + d for d in self.defines])

    def ready(self):
        return tcp_connectable(self.port)

    def log(self):
        with open(self.error_log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=20):
        try:
            text = self.log() + super().log()
        except FileNotFoundError:
            text = super().log()
        lines = text.splitlines()[-n:]
        return "\n".join(["--- apache log (%s) ---" % self.dir] + lines)

    def close(self):
        # SIGTERM stops the children first; a SIGKILL to the group is the
        # fallback
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        super().close()

    stop = close

    def get(self, path, **kw):
        return http_get(self.port, path, **kw)


# ---------------------------------------------------------------------------
# set-up

def _block(n):
    """The nth 1000-byte block of big.lua's answer."""
    tag = b"%08d:" % n
    return tag + bytes((n + i) % 26 + 97 for i in range(1000 - len(tag)))


BIG_BLOCKS = 3 * 1024     # about 3 MB

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
    "args.lua": r'''
ngx.header["Content-Type"] = "text/plain"
ngx.say("args=", ngx.var.args)
ngx.say("arg_a=", ngx.var.arg_a)
local args = ngx.req.get_uri_args()
local keys = {}
for k in pairs(args) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then v = table.concat(v, ",") end
    ngx.say(k, ":", tostring(v))
end
''',
    "post.lua": r'''
ngx.header["Content-Type"] = "text/plain"
ngx.req.read_body()
local data = ngx.req.get_body_data()
if not data then
    local name = ngx.req.get_body_file()
    local f = assert(io.open(name, "rb"))
    data = f:read("*a")
    f:close()
end
ngx.say(ngx.req.get_method(), " ", #data, " ", ngx.md5(data))
ngx.say(ngx.var.content_type)
''',
    "headers.lua": r'''
ngx.header["Content-Type"] = "application/x-golapis"
ngx.header["X-One"] = "1"
ngx.header["Set-Cookie"] = {"a=1; Path=/", "b=2; Path=/"}
ngx.header["Cache-Control"] = "no-store"
ngx.say("headers")
''',
    "exit.lua": r'''
local code = tonumber(ngx.var.arg_code)
if ngx.var.arg_say then
    ngx.status = code
    ngx.say("status ", code)
    return
end
ngx.exit(code)
''',
    "redirect.lua": r'''
return ngx.redirect("/hello.lua", 302)
''',
    "big.lua": r'''
ngx.header["Content-Type"] = "application/octet-stream"
local n = %d
for k = 0, n - 1 do
    local tag = string.format("%%08d:", k)
    local t = {}
    for i = 0, 1000 - #tag - 1 do
        t[#t + 1] = string.char((k + i) %% 26 + 97)
    end
    ngx.print(tag, table.concat(t))
end
''' % BIG_BLOCKS,
    "conn.lua": r'''
ngx.header["Content-Type"] = "text/plain"
ngx.say(ngx.var.remote_port, " ", ngx.var.http_connection or "-")
''',
    "a b.lua": 'ngx.say("spaced")\n',
    "sub/index.lua": 'ngx.say("index ", ngx.var.uri)\n',
}


def _readable(path):
    """nobody (Apache's children, as root) must reach path: every dir on
    the way gets search permission, the last one read too."""
    os.chmod(base_dir(), 0o711)
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def _snippet(sock, root):
    """The shipped snippet with the test's socket, root and port."""
    with open(SNIPPET) as f:
        text = f.read()
    for s in (SNIPPET_SOCK, SNIPPET_ROOT, "*:80"):
        assert s in text, "%s is not in %s" % (s, SNIPPET)
    return (text.replace(SNIPPET_SOCK, sock).replace(SNIPPET_ROOT, root)
            .replace("*:80", "127.0.0.1:@PORT@"))


def setup(form="sethandler", extra="", golapis_conf=""):
    """golapis on a fresh docroot (FILES and tests/e2e/scripts), and an
    Apache on the shipped snippet in the form asked for; extra goes into
    the VirtualHost.  Returns (golapis, apache, docroot)."""
    d = make_docroot(FILES)
    _readable(d)
    g = Golapis(golapis_conf, docroot=d, start=False, log_level="info")
    os.chmod(g.dir, 0o711)
    g.start()
    conf = _snippet(g.sock, d)
    if extra:
        conf = conf.replace("</VirtualHost>", extra + "\n</VirtualHost>")
    defines = ["GOLAPIS_PROXYPASSMATCH"] if form == "proxypassmatch" else []
    a = Apache(conf, defines=defines)
    return g, a, d


def _lines(body):
    return dict(line.split("=", 1)
                for line in body.decode().splitlines() if "=" in line)


def _no_apache_errors(a):
    bad = [line for line in a.log().splitlines()
           if re.search(r"\[[a-z_]+:(error|crit|alert|emerg)\]", line)]
    assert not bad, "apache error log:\n" + "\n".join(bad[:20])


# ---------------------------------------------------------------------------
# through Apache, both forms

FORMS = ("sethandler", "proxypassmatch")


def _basics(form):
    g, a, d = setup(form)

    st, h, body = a.get("/hello.lua")
    assert (st, body) == (200, b"hello, world\n"), (form, st, body, a.tail(),
                                                    g.tail())
    assert h.get("Content-Type") == "text/plain", h.get("Content-Type")

    # DirectoryIndex
    st, _, body = a.get("/sub/")
    assert (st, body) == (200, b"index /sub/index.lua\n"), (st, body)

    # query string
    st, _, body = a.get("/args.lua?a=1&b=x%20y&b=2&flag")
    assert st == 200, (st, body)
    assert body.decode().splitlines() == [
        "args=a=1&b=x%20y&b=2&flag", "arg_a=1", "a:1", "b:x y,2",
        "flag:true"], body

    # a POST body: small (in memory), and one past client_body_buffer_size
    # (a temp file)
    for data in (b"x=1&y=2", bytes(range(256)) * 800):
        st, _, body = a.get("/post.lua", method="POST", body=data,
                            headers={"Content-Type": "application/x-test"})
        assert st == 200, (st, body)
        assert body.decode().splitlines() == [
            "POST %d %s" % (len(data), hashlib.md5(data).hexdigest()),
            "application/x-test"], body

    # statuses set by the script
    st, h, body = a.get("/status.lua")
    assert (st, body) == (201, b"created\n"), (st, body)
    assert h.get("X-Foo") == "bar", h.items()
    st, _, body = a.get("/exit.lua?code=403")
    assert st == 403 and b"403 Forbidden" in body, (st, body)
    st, _, body = a.get("/exit.lua?code=503")
    assert st == 503 and b"503 Service" in body, (st, body)
    st, _, body = a.get("/exit.lua?code=404&say=1")
    assert (st, body) == (404, b"status 404\n"), (st, body)
    st, _, body = a.get("/exit.lua?code=500&say=1")
    assert (st, body) == (500, b"status 500\n"), (st, body)
    st, h, body = a.get("/redirect.lua")
    assert st == 302, (st, body)
    assert h.get("Location") == "/hello.lua", h.items()

    # response headers
    st, h, body = a.get("/headers.lua")
    assert (st, body) == (200, b"headers\n"), (st, body)
    assert h.get("Content-Type") == "application/x-golapis", h.items()
    assert h.get("X-One") == "1", h.items()
    assert h.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"], \
        h.items()
    assert h.get("Cache-Control") == "no-store", h.items()

    # a missing script: golapis's 404 (SetHandler does not look for the
    # file, ProxyPassMatch cannot)
    st, _, body = a.get("/no-such-script.lua")
    assert st == 404 and b"golapis" in body, (st, body)
    # the error page of a script error
    st, _, body = a.get("/error.lua")
    assert st == 500 and b"golapis" in body, (st, body)

    _no_apache_errors(a)
    assert "lua entry thread aborted" in g.log(), g.tail()


def test_basics_sethandler():
    _basics("sethandler")


def test_basics_proxypassmatch():
    _basics("proxypassmatch")


def _big(form):
    g, a, d = setup(form)
    want = b"".join(_block(k) for k in range(BIG_BLOCKS))
    for keepalive in (False, True):
        st, h, body = a.get("/big.lua", keepalive=keepalive, timeout=60)
        assert st == 200, (st, body[:300])
        assert len(body) == len(want), (len(body), len(want))
        assert body == want, "the body differs from byte %d" % next(
            i for i in range(len(want)) if body[i] != want[i])
    _no_apache_errors(a)


def test_big_sethandler():
    _big("sethandler")


def test_big_proxypassmatch():
    _big("proxypassmatch")


def _keepalive(form):
    """Several requests on one client connection (the same REMOTE_PORT
    every time), and Apache's connections to golapis kept open between
    them (enablereuse)."""
    g, a, d = setup(form)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    ports = set()
    n = 20
    try:
        for i in range(n):
            path = ("/conn.lua", "/hello.lua", "/args.lua?a=%d" % i)[i % 3]
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (i, r.status, body)
            if path == "/conn.lua":
                ports.add(body.split()[0])
            elif path == "/hello.lua":
                assert body == b"hello, world\n", body
            else:
                assert body.startswith(b"args=a=%d\n" % i), body
            assert not r.will_close, (i, r.getheaders())
    finally:
        conn.close()
    assert len(ports) == 1, ports
    a.stop()
    assert g.stop() == 0, g.tail()
    exits = g.worker_exits()
    conns = sum(c for c, _ in exits.values())
    reqs = sum(r for _, r in exits.values())
    assert reqs == n, exits
    # one connection per Apache child at most, never one per request
    assert 1 <= conns <= 3, exits


def test_keepalive_sethandler():
    _keepalive("sethandler")


def test_keepalive_proxypassmatch():
    _keepalive("proxypassmatch")


def test_vars_sethandler():
    g, a, d = setup("sethandler")
    st, _, body = a.get("/vars.lua?a=1&b=2")
    assert st == 200, (st, body, g.tail())
    v = _lines(body)
    assert v["request_uri"] == "/vars.lua?a=1&b=2", v
    assert v["uri"] == "/vars.lua", v
    assert v["script_name"] == "/vars.lua", v
    assert v["fastcgi_script_name"] == "/vars.lua", v
    assert v["path_info"] == "nil", v
    assert v["document_root"] == d, v
    # without Apache's prefix, as golapis ran it
    assert v["request_filename"] == os.path.join(d, "vars.lua"), v
    assert v["args"] == "a=1&b=2", v
    assert v["request_method"] == "GET", v
    assert v["host"] == "127.0.0.1", v
    assert v["server_protocol"] == "HTTP/1.1", v
    assert v["scheme"] == "http", v

    # PATH_INFO: Apache finds the file and sends the rest apart
    st, _, body = a.get("/vars.lua/more/p%20q?x=1")
    assert st == 200, (st, body, g.tail())
    v = _lines(body)
    assert v["request_uri"] == "/vars.lua/more/p%20q?x=1", v
    assert v["uri"] == "/vars.lua/more/p q", v
    assert v["script_name"] == "/vars.lua", v
    assert v["path_info"] == "/more/p q", v
    assert v["request_filename"] == os.path.join(d, "vars.lua"), v

    # a file name with a space: SetHandler sends it as it is
    st, _, body = a.get("/a%20b.lua")
    assert (st, body) == (200, b"spaced\n"), (st, body, g.tail())
    _no_apache_errors(a)


def test_vars_proxypassmatch():
    g, a, d = setup("proxypassmatch")
    st, _, body = a.get("/vars.lua?a=1&b=2")
    assert st == 200, (st, body, g.tail())
    v = _lines(body)
    assert v["request_uri"] == "/vars.lua?a=1&b=2", v
    assert v["uri"] == "/vars.lua", v
    assert v["script_name"] == "/vars.lua", v
    assert v["path_info"] == "nil", v
    assert v["document_root"] == d, v
    assert v["request_filename"] == os.path.join(d, "vars.lua"), v
    assert v["args"] == "a=1&b=2", v

    # Apache escapes the path it builds, golapis does not decode it:
    # "a b.lua" is asked for as "a%20b.lua" (docs/apache.md)
    st, _, body = a.get("/a%20b.lua")
    assert st == 404, (st, body)
    assert 'a%20b.lua" not found' in g.log(), g.tail()
    _no_apache_errors(a)


def test_cut_response():
    """A script that fails after its answer began: golapis's unknown record
    makes Apache end the client's response without its last chunk, as
    nginx does, never complete-looking."""
    from harness import http_timed
    d = make_docroot(dict(FILES, **{
        "late.lua": 'ngx.say(string.rep("a", 100)) ngx.flush(true) '
                    'error("late")\n',
        "exit_error.lua": 'ngx.say("begun") ngx.exit(ngx.ERROR)\n'}))
    _readable(d)
    g = Golapis(docroot=d, start=False)
    os.chmod(g.dir, 0o711)
    g.start()
    a = Apache(_snippet(g.sock, d))
    for path in ("/late.lua", "/exit_error.lua"):
        raw, _ = http_timed(a.port, path)
        assert raw.startswith(b"HTTP/1.1 200"), raw
        assert b"Transfer-Encoding: chunked" in raw, raw
        assert not raw.endswith(b"\r\n0\r\n\r\n"), (path, raw)
    # and a complete one still ends as it should
    raw, _ = http_timed(a.port, "/hello.lua")
    assert raw.endswith(b"hello, world\n\r\n0\r\n\r\n"), raw
    assert a.log().count("Got bogus record 11") == 2, a.tail()


def test_generic_backend_type():
    # with ProxyFCGIBackendType GENERIC, Apache strips the prefix itself
    g, a, d = setup("sethandler", extra="ProxyFCGIBackendType GENERIC")
    st, _, body = a.get("/vars.lua?a=1")
    assert st == 200, (st, body, g.tail())
    v = _lines(body)
    assert v["request_filename"] == os.path.join(d, "vars.lua"), v
    assert v["script_name"] == "/vars.lua", v
    st, _, body = a.get("/no-such-script.lua")
    assert st == 404, (st, body)


def test_outside_document_root():
    # Apache can be made to send what it likes; golapis's own checks
    # still hold after the prefix is gone
    top = mktemp("apache-out-")
    www = os.path.join(top, "www")
    os.makedirs(www)
    with open(os.path.join(SCRIPTS, "hello.lua")) as f:
        hello = f.read()
    with open(os.path.join(www, "hello.lua"), "w") as f:
        f.write(hello)
    with open(os.path.join(top, "secret.lua"), "w") as f:
        f.write('ngx.say("secret")\n')
    os.symlink(os.path.join(top, "secret.lua"),
               os.path.join(www, "link.lua"))
    _readable(top)
    g = Golapis(docroot=www, start=False)
    os.chmod(g.dir, 0o711)
    g.start()
    # an Apache whose DocumentRoot is wider than golapis's
    conf = _snippet(g.sock, top)
    a = Apache(conf)
    st, _, body = a.get("/www/hello.lua")
    assert (st, body) == (200, b"hello, world\n"), (st, body, g.tail())
    for path in ("/secret.lua", "/www/link.lua"):
        st, _, body = a.get(path)
        assert st == 403 and b"secret" not in body, (path, st, body)
    assert "is outside the document root" in g.log(), g.tail()


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



def test_flushpackets():
    """ngx.flush() through Apache: held back by default (as by nginx's
    fastcgi_buffering), sent at once with flushpackets=on."""
    from harness import arrival, http_timed
    d = make_docroot(dict(FILES, **{"flush.lua": (
        'ngx.say("first") ngx.flush(true) ngx.sleep(1) ngx.say("second")\n')
    }))
    _readable(d)
    g = Golapis(docroot=d, start=False)
    os.chmod(g.dir, 0o711)
    g.start()
    proxyset = "ProxySet enablereuse=on ttl=60 timeout=60\n"
    for flush in (False, True):
        conf = _snippet(g.sock, d)
        assert proxyset in conf, conf
        if flush:
            conf = conf.replace(proxyset, proxyset[:-1]
                                + " flushpackets=on\n")
        a = Apache(conf)
        raw, events = http_timed(a.port, "/flush.lua")
        a.stop()
        assert raw.startswith(b"HTTP/1.1 200") and b"second\n" in raw, raw
        first = arrival(raw, events, b"first")
        second = arrival(raw, events, b"second")
        assert second > 0.9, (flush, first, second)
        if flush:
            assert first < 0.5, (flush, first, second)
        else:
            assert first > 0.9, (flush, first, second)
