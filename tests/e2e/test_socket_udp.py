"""ngx.socket.udp: setpeername (host/port, unix:), send, receive, the
receive timeout, close, and the errors of each, against the real
lua-nginx-module 0.10.23 (differential: each script runs under golapis at
/NAME.lua and under nginx at /ref/NAME.lua and both must print the same
lines).  The peer (tests/e2e/peer.py) echoes datagrams on 127.0.0.1,
keeps quiet for "silent...", answers "twice:X" with X twice and "big:N"
with N bytes; its unix datagram socket keeps what it gets (the TCP step
"u" reports it).

GL_REF_ONLY=1 checks only the nginx side.

Upstream behaviours worth matching:
- send and receive before setpeername, or after close: nil, "closed";
- a receive timeout does not close the socket;
- receive(size) truncates the datagram to size (the rest is lost);
  a size above 65536 is 65536; no size is 65536;
- an ICMP port unreachable shows in the next receive as
  "connection refused";
- a name needs a resolver: nil, 'no resolver defined to resolve "NAME"'.
"""

import os

from harness import ref_lines
from peer import Peer, setup


def check(out, wants):
    wants = [w.strip() for w in wants.strip().split("\n")]
    missing = [w for w in wants if w not in out]
    assert not missing, "missing lines:\n  %s\nin:\n  %s" % (
        "\n  ".join(missing), "\n  ".join(out))


def run(script, min_lines, name="u.lua"):
    with Peer() as pr:
        g, n, _ = setup(pr, {name: script})
        out = ref_lines(n, g, "/" + name, min_lines=min_lines)
    if os.environ.get("GL_SHOW"):
        print("\n".join(out))
    return out


UDP = r'''
local udp = ngx.socket.udp
q("udp(1)", try(udp, 1))
local u = udp()
q("new", type(u))
q("send before setpeername", u:send("x"))
q("receive before setpeername", u:receive())
q("close before setpeername", u:close())
q("settimeout", u:settimeout(1000))
q("setpeername", u:setpeername("127.0.0.1", @UDP@))
q("send", u:send("hello"))
q("receive", u:receive())
q("send table", u:send({ "a", { "b", 1 }, "c" }))
q("receive", u:receive())
q("send number", u:send(3.5))
q("receive", u:receive())
q("send nil", u:send(nil))
q("receive", u:receive())
q("send true", u:send(true))
q("receive", u:receive())
q("send empty", u:send(""))
q("send 'e'", u:send("e"))
q("receive (the empty datagram first)", u:receive())
q("receive", u:receive())
q("twice", u:send("twice:hi"))
q("receive", u:receive())
q("receive", u:receive())
q("big 8000", u:send("big:8000"))
local d, err = u:receive()
q("default size", d and #d, err)
u:send("big:100")
q("receive(10) truncates", u:receive(10))
u:send("after")
q("the rest was dropped", u:receive())
u:send("big:100")
q("receive('5')", u:receive("5"))
u:send("big:65507")
d, err = u:receive()
q("big 65507", d and #d, err)
u:send("big:100")
d, err = u:receive(100000)
q("receive(100000)", d and #d, err)
u:send("x")
q("receive(0)", u:receive(0))
u:send("y")
q("receive(-1)", try(u.receive, u, -1))
q("receive('x')", try(u.receive, u, "x"))
q("receive(1, 2)", try(u.receive, u, 1, 2))
q("send function", try(u.send, u, print))
q("send table with true", try(u.send, u, { true }))
q("send()", try(u.send, u))
q("send function here", try(function() local a = u:send(print) return a end))

-- timeouts
u:settimeout(100)
u:send("silent")
local t0 = ngx.now()
q("timeout", u:receive())
ngx.update_time()
q("waited", ngx.now() - t0 >= 0.09)
q("still works", u:send("again"), u:receive())
q("settimeout()", try(u.settimeout, u))
q("settimeout(1, 2)", try(u.settimeout, u, 1, 2))
q("settimeout(-1)", u:settimeout(-1))
u:settimeout(100)

-- closing
q("close", u:close())
q("close again", u:close())
q("send after close", u:send("x"))
q("receive after close", u:receive())

-- setpeername again, and its errors
q("setpeername again", u:setpeername("127.0.0.1", @UDP@))
q("re-setpeername over an open one", u:setpeername("127.0.0.1", @UDP@))
q("echo", u:send("re"), u:receive())
q("port as a string", u:setpeername("127.0.0.1", "@UDP@"))
q("echo", u:send("str"), u:receive())
q("port 70000", u:setpeername("127.0.0.1", 70000))
q("port -1", u:setpeername("127.0.0.1", -1))
q("no port", u:setpeername("127.0.0.1"))
-- a name: golapis resolves it with no resolver line (test_socket_libs.py)
q("empty host", u:setpeername("", 53))
q("host:port", u:setpeername("127.0.0.1:@UDP@"))
q("echo", u:send("hp"), u:receive())
q("setpeername()", try(u.setpeername, u))
q("setpeername 4 args", try(u.setpeername, u, "127.0.0.1", 1, 2))
q("setpeername nil host", try(u.setpeername, u, nil, 1))
q("setpeername 'x' port", try(u.setpeername, u, "127.0.0.1", "x"))
q("setpeername() here", try(function() local a = u:setpeername() return a end))

-- nothing listens: the ICMP error comes back as the next receive's error
local r = udp()
r:settimeout(500)
q("setpeername to nothing", r:setpeername("127.0.0.1", @UDPREFUSED@))
q("send", r:send("anyone?"))
q("receive", r:receive())
q("send again", r:send("anyone?"))
r:close()

-- unix datagram sockets
local x = udp()
q("unix setpeername", x:setpeername("unix:@UDPUNIX@"))
q("send", x:send("via-unix"))
q("send", x:send({ "second", "-", 2 }))
x:close()
q("no unix file", x:setpeername("unix:@NOFILE@"))
-- the peer's thread reads the datagrams on its own time
ngx.sleep(0.1)
local s = peer("u")
q("the peer got", s:receive())
s:close()

-- a light thread, a timer
local th = ngx.thread.spawn(function()
    local v = udp()
    v:settimeout(1000)
    v:setpeername("127.0.0.1", @UDP@)
    v:send("in thread")
    return v:receive()
end)
q("thread", ngx.thread.wait(th))
local res
ngx.timer.at(0, function()
    local v = udp()
    v:settimeout(1000)
    v:setpeername("127.0.0.1", @UDP@)
    v:send("in timer")
    res = fmt(v:receive())
end)
for _ = 1, 100 do
    if res then break end
    ngx.sleep(0.01)
end
q("timer", res)
-- two readers
local w = udp()
w:settimeout(300)
w:setpeername("127.0.0.1", @UDP@)
local rt = ngx.thread.spawn(function() return w:receive() end)
q("second reader", w:receive())
q("setpeername while reading", w:setpeername("127.0.0.1", @UDP@))
q("close while reading", w:close())
q("send while reading", w:send("busy"))
q("first reader", ngx.thread.wait(rt))
-- killed while it waits
local kt = ngx.thread.spawn(function() return w:receive() end)
q("kill", ngx.thread.kill(kt))
q("send after the kill", w:send("k"))
q("receive after the kill", w:receive())
-- a timer with the request's socket
w = udp()
w:setpeername("127.0.0.1", @UDP@)
local tres
ngx.timer.at(0, function() tres = fmt(try(w.send, w, "t")) end)
for _ = 1, 100 do
    if tres then break end
    ngx.sleep(0.01)
end
q("the request's socket in a timer", tres)
done()
'''


def test_udp():
    out = run(UDP, min_lines=60)
    check(out, r'''
        udp(1): [2] false "expecting zero arguments, but got 1"
        send before setpeername: [2] nil "closed"
        receive before setpeername: [2] nil "closed"
        close before setpeername: [2] nil "closed"
        settimeout: [0]
        setpeername: [1] 1
        send: [1] 1
        receive: [1] "ab1c"
        receive: [1] "nil"
        receive (the empty datagram first): [1] ""
        default size: [2] 8000 nil
        receive(10) truncates: [1] "xxxxxxxxxx"
        the rest was dropped: [1] "after"
        receive('5'): [1] "xxxxx"
        big 65507: [2] 65507 nil
        receive(100000): [2] 100 nil
        receive(0): [1] ""
        receive(-1): [2] true "y"
        receive('x'): [2] false "bad argument #2 to '?' (number expected, got string)"
        send function: [2] false "bad argument #2 to '?' (string, number, boolean, nil, or array table expected, got function)"
        timeout: [2] nil "timeout"
        still works: [2] 1 "again"
        settimeout(): [2] false "ngx.socket settimeout: expecting at least 2 arguments (including the object) but seen 1"
        close: [1] 1
        close again: [2] nil "closed"
        send after close: [2] nil "closed"
        port 70000: [2] nil "bad port number: 70000"
        no port: [1] 1
        empty host: [2] nil "failed to parse host name \34\34: no host"
        host:port: [1] 1
        echo: [2] 1 "hp"
        setpeername(): [2] false "ngx.socket.udp setpeername: expecting 2 or 3 arguments (including the object), but seen 1"
        setpeername 'x' port: [2] false "bad argument #3 to '?' (number expected, got string)"
        receive: [2] nil "connection refused"
        no unix file: [2] nil "no such file or directory"
        the peer got: [1] "via-unix|second-2"
        thread: [2] true "in thread"
        timer: [1] "[1] \34in timer\34"
        second reader: [2] nil "socket busy"
        send while reading: [2] nil "socket busy"
        first reader: [3] true nil "timeout"
        receive after the kill: [2] nil "closed"
        the request's socket in a timer: [1] "[2] false \34bad request\34"
    ''')
