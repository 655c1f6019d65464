"""The FastCGI side, straight on golapis's socket: multiplexing,
management records, bad input, an independent client (cgi-fcgi)."""

import os
import socket
import random
import re
import struct
import subprocess
import time

from harness import (Golapis, Nginx, SCRIPTS, expect_hello, make_docroot,
                     mktemp, mux, mux_finish, mux_start, parse_cgi)

HELLO = os.path.join(SCRIPTS, "hello.lua")

# what a "closing a bad connection" log line can look like
BAD_CONN_RE = re.compile(
    r"(?i)(closing connection|bad|invalid|malformed|unsupported|unexpected|"
    r"version|too (long|large|big)|exceed|limit)")


def record(rtype, rid, content=b"", version=1, padding=None):
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return (struct.pack(">BBHHBx", version, rtype, rid, len(content),
                        padding) + content + b"\0" * padding)


def begin(rid, keep=True):
    return record(1, rid, struct.pack(">HB5x", 1, 1 if keep else 0))


def write_tmp(data, name="raw.bin"):
    p = os.path.join(mktemp("raw-"), name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def bad_lines(text):
    return [l for l in text.splitlines() if BAD_CONN_RE.search(l)]


def test_multiplexed_sleeps():
    sleeps = {1: 1.0, 2: 0.2, 3: 0.8, 4: 0.4, 5: 0.6}
    files = {}
    for rid, sec in sleeps.items():
        files["mux%d.lua" % rid] = (
            'ngx.header["Content-Type"] = "text/plain"\n'
            'ngx.sleep(%s)\nngx.say("request %d slept %s")\n'
            % (sec, rid, sec))
    www = make_docroot(files)
    g = Golapis(docroot=www)
    args = []
    for rid in sorted(sleeps):
        args += ["-r", "-f", os.path.join(www, "mux%d.lua" % rid)]
    t0 = time.monotonic()
    r = mux(g.sock, args, timeout=10)
    took = time.monotonic() - t0
    assert r.rc == 0, r
    for rid, sec in sleeps.items():
        resp = r.responses[rid]
        assert resp["ended"], "request %d did not end: %r" % (rid, r)
        assert resp["protocol_status"] == 0, (rid, resp)
        status, headers, body = r.http(rid)
        assert status == 200, (rid, status, body)
        assert body == b"request %d slept %s\n" % (rid, str(sec).encode()), \
            (rid, body)
    order = [int(e.split()[1][3:]) for e in r.events if e.startswith("end ")]
    expected = sorted(sleeps, key=lambda k: sleeps[k])
    assert order == expected, \
        "END_REQUEST order %s, expected by sleep time %s" % (order, expected)
    # one after another they would take 3 s
    assert took < 2.5, "5 multiplexed sleeps (max 1 s) took %.2fs" % took


def test_many_requests_one_connection():
    g = Golapis()
    r = mux(g.sock, ["-n", "50", "-f", HELLO])
    assert r.rc == 0, r
    for rid in range(1, 51):
        assert r.responses[rid]["ended"], (rid, r)
        status, headers, body = r.http(rid)
        assert (status, body) == (200, b"hello, world\n"), (rid, status, body)


def test_records_split_small():
    # params and stdin cut into 1- and 3-byte records, three requests
    g = Golapis()
    for c in ("1", "3"):
        r = mux(g.sock, ["-c", c, "--seq", "-r", "-f", HELLO,
                         "-r", "-f", HELLO, "-b", "some body",
                         "-r", "-f", HELLO])
        assert r.rc == 0, r
        for rid in (1, 2, 3):
            assert r.http(rid)[2] == b"hello, world\n", (c, rid, r)


def test_no_keep_conn_closes():
    g = Golapis()
    r = mux(g.sock, ["--no-keep-conn", "--wait-close", "-r", "-f", HELLO],
            timeout=5)
    assert r.responses[1]["ended"], r
    assert r.http(1)[2] == b"hello, world\n", r
    assert r.final == "closed", \
        "without FCGI_KEEP_CONN the server must close; got %s" % r.final
    # and with it, the connection stays
    r = mux(g.sock, ["--wait-close", "-r", "-f", HELLO], timeout=1)
    assert r.responses[1]["ended"], r
    assert r.final == "timeout", \
        "with FCGI_KEEP_CONN the server closed the connection"


def test_body_too_large():
    g = Golapis()
    r = mux(g.sock, ["-r", "-f", HELLO, "-B", str(2 * 1024 * 1024)],
            timeout=10)
    assert r.responses[1]["ended"], r
    status, headers, body = r.http(1)
    assert status == 413, (status, body[:200])
    # a body under client_max_body_size is fine
    r = mux(g.sock, ["-r", "-f", HELLO, "-B", str(200 * 1024)])
    status, headers, body = r.http(1)
    assert (status, body) == (200, b"hello, world\n"), r


def test_get_values():
    # the values say what the config allows: worker_connections per
    # worker, 1024 requests on each of them
    g = Golapis(conf_extra="worker_connections 100;")
    r = mux(g.sock, ["--get-values"], timeout=5)
    assert r.rc == 0, r
    v = r.values()
    assert v == {"FCGI_MAX_CONNS": "100", "FCGI_MAX_REQS": str(100 * 1024),
                 "FCGI_MPXS_CONNS": "1"}, v


def test_body_too_large_as_it_streams():
    # client_max_body_size counts the STDIN bytes as they come: a request
    # whose CONTENT_LENGTH is empty (a chunked body that nginx streams
    # with fastcgi_request_buffering off) or says less than comes still
    # gets 413 past the limit
    g = Golapis()
    script = os.path.join(g.docroot, "readbody.lua")
    with open(script, "w") as f:
        f.write("ngx.req.read_body()\n"
                "ngx.say(#(ngx.req.get_body_data() or ''))\n")
    for cl in ("", "10"):
        r = mux(g.sock, ["-r", "-f", script, "-p", "CONTENT_LENGTH=" + cl,
                         "-B", str(2 * 1024 * 1024)], timeout=10)
        assert r.responses[1]["ended"], (cl, r)
        status, headers, body = r.http(1)
        assert status == 413, (cl, status, body[:200])


def test_unknown_type():
    g = Golapis()
    raw = write_tmp(record(42, 0, b"12345678"))
    # the connection stays usable: a request follows on it
    r = mux(g.sock, ["--raw", raw, "-r", "-f", HELLO], timeout=5)
    assert "unknown_type 42" in r.events, r
    assert r.rc == 0 and r.http(1)[2] == b"hello, world\n", r


def test_garbage():
    g = Golapis()
    n = Nginx(g)
    mark = g.mark()
    for seed in range(1, 7):
        data = random.Random(seed).randbytes(4096)
        for prefix in (b"", begin(1)):
            raw = write_tmp(prefix + data)
            r = mux(g.sock, ["--raw", raw, "--shut-wr"], timeout=5)
            assert r.final == "closed", \
                "seed %d%s: connection not closed: %r" % (
                    seed, " after BEGIN" if prefix else "", r)
            assert g.running(), "golapis died on garbage (seed %d)" % seed
    expect_hello(n.port)
    assert bad_lines(g.log_since(mark)), \
        "no log line about closing a bad connection after garbage"


def _inflight_then(g, raw_args, mux_timeout=5):
    """Starts a 1 s request on its own connection, runs the bad one, and
    checks the first still completes."""
    slow = mux_start(g.sock, ["-r", "-f", os.path.join(SCRIPTS,
                                                       "sleep1.lua")])
    time.sleep(0.2)
    r = mux(g.sock, raw_args, timeout=mux_timeout)
    s = mux_finish(slow)
    assert s.rc == 0 and s.http(1)[2] == b"slept 1\n", \
        "the in-flight request on another connection suffered: %r" % s
    return r


def test_bad_version():
    g = Golapis()
    n = Nginx(g)
    mark = g.mark()
    raw = write_tmp(record(1, 1, struct.pack(">HB5x", 1, 1), version=2))
    r = _inflight_then(g, ["--raw", raw])
    assert r.final == "closed", "bad version: not closed: %r" % r
    assert not [e for e in r.events if e.startswith("end ")], r
    assert bad_lines(g.log_since(mark)), \
        "no log line about the bad version"
    expect_hello(n.port)


def test_params_over_limit():
    g = Golapis("fastcgi_params_max_size 4k;")
    n = Nginx(g)
    mark = g.mark()
    r = _inflight_then(g, ["-r", "-f", HELLO, "-p", "BIG=" + "a" * 8000])
    assert r.final == "closed", "params over the limit: not closed: %r" % r
    assert not r.responses[1]["ended"] or r.http(1)[0] != 200, r
    assert bad_lines(g.log_since(mark)), \
        "no log line about the params over the limit"
    # under the limit is fine
    r = mux(g.sock, ["-r", "-f", HELLO, "-p", "BIG=" + "a" * 3000])
    assert r.rc == 0 and r.http(1)[2] == b"hello, world\n", r
    expect_hello(n.port)


def test_cgi_fcgi():
    g = Golapis()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "SCRIPT_FILENAME": HELLO, "REQUEST_METHOD": "GET",
           "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
           "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_URI": "/hello.lua"}
    p = subprocess.run(["cgi-fcgi", "-bind", "-connect", g.sock], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    status, headers, body = parse_cgi(p.stdout)
    assert status == 200, p.stdout
    assert headers.get("content-type") == "text/plain", p.stdout
    assert body == b"hello, world\n", p.stdout


def test_abort_request():
    g = Golapis()
    sleep3 = os.path.join(SCRIPTS, "sleep3.lua")
    sleep = os.path.join(SCRIPTS, "sleep.lua")
    t0 = time.monotonic()
    r = mux(g.sock, ["-r", "-f", sleep3, "-r", "-f", sleep, "-a", "1"],
            timeout=5)
    took = time.monotonic() - t0
    assert r.rc == 0, r
    assert r.responses[1]["ended"], "the aborted request got no END: %r" % r
    assert r.http(2)[2] == b"slept\n", r
    ends = [e for e in r.events if e.startswith("end ")]
    assert ends[0].startswith("end id=1 "), \
        "the aborted request should end first: %s" % ends
    assert took < 2.5, "abort did not cut the 3 s sleep (%.2fs)" % took
    # and the worker is fine afterwards
    r = mux(g.sock, ["-r", "-f", HELLO])
    assert r.http(1)[2] == b"hello, world\n", r


def test_close_while_sleeping():
    # the web server goes away while requests sleep or write; their
    # timers fire later, on requests whose connection is gone
    g = Golapis()
    sleep = os.path.join(SCRIPTS, "sleep.lua")
    big = os.path.join(SCRIPTS, "big.lua")
    r = mux(g.sock, ["-n", "5", "-f", sleep], timeout=0.2)
    assert r.final == "timeout", r
    r = mux(g.sock, ["-r", "-f", big, "-r", "-f", sleep, "-r", "-f", big],
            timeout=0.05)
    time.sleep(0.8)
    assert g.running(), "golapis died"
    r = mux(g.sock, ["-r", "-f", HELLO])
    assert r.http(1)[2] == b"hello, world\n", r
    assert g.stop() == 0


def test_multiplexed_big_responses():
    g = Golapis()
    big = os.path.join(SCRIPTS, "big.lua")
    r = mux(g.sock, ["-r", "-f", big, "-r", "-f", HELLO, "-r", "-f", big],
            timeout=20)
    assert r.rc == 0, r
    from test_conn import check_big
    for rid in (1, 3):
        status, headers, body = r.http(rid)
        assert status == 200, (rid, status)
        check_big(body)
    assert r.http(2)[2] == b"hello, world\n"


def test_duplicate_begin_closes():
    g = Golapis()
    sleep = os.path.join(SCRIPTS, "sleep.lua")
    raw = write_tmp(begin(7) + begin(7))
    r = mux(g.sock, ["--raw", raw], timeout=3)
    assert r.final == "closed", \
        "a BEGIN_REQUEST for an active id should close: %r" % r
    r = mux(g.sock, ["-r", "-f", HELLO])
    assert r.http(1)[2] == b"hello, world\n", r


def _params(rid, pairs):
    body = b""
    for k, v in pairs.items():
        k, v = k.encode(), v.encode()
        body += bytes([len(k)]) if len(k) < 128 else struct.pack(
            ">I", len(k) | 0x80000000)
        body += bytes([len(v)]) if len(v) < 128 else struct.pack(
            ">I", len(v) | 0x80000000)
        body += k + v
    return record(4, rid, body) + record(4, rid)


def test_read_pause_with_a_slow_reader():
    # a connection whose output queue is over its high mark is not read
    # any further: the client that sends requests without reading answers
    # gets no more of them started (each request here has a 64k body, so
    # that no single read takes many at once)
    files = {
        "big.lua": 'ngx.print(string.rep("x", 2 * 1024 * 1024))\n',
        "count.lua": ('ngx.shared.c:incr("n", 1, 0)\n'
                      'ngx.print(string.rep("y", 100000))\n'),
        "get.lua": 'ngx.say(ngx.shared.c:get("n") or 0)\n',
    }
    www = make_docroot(files)
    g = Golapis(docroot=www, workers=1, conf_extra="lua_shared_dict c 1m;\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(g.sock)
    s.settimeout(0.2)
    chunk = b"z" * 65535

    def req(rid, script, body=b""):
        out = begin(rid) + _params(rid, {
            "SCRIPT_FILENAME": os.path.join(www, script),
            "REQUEST_METHOD": "POST" if body else "GET",
            "CONTENT_LENGTH": str(len(body))})
        if body:
            out += record(5, rid, body)
        return out + record(5, rid)

    sent = 0
    try:
        s.sendall(req(1, "big.lua"))
        deadline = time.monotonic() + 2
        rid = 2
        while time.monotonic() < deadline and rid < 200:
            try:
                s.sendall(req(rid, "count.lua", chunk))
                sent += 1
                rid += 1
            except socket.timeout:
                break
        time.sleep(0.3)
        r = mux(g.sock, ["-r", "-f", os.path.join(www, "get.lua")],
                timeout=5)
        started = int(r.http(1)[2])
    finally:
        s.close()
    # a few requests at most got in before the pause (the big answer goes
    # over the mark within its first prints); without the pause, every
    # request sent would have started
    assert started <= 4, (started, sent)
    assert sent < 100, sent
    assert g.running()
