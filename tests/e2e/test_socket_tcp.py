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
    if isinstance(wants, str):
        wants = [w.strip() for w in wants.strip().split("\n")]
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


# ---------------------------------------------------------------------------
# receive, receiveany, settimeout(s)

RECEIVE = r'''
local s = peer("w:line1%0d%0aline2%0aa%0db%0d%0d%0a%0d%0a%0alast c")
q("*l crlf", s:receive("*l"))
q("default is *l", s:receive())
q("inner CRs", s:receive())
q("CR alone", s:receive())
q("empty line", s:receive())
q("last line without LF", s:receive())
q("after it", s:receive())
q("*a after close", s:receive("*a"))
q("close", s:close())

s = peer("w:abc s:30 w:def c")
q("*a", s:receive("*a"))
q("*a again", s:receive("*a"))
q("*l after", s:receive())
s:close()

s = peer("c")
q("*a of nothing", s:receive("*a"))
s:close()
s = peer("c")
q("*l of nothing", s:receive("*l"))
s:close()

s = peer("w:0123456789abcdef c")
q("0", s:receive(0))
q("1", s:receive(1))
q("'3' is a size", s:receive("3"))
q("2.9", s:receive(2.9))
q("4", s:receive(4))
q("10 of 6 left", s:receive(10))
q("0 after close", s:receive(0))
q("1 after close", s:receive(1))
s:close()

s = peer("z:200000 c")
local d, err = s:receive(200000)
q("200000", d and #d, err, d and ngx.md5(d))
q("then", s:receive(1))
s:close()

s = peer("w:abc c")
q("bad patterns", try(s.receive, s, "*x"))
q("'abc'", try(s.receive, s, "abc"))
q("'*L'", try(s.receive, s, "*L"))
q("'*'", try(s.receive, s, "*"))
q("-1", try(s.receive, s, -1))
q("table", try(s.receive, s, {}))
q("true", try(s.receive, s, true))
q("-1 here", try(function() local a = s:receive(-1) return a end))
q("'*x' here", try(function() local a = s:receive("*x") return a end))
q("prefix argument", try(s.receive, s, "*l", "pre"))
q("none", try(s.receive))
q("nil pattern", try(s.receive, s, nil))
q("still there", s:receive())
s:close()

-- receiveany
s = peer("w:abc s:150 w:defgh s:150 w:ij c")
q("receiveany 10", s:receiveany(10))
q("receiveany 2", s:receiveany(2))
q("receiveany 10 (buffered)", s:receiveany(10))
q("receiveany '5'", s:receiveany("5"))
q("receiveany 10 at close", s:receiveany(10))
q("receiveany 0 when closed", try(s.receiveany, s, 0))
s:close()
s = peer("w:abc c")
q("receiveany 0", try(s.receiveany, s, 0))
q("receiveany -1", try(s.receiveany, s, -1))
q("receiveany 'x'", try(s.receiveany, s, "x"))
q("receiveany nil", try(s.receiveany, s, nil))
q("receiveany()", try(s.receiveany, s))
q("receiveany 0 here", try(function() local a = s:receiveany(0) return a end))
q("receiveany 1.5", s:receiveany(1.5))
q("receiveany 100", s:receiveany(100))
s:close()

-- read timeouts leave the socket usable
s = peer("w:abc s:400 w:def%0a s:400 w:ghi%0a s:400 w:jkl%0a e")
s:settimeout(100)
local t0 = ngx.now()
q("*l timeout", s:receive())
ngx.update_time()
q("waited", ngx.now() - t0 >= 0.09)
s:settimeout(1000)
q("*l after the timeout", s:receive())
s:settimeout(100)
q("size timeout", s:receive(10))
s:settimeout(1000)
q("after it", s:receive())
s:settimeouts(1000, 1000, 100)
q("*a timeout", s:receive("*a"))
s:settimeouts(0, 0, 1000)
q("after it", s:receive(4))
q("send still works", s:send("ping\n"))
q("echo", s:receive())
s:settimeout(100)
q("receiveany timeout", s:receiveany(10))
q("reused", s:getreusedtimes())
q("setkeepalive after a read timeout", s:setkeepalive())
q("close", s:close())
s = peer()
q("the next connect gets it", s:getreusedtimes())
q("echo", s:send("pong\n"), s:receive())
s:close()

-- settimeout(s) arguments
q("settimeout returns", s:settimeout(10))
q("settimeouts returns", s:settimeouts(10, 10, 10))
q("settimeout()", try(s.settimeout, s))
q("settimeout(1, 2)", try(s.settimeout, s, 1, 2))
q("settimeout(-1)", try(s.settimeout, s, -1))
q("settimeout(2^31)", try(s.settimeout, s, 2 ^ 31))
q("settimeout(2^31 - 1)", try(s.settimeout, s, 2 ^ 31 - 1))
q("settimeout('x')", try(s.settimeout, s, "x"))
q("settimeout(nil)", try(s.settimeout, s, nil))
q("settimeouts(1, 2)", try(s.settimeouts, s, 1, 2))
q("settimeouts(1, -1, 1)", try(s.settimeouts, s, 1, -1, 1))
q("settimeout() here", try(function() local a = s:settimeout() return a end))
-- 0 means the lua_socket_*_timeout default, so nothing times out here
s = peer("w:x s:200 w:y%0a c")
s:settimeout(0)
q("settimeout(0)", s:receive())
s:close()
-- a fractional timeout is truncated to whole ms: 0.5 is 0 (the default)
s = peer("w:x s:200 w:y%0a c")
s:settimeout(0.5)
q("settimeout(0.5)", s:receive())
s:close()
done()
'''


def test_tcp_receive():
    out = run(RECEIVE, min_lines=60)
    check(out, [
        '*l crlf: [1] "line1"', 'inner CRs: [1] "ab"',
        'CR alone: [1] ""',
        'last line without LF: [3] nil "closed" "last"',
        'after it: [2] nil "closed"', '*a: [1] "abcdef"',
        '*a again: [1] ""', '*l after: [3] nil "closed" ""',
        '*a of nothing: [1] ""', '*l of nothing: [3] nil "closed" ""',
        '0: [1] ""', "'3' is a size: [1] \"123\"", '2.9: [1] "45"',
        '10 of 6 left: [3] nil "closed" "abcdef"',
        '200000: [3] 200000 nil "bcc4bfca43786497d970f7d3e2fdd455"',
        "bad patterns: [2] false \"bad argument #2 to '?' (bad pattern "
        "argument)\"",
        "'abc': [2] false \"bad argument #2 to '?' (bad pattern argument: "
        "abc)\"",
        'prefix argument: [2] false "expecting 1 or 2 arguments '
        '(including the object), but got 3"',
        'receiveany 10: [1] "abc"', 'receiveany 2: [1] "de"',
        'receiveany 10 (buffered): [1] "fgh"',
        'receiveany 10 at close: [3] nil "closed" ""',
        'receiveany 0 when closed: [3] true nil "closed"',
        "receiveany 0: [2] false \"bad argument #2 to '?' (bad max "
        "argument)\"",
        'receiveany 1.5: [1] "a"',
        '*l timeout: [3] nil "timeout" "abc"',
        '*l after the timeout: [1] "def"',
        'size timeout: [3] nil "timeout" ""', 'after it: [1] "ghi"',
        'after it: [1] "jkl\\10"', 'echo: [1] "ping"',
        'receiveany timeout: [3] nil "timeout" ""',
        'setkeepalive after a read timeout: [1] 1',
        'the next connect gets it: [1] 1', 'echo: [2] 5 "pong"',
        'settimeout returns: [0] ',
        'settimeout(-1): [2] false "bad timeout value"',
        'settimeout(2^31): [2] false "bad timeout value"',
        'settimeouts(1, 2): [2] false "ngx.socket settimeout: expecting '
        '4 arguments (including the object) but seen 3"',
        'settimeout(0): [1] "xy"', 'settimeout(0.5): [1] "xy"',
    ])


# ---------------------------------------------------------------------------
# receiveuntil

UNTIL = r'''
local s = peer("w:hello--abc----world--tail c")
local r = s:receiveuntil("--")
q("iterator", type(r))
q("1", r())
q("2", r())
q("3 (empty part)", r())
q("4", r())
q("at close", r())
q("after close", r())
q("receive after close", s:receive())
s:close()

s = peer("w:hello--abc--rest c")
r = s:receiveuntil("--", { inclusive = true })
q("inclusive", r())
q("inclusive 2", r())
r = s:receiveuntil("--", { inclusive = false })
q("inclusive=false", r())
s:close()

-- patterns that repeat a prefix of themselves
local cases = {
    { "aab", "xaaab-" }, { "aab", "aaaab-" }, { "abcabd", "abcabcabd-" },
    { "aaab", "aaaaaab-" }, { "--ab", "---ab-" }, { "abab", "abaabab-" },
    { "aba", "ababa-" }, { "\r\n--b", "x\r\n\r\n--b-" }, { "ab", "aab-" },
    { "abcab", "abcabcab-" }, { "a", "xxa-" }, { "aa", "aaa-" },
}
for _, c in ipairs(cases) do
    local s = peer("w:" .. ngx.escape_uri(c[2]) .. " c")
    local r = s:receiveuntil(c[1])
    q("in " .. esc(c[2]) .. " until " .. esc(c[1]), r())
    q("rest", s:receive("*a"))
    s:close()
end

-- the pattern split across reads at every place
local data = "part1\r\n--bound\r\npart2\r\n--bound--"
local got = {}
for i = 1, #data - 1 do
    local s = peer("w:" .. ngx.escape_uri(data:sub(1, i)) .. " s:20 w:"
                   .. ngx.escape_uri(data:sub(i + 1)) .. " c")
    local r = s:receiveuntil("\r\n--bound")
    local a, e1 = r()
    local b, e2 = r()
    local c, e3, p3 = r()
    got[#got + 1] = fmt(a, e1, b, e2, c, e3, p3)
    s:close()
end
local same = true
for i = 2, #got do if got[i] ~= got[1] then same = false p("split", i, got[i]) end end
q("every split", same, got[1])
-- one byte at a time
s = peer("b:" .. ngx.escape_uri(data) .. " c")
r = s:receiveuntil("\r\n--bound")
q("bytewise", r(), r(), r())
s:close()

-- with a size: chunks of the part, then nil, nil, nil at its end
s = peer("w:0123456789--abc--xyz c")
r = s:receiveuntil("--")
q("size 4", r(4))
q("size 4", r(4))
q("size 4", r(4))
q("end of part", r(4))
q("size 100", r(100))
q("no size after a sized end", r())
q("size 0 means no limit", r(0))
s:close()
s = peer("w:0123456789--abc--xyz--q c")
r = s:receiveuntil("--")
q("size -1 is no limit", r(-1))
q("size 3", r(3))
q("end", r(3))
q("size '2'", r("2"))
q("size 2", r(2))
q("end", r(2))
q("then", r())
s:close()
-- a size ending inside a pattern prefix
s = peer("w:ab-cd--ef c")
r = s:receiveuntil("--")
q("size 3 at a false start", r(3))
q("next", r(3))
q("next", r(3))
q("next", r(3))
s:close()
s = peer("w:a--b---c c")
r = s:receiveuntil("---")
q("size 1", r(1))
q("size 1", r(1))
q("size 1", r(1))
q("size 1", r(1))
q("size 1", r(1))
q("size 1", r(1))
s:close()

-- closed in the middle of the pattern, and before it
s = peer("w:abc--de c")
r = s:receiveuntil("--def")
q("closed mid-pattern", r())
s:close()
s = peer("w:abc- c")
r = s:receiveuntil("--")
q("closed after a prefix byte", r())
s:close()
s = peer("w:abcdef c")
r = s:receiveuntil("--")
q("closed, no pattern", r())
q("closed, again", r())
s:close()
s = peer("w:abcdef c")
r = s:receiveuntil("--", { inclusive = true })
q("closed, inclusive", r(3))
q("then", r(3))
q("then", r(3))
s:close()

-- two iterators on one socket, and other reads between
s = peer("w:a|b;c|d%0ae;f|g c")
local r1 = s:receiveuntil("|")
local r2 = s:receiveuntil(";")
q("r1", r1())
q("r2", r2())
q("r1", r1())
q("receive", s:receive())
q("r2", r2())
q("receive(1)", s:receive(1))
q("r1", r1())
q("r1 at close", r1())
q("r2 at close", r2())
s:close()
-- the same iterator on a new connection of the same socket object
q("reconnect", s:connect("127.0.0.1", PORT), s:send("w:x|y c\n"))
q("old r1 on the reconnected socket", r1())
q("and again", r1())
s:close()

-- timeouts keep what was read
s = peer("w:abc- s:300 w:-def-- c")
s:settimeout(100)
r = s:receiveuntil("--")
q("timeout", r())
s:settimeout(1000)
q("after the timeout", r())
q("then", r())
s:close()
s = peer("w:abcdef s:300 w:-- c")
s:settimeout(100)
r = s:receiveuntil("--")
q("sized timeout", r(4))
s:settimeout(1000)
q("after it", r(4))
q("then", r(4))
s:close()

-- arguments
s = peer("w:abc c")
q("empty pattern", s:receiveuntil(""))
q("number pattern", type(s:receiveuntil(12)))
q("table pattern", try(s.receiveuntil, s, {}))
q("no pattern", try(s.receiveuntil, s))
q("options not a table", try(s.receiveuntil, s, "-", 1))
q("inclusive 'yes'", try(s.receiveuntil, s, "-", { inclusive = "yes" }))
q("inclusive 1", try(s.receiveuntil, s, "-", { inclusive = 1 }))
q("4 args", try(s.receiveuntil, s, "-", {}, 1))
q("table pattern here",
  try(function() local a = s:receiveuntil({}) return a end))
r = s:receiveuntil("b")
q("iterator(1, 2)", try(r, 1, 2))
q("iterator('x')", try(r, "x"))
q("iterator('x') here", try(function() local a = r("x") return a end))
q("iterator(1.7)", r(1.7))
q("still", r())
s:close()
q("iterator on a closed socket", r())
local u = ngx.socket.tcp()
q("receiveuntil unconnected", type(u:receiveuntil("x")))
q("its iterator", u:receiveuntil("x")())
done()
'''


def test_tcp_receiveuntil():
    out = run(UNTIL, min_lines=80)
    check(out, r'''
        3 (empty part): [1] ""
        at close: [3] nil "closed" "tail"
        after close: [2] nil "closed"
        inclusive: [1] "hello--"
        in "xaaab-" until "aab": [1] "xa"
        in "abcabcabd-" until "abcabd": [1] "abc"
        in "---ab-" until "--ab": [1] "-"
        in "abaabab-" until "abab": [1] "aba"
        in "ababa-" until "aba": [1] ""
        rest: [1] "ba-"
        every split: [2] true "[7] \34part1\34 nil \34\9213\9210part2\34 nil nil \34closed\34 \34--\34"
        bytewise: [5] "part1" "\13\10part2" nil "closed" "--"
        end of part: [3] nil nil nil
        size 100: [1] "abc"
        no size after a sized end: [3] nil nil nil
        size 0 means no limit: [3] nil "closed" "xyz"
        size -1 is no limit: [1] "0123456789"
        end: [1] ""
        size '2': [3] nil nil nil
        size 3 at a false start: [1] "ab-"
        size 1: [1] "--"
        size 1: [1] ""
        closed mid-pattern: [3] nil "closed" "abc"
        closed after a prefix byte: [3] nil "closed" "abc"
        closed, again: [2] nil "closed"
        closed, inclusive: [1] "abc"
        r1: [1] ""
        r1 at close: [3] nil "closed" "g"
        old r1 on the reconnected socket: [1] "x"
        timeout: [3] nil "timeout" "abc"
        after the timeout: [1] ""
        then: [1] "def"
        sized timeout: [1] "abcd"
        empty pattern: [2] nil "pattern is empty"
        inclusive 'yes': [2] false "bad \34inclusive\34 option value type: string"
        iterator(1, 2): [2] false "expecting 0 or 1 arguments, but seen 2"
        iterator('x'): [2] false "bad argument #1 to '?' (number expected, got string)"
        iterator(1.7): [1] "a"
        its iterator: [2] nil "closed"
    ''')
