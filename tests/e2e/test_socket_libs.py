"""
Debian's unmodified OpenResty client libraries on the cosockets, against
real servers (tests/e2e/servers.py): nginx.redis (resty.redis 0.27),
nginx.memcached (0.13), nginx.dns.resolver (0.20), nginx.websocket.client
(0.08), and tcpsock:connect by name through the `resolver` directive.

Differential: each script runs under golapis (/NAME.lua) and under the
real lua-nginx-module 0.10.23 (/ref/NAME.lua), both talking to the same
server, and both must print the same lines.  The scripts clean up the
keys they use first, as the ref side runs before golapis's.  Each test
also checks the ref's lines against the EXPECTED ones written here, so a
script that fails the same way on both sides does not pass.

What upstream does that the tests rely on:
- tcpsock:connect(NAME, port) with `resolver 127.0.0.1:P;` resolves
  through that server; a name it does not know fails with
  "NAME could not be resolved (3: Host not found)";
- with no `resolver` line, connect("localhost", port) fails in OpenResty
  with 'no resolver defined to resolve "localhost"'; golapis resolves it
  from /etc/hosts (its default, a deliberate difference: checked on
  golapis alone);
- getreusedtimes counts the reuses of a pooled connection per worker
  (golapis runs with workers 1 here, nginx has one worker);
- a read timeout returns nil, "timeout" and leaves the connection usable
  (the websocket client goes on after a recv_frame timeout).

GL_REF_ONLY=1 checks only the nginx side (no golapis started).
"""

import re

from harness import REF_ONLY, ref_both, ref_get, ref_lines, ref_setup
import servers

# Lua helpers for every script: q() is p() with ngx.null shown as <null>
# (inside tables too)
HELPERS = r'''
local function nn(v)
    if v == ngx.null then return "<null>" end
    if type(v) == "table" then
        local t = {}
        for k, x in pairs(v) do t[k] = nn(x) end
        return t
    end
    return v
end
local function q(...)
    local t, n = {...}, select("#", ...)
    for i = 1, n do t[i] = nn(t[i]) end
    p(unpack(t, 1, n))
end
'''


def fill(text, **vals):
    """HELPERS + text with each @NAME@ replaced by vals[name]."""
    text = HELPERS + text
    for k, v in vals.items():
        text = text.replace("@%s@" % k.upper(), str(v))
    left = re.findall(r"@[A-Z_]+@", text.replace("@DIR@", ""))
    assert not left, "unfilled placeholders %s" % left
    return text


def check(out, expected, what):
    """The ref's lines (trailing empty ones dropped) are `expected`."""
    while out and out[-1] == "":
        out = out[:-1]
    diffs = []
    for i in range(max(len(out), len(expected))):
        a = out[i] if i < len(out) else "<missing>"
        b = expected[i] if i < len(expected) else "<missing>"
        if a != b:
            diffs.append("  line %d:\n    got      %s\n    expected %s"
                         % (i + 1, a[:300], b[:300]))
    assert not diffs, "%s: %d lines differ from the expected:\n%s" % (
        what, len(diffs), "\n".join(diffs[:30]))


def run(files, path, expected, conf="", http=""):
    g, n, d = ref_setup(files, conf=conf, http=http)
    out = ref_lines(n, g, path, min_lines=len(expected) - 1)
    check(out, expected, path)
    return g, n, d


# ---------------------------------------------------------------------------
# redis

REDIS_BASIC = r'''
local redis = require "nginx.redis"
p("module", redis._VERSION)
local red = redis:new()
p("set_timeout", red:set_timeout(2000))
q("connect", red:connect("127.0.0.1", @PORT@))
q("reused", red:get_reused_times())
q("del", red:del("dog", "cat", "counter", "h", "list", "p1"))
q("set", red:set("dog", "an animal"))
q("get", red:get("dog"))
q("get missing", red:get("cat"))
q("incr", red:incr("counter"))
q("incrby", red:incrby("counter", 41))
q("get counter", red:get("counter"))
q("hmset", red:hmset("h", "a", "1", "b", "2"))
q("hmset table", red:hmset("h", { c = "3" }))
local all, err = red:hgetall("h")
q("hgetall", red:array_to_hash(all), err)
q("hget", red:hget("h", "b"))
q("hget missing", red:hget("h", "zz"))
q("rpush", red:rpush("list", "x", "y", "z"))
q("lrange", red:lrange("list", 0, -1))
q("exists", red:exists("dog", "nope"))
-- errors: a reply of type error is false + its text
q("wrong type", red:hget("dog", "a"))
q("incr a string", red:incr("dog"))
q("still usable", red:get("dog"))
-- binary-safe values
q("set binary", red:set("cat", "a\0b\r\nc"))
local v = red:get("cat")
q("get binary", #v, v == "a\0b\r\nc")
-- pipeline
red:init_pipeline()
q("queued set", red:set("p1", "v1"))
q("queued get", red:get("p1"))
q("queued error", red:incr("dog"))
q("queued missing", red:get("nope"))
q("queued hgetall", red:hgetall("h"))
local res, err = red:commit_pipeline()
q("commit", res, err)
q("commit again", red:commit_pipeline())
red:init_pipeline(2)
red:set("p1", "v2")
red:cancel_pipeline()
q("cancelled", red:get("p1"))
q("del", red:del("dog", "cat", "counter", "h", "list", "p1"))
q("close", red:close())
q("get after close", red:get("dog"))
q("close again", red:close())

-- the unix socket
local red2 = redis:new()
red2:set_timeout(2000)
q("connect unix", red2:connect("unix:@SOCK@"))
q("set via unix", red2:set("unixkey", "via the unix socket"))
q("get via unix", red2:get("unixkey"))
q("del", red2:del("unixkey"))
q("close", red2:close())

-- the pool: closed with set_keepalive, taken again by the next connect
local a = redis:new()
a:set_timeout(2000)
q("connect a", a:connect("127.0.0.1", @PORT@))
q("a reused", a:get_reused_times())
q("a ping", a:ping())
q("a keepalive", a:set_keepalive(10000, 10))
q("a after keepalive", a:ping())
local b = redis:new()
b:set_timeout(2000)
q("connect b", b:connect("127.0.0.1", @PORT@))
q("b reused", b:get_reused_times())
q("b ping", b:ping())
q("b keepalive", b:set_keepalive(10000, 10))
local c = redis:new()
c:set_timeout(2000)
q("connect c", c:connect("127.0.0.1", @PORT@))
q("c reused", c:get_reused_times())
q("c close", c:close())
local u = redis:new()
u:set_timeout(2000)
q("connect unix again", u:connect("unix:@SOCK@"))
q("unix reused", u:get_reused_times())
q("unix keepalive", u:set_keepalive())
local u2 = redis:new()
q("connect unix again", u2:connect("unix:@SOCK@"))
q("unix reused", u2:get_reused_times())
u2:close()
done()
'''

REDIS_BASIC_EXPECTED = [
    'module 0.27',
    'set_timeout',
    'connect 1',
    'reused 0',
    'del 0',
    'set OK',
    'get an animal',
    'get missing <null>',
    'incr 1',
    'incrby 42',
    'get counter 42',
    'hmset OK',
    'hmset table OK',
    'hgetall {"a"="1","b"="2","c"="3"} nil',
    'hget 2',
    'hget missing <null>',
    'rpush 3',
    'lrange {1="x",2="y",3="z"}',
    'exists 1',
    'wrong type false WRONGTYPE Operation against a key holding the wrong'
    ' kind of value',
    'incr a string false ERR value is not an integer or out of range',
    'still usable an animal',
    'set binary OK',
    'get binary 6 true',
    'queued set',
    'queued get',
    'queued error',
    'queued missing',
    'queued hgetall',
    'commit {1="OK",2="v1",3={1=false,2="ERR value is not an integer or'
    ' out of range"},4="<null>",5={1="a",2="1",3="b",4="2",5="c",6="3"}}'
    ' nil',
    'commit again nil no pipeline',
    'cancelled v1',
    'del 6',
    'close 1',
    'get after close nil closed',
    'close again nil closed',
    'connect unix 1',
    'set via unix OK',
    'get via unix via the unix socket',
    'del 1',
    'close 1',
    'connect a 1',
    'a reused 0',
    'a ping PONG',
    'a keepalive 1',
    'a after keepalive nil closed',
    'connect b 1',
    'b reused 1',
    'b ping PONG',
    'b keepalive 1',
    'connect c 1',
    'c reused 2',
    'c close 1',
    'connect unix again 1',
    'unix reused 0',
    'unix keepalive 1',
    'connect unix again 1',
    'unix reused 1',
]


def test_redis_commands():
    r = servers.Redis()
    run({"redis.lua": fill(REDIS_BASIC, port=r.port, sock=r.sock)},
        "/redis.lua", REDIS_BASIC_EXPECTED)


REDIS_PUBSUB = r'''
local redis = require "nginx.redis"
local function conn()
    local r = redis:new()
    r:set_timeout(2000)
    local ok, err = r:connect("127.0.0.1", @PORT@)
    if not ok then p("connect failed", err) end
    return r
end
local sub, pub = conn(), conn()
q("read_reply before subscribe", sub:read_reply())
q("subscribe", sub:subscribe("news"))
q("publish", pub:publish("news", "hello"))
q("message", sub:read_reply())
q("publish", pub:publish("news", "world"))
q("publish other", pub:publish("sport", "ignored"))
q("message", sub:read_reply())
q("keepalive while subscribed", sub:set_keepalive())
q("psubscribe", sub:psubscribe("ne*"))
q("publish", pub:publish("news", "both"))
q("message", sub:read_reply())
q("pmessage", sub:read_reply())
q("punsubscribe", sub:punsubscribe("ne*"))
-- a read that times out: nil, "timeout" (the library closes nothing)
sub:set_timeout(100)
ngx.update_time()
local t0 = ngx.now()
q("read_reply idle", sub:read_reply())
ngx.update_time()
local dt = ngx.now() - t0
p("waited about 0.1s", dt >= 0.09, dt < 1)
sub:set_timeout(2000)
q("unsubscribe", sub:unsubscribe("news"))
q("read_reply after unsubscribe", sub:read_reply())
q("usable again", sub:ping())
q("keepalive", sub:set_keepalive())

-- a subscriber in a light thread, the publisher in the entry thread
local th = ngx.thread.spawn(function()
    local s = conn()
    local r = nn(s:subscribe("chan"))
    local msgs = {}
    for i = 1, 3 do
        local m, err = s:read_reply()
        msgs[#msgs + 1] = nn(m) or err
        if m and m[3] == "stop" then break end
    end
    s:close()
    return r, msgs
end)
local n
for _ = 1, 200 do
    n = pub:publish("chan", "first")
    if n == 1 then break end
    ngx.sleep(0.005)
end
p("subscriber ready", n)
q("publish", pub:publish("chan", "second"))
q("publish", pub:publish("chan", "stop"))
q("thread", ngx.thread.wait(th))

-- two subscribers in two light threads, one publish reaches both
local got = {}
local function listener(name)
    local s = conn()
    s:subscribe("fan")
    local m = s:read_reply()
    got[#got + 1] = name .. ":" .. tostring(m and m[3])
    s:close()
    return true
end
local t1 = ngx.thread.spawn(listener, "one")
local t2 = ngx.thread.spawn(listener, "two")
for _ = 1, 200 do
    n = pub:publish("fan", "to all")
    if n == 2 then break end
    ngx.sleep(0.005)
end
p("both subscribed", n)
ngx.thread.wait(t1)
ngx.thread.wait(t2)
table.sort(got)
p("fan out", table.concat(got, " "))
pub:close()

-- BLPOP on an empty list with a 100 ms socket timeout: "timeout"
local b = conn()
q("del", b:del("emptylist"))
b:set_timeout(100)
ngx.update_time()
t0 = ngx.now()
q("blpop", b:blpop("emptylist", 1))
ngx.update_time()
dt = ngx.now() - t0
p("blpop waited about 0.1s", dt >= 0.09, dt < 0.9)
q("close", b:close())
done()
'''

REDIS_PUBSUB_EXPECTED = [
    'read_reply before subscribe nil not subscribed',
    'subscribe {1="subscribe",2="news",3=1}',
    'publish 1',
    'message {1="message",2="news",3="hello"} nil',
    'publish 1',
    'publish other 0',
    'message {1="message",2="news",3="world"} nil',
    'keepalive while subscribed nil subscribed state',
    'psubscribe {1="psubscribe",2="ne*",3=2}',
    'publish 2',
    'message {1="message",2="news",3="both"} nil',
    'pmessage {1="pmessage",2="ne*",3="news",4="both"} nil',
    'punsubscribe {1="punsubscribe",2="ne*",3=1} nil',
    'read_reply idle nil timeout',
    'waited about 0.1s true true',
    'unsubscribe {1="unsubscribe",2="news",3=0} nil',
    'read_reply after unsubscribe nil not subscribed',
    'usable again PONG',
    'keepalive 1',
    'subscriber ready 1',
    'publish 1',
    'publish 1',
    'thread true {1="subscribe",2="chan",3=1} {1={1="message",2="chan",'
    '3="first"},2={1="message",2="chan",3="second"},3={1="message",'
    '2="chan",3="stop"}}',
    'both subscribed 2',
    'fan out one:to all two:to all',
    'del 0',
    'blpop nil timeout',
    'blpop waited about 0.1s true true',
    'close nil closed',
]


def test_redis_pubsub_and_timeouts():
    r = servers.Redis()
    run({"pubsub.lua": fill(REDIS_PUBSUB, port=r.port)}, "/pubsub.lua",
        REDIS_PUBSUB_EXPECTED)


REDIS_KEEP = r'''
local redis = require "nginx.redis"
local red = redis:new()
red:set_timeout(2000)
local ok, err = red:connect("127.0.0.1", @PORT@)
if not ok then ngx.say("connect: ", err) return end
local n = red:incr("requests")
ngx.say("reused ", red:get_reused_times(), " requests ", n)
ngx.say("keepalive ", red:set_keepalive(10000, 4))
'''


def test_redis_keepalive_across_requests():
    """A connection put in the pool by one request is taken by the next:
    get_reused_times 0, 1, 2 (one worker each side)."""
    r = servers.Redis()
    g, n, _ = ref_setup({"keep.lua": fill(REDIS_KEEP, port=r.port)})

    def flow(prefix):
        r.command("DEL", "requests")
        return [ref_get(n, prefix + "/keep.lua") for _ in range(3)]
    out = ref_both(flow)
    assert out == ["reused 0 requests 1\nkeepalive 1\n",
                   "reused 1 requests 2\nkeepalive 1\n",
                   "reused 2 requests 3\nkeepalive 1\n"], out


# ---------------------------------------------------------------------------
# memcached

MEMCACHED = r'''
local memcached = require "nginx.memcached"
p("module", memcached._VERSION)
local mc = memcached:new()
q("set_timeout", mc:set_timeout(2000))
q("connect", mc:connect("127.0.0.1", @PORT@))
q("reused", mc:get_reused_times())
q("flush_all", mc:flush_all())
q("get missing", mc:get("dog"))
q("set", mc:set("dog", 32))
q("get", mc:get("dog"))
q("set flags", mc:set("cat", "meow", 600, 7))
q("get flags", mc:get("cat"))
q("set table", mc:set("list", { "a", "b", { "c" } }))
q("get table", mc:get("list"))
q("add existing", mc:add("dog", 1))
q("add new", mc:add("bird", "tweet"))
q("replace missing", mc:replace("nope", "x"))
q("replace", mc:replace("bird", "chirp"))
q("append", mc:append("bird", "!"))
q("prepend", mc:prepend("bird", "a "))
q("get", mc:get("bird"))
q("incr", mc:incr("dog", 10))
q("decr", mc:decr("dog", 2))
q("incr missing", mc:incr("nope", 1))
q("incr non-numeric", mc:incr("cat", 1))
q("multi get", mc:get({ "dog", "cat", "nope" }))
local v, flags, cas = mc:gets("dog")
q("gets", v, flags, type(cas))
q("cas", mc:cas("dog", "100", cas))
q("cas stale", mc:cas("dog", "200", cas))
q("get", mc:get("dog"))
q("touch", mc:touch("dog", 600))
q("touch missing", mc:touch("nope", 600))
q("delete", mc:delete("dog"))
q("delete missing", mc:delete("dog"))
q("get deleted", mc:get("dog"))
q("binary", mc:set("bin", "a\0b\r\nEND\r\nc"))
local b = mc:get("bin")
q("binary back", #b, b == "a\0b\r\nEND\r\nc")
q("big", mc:set("big", string.rep("x", 100000)))
local big = mc:get("big")
q("big back", #big, big == string.rep("x", 100000))
q("version", type(mc:version()))
q("flush_all", mc:flush_all())
q("get after flush", mc:get("cat"))
q("keepalive", mc:set_keepalive(10000, 10))
q("get after keepalive", mc:get("cat"))
local mc2 = memcached:new()
mc2:set_timeout(2000)
q("connect again", mc2:connect("127.0.0.1", @PORT@))
q("reused", mc2:get_reused_times())
q("set via reused", mc2:set("dog", "again"))
q("get via reused", mc2:get("dog"))
q("quit", mc2:quit())
q("close", mc2:close())
done()
'''

MEMCACHED_EXPECTED = [
    'module 0.13',
    'set_timeout 1',
    'connect 1',
    'reused 0',
    'flush_all 1',
    'get missing nil nil nil',
    'set 1',
    'get 32 0',
    'set flags 1',
    'get flags meow 7',
    'set table 1',
    'get table abc 0',
    'add existing nil NOT_STORED',
    'add new 1',
    'replace missing nil NOT_STORED',
    'replace 1',
    'append 1',
    'prepend 1',
    'get a chirp! 0',
    'incr 42',
    'decr 40',
    'incr missing nil NOT_FOUND',
    'incr non-numeric nil CLIENT_ERROR cannot increment or decrement'
    ' non-numeric value',
    'multi get {"cat"={1="meow",2="7"},"dog"={1="40",2="0"}}',
    'gets 40 0 string',
    'cas 1',
    'cas stale nil EXISTS',
    'get 100 0',
    'touch 1',
    'touch missing nil NOT_FOUND',
    'delete 1',
    'delete missing nil NOT_FOUND',
    'get deleted nil nil nil',
    'binary 1',
    'binary back 11 true',
    'big 1',
    'big back 100000 true',
    'version string',
    'flush_all 1',
    'get after flush nil nil nil',
    'keepalive 1',
    'get after keepalive nil nil closed',
    'connect again 1',
    'reused 1',
    'set via reused 1',
    'get via reused again 0',
    'quit 1',
    'close 1',
]


MEMCACHED_KEEP = r'''
local memcached = require "nginx.memcached"
local mc = memcached:new()
mc:set_timeout(2000)
local ok, err = mc:connect("127.0.0.1", @PORT@)
if not ok then ngx.say("connect: ", err) return end
local n = mc:incr("requests", 1)
ngx.say("reused ", mc:get_reused_times(), " requests ", n)
ngx.say("keepalive ", mc:set_keepalive(10000, 4))
'''


def test_memcached():
    m = servers.Memcached()
    g, n, _ = run({"mc.lua": fill(MEMCACHED, port=m.port),
                   "keep.lua": fill(MEMCACHED_KEEP, port=m.port),
                   "init.lua": fill(r'''
local mc = require("nginx.memcached"):new()
mc:connect("127.0.0.1", @PORT@)
ngx.say(mc:set("requests", 0))
mc:close()''', port=m.port)},
                  "/mc.lua", MEMCACHED_EXPECTED)

    def flow(prefix):
        assert ref_get(n, prefix + "/init.lua") == "1\n"
        return [ref_get(n, prefix + "/keep.lua") for _ in range(3)]
    out = ref_both(flow)
    # mc.lua's pooled connection was taken and quit, init.lua closes
    # its own: the first keep.lua connects anew
    assert out == ["reused 0 requests 1\nkeepalive 1\n",
                   "reused 1 requests 2\nkeepalive 1\n",
                   "reused 2 requests 3\nkeepalive 1\n"], out


# ---------------------------------------------------------------------------
# DNS: nginx.dns.resolver over UDP (and TCP) cosockets, and
# tcpsock:connect by name through the `resolver` directive

HOSTS = {
    "db.golapis.test": "127.0.0.1",
    "multi.golapis.test": "127.0.0.2",
    "web.golapis.test": "127.0.0.5",
}
# enough A records that the UDP answer is truncated (over 512 bytes)
BIG = ["127.0.1.%d" % i for i in range(1, 61)]


def dns_server():
    hosts = dict(HOSTS)
    d = servers.Dnsmasq(hosts, ttl=30)
    # extra addresses for one name: more lines of the hosts file
    with open(d.hosts_file, "a") as f:
        f.write("127.0.0.3 multi.golapis.test\n")
        for a in BIG:
            f.write("%s big.golapis.test\n" % a)
    d.close()
    d.start()
    return d


RESOLVER = r'''
local resolver = require "nginx.dns.resolver"
p("module", resolver._VERSION)
local function show_answers(what, ans, err)
    if not ans then
        p(what, "error", (tostring(err):gsub(":@SILENT@:", ":SILENT:")))
        return
    end
    p(what, "errcode", ans.errcode, ans.errstr, "answers", #ans)
    local lines = {}
    for _, a in ipairs(ans) do
        lines[#lines + 1] = table.concat({ a.name, a.type, a.class,
            a.address or a.ptrdname or a.cname or "?", a.ttl, a.section }, " ")
    end
    table.sort(lines)
    for i = 1, math.min(#lines, 3) do p("", lines[i]) end
end

local r, err = resolver:new{ nameservers = { { "127.0.0.1", @DNS@ } },
                             retrans = 2, timeout = 2000 }
p("new", type(r), err)
show_answers("A db", r:query("db.golapis.test", { qtype = r.TYPE_A }))
show_answers("A default qtype", r:query("web.golapis.test"))
show_answers("A multi", r:query("multi.golapis.test", { qtype = r.TYPE_A }))
show_answers("AAAA db (no data)",
             r:query("db.golapis.test", { qtype = r.TYPE_AAAA }))
show_answers("A missing (NXDOMAIN)",
             r:query("nope.golapis.test", { qtype = r.TYPE_A }))
show_answers("A db over tcp",
             r:tcp_query("db.golapis.test", { qtype = r.TYPE_A }))
show_answers("A missing over tcp",
             r:tcp_query("nope.golapis.test", { qtype = r.TYPE_A }))
-- 60 A records: the UDP answer is truncated, the library asks again
-- over TCP
local ans, err = r:query("big.golapis.test", { qtype = r.TYPE_A })
local addrs = {}
for _, a in ipairs(ans or {}) do addrs[#addrs + 1] = a.address end
table.sort(addrs)
p("A big (truncated, then tcp)", err, #addrs, addrs[1], addrs[#addrs])
show_answers("PTR", r:reverse_query("127.0.0.1"))

-- a name server that never answers: 2 tries of 100 ms
local s = resolver:new{ nameservers = { { "127.0.0.1", @SILENT@ } },
                        retrans = 2, timeout = 100 }
ngx.update_time()
local t0 = ngx.now()
show_answers("silent server", s:query("db.golapis.test"))
ngx.update_time()
local dt = ngx.now() - t0
p("waited about 0.2s", dt >= 0.18, dt < 1.5)
-- the second server answers: the library takes turns (cur), so one of
-- the two queries goes to the silent one first
local two = resolver:new{ nameservers = { { "127.0.0.1", @SILENT@ },
                                          { "127.0.0.1", @DNS@ } },
                          retrans = 4, timeout = 100 }
for i = 1, 2 do
    show_answers("two servers " .. i,
                 two:query("db.golapis.test", { qtype = two.TYPE_A }))
end
done()
'''

RESOLVER_EXPECTED = [
    'module 0.20',
    'new table nil',
    'A db errcode nil nil answers 1',
    ' db.golapis.test 1 1 127.0.0.1 30 1',
    'A default qtype errcode nil nil answers 1',
    ' web.golapis.test 1 1 127.0.0.5 30 1',
    'A multi errcode nil nil answers 2',
    ' multi.golapis.test 1 1 127.0.0.2 30 1',
    ' multi.golapis.test 1 1 127.0.0.3 30 1',
    'AAAA db (no data) errcode nil nil answers 0',
    'A missing (NXDOMAIN) errcode 3 name error answers 0',
    'A db over tcp errcode nil nil answers 1',
    ' db.golapis.test 1 1 127.0.0.1 30 1',
    'A missing over tcp errcode 3 name error answers 0',
    'A big (truncated, then tcp) nil 60 127.0.1.1 127.0.1.9',
    'PTR errcode nil nil answers 1',
    ' 1.0.0.127.in-addr.arpa 12 1 db.golapis.test 30 1',
    'silent server error failed to receive reply from UDP server'
    ' 127.0.0.1:SILENT: timeout',
    'waited about 0.2s true true',
    'two servers 1 errcode nil nil answers 1',
    ' db.golapis.test 1 1 127.0.0.1 30 1',
    'two servers 2 errcode nil nil answers 1',
    ' db.golapis.test 1 1 127.0.0.1 30 1',
]


def test_dns_resolver_library():
    d = dns_server()
    silent = servers.SilentUdp()
    run({"dns.lua": fill(RESOLVER, dns=d.port, silent=silent.port)},
        "/dns.lua", RESOLVER_EXPECTED)


CONNECT_BY_NAME = r'''
local redis = require "nginx.redis"
local sock = ngx.socket.tcp()
sock:settimeout(2000)
q("connect db.golapis.test", sock:connect("db.golapis.test", @PORT@))
q("send", sock:send("PING\r\n"))
q("receive", sock:receive())
q("keepalive", sock:setkeepalive())
local again = ngx.socket.tcp()
q("connect again", again:connect("db.golapis.test", @PORT@))
q("reused (pool named after host:port)", again:getreusedtimes())
again:close()
local red = redis:new()
red:set_timeout(2000)
q("redis by name", red:connect("db.golapis.test", @PORT@))
q("redis ping", red:ping())
red:close()
-- 127.0.0.5 (web.golapis.test) has nothing listening: refused
local s = ngx.socket.tcp()
s:settimeout(2000)
q("connect web.golapis.test", s:connect("web.golapis.test", @PORT@))
local s2 = ngx.socket.tcp()
s2:settimeout(2000)
q("connect nope.golapis.test", s2:connect("nope.golapis.test", @PORT@))
q("send after failure", s2:send("x"))
local s3 = ngx.socket.tcp()
s3:settimeout(2000)
q("connect an IP", s3:connect("127.0.0.1", @PORT@))
s3:close()
local u = ngx.socket.udp()
q("udp setpeername by name", u:setpeername("db.golapis.test", @DNS@))
u:close()
local u2 = ngx.socket.udp()
q("udp setpeername missing", u2:setpeername("nope.golapis.test", @DNS@))
done()
'''

CONNECT_BY_NAME_EXPECTED = [
    'connect db.golapis.test 1',
    'send 6',
    'receive +PONG',
    'keepalive 1',
    'connect again 1',
    'reused (pool named after host:port) 1',
    'redis by name 1',
    'redis ping PONG',
    'connect web.golapis.test nil connection refused',
    'connect nope.golapis.test nil nope.golapis.test could not be resolved'
    ' (3: Host not found)',
    'send after failure nil closed',
    'connect an IP 1',
    'udp setpeername by name 1',
    'udp setpeername missing nil nope.golapis.test could not be resolved'
    ' (3: Host not found)',
]


def test_connect_by_name_with_resolver():
    """tcpsock:connect and udpsock:setpeername by name with `resolver
    127.0.0.1:PORT;` in both configurations (golapis: its conf; nginx:
    http{})."""
    d = dns_server()
    r = servers.Redis()
    line = "resolver 127.0.0.1:%d;" % d.port
    run({"byname.lua": fill(CONNECT_BY_NAME, port=r.port, dns=d.port)},
        "/byname.lua", CONNECT_BY_NAME_EXPECTED, conf=line, http=line)


NO_RESOLVER = r'''
local sock = ngx.socket.tcp()
sock:settimeout(2000)
local ok, err = sock:connect("localhost", @PORT@)
p("connect localhost", ok, err)
if ok then
    p("send", sock:send("PING\r\n"))
    p("receive", sock:receive())
    sock:close()
end
local s2 = ngx.socket.tcp()
s2:settimeout(2000)
p("connect no.such.host.invalid", s2:connect("no.such.host.invalid", @PORT@))
done()
'''


def test_connect_localhost_without_resolver():
    """No `resolver` line: OpenResty cannot connect to a name at all;
    golapis resolves from /etc/hosts and /etc/resolv.conf by default (a
    deliberate difference, so each side is checked against its own
    expectation)."""
    r = servers.Redis()
    g, n, _ = ref_setup({"local.lua": fill(NO_RESOLVER, port=r.port)})
    st, _, body = n.get("/ref/local.lua")
    assert st == 200, (st, body)
    assert body.decode().splitlines() == [
        'connect localhost nil no resolver defined to resolve "localhost"',
        'connect no.such.host.invalid nil no resolver defined to resolve'
        ' "no.such.host.invalid"',
    ], body
    if REF_ONLY:
        return
    st, _, body = n.get("/local.lua")
    assert st == 200, (st, body, g.tail())
    lines = body.decode().splitlines()
    assert lines[:3] == ['connect localhost 1 nil', 'send 6',
                         'receive +PONG'], (lines, g.tail())
    # .invalid never resolves (RFC 6761); the message is golapis's own
    assert len(lines) == 4 and lines[3].startswith(
        "connect no.such.host.invalid nil no.such.host.invalid could not"
        " be resolved"), lines


# ---------------------------------------------------------------------------
# websocket client against nginx.websocket.server in nginx's lua module

WEBSOCKET = r'''
local client = require "nginx.websocket.client"
p("module", client._VERSION)
local wb, err = client:new{ timeout = 2000, max_payload_len = 100000 }
p("new", type(wb), err)
local uri = "ws://127.0.0.1:@WS@/echo"
q("connect", wb:connect(uri))
q("send_text", wb:send_text("hello"))
q("recv", wb:recv_frame())
q("send_binary", wb:send_binary("\0\1\2\255"))
local data, typ, err = wb:recv_frame()
q("recv binary", data == "\0\1\2\255", typ, err)
local big = string.rep("0123456789", 7000)
q("send 70000 bytes", wb:send_text(big))
data, typ, err = wb:recv_frame()
q("recv 70000 bytes", data and #data, data == "echo: " .. big, typ, err)
q("send_ping", wb:send_ping("are you there"))
q("pong", wb:recv_frame())
-- a read timeout is not fatal
q("set_timeout", wb:set_timeout(100))
q("recv idle", wb:recv_frame())
wb:set_timeout(2000)
q("send after timeout", wb:send_text("still here"))
q("recv", wb:recv_frame())
-- the pool: a connection taken again skips the HTTP handshake
q("set_keepalive", wb:set_keepalive(10000, 4))
local wb2 = client:new{ timeout = 2000 }
q("connect again", wb2:connect(uri))
q("reused", wb2.sock:getreusedtimes())
q("send on reused", wb2:send_text("reused"))
q("recv on reused", wb2:recv_frame())
q("close", wb2:close())
q("recv after close", wb2:recv_frame())
-- a fresh connection, and the server's answer to a close frame
local wb3 = client:new{ timeout = 2000 }
q("connect", wb3:connect(uri))
q("reused", wb3.sock:getreusedtimes())
q("send close frame", wb3:send_text("last"))
q("recv", wb3:recv_frame())
-- no such path: the handshake fails (nginx answers 404 and the library
-- only checks the status line's protocol)
local bad = client:new{ timeout = 2000 }
q("bad uri", bad:connect("http://127.0.0.1:@WS@/echo"))
q("closed port", bad:connect("ws://127.0.0.1:@CLOSED@/echo"))
done()
'''

WEBSOCKET_EXPECTED = [
    'module 0.08',
    'new table nil',
    'connect 1',
    'send_text 11 nil',
    'recv echo: hello text nil',
    'send_binary 10 nil',
    'recv binary true binary nil',
    'send 70000 bytes 70014 nil',
    'recv 70000 bytes 70006 true text nil',
    'send_ping 19 nil',
    'pong are you there pong nil',
    'set_timeout',
    'recv idle nil nil failed to receive the first 2 bytes: timeout',
    'send after timeout 16 nil',
    'recv echo: still here text nil',
    'set_keepalive 1',
    'connect again 1',
    'reused 1',
    'send on reused 12 nil',
    'recv on reused echo: reused text nil',
    'close 1',
    'recv after close nil nil failed to receive the first 2 bytes: closed',
    'connect 1',
    'reused 0',
    'send close frame 10 nil',
    'recv echo: last text nil',
    'bad uri nil bad websocket uri',
    'closed port nil failed to connect: connection refused',
]


def test_websocket_client():
    ws = servers.WsEcho()
    run({"ws.lua": fill(WEBSOCKET, ws=ws.port,
                        closed=servers.free_port())},
        "/ws.lua", WEBSOCKET_EXPECTED)


for _f in (test_redis_commands, test_redis_pubsub_and_timeouts,
           test_redis_keepalive_across_requests, test_memcached,
           test_dns_resolver_library, test_connect_by_name_with_resolver,
           test_connect_localhost_without_resolver, test_websocket_client):
    _f.TIMEOUT = 30
