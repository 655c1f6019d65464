"""ngx.socket.tcp (and ngx.socket.stream, ngx.socket.connect): connect,
send, receive, receiveany, receiveuntil, close, settimeout(s),
setoption/getoption, getreusedtimes, setkeepalive and the connection
pools, sockets in light threads, timers and user coroutines, a socket
used by another request, and the contexts where cosockets are disabled.

Differential against the real lua-nginx-module 0.10.23: each script runs
under golapis (/NAME.lua) and under nginx (/ref/NAME.lua) and both must
print the same lines; the peer is tests/e2e/peer.py (its scripts: "w:DATA"
writes, "s:MS" sleeps, "c" closes, "e" echoes ... see there).

GL_REF_ONLY=1 checks only the nginx side (no golapis started).

What upstream does that a reimplementation might not (the asserts below
pin each):
- errors raised by the C functions carry the position of the Lua caller;
  luaL_argerror counts the object as argument #1 when called as a method
  from Lua (s:receive(-1): "bad argument #1 to 'receive'"), #2 through
  pcall(s.receive, s, -1);
- ngx.socket.connect is a Lua chunk named "=ngx.socket.connect": its
  argument errors carry "ngx.socket.connect:1:";
- receive(0) returns "" without reading, a number-like string is a size
  (receive("3")), "*L" and the 3rd "prefix" argument do not exist;
- a read timeout does not close the socket, any other read error closes
  the reading side; a send timeout closes the writing side only;
- the partial data of a failed receive is the 3rd value, "" when none.
"""

import os
import threading
import time

from harness import REF_ONLY, ref_both, ref_get, ref_lines
from peer import Peer, setup

lines = ref_lines
get = ref_get
both = ref_both


def check(out, wants):
    missing = [w for w in wants if w not in out]
    assert not missing, "missing lines:\n  %s\nin:\n  %s" % (
        "\n  ".join(missing), "\n  ".join(out))


def run(script, min_lines, conf="", http="", name="t.lua"):
    """One script under both servers; its lines."""
    with Peer() as pr:
        g, n, _ = setup(pr, {name: script}, conf, http)
        out = lines(n, g, "/" + name, min_lines=min_lines)
    if os.environ.get("GL_SHOW"):
        print("\n".join(out))
    return out


# ---------------------------------------------------------------------------
# connect

CONNECT = r'''
local tcp = ngx.socket.tcp
q("stream is tcp", ngx.socket.stream == tcp)
q("tcp(1)", try(tcp, 1))
local s = tcp()
q("new", type(s), getmetatable(s) ~= nil)
s:settimeout(1000)
q("receive unconnected", s:receive())
q("send unconnected", s:send("x"))
q("close unconnected", s:close())
q("getreusedtimes unconnected", s:getreusedtimes())
q("setkeepalive unconnected", s:setkeepalive())
q("connect", s:connect("127.0.0.1", PORT))
q("reused", s:getreusedtimes())
q("send", s:send("w:hi%0a c\n"))
q("receive", s:receive())
q("close", s:close())
q("close again", s:close())
q("reused after close", s:getreusedtimes())
q("receive closed", s:receive())
q("send closed", s:send("x"))

q("port as string", s:connect("127.0.0.1", "@PORT@"))
q("reconnect over an open one", s:connect("127.0.0.1", PORT))
q("send", s:send("w:again%0a c\n"))
q("receive", s:receive())
s:close()

q("unix", s:connect("@UNIXSOCK@"))
q("send", s:send("w:over%20unix%0a c\n"))
q("receive", s:receive())
s:close()
q("unix with a port", s:connect("@UNIXSOCK@", 80))
s:close()
q("UNIX: prefix", s:connect("UNIX:@UNIX@"))
s:close()
q("unix, nil, opts", s:connect("@UNIXSOCK@", nil, {}))
s:close()

q("refused", s:connect("127.0.0.1", @REFUSED@))
q("receive after refused", s:receive())
q("no unix file", s:connect("unix:@NOFILE@"))
q("unix: alone", s:connect("unix:"))
q("port 70000", s:connect("127.0.0.1", 70000))
q("port -1", s:connect("127.0.0.1", -1))
q("no port", s:connect("127.0.0.1"))
q("nil port", s:connect("127.0.0.1", nil))
q("host:port string", s:connect("127.0.0.1:@PORT@"))
q("name, no resolver", s:connect("localhost", PORT))
q("empty host", s:connect("", PORT))
q("bad ip", s:connect("300.1.1.1", PORT))
q("port 1.9", s:connect("127.0.0.1", PORT + 0.9))
s:close()

-- argument errors
q("connect()", try(function() return s:connect() end))
q("connect() pcall", try(s.connect, s))
-- not tail calls: the caller's position and the method's name
q("connect() here", try(function() local a = s:connect() return a end))
q("nil host here", try(function() local a = s:connect(nil, PORT) return a end))
q("pool_size 0 here", try(function()
    local a = s:connect("127.0.0.1", PORT, { pool_size = 0 })
    return a
end))
q("s.connect()", try(s.connect))
q("5 args", try(s.connect, s, "127.0.0.1", PORT, {}, 1))
q("nil host", try(function() return s:connect(nil, PORT) end))
q("nil host pcall", try(s.connect, s, nil, PORT))
q("table host", try(s.connect, s, {}, PORT))
q("self not a table", try(s.connect, "x", "127.0.0.1", PORT))
q("pool_size 0", try(function() return s:connect("127.0.0.1", PORT,
                                                 { pool_size = 0 }) end))
q("pool_size 'x'", try(s.connect, s, "127.0.0.1", PORT, { pool_size = "x" }))
q("pool_size '3' is a number", s:connect("127.0.0.1", PORT,
                                        { pool_size = "3" }))
s:close()
q("backlog -1", try(s.connect, s, "127.0.0.1", PORT, { backlog = -1 }))
q("backlog 'x' ignored", s:connect("127.0.0.1", PORT, { backlog = "x" }))
s:close()
q("pool {}", try(s.connect, s, "127.0.0.1", PORT, { pool = {} }))
q("pool true", try(s.connect, s, "127.0.0.1", PORT, { pool = true }))
q("pool 12 (number)", s:connect("127.0.0.1", PORT, { pool = 12 }))
s:close()
q("4th arg not a table", s:connect("127.0.0.1", PORT, "junk"))
s:close()

-- ngx.socket.connect
local c, err = ngx.socket.connect("127.0.0.1", PORT)
q("ngx.socket.connect", type(c), err, c and c:getreusedtimes())
q("send", c:send("w:short%0a c\n"))
q("receive", c:receive())
q("close", c:close())
q("ngx.socket.connect refused", ngx.socket.connect("127.0.0.1", @REFUSED@))
q("ngx.socket.connect unix", type(ngx.socket.connect("@UNIXSOCK@")))
q("ngx.socket.connect()", try(ngx.socket.connect))
q("ngx.socket.connect no port", ngx.socket.connect("127.0.0.1"))

-- a connect that gets no answer
local t = tcp()
t:settimeout(150)
local t0 = ngx.now()
q("connect timeout", t:connect("127.0.0.1", @FULL@))
ngx.update_time()
local dt = ngx.now() - t0
q("waited", dt >= 0.1 and dt < 1)
q("receive after the timeout", t:receive())
t:settimeouts(150, 1000, 1000)
q("settimeouts: connect timeout", t:connect("127.0.0.1", @FULL@))
done()
'''


def test_tcp_connect():
    out = run(CONNECT, min_lines=60)
    check(out, [
        "stream is tcp: [1] true",
        "tcp(1): [2] false \"expecting zero arguments, but got 1\"",
        "receive unconnected: [2] nil \"closed\"",
        "send unconnected: [2] nil \"closed\"",
        "close unconnected: [2] nil \"closed\"",
        "getreusedtimes unconnected: [2] nil \"closed\"",
        "setkeepalive unconnected: [2] nil \"closed\"",
        "connect: [1] 1", "reused: [1] 0", "send: [1] 10",
        "receive: [1] \"hi\"", "close: [1] 1",
        "close again: [2] nil \"closed\"",
        "refused: [2] nil \"connection refused\"",
        "port 70000: [2] nil \"bad port number: 70000\"",
        "no port: [2] nil \"missing the port number\"",
        "name, no resolver: [2] nil \"no resolver defined to resolve "
        "\\34localhost\\34\"",
        "unix: alone: [2] nil \"failed to parse host name \\34unix:\\34: "
        "no path in the unix domain socket\"",
        "empty host: [2] nil \"failed to parse host name \\34\\34: no "
        "host\"",
        "no unix file: [2] nil \"no such file or directory\"",
        "host:port string: [2] nil \"missing the port number\"",
        "port as string: [1] 1", "port 1.9: [1] 1",
        "pool_size 'x': [2] false \"bad argument #4 to '?' (bad "
        "\\34pool_size\\34 option type: string)\"",
        "4th arg not a table: [1] 1", "pool 12 (number): [1] 1",
        "ngx.socket.connect(): [2] false \"ngx.socket.connect:1: ngx.socket "
        "connect: expecting 2, 3, or 4 arguments (including the object), "
        "but seen 1\"",
        "receive after the timeout: [2] nil \"closed\"",
        "connect timeout: [2] nil \"timeout\"", "waited: [1] true",
        "ngx.socket.connect refused: [2] nil \"connection refused\"",
    ])


# ---------------------------------------------------------------------------
# send

SEND = r'''
local s = peer("e")
local function echo(label, v)
    local n, err = s:send(v)
    if not n then q(label, n, err) return end
    if n == 0 then q(label, n) return end
    q(label, n, s:receive(n))
end
echo("string", "abc")
echo("empty string", "")
echo("integer", 42)
echo("negative", -7)
echo("float", 1.5)
echo("0.1", 0.1)
echo("1e20", 1e20)
echo("2^31", 2 ^ 31)
echo("2^53", 2 ^ 53)
echo("1/3", 1 / 3)
echo("-0", -0.0)
echo("true", true)
echo("false", false)
echo("nil", nil)
echo("table", { "a", "b", "c" })
echo("nested", { "a", { "b", { 1, 2.5 } }, "c" })
echo("empty table", {})
echo("table of empty", { "", {}, "" })
echo("binary", "a\0b\r\n\255")
q("table with true", try(s.send, s, { "a", true }))
q("table with nil hole", try(s.send, s, { "a", nil, "c" }))
q("hash table", try(s.send, s, { a = 1 }))
q("mixed table", try(s.send, s, { "a", x = 1 }))
q("function", try(s.send, s, print))
q("function, method", try(function() local a = s:send(print) return a end))
q("userdata", try(s.send, s, io.stdout))
q("no data", try(function() local a = s:send() return a end))
q("two data", try(s.send, s, "a", "b"))
q("self not a table", try(s.send, "x", "a"))
local big = string.rep("0123456789", 30000)
local n, err = s:send(big)
q("300000 bytes", n, err)
local got, err = s:receive(#big)
q("echoed", got == big, err)
q("close", s:close())
q("send after close", s:send("x"))

-- the peer resets the connection: the read sees it, the send after it
local r = peer("x")
q("receive on reset", r:receive())
q("send after the reset", r:send("x"))
q("close", r:close())

-- a send timeout: the peer reads nothing
local w = peer("n")
w:settimeouts(1000, 150, 100)
local t0 = ngx.now()
local n, err = w:send(string.rep("x", 32 * 1024 * 1024))
ngx.update_time()
q("send timeout", n, err, ngx.now() - t0 >= 0.1)
q("send again", w:send("x"))
q("receive after a send timeout", w:receive(1))
q("close", w:close())
q("close again", w:close())
done()
'''


def test_tcp_send():
    out = run(SEND, min_lines=30)
    check(out, [
        "string: [2] 3 \"abc\"", "empty string: [1] 0",
        "integer: [2] 2 \"42\"", "float: [2] 3 \"1.5\"",
        "true: [2] 4 \"true\"", "false: [2] 5 \"false\"",
        "nil: [2] 3 \"nil\"", "table: [2] 3 \"abc\"",
        "nested: [2] 7 \"ab12.5c\"", "empty table: [1] 0",
        "function: [2] false \"bad argument #2 to '?' (string, number, "
        "boolean, nil, or array table expected, got function)\"",
        "table with true: [2] false \"bad argument #2 to '?' (bad data "
        "type boolean found)\"",
        "hash table: [2] false \"bad argument #2 to '?' (non-array table "
        "found)\"",
        "2^53: [2] 18 \"9.007199254741e+15\"", "-0: [2] 1 \"0\"",
        "binary: [2] 6 \"a\\0b\\13\\10\\255\"",
        "receive on reset: [3] nil \"connection reset by peer\" \"\"",
        "send after the reset: [2] nil \"broken pipe\"",
        "close: [2] nil \"closed\"",
        "send again: [2] nil \"closed\"",
        "receive after a send timeout: [3] nil \"timeout\" \"\"", "echoed: [2] true nil",
        "send after close: [2] nil \"closed\"",
        "send timeout: [3] nil \"timeout\" true",
    ])
