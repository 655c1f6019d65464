"""Cosockets leak no file descriptors: golapis's open fds
(/proc/PID/fd) are counted after a warm-up, then after rounds of error
cases (refused connects, connect, read and send timeouts, peers closing
and resetting, requests ended by ngx.exit while a light thread waits on a
socket, a light thread killed while its socket waits, sockets left open
at the end of a request, clients going away while a request waits on a
socket, kept connections the peer then closes); once the peer has dropped
every connection the counts must be equal.  And a request whose client
goes away while it waits on a socket: golapis stays up and closes that
socket long before its timeout.

golapis only: GL_REF_ONLY=1 runs the same against nginx's worker instead
(which checks the test itself).
"""

import os
import signal
import socket
import time

from harness import (REF_ONLY, LUA_PRELUDE, NORM_POSITION, Golapis, Nginx,
                     http_get, make_docroot, wait_for)
from peer import SOCK_LUA, Peer
import servers

CASES = r'''
local what = ngx.var.arg_case
local s = ngx.socket.tcp()
s:settimeout(100)
if what == "refused" then
    ngx.say(s:connect("127.0.0.1", @REFUSED@))
    ngx.say(ngx.socket.connect("127.0.0.1", @REFUSED@))
    ngx.say(s:connect("unix:@NOFILE@"))
elseif what == "connect_timeout" then
    ngx.say(s:connect("127.0.0.1", @FULL@))
elseif what == "read_timeout" then
    s = peer("n")
    s:settimeout(100)
    ngx.say(s:receive())
elseif what == "send_timeout" then
    s = peer("n")
    s:settimeouts(1000, 100, 1000)
    ngx.say(s:send(string.rep("x", 32 * 1024 * 1024)))
elseif what == "peer_close" then
    s = peer("w:abc c")
    ngx.say(s:receive("*a"))
    s = peer("w:abc c")
    ngx.say(s:receive())
elseif what == "peer_reset" then
    s = peer("w:abc x")
    ngx.say(s:receive("*a"))
elseif what == "exit" then
    ngx.thread.spawn(function()
        local t = peer("n")
        t:receive()
    end)
    ngx.sleep(0.05)
    ngx.say("exit")
    ngx.exit(200)
elseif what == "kill" then
    local t = peer("n")
    local th = ngx.thread.spawn(function() return t:receive() end)
    ngx.sleep(0.01)
    ngx.say(ngx.thread.kill(th))
elseif what == "left_open" then
    local a = peer("e")
    local b = peer("e")
    local r = b:receiveuntil("x")
    local c = ngx.socket.udp()
    c:setpeername("127.0.0.1", @UDP@)
    c:send("hi")
    ngx.say("left")
elseif what == "keepalive" then
    local a = peer("e")
    a:send("x\n")
    a:receive()
    ngx.say(a:setkeepalive(0))
    local b = ngx.socket.tcp()
    b:connect("127.0.0.1", PORT, { pool = "other" })
    b:send("e\n")
    ngx.say(b:setkeepalive(0))
elseif what == "udp_timeout" then
    local u = ngx.socket.udp()
    u:settimeout(100)
    u:setpeername("127.0.0.1", @UDP@)
    u:send("silent")
    ngx.say(u:receive())
    u:setpeername("127.0.0.1", @UDPREFUSED@)
    u:send("x")
    ngx.say(u:receive())
elseif what == "client_gone" then
    s = peer("n")
    s:settimeout(10000)
    ngx.print("waiting\n")
    ngx.flush(true)
    ngx.say(s:receive())
end
'''

NAMES = ("refused", "connect_timeout", "read_timeout", "send_timeout",
         "peer_close", "peer_reset", "exit", "kill", "left_open",
         "keepalive", "udp_timeout")


def _fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _nginx_worker(n):
    pid = n.proc.pid
    path = "/proc/%d/task/%d/children" % (pid, pid)

    def child():
        with open(path) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    return wait_for(child, 5, what="the nginx worker")


def _setup(pr):
    d = make_docroot(copy_scripts=False)
    with open(os.path.join(d, "cases.lua"), "w") as f:
        f.write((LUA_PRELUDE + NORM_POSITION + pr.subst(SOCK_LUA + CASES))
                .replace("@DIR@", d))
    abort = "lua_check_client_abort on;"
    if REF_ONLY:
        n = Nginx(None, lua=True, root=d, extra_http=abort)
        return None, n, "/ref", _nginx_worker(n)
    g = Golapis(docroot=d, workers=2, conf_extra=abort)
    # "waiting" must reach the client before it goes: no buffering
    n = Nginx(g, extra_location="fastcgi_buffering off;")
    return g, n, "", g.proc.pid


def _client_gone(n, prefix):
    """Sends the client_gone request and closes the connection once the
    answer has begun."""
    c = socket.create_connection(("127.0.0.1", n.port), timeout=5)
    try:
        c.sendall(("GET %s/cases.lua?case=client_gone HTTP/1.1\r\n"
                   "Host: localhost\r\n\r\n" % prefix).encode())
        got = b""
        while b"waiting" not in got:
            d = c.recv(4096)
            assert d, got
            got += d
    finally:
        c.close()


def _settle(pr, pid, want, what):
    pr.drop_all()
    try:
        wait_for(lambda: pr.count_open() == 0 and _fds(pid) == want, 6,
                 what=what)
    except AssertionError:
        raise AssertionError("%s: %d fds, %d before; peer connections "
                             "open: %d; fds now: %s" % (
                                 what, _fds(pid), want, pr.count_open(),
                                 sorted(os.readlink("/proc/%d/fd/%s"
                                                    % (pid, f))
                                        for f in os.listdir(
                                            "/proc/%d/fd" % pid))))


def test_socket_fd_leaks():
    with Peer() as pr:
        g, n, prefix, pid = _setup(pr)
        # warm up: every case once
        for name in NAMES:
            st, _, body = http_get(n.port, "%s/cases.lua?case=%s"
                                   % (prefix, name))
            assert st == 200, (name, st, body)
        pr.drop_all()
        wait_for(lambda: pr.count_open() == 0, 6, what="the warm-up")
        time.sleep(0.3)
        base = _fds(pid)
        for _ in range(3):
            for name in NAMES:
                st, _, body = http_get(n.port, "%s/cases.lua?case=%s"
                                       % (prefix, name))
                assert st == 200, (name, st, body)
            _client_gone(n, prefix)
        _settle(pr, pid, base, "after the error cases")
        if g is not None:
            assert g.running(), g.tail()
test_socket_fd_leaks.TIMEOUT = 90


def test_socket_client_gone_closes_the_socket():
    with Peer() as pr:
        g, n, prefix, pid = _setup(pr)
        http_get(n.port, "%s/cases.lua?case=refused" % prefix)
        time.sleep(0.1)
        before = pr.count_open()
        accepted = pr.accepted
        t0 = time.monotonic()
        _client_gone(n, prefix)
        wait_for(lambda: pr.accepted == accepted + 1, 2,
                 what="the request's connection to the peer")
        # the peer never answers, the socket's timeout is 10 s: it is
        # closed when the client went away
        wait_for(lambda: pr.count_open() == before, 2.5,
                 what="the request's socket to close")
        assert time.monotonic() - t0 < 2.5
        if g is not None:
            assert g.running(), g.tail()
        st, _, body = http_get(n.port, "%s/cases.lua?case=peer_close"
                               % prefix)
        assert (st, body) == (200, b"abc\nnilclosedabc\n"), (st, body)


# ---------------------------------------------------------------------------
# a pool's idle connections end with the code generation that kept them,
# and with the worker (golapis only: nginx's reload is a new process)

KEEP = r'''
local s = ngx.socket.tcp()
s:settimeout(2000)
assert(s:connect("127.0.0.1", PORT))
ngx.say(s:getreusedtimes())
if s:getreusedtimes() == 0 then
    s:send("e\n")
end
ngx.say(s:send("x\n"), " ", s:receive())
ngx.say(s:setkeepalive(0))
'''


def _keep_setup(pr):
    d = make_docroot(copy_scripts=False)
    with open(os.path.join(d, "keep.lua"), "w") as f:
        f.write((LUA_PRELUDE + NORM_POSITION + pr.subst(SOCK_LUA + KEEP))
                .replace("@DIR@", d))
    g = Golapis(docroot=d, workers=1)
    return g, Nginx(g)


def test_pool_closed_with_its_generation():
    if REF_ONLY:
        return
    with Peer() as pr:
        g, n = _keep_setup(pr)
        assert http_get(n.port, "/keep.lua")[2] == b"0\n2 x\n1\n"
        # kept, then reused by the next request
        assert pr.count_open() == 1
        assert http_get(n.port, "/keep.lua")[2] == b"1\n2 x\n1\n"
        assert pr.count_open() == 1 and pr.accepted == 1
        # a reload retires the generation: its idle connection goes, and
        # the new code starts with an empty pool
        g.send_signal(signal.SIGHUP)
        wait_for(lambda: pr.count_open() == 0, 5,
                 what="the old generation's idle connection closed")
        assert http_get(n.port, "/keep.lua")[2] == b"0\n2 x\n1\n"
        assert pr.accepted == 2 and pr.count_open() == 1
        # a stop closes the idle connection and does not wait for its
        # keepalive timeout (0: never)
        t0 = time.monotonic()
        g.stop()
        assert time.monotonic() - t0 < 5
        wait_for(lambda: pr.count_open() == 0, 5,
                 what="the idle connection closed at the stop")


# a name looked up (by the resolver, while the connect waits) counts once
# in its pool; pool_size 1 and no backlog: a connection counted twice
# would refuse the next connect
BYNAME = r'''
for i = 1, 3 do
    local s = ngx.socket.tcp()
    s:settimeout(2000)
    local ok, err = s:connect("pool.golapis.test", PORT,
                              { pool = "L", pool_size = 1, backlog = 0 })
    ngx.say(i, " ", tostring(ok), " ", tostring(err))
    if i == 2 then s:setkeepalive() else s:close() end
end
'''


def test_pool_counts_a_looked_up_name_once():
    if REF_ONLY:
        return
    with Peer() as pr:
        d = make_docroot(copy_scripts=False)
        with open(os.path.join(d, "byname.lua"), "w") as f:
            f.write((LUA_PRELUDE + NORM_POSITION
                     + pr.subst(SOCK_LUA + BYNAME)).replace("@DIR@", d))
        dns = servers.Dnsmasq({"pool.golapis.test": "127.0.0.1"}, ttl=0)
        g = Golapis(docroot=d, workers=1,
                    conf_extra="resolver 127.0.0.1:%d;" % dns.port)
        n = Nginx(g)
        st, _, body = http_get(n.port, "/byname.lua")
        assert (st, body) == (200, b"1 1 nil\n2 1 nil\n3 1 nil\n"), (
            st, body, g.tail())
