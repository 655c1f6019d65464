"""Scale-out (docs/scaling.md): two golapis on TCP loopback ports behind one
nginx upstream, on the shipped etc/nginx-upstream.conf (addresses, port and
paths replaced): both serve, one killed or restarted costs no request,
state shared through a real redis-server is seen by both (a shared dict
is not), allow/deny keep other peers out, cgi-fcgi as a health check."""

import os
import signal
import socket
import struct
import subprocess
import threading
import time

import servers
from harness import (REPO, FASTCGI_PARAMS, Golapis, Nginx, free_port,
                     http_get, make_docroot, tcp_connectable, wait_for)

SNIPPET = os.path.join(REPO, "etc", "nginx-upstream.conf")

FILES = {
    "pid.lua": 'ngx.say(ngx.worker.pid())\n',
    "health.lua": 'ngx.header["Content-Type"] = "text/plain"\n'
                  'ngx.say("ok")\n',
    # what docs/scaling.md shows: state in Redis, through a cosocket
    "session.lua": r'''
local redis = require "nginx.redis"

local r = redis:new()
r:set_timeout(1000)
local ok, err = r:connect("127.0.0.1", @REDIS_PORT@)
if not ok then
    ngx.log(ngx.ERR, "redis: ", err)
    return ngx.exit(503)
end

local key = "session:" .. (ngx.var.arg_id or "none")
if ngx.var.arg_set then
    assert(r:hset(key, "name", ngx.var.arg_set))
    assert(r:expire(key, 3600))
end
local name = r:hget(key, "name")
local hits = r:incr("hits")
r:set_keepalive(10000, 100)

ngx.say(ngx.worker.pid(), " ", name == ngx.null and "-" or name, " ", hits)
''',
    "shdict.lua": r'''
ngx.say(ngx.worker.pid(), " ", (ngx.shared.hits:incr("n", 1, 0)))
''',
}


def _snippet(ports, listen, root):
    with open(SNIPPET) as f:
        text = f.read()
    for old, new in (("10.0.0.11:9000", "127.0.0.1:%d" % ports[0]),
                     ("10.0.0.12:9000", "127.0.0.1:%d" % ports[1]),
                     ("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;"
                      % listen),
                     ("root /srv/www;", "root %s;" % root),
                     ("include fastcgi_params;", "include %s;"
                      % FASTCGI_PARAMS)):
        assert old in text, "%r is not in %s" % (old, SNIPPET)
        text = text.replace(old, new)
    return text


def _golapis(d, port, extra=""):
    return Golapis("listen 127.0.0.1:%d;\n"
                   "allow 127.0.0.1;\n"
                   "deny all;\n"
                   "lua_shared_dict hits 1m;\n%s" % (port, extra),
                   docroot=d, workers=2)


class Pool:
    """Two golapis on TCP ports, nginx on the shipped upstream snippet."""

    def __init__(self, files=None):
        self.docroot = make_docroot(dict(FILES, **(files or {})))
        self.ports = [free_port(), free_port()]
        self.g = [_golapis(self.docroot, p) for p in self.ports]
        for p in self.ports:
            wait_for(lambda: tcp_connectable(p), 10, what="golapis on TCP")
        self.port = free_port()
        self.nginx = Nginx(None, root=self.docroot, extra_http=_snippet(
            self.ports, self.port, self.docroot))
        wait_for(lambda: tcp_connectable(self.port), 10, what="nginx")

    def get(self, path, **kw):
        return http_get(self.port, path, **kw)

    def pids(self, n, path="/pid.lua"):
        """n requests; the pid of each answer (all must be 200)."""
        out = []
        for i in range(n):
            st, _, body = self.get(path)
            assert st == 200, (i, st, body, self.nginx.tail())
            out.append(int(body.split()[0]))
        return out

    def tails(self):
        return "\n".join([g.tail() for g in self.g] + [self.nginx.tail()])


# ---------------------------------------------------------------------------

def test_both_serve():
    p = Pool()
    pids = p.pids(40)
    assert set(pids) == {p.g[0].pid, p.g[1].pid}, (pids, p.g[0].pid,
                                                    p.g[1].pid)
    # round robin: neither gets most of it
    assert 10 <= pids.count(p.g[0].pid) <= 30, pids


def test_one_killed():
    p = Pool()
    p.pids(10)
    p.g[0].proc.send_signal(signal.SIGKILL)
    p.g[0].wait()
    pids = p.pids(100)
    assert set(pids) == {p.g[1].pid}, pids
    log = p.nginx.log()
    assert "connect() failed (111: Connection refused)" in log \
        or "upstream prematurely closed" in log or "reset by peer" in log, \
        p.nginx.tail()
    # and at once, many in parallel
    from harness import parallel_http
    results, _ = parallel_http(p.port, ["/pid.lua"] * 100)
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:5]


def _load(p, stop, results):
    while not stop.is_set():
        try:
            st, _, body = p.get("/pid.lua", timeout=10)
            results.append((st, body))
        except Exception as e:              # counted as a failure
            results.append((None, repr(e)))


def test_rolling_restart():
    """Each golapis in turn stops gracefully and starts again while
    requests flow: none fails.  The next one waits until the restarted
    one serves again (nginx left it out for up to fail_timeout)."""
    p = Pool()
    stop = threading.Event()
    results = []
    t = threading.Thread(target=_load, args=(p, stop, results))
    t.start()
    try:
        for g in p.g:
            wait_for(lambda: len(results) > 20, 10, what="requests")
            assert g.stop(signal.SIGTERM) == 0, g.tail()
            mark = len(results)
            wait_for(lambda: len(results) > mark + 20, 10,
                     what="requests while one is down")
            g.start()
            mark = len(results)
            wait_for(lambda: any(b.split() and int(b.split()[0]) == g.pid
                                 for st, b in results[mark:] if st == 200),
                     20, interval=0.1, what="the restarted golapis to serve")
    finally:
        stop.set()
        t.join(20)
    bad = [r for r in results if r[0] != 200]
    assert not bad, (len(bad), len(results), bad[:5], p.tails())
    pids = {int(b.split()[0]) for _, b in results}
    assert {p.g[0].pid, p.g[1].pid} <= pids, pids


test_rolling_restart.TIMEOUT = 120


def test_state_in_redis():
    r = servers.Redis()
    p = Pool({"session.lua": FILES["session.lua"].replace(
        "@REDIS_PORT@", str(r.port))})
    seen = {}
    for i in range(20):
        st, _, body = p.get("/session.lua?id=7%s"
                            % ("&set=alice" if i == 0 else ""))
        assert st == 200, (st, body, p.tails())
        pid, name, hits = body.split()
        assert name == b"alice", body
        assert int(hits) == i + 1, body
        seen[int(pid)] = True
    assert set(seen) == {p.g[0].pid, p.g[1].pid}, seen
    assert r.command("GET", "hits") == b"$2", r.command("GET", "hits")

    # set through one process, read through the other, over FastCGI
    # without nginx in between
    path = os.path.join(p.docroot, "session.lua")
    st, body = fcgi_tcp(p.ports[0], path, "id=8&set=bob")
    assert st == 200 and body.split()[1] == b"bob", (st, body)
    st, body = fcgi_tcp(p.ports[1], path, "id=8")
    assert st == 200, (st, body)
    assert int(body.split()[0]) == p.g[1].pid, body
    assert body.split()[1] == b"bob", body

    # a shared dict is not shared between processes: each counts alone
    path = os.path.join(p.docroot, "shdict.lua")
    for _ in range(3):
        fcgi_tcp(p.ports[0], path)
    st, body = fcgi_tcp(p.ports[1], path)
    assert body.split()[1] == b"1", body


def test_allow_deny():
    p = Pool()
    path = os.path.join(p.docroot, "pid.lua")
    st, body = fcgi_tcp(p.ports[0], path)
    assert (st, int(body)) == (200, p.g[0].pid), (st, body)
    # 127.0.0.2 is loopback too, but not allowed: closed at accept
    mark = p.g[0].mark()
    try:
        fcgi_tcp(p.ports[0], path, source="127.0.0.2")
    except (ConnectionError, EOFError):
        pass
    else:
        raise AssertionError("a denied peer was answered")
    wait_for(lambda: "127.0.0.2" in p.g[0].log_since(mark), 5,
             what="the denied peer in the log")


def test_health_check_cgi_fcgi():
    """docs/scaling.md's health check: cgi-fcgi (libfcgi-bin) asks one
    golapis for a script, without nginx."""
    p = Pool()
    env = dict(os.environ, REQUEST_METHOD="GET",
               SCRIPT_FILENAME=os.path.join(p.docroot, "health.lua"))
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect",
                          "127.0.0.1:%d" % p.ports[1]], env=env,
                         capture_output=True, timeout=10)
    assert out.returncode == 0, out
    assert out.stdout.endswith(b"\r\n\r\nok\n"), out.stdout
    assert b"Content-Type: text/plain" in out.stdout, out.stdout
    p.g[1].stop()
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect",
                          "127.0.0.1:%d" % p.ports[1]], env=env,
                         capture_output=True, timeout=10)
    assert out.returncode != 0 and not out.stdout, out
    assert b"Could not connect" in out.stderr, out


# ---------------------------------------------------------------------------

def fcgi_tcp(port, script, query="", source=None, timeout=10):
    """One FastCGI GET to 127.0.0.1:port (from source, an address); returns
    (status, body).  Raises ConnectionError or EOFError when the
    connection ends first."""
    def record(rtype, content):
        return struct.pack(">BBHHBB", 1, rtype, 1, len(content), 0, 0) \
            + content

    def pair(k, v):
        k, v = k.encode(), v.encode()
        return bytes([len(k)]) + struct.pack(">I", len(v) | 0x80000000) \
            + k + v

    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script,
              "QUERY_STRING": query, "REQUEST_URI": "/x.lua?" + query}
    data = record(1, struct.pack(">HB5x", 1, 0))
    data += record(4, b"".join(pair(k, v) for k, v in params.items()))
    data += record(4, b"") + record(5, b"")
    s = socket.create_connection(
        ("127.0.0.1", port), timeout=timeout,
        source_address=(source, 0) if source else None)
    try:
        s.sendall(data)
        buf, out = b"", b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("closed before END_REQUEST")
            buf += chunk
            while len(buf) >= 8:
                _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB",
                                                           buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                content = buf[8:8 + clen]
                buf = buf[8 + clen + plen:]
                if rtype == 6:
                    out += content
                elif rtype == 3:
                    head, _, body = out.partition(b"\r\n\r\n")
                    status = 200
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"status:"):
                            status = int(line.split()[1])
                    return status, body
    finally:
        s.close()
