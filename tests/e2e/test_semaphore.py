"""ngx.semaphore (lua-resty-core's lib/ngx/semaphore.lua on the real
lua-nginx-module 0.10.23): new, post, wait, count, their argument errors,
the wait queue (FIFO, waking after the poster yields, waiters of other
requests, of timers, of user coroutines, waiters that go away), and the
contexts where wait is not allowed.  Differential: each script runs under
golapis (/NAME.lua) and under nginx (/ref/NAME.lua) and both must print
the same lines; the multi-request cases run the same sequence of requests
against both and compare every answer.

What upstream does that a reimplementation might not:
- ngx.timer.* are not needed here except as posters and waiters;
- wait(0) returns nil, "timeout" but a wait that timed out after
  yielding returns false, "timeout";
- post() only adds to the count and queues the wake-up: the waiters run
  after the poster yields, and a wait(0) right after a post, while others
  still queue, does not jump the queue (nil, "timeout");
- count() is the resources minus the waiters, so negative while they wait
  and still counting a waiter that was posted for but not yet resumed;
- errors raised inside lua-resty-core carry its file's position
  (/usr/share/lua/5.1/ngx/semaphore.lua:NNN:): the scripts drop the
  position of any file outside the docroot (m() below), so golapis may
  raise them with no position; positions in the script itself stay.

GL_REF_ONLY=1 checks only the nginx side (no golapis started), to try the
expectations against lua-nginx-module.
"""

import os
import socket
import threading
import time

from harness import NORM_POSITION, ref_both, ref_get, ref_lines, ref_setup

SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

# error messages: the position of a file outside the docroot dropped
NORM = NORM_POSITION + r'''
local function try(f, ...)
    local r = { pcall(f, ...) }
    for i = 2, table.maxn(r) do r[i] = m(r[i]) end
    return unpack(r, 1, table.maxn(r))
end
'''


def setup(files, conf="", http=""):
    return ref_setup(files, conf, http, prelude=NORM)


lines = ref_lines
get = ref_get
both = ref_both


# ---------------------------------------------------------------------------
# the API: module, new, post, wait, count, argument errors

API = r'''
local sema = require "ngx.semaphore"
local keys = {}
for k, v in pairs(sema) do keys[#keys + 1] = k .. ":" .. type(v) end
table.sort(keys)
p("module", table.concat(keys, " "))
p("version", sema.version)
p("same module", require("ngx.semaphore") == sema)

local s = sema.new()
p("new()", type(s), s:count())
p("methods from the module", getmetatable(s).__index == sema,
  s.wait == sema.wait, s.post == sema.post, s.count == sema.count)
p("two instances", sema.new() ~= sema.new(),
  getmetatable(sema.new()) == getmetatable(s))
p("new(3)", sema.new(3):count())
p("new('2')", sema.new("2"):count())
p("new(1.5)", sema.new(1.5):count())
p("new('x')", sema.new("x"):count())
p("new(nil)", sema.new(nil):count())
p("new(0)", sema.new(0):count())
p("new(-1) pcall", try(sema.new, -1))
p("new(-1) from here", try(function() local x = sema.new(-1) return x end))
p("new(-0.5)", try(function() local x = sema.new(-0.5) return x end))

p("post", s:post(), s:count())
p("post(2)", s:post(2), s:count())
p("post('3')", s:post("3"), s:count())
p("post('x')", s:post("x"), s:count())
p("post(1.5)", s:post(1.5), s:count())
p("post(0)", try(s.post, s, 0))
p("post(-1) from here", try(function() local x = s:post(-1) return x end))
p("post(0.5)", try(function() local x = s:post(0.5) return x end))
p("count", s:count())

p("wait(0)", s:wait(0))
p("count", s:count())
p("wait(1)", s:wait(1))
p("wait('0')", s:wait("0"))
p("wait(0.0001)", s:wait(0.0001))
p("count", s:count())
p("wait(-1)", try(function() local x = s:wait(-1) return x end))
p("wait(nil)", try(function() local x = s:wait() return x end))
p("wait('x')", try(function() local x = s:wait("x") return x end))
p("count", s:count())
for i = 1, 10 do
    local ok, err = s:wait(0)
    if not ok then p("drained after", i - 1, ok, err, s:count()) break end
end

local t0 = ngx.now()
p("wait(0.01) empty", s:wait(0.01))
ngx.update_time()
p("waited", ngx.now() - t0 >= 0.009, s:count())
p("wait(0.0001) empty", s:wait(0.0001))

-- not a semaphore
p("post()", try(function() local x = s.post() return x end))
p("post({})", try(function() local x = s.post({}) return x end))
p("post({sem=1})", try(function() local x = s.post({ sem = 1 }) return x end))
p("count(1)", try(function() local x = s.count(1) return x end))
p("count()", try(s.count))
p("wait('x')", try(function() local x = s.wait("x", 0) return x end))
p("wait({})", try(s.wait, {}, 0))
p("after all", s:count())
done()
'''


def test_semaphore_api():
    g, n, _ = setup({"api.lua": API})
    out = lines(n, g, "/api.lua", min_lines=40)
    for want in ("module count:function new:function post:function "
                 "version:string wait:function",
                 "new() table 0", "methods from the module true true true "
                 "true", "new('x') 0", "new(1.5) 1",
                 "new(-1) pcall false no negative number",
                 "post(0) false positive number required",
                 "post('x') true 7", "post(1.5) true 8", "wait(0) true",
                 "wait(1) true",
                 "wait(0.01) empty false timeout",
                 "wait(0.0001) empty nil timeout",
                 "wait(nil) false attempt to perform arithmetic on a nil "
                 "value",
                 "wait({}) false not a semaphore instance",
                 "count() false not a semaphore instance",
                 "drained after 4 nil timeout 0"):
        assert want in out, (want, out)
    assert [l for l in out if l.startswith("new(-1) from here false /")
            and l.endswith(": no negative number")
            and "/api.lua:" in l], out


# ---------------------------------------------------------------------------
# the wait queue within a request: light threads, the entry thread, user
# coroutines, timers

WAITERS = r'''
local sema = require "ngx.semaphore"
local s = sema.new(0)
local function waiter(name, t)
    p(name, "waits", s:count())
    local ok, err = s:wait(t)
    p(name, "woke", ok, err, s:count())
    return name
end
local th = {}
th[1] = ngx.thread.spawn(waiter, "w1", 1)
th[2] = ngx.thread.spawn(waiter, "w2", 0.01)
th[3] = ngx.thread.spawn(waiter, "w3", 1)
th[4] = ngx.thread.spawn(waiter, "w4", 1)
p("count with 4 waiters", s:count())
p("post", s:post(), s:count())
p("wait(0) while one is queued", s:wait(0))
p("still in the poster", s:count())
ngx.sleep(0.001)
p("after yielding", s:count())
ngx.sleep(0.02)
p("after w2's timeout", s:count())
p("post(5)", s:post(5), s:count())
p("entry thread queues behind", s:wait(1))
p("after the entry's wait", s:count())
for i = 1, 4 do p("thread", i, ngx.thread.wait(th[i])) end
p("final", s:count())

-- the order of many waiters, posted one at a time
local s3 = sema.new()
local order = {}
for i = 1, 6 do
    ngx.thread.spawn(function()
        local ok = s3:wait(1)
        order[#order + 1] = i .. (ok and "" or "!")
    end)
end
for _ = 1, 3 do s3:post() ngx.sleep(0.001) end
s3:post(3)
ngx.sleep(0.001)
p("order", table.concat(order, " "), s3:count())

-- waits inside user coroutines
local s2 = sema.new(0)
local co = coroutine.create(function()
    p("co waits", s2:count())
    local ok, err = s2:wait(1)
    p("co woke", ok, err)
    coroutine.yield("y")
    return "ret"
end)
ngx.timer.at(0.005, function() s2:post() end)
p("resume", coroutine.resume(co))
p("status", coroutine.status(co))
p("resume again", coroutine.resume(co))
local w = coroutine.wrap(function() return s2:wait(0.005) end)
p("wrap times out", w())

-- a killed waiter leaves the queue
local t = ngx.thread.spawn(function()
    p("t waits")
    local ok, err = s2:wait(1)
    p("t woke (not reached)", ok, err)
end)
p("count before kill", s2:count())
p("kill", ngx.thread.kill(t))
p("count after kill", s2:count())
s2:post()
p("count after post", s2:count())
ngx.sleep(0.001)
p("count later", s2:count())
p("taken", s2:wait(0), s2:count())

-- killed after the post that was meant for it: the resource stays
local t2 = ngx.thread.spawn(function()
    s2:wait(1)
    p("t2 woke (not reached)")
end)
p("count t2", s2:count())
s2:post()
p("count t2 posted", s2:count())
p("kill t2", ngx.thread.kill(t2))
ngx.sleep(0.001)
p("count after kill t2", s2:count())
done()
'''

# the request waits for a timer's post, then a timer waits for the
# request's post
TIMERS = r'''
local sema = require "ngx.semaphore"
local s = sema.new(0)
p("timer", ngx.timer.at(0.005, function(premature)
    p("timer posts", premature, s:count())
    p("timer post", s:post(2))
    p("timer after post", s:count())
end))
p("request waits", s:wait(1))
p("request woke", s:count(), s:wait(0), s:count())

local s2 = sema.new()
local got = {}
ngx.timer.at(0, function()
    got[#got + 1] = "timer waits " .. s2:count()
    local ok, err = s2:wait(1)
    got[#got + 1] = "timer woke " .. tostring(ok) .. " " .. tostring(err)
    ok, err = s2:wait(0.001)
    got[#got + 1] = "timer waits again " .. tostring(ok) .. " "
                    .. tostring(err)
    ok, err = s2:wait(0)
    got[#got + 1] = "timer wait(0) " .. tostring(ok) .. " " .. tostring(err)
    s:post()
end)
for _ = 1, 100 do
    if s2:count() < 0 then break end
    ngx.sleep(0.001)
end
p("request sees", s2:count())
p("request posts", s2:post())
p("request waits for the timer", s:wait(1))
for _, l in ipairs(got) do p(l) end
done()
'''


def test_semaphore_wait_queue():
    g, n, _ = setup({"waiters.lua": WAITERS})
    out = lines(n, g, "/waiters.lua", min_lines=40)
    for want in ("count with 4 waiters -4", "post true -3",
                 "wait(0) while one is queued nil timeout",
                 "still in the poster -3", "w1 woke true nil -3",
                 "w2 woke false timeout -2", "post(5) true 3",
                 "entry thread queues behind true nil",
                 "order 1 2 3 4 5 6 0", "co woke true nil",
                 "resume true y", "wrap times out false timeout",
                 "kill 1", "count after kill 0", "count later 1",
                 "count after kill t2 1"):
        assert want in out, (want, out)
    # the waiters woke after the poster's "still in the poster" line
    assert out.index("w1 woke true nil -3") > \
        out.index("still in the poster -3"), out
    assert out.index("w3 woke true nil 2") < out.index("w4 woke true nil 2") \
        < out.index("entry thread queues behind true nil"), out
    assert "t woke (not reached)" not in "\n".join(out), out


def test_semaphore_with_timers():
    g, n, _ = setup({"timers.lua": TIMERS})
    out = lines(n, g, "/timers.lua", min_lines=10)
    assert out[:8] == [
        "timer 1", "timer posts false -1", "timer post true",
        "timer after post 1", "request waits true nil",
        "request woke 1 true 0", "request sees -1", "request posts true"], \
        out
    assert "timer waits again false timeout" in out, out
    assert "timer wait(0) nil timeout" in out, out


# a semaphore nothing refers to but its waiter: the waiting call holds it,
# so a garbage collection meanwhile does not free it under the waiter

GC = r'''
local sema = require "ngx.semaphore"
local t = ngx.thread.spawn(function()
    return sema.new(0):wait(0.05)
end)
for _ = 1, 5 do collectgarbage("collect") end
p("gc wait", ngx.thread.wait(t))
done()
'''


def test_semaphore_collected_while_waited():
    g, n, _ = setup({"gc.lua": GC})
    out = lines(n, g, "/gc.lua", min_lines=0)
    assert out[:1] == ["gc wait true false timeout"], out
    if g is not None:
        assert "collected while" not in g.log(), g.tail()


# ---------------------------------------------------------------------------
# waiters of other requests

XWAIT = r'''
local s = package.loaded.xsema
if not s then
    s = require("ngx.semaphore").new(0)
    package.loaded.xsema = s
    package.loaded.xorder = {}
end
local name = ngx.var.arg_name
p(name, "waits", s:count())
local ok, err = s:wait(5)
table.insert(package.loaded.xorder, name)
p(name, "woke", ok, err, "position", #package.loaded.xorder)
done()
'''

# until the count is ?want (a bounded poll), then ?post posts
XPROBE = r'''
local want = tonumber(ngx.var.arg_want)
local s
for _ = 1, 400 do
    s = package.loaded.xsema
    if s and s:count() == want then break end
    ngx.sleep(0.005)
end
p("count", s and s:count())
if ngx.var.arg_post then
    for i = 1, tonumber(ngx.var.arg_post) do
        p("post", s:post(), s:count())
        ngx.sleep(0.005)
        p("after yielding", s:count(),
          table.concat(package.loaded.xorder, " "))
    end
end
done()
'''


def test_semaphore_across_requests():
    g, n, _ = setup({"xwait.lua": XWAIT, "xprobe.lua": XPROBE})

    def fetch(res, name, path):
        try:
            res[name] = get(n, path)
        except Exception as e:
            res[name] = repr(e)

    def flow(prefix):
        res = {}
        threads = []
        out = []
        for i, name in enumerate(("r1", "r2", "r3")):
            path = "%s/xwait.lua?name=%s" % (prefix, name)
            t = threading.Thread(target=fetch, args=(res, name, path))
            t.start()
            threads.append(t)
            # queued in this order: the next starts once this one waits
            out.append(get(n, "%s/xprobe.lua?want=%d" % (prefix, -(i + 1))))
        out.append(get(n, "%s/xprobe.lua?want=-3&post=3" % prefix))
        for t in threads:
            t.join(20)
        return out + [res.get(k) for k in ("r1", "r2", "r3")]

    ref = both(flow)
    assert ref[:3] == ["count -1\n", "count -2\n", "count -3\n"], ref
    assert ref[3].split("\n")[:3] == [
        "count -3", "post true -2", "after yielding -2 r1"], ref
    assert ref[4:] == ["r1 waits 0\nr1 woke true nil position 1\n",
                       "r2 waits -1\nr2 woke true nil position 2\n",
                       "r3 waits -2\nr3 woke true nil position 3\n"], ref


# a waiter whose request goes away leaves the queue: a request that ends
# (ngx.exit) while a light thread waits, and a request whose client
# closes the connection (lua_check_client_abort on, for both: without it
# the request would go on to its end)

AWAIT = r'''
local s = package.loaded.asema
if not s then
    s = require("ngx.semaphore").new(0)
    package.loaded.asema = s
end
ngx.print("waiting\n")
ngx.flush(true)
local ok, err = s:wait(3)
package.loaded.awoke = true
ngx.say("woke ", tostring(ok), " ", tostring(err))
'''

AEXIT = r'''
local s = package.loaded.asema
if not s then
    s = require("ngx.semaphore").new(0)
    package.loaded.asema = s
end
ngx.thread.spawn(function()
    s:wait(3)
    package.loaded.awoke = true
end)
p("exits with a waiting thread", s:count())
done()
ngx.exit(200)
'''

APROBE = r'''
local want = tonumber(ngx.var.arg_want)
local s = package.loaded.asema
for _ = 1, 400 do
    if s:count() == want then break end
    ngx.sleep(0.005)
end
p("count", s:count())
if ngx.var.arg_post then
    p("post", s:post(), s:count(), s:wait(0), s:count())
end
p("woke", package.loaded.awoke)
done()
'''


def test_semaphore_waiter_of_ended_request():
    g, n, _ = setup({"await.lua": AWAIT, "aexit.lua": AEXIT,
                     "aprobe.lua": APROBE},
                    conf="lua_check_client_abort on;",
                    http="lua_check_client_abort on;")

    def flow(prefix):
        out = [get(n, prefix + "/aexit.lua"),
               get(n, prefix + "/aprobe.lua?want=0")]
        s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
        try:
            s.sendall(("GET %s/await.lua HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       % prefix).encode())
            out.append(get(n, prefix + "/aprobe.lua?want=-1"))
        finally:
            s.close()
        t0 = time.monotonic()
        out.append(get(n, prefix + "/aprobe.lua?want=0&post=1"))
        # removed when the connection closed, not when its wait timed out
        assert time.monotonic() - t0 < 1.5 * SLACK, (prefix, out)
        return out

    ref = both(flow)
    assert ref == ["exits with a waiting thread -1\n", "count 0\nwoke nil\n",
                   "count -1\nwoke nil\n",
                   "count 0\npost true 1 true 0\nwoke nil\n"], ref


# ---------------------------------------------------------------------------
# where wait is not allowed: init_by_lua (no request), init_worker_by_lua,
# header_filter, body_filter, log; new and post work everywhere

CTX_CONF = r'''
lua_shared_dict semctx 1m;
init_by_lua_block {
    local s = require("ngx.semaphore").new(1)
    s:post()
    local ok, err = pcall(s.wait, s, 0)
    err = tostring(err):gsub("^[^%s:]+%.lua:%d+: ", "")
    package.loaded.init_sema = { s = s, r = tostring(ok) .. " " .. err }
}
init_worker_by_lua_block {
    local s = require("ngx.semaphore").new(0)
    local r = { tostring(s:post(2)), tostring(s:count()) }
    local ok, err = s:wait(0.1)
    r[#r + 1] = tostring(ok) .. " " .. tostring(err)
    ok, err = s:wait(0)
    r[#r + 1] = tostring(ok) .. " " .. tostring(err)
    r[#r + 1] = tostring(s:count())
    ngx.shared.semctx:set("init_worker", table.concat(r, ", "))
    package.loaded.iw_sema = s
}
header_filter_by_lua_block {
    local u = ngx.var.uri
    if u:find("/ctx.lua", 1, true) then
        local s = require("ngx.semaphore").new(1)
        local ok, err = s:wait(0)
        local ok2, err2 = s:wait(0.1)
        s:post()
        ngx.shared.semctx:set(u .. ":header_filter", tostring(ok) .. " "
            .. tostring(err) .. ", " .. tostring(ok2) .. " " .. tostring(err2)
            .. ", " .. s:count())
    end
}
body_filter_by_lua_block {
    local u = ngx.var.uri
    if u:find("/ctx.lua", 1, true) and ngx.arg[2] then
        local s = require("ngx.semaphore").new(1)
        local ok, err = s:wait(0)
        ngx.shared.semctx:set(u .. ":body_filter", tostring(ok) .. " "
            .. tostring(err) .. ", " .. s:count())
    end
}
log_by_lua_block {
    local u = ngx.var.uri
    if u:find("/ctx.lua", 1, true) then
        local s = require("ngx.semaphore").new(0)
        local ok, err = s:wait(1)
        s:post(3)
        local ok2 = s:wait(0)
        ngx.shared.semctx:set(u .. ":log", tostring(ok) .. " "
            .. tostring(err) .. ", " .. tostring(ok2) .. ", " .. s:count())
    end
}
'''

CTX = r'''
-- wait is fine in the content phase
local s = require("ngx.semaphore").new(1)
ngx.say("content ", tostring(s:wait(0)), " ", tostring(s:wait(0.001)))
'''

# its own URI's keys ("/ref/ctx.lua:log" or "/ctx.lua:log"); the log
# phase runs after the answer: poll for it
CTX_READ = r'''
local d = ngx.shared.semctx
local u = ngx.var.uri:gsub("/ctx_read%.lua$", "/ctx.lua")
for _ = 1, 200 do
    if d:get(u .. ":log") then break end
    ngx.sleep(0.005)
end
p("init_by_lua", package.loaded.init_sema.r)
p("init_by_lua sema in a request", package.loaded.init_sema.s:count(),
  package.loaded.init_sema.s:wait(0))
p("init_worker_by_lua", d:get("init_worker"))
p("init_worker sema in a request", package.loaded.iw_sema:count(),
  package.loaded.iw_sema:wait(0), package.loaded.iw_sema:wait(0))
for _, k in ipairs({ "header_filter", "body_filter", "log" }) do
    p(k, d:get(u .. ":" .. k))
end
done()
'''


def test_semaphore_wait_not_allowed():
    g, n, _ = setup({"ctx.lua": CTX, "ctx_read.lua": CTX_READ},
                    conf=CTX_CONF, http=CTX_CONF)

    def flow(prefix):
        return [get(n, prefix + "/ctx.lua"),
                get(n, prefix + "/ctx_read.lua")]

    ref = both(flow)
    assert ref[0] == "content true false\n", ref
    dis = "API disabled in the context of "
    assert ref[1].split("\n") == [
        "init_by_lua false no request found",
        "init_by_lua sema in a request 2 true",
        "init_worker_by_lua true, 2, nil %sinit_worker_by_lua*, "
        "nil %sinit_worker_by_lua*, 2" % (dis, dis),
        "init_worker sema in a request 2 true true",
        "header_filter nil %sheader_filter_by_lua*, nil "
        "%sheader_filter_by_lua*, 2" % (dis, dis),
        "body_filter nil %sbody_filter_by_lua*, 1" % dis,
        "log nil %slog_by_lua*, nil, 3" % dis, ""], ref
