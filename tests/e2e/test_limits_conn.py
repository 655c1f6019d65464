"""Connection limits (docs/limits.md): client_timeout, keepalive_timeout,
idle connections closed first at worker_connections, back-off when out of
descriptors, ABORT_REQUEST without keep-conn, rate-limited log lines."""

import os
import resource
import select
import socket
import struct
import time

from harness import (Golapis, Nginx, SCRIPTS, expect_hello, fcgi_get,
                     make_docroot, wait_for)

HELLO = os.path.join(SCRIPTS, "hello.lua")

FCGI_BEGIN, FCGI_ABORT, FCGI_END = 1, 2, 3
FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 4, 5, 6


def record(rtype, rid, content=b""):
    padding = (8 - len(content) % 8) % 8
    return (struct.pack(">BBHHBx", 1, rtype, rid, len(content), padding)
            + content + b"\0" * padding)


def begin(rid, keep=True):
    return record(FCGI_BEGIN, rid, struct.pack(">HB5x", 1, 1 if keep else 0))


def nv(name, value):
    name, value = name.encode(), value.encode()
    return bytes([len(name), len(value)]) + name + value


def params(script, extra=()):
    return b"".join([nv("SCRIPT_FILENAME", script),
                     nv("REQUEST_METHOD", "POST"), nv("REQUEST_URI", "/x")]
                    + [nv(k, v) for k, v in extra])


def request(rid, script, keep=True, body=b"", end_body=True):
    data = (begin(rid, keep) + record(FCGI_PARAMS, rid, params(script))
            + record(FCGI_PARAMS, rid))
    if body:
        data += record(FCGI_STDIN, rid, body)
    if end_body:
        data += record(FCGI_STDIN, rid)
    return data


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def closed_by_peer(s, timeout):
    """True if the peer closes s (recv gives b"" or a reset) within
    timeout; whatever else comes is read and dropped."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return False
        try:
            if s.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True


def read_records(s, rid, timeout=10):
    """Records until request rid's END_REQUEST: (stdout bytes, ended)."""
    buf, out = b"", b""
    end = time.monotonic() + timeout
    while True:
        while len(buf) >= 8:
            _, t, r, clen, plen = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if t == FCGI_STDOUT and r == rid:
                out += content
            if t == FCGI_END and r == rid:
                return out, True
        left = end - time.monotonic()
        if left <= 0:
            return out, False
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            return out, False
        if not data:
            return out, False
        buf += data


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_out_lines(g):
    return [l for l in g.log().splitlines() if "client timed out" in l]


def test_slowloris():
    # slower under the sanitizers: the 200 connections must all be
    # accepted before the first times out
    # (1 s: 200 connects take a few hundred ms on a loaded machine)
    slack = 4 if os.environ.get("GL_SANITIZER") else 1
    g = Golapis(conf_extra="client_timeout %dms;" % (1000 * slack))
    n = Nginx(g)
    expect_hello(n.port)
    base = open_fds(g.pid)
    conns = []
    t0 = time.monotonic()
    for _ in range(200):
        s = connect(g.sock)
        s.sendall(b"\x01\x01\x00\x01")     # half a record header
        conns.append(s)
    wait_for(lambda: open_fds(g.pid) >= base + 200, 5 * slack,
             what="golapis to accept the 200 connections")
    # nginx's requests go on meanwhile
    while time.monotonic() - t0 < 0.3:
        expect_hello(n.port)
    assert open_fds(g.pid) >= base + 200, \
        "connections closed before client_timeout"
    for s in conns:
        assert closed_by_peer(s, 3 * slack), \
            "a stalled connection is still open %.1fs later" \
            % (time.monotonic() - t0)
        s.close()
    took = time.monotonic() - t0
    assert took < 3 * slack, "closing the stalled connections took " \
        "%.1fs" % took
    wait_for(lambda: open_fds(g.pid) <= base + 2, 3,
             what="golapis's descriptors back to %d (now %d)"
             % (base, open_fds(g.pid)))
    expect_hello(n.port)
    lines = timed_out_lines(g)
    assert lines, "no 'client timed out' line:\n" + g.tail()
    assert "while reading a record" in lines[0], lines[0]
    assert " *" in lines[0], "no connection number: " + lines[0]
    # 200 timeouts at once: rate limited
    assert len(lines) <= 40, "%d timeout lines for 200 connections" \
        % len(lines)
    assert g.stop() == 0


def test_params_incomplete():
    g = Golapis(conf_extra="client_timeout 300ms;")
    s = connect(g.sock)
    p = params(HELLO)
    s.sendall(begin(1) + record(FCGI_PARAMS, 1, p))    # no end of params
    t0 = time.monotonic()
    assert not closed_by_peer(s, 0.2), "closed before client_timeout"
    assert closed_by_peer(s, 2), "incomplete params: still open"
    took = time.monotonic() - t0
    assert 0.25 < took < 1.5, took
    lines = timed_out_lines(g)
    assert lines and "reading the params of request 1" in lines[-1], \
        g.tail()
    assert g.stop() == 0


def test_body_stalls():
    www = make_docroot({"readbody.lua": "ngx.req.read_body()\n"
                        "ngx.say(#(ngx.req.get_body_data() or ''))\n"})
    g = Golapis(conf_extra="client_timeout 300ms;", docroot=www)
    s = connect(g.sock)
    s.sendall(request(1, os.path.join(www, "readbody.lua"), body=b"b" * 1000,
                      end_body=False)
              + record(FCGI_STDIN, 1, b"more"))
    t0 = time.monotonic()
    assert not closed_by_peer(s, 0.2), "closed before client_timeout"
    assert closed_by_peer(s, 2), "stalled body: still open"
    assert time.monotonic() - t0 < 1.5
    lines = timed_out_lines(g)
    assert lines and "reading the body of request 1" in lines[-1], g.tail()
    # a whole body on a new connection is fine
    s = connect(g.sock)
    s.sendall(request(1, os.path.join(www, "readbody.lua"), body=b"b" * 1000))
    out, ended = read_records(s, 1)
    assert ended and out.endswith(b"\r\n\r\n1000\n"), out
    assert g.stop() == 0


def test_sleeping_script_is_not_cut():
    # the script waits: not a stalled client, nor an idle connection
    g = Golapis(conf_extra="client_timeout 300ms; keepalive_timeout 300ms;")
    s = connect(g.sock)
    t0 = time.monotonic()
    s.sendall(request(1, os.path.join(SCRIPTS, "sleep1.lua")))
    out, ended = read_records(s, 1, timeout=5)
    assert ended and out.endswith(b"slept 1\n"), \
        (out, time.monotonic() - t0, g.tail())
    assert time.monotonic() - t0 >= 0.9
    # then idle: closed after keepalive_timeout
    t1 = time.monotonic()
    assert closed_by_peer(s, 2), "idle after the request: still open"
    assert 0.2 < time.monotonic() - t1 < 1.5
    assert not timed_out_lines(g), g.tail()
    assert g.stop() == 0


def test_keepalive_timeout():
    g = Golapis(conf_extra="keepalive_timeout 300ms;")
    idle = connect(g.sock)
    used = connect(g.sock)
    t0 = time.monotonic()
    # the used one keeps doing requests past keepalive_timeout
    for _ in range(6):
        used.sendall(request(1, HELLO))
        out, ended = read_records(used, 1)
        assert ended and out.endswith(b"hello, world\n"), out
        time.sleep(0.1)
    assert closed_by_peer(idle, 0.5), \
        "the idle connection is still open after %.1fs" \
        % (time.monotonic() - t0)
    assert closed_by_peer(used, 2), "the used one, idle now, is still open"
    # through nginx with kept connections, idle ones close under it
    n = Nginx(g, keepalive=True)
    for _ in range(3):
        expect_hello(n.port, keepalive=False)
        time.sleep(0.5)
    assert g.stop() == 0


def test_idle_closed_first_at_worker_connections():
    g = Golapis(workers=1, conf_extra="worker_connections 4;")
    time.sleep(0.2)         # the start-up probe's connection is gone
    idle = [connect(g.sock) for _ in range(4)]
    wait_for(lambda: open_fds(g.pid) >= 4, 3, what="4 connections")
    time.sleep(0.2)
    # a fifth: an idle one makes room, and the request is served
    s = connect(g.sock)
    s.sendall(request(1, HELLO))
    out, ended = read_records(s, 1, timeout=5)
    assert ended and out.endswith(b"hello, world\n"), (out, g.tail())
    gone = [c for c in idle if closed_by_peer(c, 0.5)]
    assert len(gone) == 1, "%d idle connections closed" % len(gone)
    assert "closing an idle connection" in g.log(), g.tail()
    assert g.stop() == 0


def test_fd_exhaustion_backs_off():
    g = Golapis(workers=1)
    base = open_fds(g.pid)
    limit = base + 20
    resource.prlimit(g.pid, resource.RLIMIT_NOFILE, (limit, limit))
    conns = []
    try:
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(g.sock)
            except (BlockingIOError, ConnectionRefusedError, OSError):
                pass
            conns.append(s)
        wait_for(lambda: open_fds(g.pid) >= limit - 2, 3,
                 what="golapis to run out of descriptors")
        mark = len(g.log().splitlines())
        t0, c0 = time.monotonic(), cpu_seconds(g.pid)
        time.sleep(1.5)
        cpu = (cpu_seconds(g.pid) - c0) / (time.monotonic() - t0)
        lines = g.log().splitlines()[mark:]
        accept = [l for l in g.log().splitlines() if "accept4()" in l]
        assert cpu < 0.3, "golapis used %.0f%% CPU out of descriptors" \
            % (cpu * 100)
        assert len(lines) < 50, "%d log lines in 1.5 s:\n%s" \
            % (len(lines), "\n".join(lines[:5]))
        assert accept and "Too many open files" in accept[0], g.tail()
    finally:
        for s in conns:
            s.close()
    # the flood is over: served again
    status, headers, body = fcgi_get(g.sock, HELLO, timeout=5)
    assert body == b"hello, world\n", body
    assert g.running()
    assert g.stop() == 0


def test_abort_without_keep_conn_closes():
    g = Golapis()
    s = connect(g.sock)
    s.sendall(request(1, os.path.join(SCRIPTS, "sleep3.lua"), keep=False))
    time.sleep(0.2)
    t0 = time.monotonic()
    s.sendall(record(FCGI_ABORT, 1))
    out, ended = read_records(s, 1, timeout=3)
    assert ended, "no END_REQUEST after the abort: %r" % out
    assert closed_by_peer(s, 1.5), \
        "the connection stays open after an aborted request without " \
        "FCGI_KEEP_CONN"
    assert time.monotonic() - t0 < 1.5
    assert g.stop() == 0


def test_over_worker_connections_rate_limited():
    # two connections in the middle of a record hold the limit; each new
    # one makes the one before it (idle) go; the warning is written a few
    # times a second, not once per connection
    g = Golapis(workers=1, conf_extra="worker_connections 2;")
    time.sleep(0.2)         # the start-up probe's connection is gone
    busy = []
    for _ in range(2):
        s = connect(g.sock)
        s.sendall(b"\x01\x01")          # part of a record: not idle
        busy.append(s)
        time.sleep(0.2)
    conns = [connect(g.sock) for _ in range(300)]
    for s in conns[-5:-1]:
        assert closed_by_peer(s, 3), "a connection over the limit is open"
    for s in conns:
        s.close()
    for s in busy:
        assert not closed_by_peer(s, 0.1), "a busy connection was closed"
    lines = [l for l in g.log().splitlines()
             if "worker_connections are not enough" in l]
    assert lines, g.tail()
    assert len(lines) <= 30, "%d warnings for 300 connections over the " \
        "limit" % len(lines)
    for s in busy:
        s.close()
    assert g.stop() == 0


def test_answer_not_taken():
    # nginx that takes none of the answer (its window full, then nothing)
    # stalls like a client that sends nothing: client_timeout closes it,
    # while a reader that keeps taking slowly is not cut
    www = make_docroot({"big.lua": 'ngx.print(string.rep("x", 4 * 1024 '
                        '* 1024))\n'})
    g = Golapis(conf_extra="client_timeout 400ms;", docroot=www)
    s = connect(g.sock)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(request(1, os.path.join(www, "big.lua")))
    t0 = time.monotonic()
    time.sleep(1.2)
    assert g.running()
    lines = timed_out_lines(g)
    assert lines and "while sending the answer" in lines[-1], g.tail()
    assert time.monotonic() - t0 < 3
    # a slow reader: takes some every 100 ms, and gets all of it
    s2 = connect(g.sock)
    s2.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s2.sendall(request(1, os.path.join(www, "big.lua")))
    got = 0
    s2.settimeout(5)
    deadline = time.monotonic() + 30
    while got < 4 * 1024 * 1024 and time.monotonic() < deadline:
        d = s2.recv(262144)
        if not d:
            break
        got += len(d)
        time.sleep(0.02)
    assert got > 4 * 1024 * 1024, got
    assert g.stop() == 0
