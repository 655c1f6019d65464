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

from harness import (LUA_PRELUDE, NORM_POSITION, REF_ONLY, Golapis, Nginx,
                     make_docroot, ref_both, ref_get, ref_lines)
from peer import SOCK_LUA, Peer, setup

lines = ref_lines
get = ref_get
both = ref_both


def harness_docroot(files, pr):
    """A docroot holding `files` as ref_setup writes them."""
    d = make_docroot(copy_scripts=False)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write((LUA_PRELUDE + NORM_POSITION + pr.subst(SOCK_LUA + text))
                    .replace("@DIR@", d))
    return d


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
-- names: golapis resolves them with no resolver line (upstream: "no
-- resolver defined ..."): test_socket_libs.py checks both sides
q("empty host", s:connect("", PORT))
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


# a peer that reads slowly but steadily: the send timeout is the time
# without progress (upstream re-arms it at each NGX_AGAIN), not a
# deadline for the whole send
SLOW_READER = r'''
local s = peer("@STEPS@")
s:settimeout(800)
q("sndbuf", s:setoption("sndbuf", 32768))
q("send", s:send(string.rep("x", 600000)))
q("close", s:close())
done()
'''


def test_tcp_send_timeout_is_idle_time():
    steps = " ".join(["s:250 r:50000"] * 14) + " r:1000000"
    out = run(SLOW_READER.replace("@STEPS@", steps), min_lines=3)
    check(out, ["sndbuf: [1] true", "send: [1] 600000", "close: [1] 1"])


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
        'settimeout returns: [0]',
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


# ---------------------------------------------------------------------------
# setoption / getoption (lua-resty-core's resty/core/socket.lua)

OPTIONS = r'''
local s = ngx.socket.tcp()
q("setoption unconnected", try(s.setoption, s, "keepalive", 1))
q("getoption unconnected", try(s.getoption, s, "keepalive"))
s = peer("e")
q("keepalive 1", s:setoption("keepalive", 1))
q("get keepalive", s:getoption("keepalive"))
q("keepalive 0", s:setoption("keepalive", 0))
q("get keepalive", s:getoption("keepalive"))
q("tcp-nodelay", s:setoption("tcp-nodelay", 1), s:getoption("tcp-nodelay"))
q("reuseaddr", s:setoption("reuseaddr", 1), s:getoption("reuseaddr"))
q("sndbuf", s:setoption("sndbuf", 65536), s:getoption("sndbuf") > 0)
q("rcvbuf", s:setoption("rcvbuf", 65536), s:getoption("rcvbuf") > 0)
q("unknown", s:setoption("bogus", 1))
q("get unknown", s:getoption("bogus"))
q("no option", s:setoption())
q("no value", s:setoption("keepalive"))
q("get no option", s:getoption())
q("boolean value", try(s.setoption, s, "keepalive", true))
q("string value", try(s.setoption, s, "keepalive", "1"))
q("still echoes", s:send("x\n"), s:receive())
s:close()
q("setoption closed", try(s.setoption, s, "keepalive", 1))
q("getoption closed", try(s.getoption, s, "keepalive"))
done()
'''


BIND = r'''
local s = ngx.socket.tcp()
q("bind", s:bind("127.0.0.1"))
q("connect", s:connect("127.0.0.1", PORT))
q("echo", s:send("e\n"), s:send("x\n"), s:receive())
s:close()
q("bad address", s:bind("not-an-ip"))
q("a port is no address", s:bind("127.0.0.1:80"))
q("one argument", try(s.bind, s))
local v6 = ngx.socket.tcp()
q("bind v6", v6:bind("::1"))
done()
'''


def test_tcp_bind():
    out = run(BIND, min_lines=6)
    check(out, r'''
        bind: [1] true
        connect: [1] 1
        echo: [3] 2 2 "x"
        bad address: [2] nil "bad address"
        a port is no address: [2] nil "bad address"
        bind v6: [1] true
    ''')


def test_tcp_setoption():
    out = run(OPTIONS, min_lines=15)
    check(out, r'''
        setoption unconnected: [2] false "socket is never created nor connected"
        keepalive 1: [1] true
        get keepalive: [1] 1
        unknown: [2] nil "unsupported option bogus"
        no option: [2] nil "missing the \34option\34 argument"
        no value: [2] nil "missing the \34value\34 argument"
        still echoes: [2] 2 "x"
        boolean value: [2] true true
        setoption closed: [3] true nil "closed"
        getoption closed: [3] true nil "closed"
    ''')


# ---------------------------------------------------------------------------
# setkeepalive and the connection pools

POOL = r'''
local s = peer("e")
q("reused", s:getreusedtimes())
q("echo", s:send("a\n"), s:receive())
q("setkeepalive", s:setkeepalive())
q("send after", s:send("x"))
q("receive after", s:receive())
q("reused after", s:getreusedtimes())
q("close after", s:close())
q("setkeepalive again", s:setkeepalive())
local s2 = ngx.socket.tcp()
q("connect", s2:connect("127.0.0.1", PORT))
q("reused", s2:getreusedtimes())
q("same echo peer", s2:send("b\n"), s2:receive())
q("setkeepalive(0, 5)", s2:setkeepalive(0, 5))
q("the old object reconnects", s:connect("127.0.0.1", PORT),
  s:getreusedtimes())
q("echo", s:send("c\n"), s:receive())

-- unread data in the buffer
q("two lines", s:send("d\ne\n"))
ngx.sleep(0.05)
q("read one", s:receive())
q("setkeepalive", s:setkeepalive())
q("read the other", s:receive())
q("setkeepalive", s:setkeepalive())

-- named pools
local a = ngx.socket.tcp()
q("pool A", a:connect("127.0.0.1", PORT, { pool = "A" }), a:getreusedtimes())
a:send("e\n")
q("setkeepalive", a:setkeepalive())
local b = ngx.socket.tcp()
q("default pool", b:connect("127.0.0.1", PORT), b:getreusedtimes())
b:close()
q("pool A again", a:connect("127.0.0.1", PORT, { pool = "A" }),
  a:getreusedtimes())
q("echo", a:send("f\n"), a:receive())
a:setkeepalive()
q("pool A for another address", b:connect("@UNIXSOCK@", { pool = "A" }),
  b:getreusedtimes())
q("is the tcp peer", b:send("g\n"), b:receive())
b:close()

-- the keepalive timeout
local t = peer("e")
q("setkeepalive(50)", t:setkeepalive(50))
ngx.sleep(0.2)
q("after 200 ms", t:connect("127.0.0.1", PORT), t:getreusedtimes())
t:close()
-- the peer closes a kept connection
t = peer("w:hi%0a s:50 c")
q("receive", t:receive())
q("setkeepalive", t:setkeepalive())
ngx.sleep(0.2)
q("after the peer's close", t:connect("127.0.0.1", PORT), t:getreusedtimes())
t:close()
-- the peer closed before setkeepalive
t = peer("w:hi%0a c")
q("receive", t:receive())
ngx.sleep(0.05)
q("setkeepalive on a closed peer", t:setkeepalive())
q("close", t:close())
-- after the peer's close was read
t = peer("w:hi c")
q("receive", t:receive())
q("setkeepalive after reading the close", t:setkeepalive())

-- the pool size: the oldest kept connection is closed
local k = {}
for i = 1, 3 do
    k[i] = ngx.socket.tcp()
    k[i]:connect("127.0.0.1", PORT, { pool = "S" })
    k[i]:send("e\n")
end
for i = 1, 3 do q("keep " .. i, k[i]:setkeepalive(0, 2)) end
for i = 1, 3 do
    k[i]:connect("127.0.0.1", PORT, { pool = "S" })
    q("get " .. i, k[i]:getreusedtimes())
end
for i = 1, 3 do k[i]:close() end

-- setkeepalive's arguments
local z = peer("e")
q("setkeepalive(0, 0) new pool", try(z.setkeepalive, z, 0, 0))
q("setkeepalive(0, 0) here", try(function()
    local x = z:setkeepalive(0, 0) return x end))
q("setkeepalive('x')", try(z.setkeepalive, z, "x"))
q("setkeepalive(1, 2, 3)", try(z.setkeepalive, z, 1, 2, 3))
q("setkeepalive(nil, nil)", z:setkeepalive(nil, nil))
z:connect("127.0.0.1", PORT)
q("setkeepalive(0, 0) existing pool", z:setkeepalive(0, 0))
done()
'''


def test_tcp_keepalive():
    out = run(POOL, min_lines=40)
    check(out, r'''
        setkeepalive: [1] 1
        send after: [2] nil "closed"
        reused after: [2] nil "closed"
        setkeepalive again: [2] nil "closed"
        reused: [1] 1
        same echo peer: [2] 2 "b"
        the old object reconnects: [2] 1 2
        setkeepalive: [2] nil "unread data in buffer"
        read the other: [1] "e"
        pool A: [2] 1 0
        default pool: [2] 1 3
        pool A again: [2] 1 1
        pool A for another address: [2] 1 2
        is the tcp peer: [2] 2 "g"
        after 200 ms: [2] 1 0
        after the peer's close: [2] 1 0
        setkeepalive on a closed peer: [2] nil "closed"
        setkeepalive after reading the close: [2] nil "closed"
        get 2: [1] 1
        get 3: [1] 0
        setkeepalive(0, 0) new pool: [2] false "bad argument #3 to '?' (bad \34pool_size\34 option value: 0)"
        setkeepalive('x'): [2] false "bad argument #2 to '?' (number expected, got string)"
        setkeepalive(nil, nil): [2] nil "closed"
        setkeepalive(0, 0) existing pool: [1] 1
    ''')


# pool_size and backlog in connect's options: a connect over the limit
# queues, one over the backlog fails at once, a freed slot goes to the
# first queued

BACKLOG = r'''
local opts = { pool = "B", pool_size = 1, backlog = 2 }
local log = {}
local function l(...) log[#log + 1] = fmt(...) end
local function user(name, hold, how)
    local s = ngx.socket.tcp()
    s:settimeout(1000)
    local ok, err = s:connect("127.0.0.1", PORT, opts)
    l(name, "connect", ok, err, ok and s:getreusedtimes())
    if not ok then return end
    s:send("e\n")
    ngx.sleep(hold)
    if how == "keep" then
        l(name, "setkeepalive", s:setkeepalive())
    else
        l(name, "close", s:close())
    end
end
local th = {}
th[1] = ngx.thread.spawn(user, "t1", 0.05, "keep")
th[2] = ngx.thread.spawn(user, "t2", 0.05, "close")
th[3] = ngx.thread.spawn(user, "t3", 0, "keep")
th[4] = ngx.thread.spawn(user, "t4", 0, "keep")
l("all spawned")
for i = 1, 4 do ngx.thread.wait(th[i]) end
for _, x in ipairs(log) do p(x) end

-- a queued connect times out
log = {}
local o2 = { pool = "C", pool_size = 1, backlog = 1 }
local a = ngx.socket.tcp()
q("C first", a:connect("127.0.0.1", PORT, o2))
local t = ngx.thread.spawn(function()
    local s = ngx.socket.tcp()
    s:settimeout(100)
    return s:connect("127.0.0.1", PORT, o2)
end)
q("C queued", ngx.thread.wait(t))
a:close()
local b = ngx.socket.tcp()
q("C after", b:connect("127.0.0.1", PORT, o2))
b:close()
-- backlog alone: the pool size is lua_socket_pool_size
local c = ngx.socket.tcp()
q("backlog only", c:connect("127.0.0.1", PORT, { pool = "D", backlog = 0 }))
c:close()
done()
'''


def test_tcp_pool_backlog():
    out = run(BACKLOG, min_lines=10)
    assert out[:8] == [
        '[5] "t4" "connect" nil "too many waiting connect operations" nil',
        '[1] "all spawned"', '[5] "t1" "connect" 1 nil 0',
        '[3] "t1" "setkeepalive" 1', '[5] "t2" "connect" 1 nil 1',
        '[3] "t2" "close" 1', '[5] "t3" "connect" 1 nil 0',
        '[3] "t3" "setkeepalive" 1'], out
    check(out, r'''
        C queued: [3] true nil "timeout"
        C after: [1] 1
        backlog only: [1] 1
    ''')


# ---------------------------------------------------------------------------
# light threads, timers, user coroutines; one socket from two threads

THREADS = r'''
-- a socket made and used in a light thread
local t = ngx.thread.spawn(function()
    local s = peer("w:from%20thread%0a c")
    local l = s:receive()
    s:close()
    return l
end)
q("thread", ngx.thread.wait(t))

-- two readers of one socket: the second is busy
local s = peer("s:100 w:one%0a e")
local r1 = ngx.thread.spawn(function() return s:receive() end)
q("second reader", s:receive())
q("second receiveuntil", s:receiveuntil("x")())
q("receiveany", s:receiveany(1))
q("close while reading", s:close())
q("setkeepalive while reading", s:setkeepalive())
q("send while another reads", s:send("two\n"))
q("first reader", ngx.thread.wait(r1))
q("then", s:receive())
s:close()

-- busy connecting
local c = ngx.socket.tcp()
c:settimeout(200)
local ct = ngx.thread.spawn(function()
    return c:connect("127.0.0.1", @FULL@)
end)
q("send while connecting", c:send("x"))
q("receive while connecting", c:receive())
q("close while connecting", c:close())
q("connect while connecting", c:connect("127.0.0.1", PORT))
q("connect result", ngx.thread.wait(ct))

-- busy writing
local w = peer("n")
w:settimeouts(1000, 300, 1000)
local wt = ngx.thread.spawn(function()
    return w:send(string.rep("x", 32 * 1024 * 1024))
end)
q("send while sending", w:send("x"))
q("close while sending", w:close())
q("receive while sending", try(function() return w:receive(1) end))
q("first send", ngx.thread.wait(wt))
w:close()

-- a thread killed while it waits on a socket
local k = peer("s:300 w:late%0a e")
local kt = ngx.thread.spawn(function() return k:receive() end)
q("kill", ngx.thread.kill(kt))
q("receive after the kill", k:receive())
q("send after the kill", k:send("x\n"))
k:close()

-- a thread that ends while holding an open socket; the request goes on
local h
local ht = ngx.thread.spawn(function()
    h = peer("e")
    h:send("held\n")
end)
ngx.thread.wait(ht)
q("from the thread's socket", h:receive())
h:close()

-- a user coroutine
local co = coroutine.create(function(x)
    local s = peer("w:co1%0a s:20 w:co2%0a c")
    local a = s:receive()
    local y = coroutine.yield(a)
    local b = s:receive()
    s:close()
    return y .. b
end)
q("resume", coroutine.resume(co, 1))
q("resume", coroutine.resume(co, "got "))
q("status", coroutine.status(co))
local w2 = coroutine.wrap(function()
    local s = peer("w:wrapped%0a c")
    coroutine.yield(s:receive())
    s:close()
end)
q("wrap", w2())

-- a timer
local res
ngx.timer.at(0, function(premature)
    local s = ngx.socket.tcp()
    s:settimeout(1000)
    local ok, err = s:connect("127.0.0.1", PORT)
    if not ok then res = "connect: " .. tostring(err) return end
    s:send("w:in%20timer%0a e\n")
    local a = s:receive()
    s:send("again\n")
    local b = s:receive()
    res = fmt(premature, a, b, s:setkeepalive())
end)
for _ = 1, 100 do
    if res then break end
    ngx.sleep(0.01)
end
q("timer", res)
-- the timer's kept connection is in this worker's pool
local tp = ngx.socket.tcp()
tp:connect("127.0.0.1", PORT)
q("the timer's connection", tp:getreusedtimes(), tp:send("x\n"), tp:receive())
tp:close()

-- a timer using a socket of the request
local rs = peer("e")
local tres
ngx.timer.at(0, function()
    tres = fmt(try(rs.send, rs, "y\n"))
end)
for _ = 1, 100 do
    if tres then break end
    ngx.sleep(0.01)
end
q("the request's socket in a timer", tres)
rs:close()
done()
'''


def test_tcp_threads_timers_coroutines():
    out = run(THREADS, min_lines=25)
    check(out, r'''
        thread: [2] true "from thread"
        second reader: [2] nil "socket busy reading"
        second receiveuntil: [2] nil "socket busy reading"
        close while reading: [2] nil "socket busy reading"
        setkeepalive while reading: [2] nil "socket busy reading"
        send while another reads: [1] 4
        first reader: [2] true "one"
        then: [1] "two"
        send while connecting: [2] nil "socket busy connecting"
        connect while connecting: [2] nil "socket busy connecting"
        connect result: [3] true nil "timeout"
        send while sending: [2] nil "socket busy writing"
        close while sending: [2] nil "socket busy writing"
        receive while sending: [4] true nil "timeout" ""
        first send: [3] true nil "timeout"
        kill: [1] 1
        receive after the kill: [2] nil "closed"
        send after the kill: [2] nil "closed"
        from the thread's socket: [1] "held"
        resume: [2] true "got co2"
        wrap: [1] "wrapped"
        timer: [1] "[4] false \34in timer\34 \34again\34 1"
        the timer's connection: [3] 1 2 "x"
        the request's socket in a timer: [1] "[2] false \34bad request\34"
    ''')


# ---------------------------------------------------------------------------
# a socket object kept in a module-level table and used by another request

XHOLD = r'''
local s = peer("e")
package.loaded.xsock = s
package.loaded.xdone = nil
for _ = 1, 200 do
    if package.loaded.xdone then break end
    ngx.sleep(0.01)
end
q("holder still has it", s:send("mine\n"), s:receive())
done()
'''

XUSE = r'''
local s = package.loaded.xsock
q("send", try(s.send, s, "x"))
q("receive", try(s.receive, s))
q("receiveuntil's iterator", try(s:receiveuntil("x")))
q("close", try(s.close, s))
q("setkeepalive", try(s.setkeepalive, s))
q("getreusedtimes", try(s.getreusedtimes, s))
q("settimeout", try(s.settimeout, s, 10))
q("connect", try(s.connect, s, "127.0.0.1", PORT))
package.loaded.xdone = true
done()
'''


def test_tcp_socket_of_another_request():
    with Peer() as pr:
        g, n, _ = setup(pr, {"xhold.lua": XHOLD, "xuse.lua": XUSE})

        def flow(prefix):
            res = {}

            def hold():
                res["hold"] = get(n, prefix + "/xhold.lua")
            t = threading.Thread(target=hold)
            t.start()
            time.sleep(0.3)
            used = get(n, prefix + "/xuse.lua")
            t.join(10)
            # the holder has ended: its socket was closed with it
            after = get(n, prefix + "/xuse.lua")
            return [used, res.get("hold"), after]

        ref = both(flow)
    used, hold, after = [x.split("\n") for x in ref]
    if os.environ.get("GL_SHOW"):
        print("\n".join(used + hold + after))
    check(used, r'''
        send: [2] false "bad request"
        receive: [2] false "bad request"
        receiveuntil's iterator: [2] false "bad request"
        close: [2] false "bad request"
        setkeepalive: [2] false "bad request"
        getreusedtimes: [2] true 0
        settimeout: [1] true
        connect: [2] false "bad request"
    ''')
    assert hold[0] == 'holder still has it: [2] 5 "mine"', hold
    check(after, r'''
        send: [3] true nil "closed"
        close: [3] true nil "closed"
        settimeout: [1] true
        connect: [2] true 1
    ''')


# ---------------------------------------------------------------------------
# contexts where cosockets are disabled upstream: each records what
# ngx.socket.tcp(), ngx.socket.udp(), ngx.socket.connect() and
# ngx.req.socket() do there

CTX_LUA = r'''
local function ctx_try(where, norequest)
    local r = {}
    local function one(name, f, ...)
        local ok, err = pcall(f, ...)
        if type(err) == "string" then
            err = err:gsub("^[^%s:]+:%d+: ", "")
        else
            err = type(err)
        end
        r[#r + 1] = name .. " " .. tostring(ok) .. " " .. err
    end
    one("tcp", ngx.socket.tcp)
    one("udp", ngx.socket.udp)
    one("connect", ngx.socket.connect, "127.0.0.1", @PORT@)
    -- upstream's ngx.req.socket() crashes nginx (SIGSEGV) where there is
    -- no request
    if not norequest then one("req.socket", ngx.req.socket) end
    package.loaded.ctx_results = package.loaded.ctx_results or {}
    package.loaded.ctx_results[where] = table.concat(r, "; ")
end
'''

CTX_COMMON = r'''
init_by_lua_block {
    %s
    ctx_try("init_by_lua", true)
    package.loaded.ctx_try = ctx_try
}
header_filter_by_lua_block {
    if ngx.var.uri:find("ctx.lua", 1, true) then
        package.loaded.ctx_try("header_filter_by_lua")
    end
}
body_filter_by_lua_block {
    if ngx.var.uri:find("ctx.lua", 1, true) and ngx.arg[2] then
        package.loaded.ctx_try("body_filter_by_lua")
    end
}
''' % CTX_LUA

# upstream only: golapis allows cosockets in these (tested below)
CTX_REF_ONLY = r'''
init_worker_by_lua_block {
    package.loaded.ctx_try("init_worker_by_lua", true)
}
log_by_lua_block {
    if ngx.var.uri:find("ctx.lua", 1, true) then
        package.loaded.ctx_try("log_by_lua")
    end
}
'''

CTX = r'''
ngx.say("content")
'''

CTX_READ = r'''
local r = package.loaded.ctx_results or {}
for _, k in ipairs({ "init_by_lua", "header_filter_by_lua",
                     "body_filter_by_lua" }) do
    p(k .. ": " .. tostring(r[k]))
end
done()
'''


def test_tcp_disabled_contexts():
    with Peer() as pr:
        conf = pr.subst(CTX_COMMON)
        g, n, _ = setup(pr, {"ctx.lua": CTX, "ctx_read.lua": CTX_READ},
                        conf=conf, http=conf)

        def flow(prefix):
            return [get(n, prefix + "/ctx.lua"),
                    get(n, prefix + "/ctx_read.lua")]

        ref = both(flow)
    dis = "false API disabled in the context of "
    assert ref[1].split("\n") == [
        "init_by_lua: tcp false no request found; udp false no request "
        "found; connect false no request found",
        "header_filter_by_lua: tcp %sheader_filter_by_lua*; udp "
        "%sheader_filter_by_lua*; connect %sheader_filter_by_lua*; "
        "req.socket %sheader_filter_by_lua*" % ((dis,) * 4),
        "body_filter_by_lua: tcp %sbody_filter_by_lua*; udp "
        "%sbody_filter_by_lua*; connect %sbody_filter_by_lua*; "
        "req.socket %sbody_filter_by_lua*" % ((dis,) * 4), ""], ref


SETBY_READ = r'''
local r = package.loaded.ctx_results or {}
for _, k in ipairs({ "init_worker_by_lua", "log_by_lua" }) do
    p(k .. ": " .. tostring(r[k]))
end
done()
'''


def test_tcp_disabled_contexts_upstream_only():
    # what upstream says where golapis deliberately allows cosockets
    # (log_by_lua, init_worker_by_lua: see the golapis-only test below),
    # and in set_by_lua, which golapis does not have
    with Peer() as pr:
        d = harness_docroot({"ctx.lua": CTX, "ctx_read.lua": SETBY_READ},
                            pr)
        setby = pr.subst(
            "location = /setby { set_by_lua_block $r { %s "
            "ctx_try('set_by_lua') return "
            "package.loaded.ctx_results.set_by_lua } return 200 $r; }"
            % CTX_LUA)
        n = Nginx(None, lua=True, root=d,
                  extra_http=pr.subst(CTX_COMMON + CTX_REF_ONLY),
                  extra_server=setby)
        assert get(n, "/ref/ctx.lua") == "content\n"
        st, _, body = n.get("/setby")
        out = get(n, "/ref/ctx_read.lua")
    dis = "false API disabled in the context of "
    assert body.decode() == (
        "tcp %sset_by_lua*; udp %sset_by_lua*; connect %sset_by_lua*; "
        "req.socket %sset_by_lua*" % ((dis,) * 4)), body
    assert out.split("\n") == [
        "init_worker_by_lua: tcp %sinit_worker_by_lua*; udp "
        "%sinit_worker_by_lua*; connect %sinit_worker_by_lua*"
        % ((dis,) * 3),
        "log_by_lua: tcp %slog_by_lua*; udp %slog_by_lua*; connect "
        "%slog_by_lua*; req.socket %slog_by_lua*" % ((dis,) * 4), ""], out


# golapis only: cosockets work in log_by_lua and init_worker_by_lua
# (upstream disables them there: see the test above)

GL_CTX_CONF = r'''
lua_shared_dict sockctx 1m;
init_worker_by_lua_block {
    local s = ngx.socket.tcp()
    s:settimeout(2000)
    local ok, err = s:connect("127.0.0.1", @PORT@)
    local line, err2
    if ok then
        s:send("w:init-worker-ok%0a c\n")
        line, err2 = s:receive()
        s:close()
    end
    ngx.shared.sockctx:set("init_worker", tostring(ok) .. " "
        .. tostring(err) .. " " .. tostring(line) .. " " .. tostring(err2))
}
log_by_lua_block {
    if ngx.var.uri:find("logged.lua", 1, true) then
        local s = ngx.socket.tcp()
        s:settimeout(2000)
        local ok, err = s:connect("@UNIXSOCK@")
        local line, err2
        if ok then
            s:send("w:log-ok%20" .. ngx.var.arg_n .. "%0a c\n")
            line, err2 = s:receive()
            s:close()
        end
        ngx.shared.sockctx:set("log" .. ngx.var.arg_n, tostring(ok) .. " "
            .. tostring(err) .. " " .. tostring(line) .. " "
            .. tostring(err2))
    end
}
'''

GL_CTX_READ = r'''
local d = ngx.shared.sockctx
for _ = 1, 200 do
    if d:get("log1") then break end
    ngx.sleep(0.01)
end
p("init_worker: " .. tostring(d:get("init_worker")))
p("log: " .. tostring(d:get("log1")))
done()
'''


def test_tcp_golapis_log_and_init_worker():
    if REF_ONLY:
        return
    with Peer() as pr:
        d = harness_docroot({"logged.lua": "ngx.say('hi')",
                             "ctx_read.lua": GL_CTX_READ}, pr)
        g = Golapis(docroot=d, workers=1, conf_extra=pr.subst(GL_CTX_CONF))
        n = Nginx(g)
        assert get(n, "/logged.lua?n=1") == "hi\n"
        out = get(n, "/ctx_read.lua").split("\n")
        assert out == ["init_worker: 1 nil init-worker-ok nil",
                       "log: 1 nil log-ok 1 nil", ""], (out, g.tail())
        assert "w:init-worker-ok%0a c" in pr.scripts, pr.scripts


# ---------------------------------------------------------------------------
# rewrite_by_lua and access_by_lua: a socket in each phase, and one made in
# rewrite used again (the same request) in content

PHASE_LUA = r'''
%s_by_lua_block {
    local s = ngx.socket.tcp()
    s:settimeout(2000)
    local ok, err = s:connect("127.0.0.1", @PORT@)
    s:send("e\n")
    s:send("%s\n")
    ngx.ctx.%s = tostring(ok) .. " " .. tostring(err) .. " "
                 .. tostring(s:receive())
    ngx.ctx.%s_sock = s
}
'''

PHASES = r'''
p("rewrite", ngx.ctx.rewrite)
p("access", ngx.ctx.access)
local s = ngx.ctx.rewrite_sock
p("rewrite's socket", s:send("again\n"), s:receive(), s:close())
p("access's socket", ngx.ctx.access_sock:getreusedtimes())
done()
'''


def test_tcp_rewrite_and_access():
    with Peer() as pr:
        phases = pr.subst("".join(PHASE_LUA % (ph, ph, ph, ph)
                                  for ph in ("rewrite", "access")))
        g, n, _ = setup(pr, {"t.lua": PHASES}, conf=phases, http=phases)
        out = lines(n, g, "/t.lua", min_lines=4)
    check(out, r'''
        rewrite 1 nil rewrite
        access 1 nil access
        rewrite's socket 6 again 1
        access's socket 0
    ''')


# ---------------------------------------------------------------------------
# a pool hands out the connection kept last (upstream's pools are LIFO):
# A is kept after one reuse, B fresh, B last; the next connect gets B

POOL_LIFO = r'''
local function conn()
    local s = ngx.socket.tcp()
    s:settimeout(2000)
    assert(s:connect("127.0.0.1", PORT, { pool = "lifo" }))
    return s
end
local a = conn()
a:send("e\n")
a:setkeepalive()
a = conn()
p("a reused", a:getreusedtimes())
local b = conn()
b:send("e\n")
p("b reused", b:getreusedtimes())
a:setkeepalive()
b:setkeepalive()
local c = conn()
p("next reused", c:getreusedtimes())
local d = conn()
p("then reused", d:getreusedtimes())
c:close()
d:close()
done()
'''


def test_tcp_pool_lifo():
    out = run(POOL_LIFO, min_lines=4)
    check(out, r'''
        a reused 1
        b reused 0
        next reused 1
        then reused 2
    ''')
