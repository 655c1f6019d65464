"""ngx.thread.spawn / wait / kill ("light threads"), differential against
the real lua-nginx-module 0.10.23: when a thread runs and when its parent
goes on, the order of the output of threads sleeping at the same time,
what wait and kill return (values, error strings), errors in threads and
how they are logged, ngx.exit in a thread or in the entry while threads
run, threads doing I/O (print, flush, sleep, read_body), threads and
coroutine.*, threads in the rewrite and access phases.  Each script prints
a line per case; golapis and nginx must print the same lines.
"""

import os
import re
import time

from harness import (LUA_PRELUDE, diff_lines, diff_setup, http_get,
                     norm_footer, norm_ref)

# spawn: when the thread runs, its arguments and values, its status,
# nested threads, coroutine.resume on threads, bad arguments
SPAWN = r'''
local spawn, wait = ngx.thread.spawn, ngx.thread.wait

-- the thread runs at once, with the arguments, until it ends
local function f(a, b, ...)
    p("f in", a, b, select("#", ...), ...)
    return "f ret", a
end
p("before spawn")
local t = spawn(f, 1, "two", nil, false)
p("after spawn", type(t), coroutine.status(t))
p("tostring", tostring(t):match("^thread: 0x%x+$") ~= nil)
p("spawn returns", select("#", spawn(function() end)))
p("wait f", wait(t))
p("waited", coroutine.status(t))

-- ... or until it waits: the parent goes on while it sleeps
local t2 = spawn(function(x)
    p("t2 before sleep", x)
    ngx.sleep(0.01)
    p("t2 after sleep")
    return x * 2, "t2", nil
end, 21)
p("t2 spawned", coroutine.status(t2))
p("wait t2", wait(t2))
p("t2 waited", coroutine.status(t2))

-- the thread object is the thread's own coroutine.running()
local seen
local t3 = spawn(function() seen = coroutine.running() end)
p("running", seen == t3, coroutine.status(t3))
p("entry", coroutine.status(coroutine.running()))
local t4 = spawn(function()
    p("t4 inside", coroutine.status(coroutine.running()))
    ngx.sleep(0.001)
    return "t4"
end)
p("t4 outside", coroutine.status(t4))
p("wait t4", wait(t4))

-- values: none, a table, nils, many
p("none", wait(spawn(function() end)))
local tbl = {}
local t5 = spawn(function(...) (...).n = select("#", ...); return ... end,
                 tbl, nil, nil)
local r5 = { wait(t5) }
p("table", r5[1], r5[2] == tbl, tbl.n, select("#", wait(spawn(function()
    return nil, nil, 3 end))))
p("many", wait(spawn(function() return unpack({ 1, 2, 3, 4, 5, 6, 7 }) end)))

-- two threads without waits run one after the other, each at its spawn
spawn(function() p("first") end)
p("between")
spawn(function() p("second") end)
p("after both")

-- a thread spawning a thread
local inner
local outer = spawn(function()
    p("outer start")
    inner = spawn(function()
        p("inner start")
        ngx.sleep(0.03)
        p("inner end")
        return "inner ret"
    end)
    p("outer spawned inner", coroutine.status(inner))
    local ok, v = wait(inner)
    p("outer waited inner", ok, v)
    return "outer ret"
end)
p("entry sees inner", type(inner))
ngx.sleep(0.001)
p("entry sees inner", coroutine.status(inner))
p("entry waits inner", pcall(wait, inner))
p("entry kills inner", ngx.thread.kill(inner))
p("entry waits outer", wait(outer))

-- coroutine.resume on threads: running (sleeping or yielded), zombie, dead
local ts = spawn(function() ngx.sleep(0.005); return "ts" end)
p("resume sleeping", coroutine.resume(ts))
local ty = spawn(function() coroutine.yield(); p("ty goes on"); return 1 end)
p("resume yielded", coroutine.resume(ty))
local tz = spawn(function() return "tz" end)
p("resume zombie", coroutine.resume(tz))
p("wait zombie", wait(tz))
p("resume dead", coroutine.resume(tz))
p("wait others", wait(ts), wait(ty))
p("wrap of a thread", pcall(coroutine.wrap, ts))

local keys = {}
for k, v in pairs(ngx.thread) do keys[#keys + 1] = k .. ":" .. type(v) end
table.sort(keys)
p("ngx.thread", table.concat(keys, " "))

-- spawn something that is no Lua function
p("spawn number", pcall(spawn, 1))
p("spawn nothing", pcall(spawn))
p("spawn C function", pcall(spawn, print))
p("spawn table", pcall(spawn, {}))
p("spawn string", pcall(spawn, "f"))
p("spawn called", pcall(function()
    local t = ngx.thread.spawn(nil)
    return t
end))
done()
'''

# lines straight from the threads with ngx.say: several threads sleeping at
# once, one that ends before its parent goes on, some ending after the
# entry function returned (the request ends when the last one ends)
ORDER = r'''
local function worker(name, secs)
    ngx.say(name, " start")
    ngx.sleep(secs)
    ngx.say(name, " woke")
    ngx.sleep(secs)
    ngx.say(name, " end")
end
ngx.say("entry start")
ngx.thread.spawn(worker, "c", 0.09)
ngx.thread.spawn(worker, "a", 0.02)
ngx.thread.spawn(function() ngx.say("quick") end)
ngx.thread.spawn(worker, "b", 0.06)
ngx.say("entry sleeps")
ngx.sleep(0.001)
ngx.say("entry woke")
ngx.thread.spawn(function()
    ngx.sleep(0.22)
    ngx.say("last, long after the entry returned")
end)
ngx.say("entry returns")
'''

# time slicing with coroutine.yield() in threads and in the entry
YIELD = r'''
local yield = coroutine.yield
local function f()
    ngx.say("f 1")
    yield()
    ngx.say("f 2")
    yield()
    ngx.say("f 3")
end
local function g()
    ngx.say("g 1")
    yield()
    ngx.say("g 2")
    yield()
    ngx.say("g 3")
end
ngx.say("0")
yield()
ngx.say("1")
ngx.thread.spawn(f)
ngx.say("2")
yield()
ngx.say("3")
ngx.thread.spawn(g)
ngx.say("4")
yield()
ngx.say("5")
yield()
ngx.say("6")
'''

# two threads taking turns, the entry returning in between (the values
# given to coroutine.yield are ignored)
YIELD2 = r'''
local function f(name)
    ngx.say(name, " 1")
    coroutine.yield(coroutine.running())
    ngx.say(name, " 2")
    coroutine.yield("ignored", 1, 2)
    ngx.say(name, " 3")
    return name
end
local tf = ngx.thread.spawn(f, "f")
local tg = ngx.thread.spawn(f, "g")
ngx.say("done")
'''

# wait: any of several, values, errors, what may not be waited on
WAIT = r'''
local spawn, wait = ngx.thread.spawn, ngx.thread.wait
local function sleeper(name, secs, ...)
    ngx.sleep(secs)
    p(name, "woke")
    return name, ...
end

-- wait on several: the first to end; the others go on
local ta = spawn(sleeper, "a", 0.05)
local tb = spawn(sleeper, "b", 0.01, "b2")
local tc = spawn(sleeper, "c", 0.03)
p("any", wait(ta, tb, tc))
p("status", coroutine.status(ta), coroutine.status(tb), coroutine.status(tc))
p("then c", wait(tc))
p("then a", wait(ta))

-- the order of the arguments does not count
local td = spawn(sleeper, "d", 0.03)
local te = spawn(sleeper, "e", 0.01)
p("any2", wait(td, te))
p("rest", wait(td))

-- waiting on an ended thread: its values at once
local tz = spawn(function() return "zombie", 1 end)
p("zombie", coroutine.status(tz))
p("wait zombie", wait(tz))
p("after", coroutine.status(tz))
p("wait again", wait(tz))
p("wait again 2", wait(tz))

-- a waited (dead) thread is skipped unless it is the last one
local tl = spawn(sleeper, "l", 0.001, "live")
p("dead first", wait(tz, tl))
p("dead last", wait(tl, tz))
p("two dead", wait(tl, tz))

-- an ended one among running ones is found first
local tr = spawn(sleeper, "r", 0.01)
local tq = spawn(function() return "q ended" end)
p("ended one", wait(tq, tr))
p("and r", wait(tr))

-- a thread that died of an error: false and the error (after values
-- that lua-nginx-module takes from the dead thread's stack: the first and
-- the last value only, but for errors raised with level 0 and non-string
-- errors)
local function first_last(...)
    local n = select("#", ...)
    return (...), (select(n, ...))
end
local te1 = spawn(function() error("boom at once") end)
p("error status", coroutine.status(te1))
p("error", first_last(wait(te1)))
local te2 = spawn(function() ngx.sleep(0.001); error("boom later", 0) end)
p("error later", wait(te2))
local te3 = spawn(function() local x; return x.field end)
p("runtime error", first_last(wait(te3)))
local te4 = spawn(function() ngx.sleep(0.001); error({ code = 42 }) end)
local ok, e = wait(te4)
p("error table", ok, type(e), e.code)
local te5 = spawn(function() ngx.sleep(0.001); error() end)
p("error nil", wait(te5))
local te6 = spawn(function() ngx.sleep(0.02); error("slow") end)
local te7 = spawn(function() ngx.sleep(0.005); error("fast", 0) end)
p("error first", wait(te6, te7))
p("error second", first_last(wait(te6)))

-- 50 spawns and waits in a row
local sum = 0
for i = 1, 50 do
    local ok, v = wait(spawn(function(x) return x * x end, i))
    sum = sum + v
end
p("sum", sum)

-- what may not be waited on
p("no args", pcall(wait))
p("no args called", pcall(function()
    local ok = ngx.thread.wait()
    return ok
end))
p("nil called", pcall(function()
    local ok = wait(nil)
    return ok
end))
p("number", pcall(wait, 1))
p("nil", pcall(wait, nil))
p("string second", pcall(wait, spawn(function() end), "x"))
p("entry", pcall(wait, coroutine.running()))
local co = coroutine.create(function() coroutine.yield() end)
coroutine.resume(co)
p("coroutine", pcall(wait, co))
local wrapped = coroutine.wrap(function() end)
p("wrap", pcall(wait, wrapped))

-- a thread spawned by a coroutine is the coroutine's child
local child
local parent = coroutine.create(function()
    child = spawn(sleeper, "child", 0.01, "of co")
    coroutine.yield("spawned")
    return wait(child)
end)
p("co", coroutine.resume(parent))
p("entry waits child", pcall(wait, child))
p("co waits child", coroutine.resume(parent))

-- a thread spawned by a sibling thread
local nephew
local sib = spawn(function()
    nephew = spawn(sleeper, "nephew", 0.01)
    ngx.sleep(0.02)
end)
local other = spawn(function()
    ngx.sleep(0.001)
    return pcall(wait, nephew)
end)
p("sibling waits", wait(other))
p("wait sib", wait(sib))
done()
'''

# kill: what it returns for threads in each state and for non-children
KILL = r'''
local spawn, wait, kill = ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill

-- a sleeping thread: killed, its output stops there
local t = spawn(function()
    p("t before sleep")
    ngx.sleep(0.02)
    p("t after sleep: must not show")
end)
p("status", coroutine.status(t))
p("kill", kill(t))
p("status killed", coroutine.status(t))
p("kill again", kill(t))
p("wait killed", wait(t))
ngx.sleep(0.04)
p("slept past it")

-- an ended thread: "already terminated", then dead
local z = spawn(function() return 1 end)
p("zombie", coroutine.status(z))
p("kill zombie", kill(z))
p("status", coroutine.status(z))
p("kill again", kill(z))
p("wait", wait(z))

-- a waited thread
local w = spawn(function() ngx.sleep(0.001); return "w" end)
p("wait w", wait(w))
p("kill waited", kill(w))

-- a thread that died of an error
local e = spawn(function() error("dead of an error") end)
p("kill errored", kill(e))

-- what is no child thread of the killer
p("kill entry", kill(coroutine.running()))
local selfkill = spawn(function() return kill(coroutine.running()) end)
p("kill itself", wait(selfkill))
local co = coroutine.create(function() coroutine.yield() end)
coroutine.resume(co)
p("kill coroutine", kill(co))
p("kill number", pcall(kill, 1))
p("kill nothing", pcall(kill))
p("kill called", pcall(function()
    local ok = ngx.thread.kill("x")
    return ok
end))
local grandchild
local child = spawn(function()
    grandchild = spawn(function() ngx.sleep(0.01); return "gc" end)
    return wait(grandchild)
end)
p("grandchild yet", type(grandchild))
ngx.sleep(0.001)
p("kill grandchild", kill(grandchild))
p("wait child", wait(child))
local cochild
local co2 = coroutine.create(function()
    cochild = spawn(function() ngx.sleep(0.01) end)
    coroutine.yield()
    p("co kills", kill(cochild))
end)
coroutine.resume(co2)
p("entry kills the coroutine's thread", kill(cochild))
coroutine.resume(co2)

-- a thread killed while it waits on its own thread: that one goes on
local waited
local waiter = spawn(function()
    waited = spawn(function()
        ngx.sleep(0.01)
        p("orphan woke")
        return "orphan"
    end)
    wait(waited)
    p("waiter: must not show")
end)
ngx.sleep(0.001)
p("kill waiter", kill(waiter), coroutine.status(waited))
ngx.sleep(0.04)
p("orphan", coroutine.status(waited), kill(waited))

-- killing one of several
local ta = spawn(function() ngx.sleep(0.01); p("a woke"); return "a" end)
local tb = spawn(function() ngx.sleep(0.005); p("b woke: must not show") end)
local tc = spawn(function() ngx.sleep(0.04); p("c woke"); return "c" end)
p("kill b", kill(tb))
p("wait", wait(ta, tb, tc))
p("wait", wait(tb, tc))
done()
'''

# a killed thread does not keep the request going, and its output never
# appears
KILL_LONG = r'''
local t = ngx.thread.spawn(function()
    ngx.say("long sleeper starts")
    ngx.sleep(3)
    ngx.say("long sleeper woke")
end)
ngx.sleep(0.01)
ngx.say("kill: ", ngx.thread.kill(t))
'''

# threads dying of errors (a string, a runtime error, a table): the entry
# and the other threads go on
ERRORS = r'''
ngx.thread.spawn(function() error("thread error at once") end)
ngx.thread.spawn(function()
    ngx.sleep(0.01)
    local x
    return x.field
end)
ngx.thread.spawn(function() error({ code = 1 }) end)
ngx.thread.spawn(function()
    ngx.sleep(0.02)
    ngx.say("a sibling goes on")
end)
ngx.say("the entry goes on")
ngx.sleep(0.005)
ngx.say("the entry returns")
'''

# a thread dying of an error is all the request does: an empty 200
ERROR_ONLY = r'''
ngx.thread.spawn(function() ngx.sleep(0.001); error("alone") end)
'''

# the entry dies of an error while threads run: a 500, the threads stop
ENTRY_ERROR = r'''
ngx.thread.spawn(function()
    ngx.sleep(0.02)
    ngx.log(ngx.ERR, "thread after the entry died: must not show")
end)
ngx.sleep(0.001)
error("entry error")
'''

# ngx.exit(0) in a thread that runs at its spawn: the entry does not go on
EXIT_AT_SPAWN = r'''
local function f()
    ngx.say("hello in thread")
    ngx.exit(0)
end
ngx.say("before")
ngx.thread.spawn(f)
ngx.say("after: must not show")
ngx.sleep(1)
ngx.say("end: must not show")
'''

# ngx.exit(ngx.OK) in a thread while the entry sleeps
EXIT_ENTRY_SLEEPS = r'''
local function f()
    ngx.say("hello in thread")
    ngx.sleep(0.01)
    ngx.exit(ngx.OK)
end
ngx.say("before")
ngx.thread.spawn(f)
ngx.say("after")
ngx.sleep(2)
ngx.say("end: must not show")
'''

# ngx.exit in a thread while another thread sleeps, the entry ended
EXIT_SIBLING = r'''
ngx.thread.spawn(function()
    ngx.sleep(0.01)
    ngx.say("f")
    ngx.exit(200)
end)
ngx.thread.spawn(function()
    ngx.sleep(2)
    ngx.say("g: must not show")
end)
ngx.say("end")
'''

# ngx.exit with a status in a thread before any output
EXIT_STATUS = r'''
ngx.thread.spawn(function()
    ngx.sleep(0.005)
    ngx.exit(ngx.HTTP_FORBIDDEN)
end)
ngx.sleep(2)
ngx.say("must not show")
'''

# the entry exits after a wait on the first of two threads
EXIT_ENTRY = r'''
local function f() ngx.sleep(2); ngx.say("f: must not show"); return "f" end
local function g() ngx.sleep(0.01); ngx.say("g: hello"); return "g" end
local tf = ngx.thread.spawn(f)
local tg = ngx.thread.spawn(g)
ngx.say("created: ", coroutine.status(tf), " ", coroutine.status(tg))
local ok, res = ngx.thread.wait(tf, tg)
ngx.say("res: ", ok, " ", res)
ngx.exit(ngx.OK)
'''

# ngx.exit(404) in the entry after a thread's output: the header is out,
# a 200 with that output
EXIT_ENTRY_CODE = r'''
ngx.thread.spawn(function() ngx.sleep(2); ngx.say("must not show") end)
ngx.thread.spawn(function() ngx.say("thread says") end)
ngx.exit(ngx.HTTP_NOT_FOUND)
'''

# ngx.exit with a status in the entry before any output, a thread sleeping
EXIT_ENTRY_404 = r'''
ngx.thread.spawn(function() ngx.sleep(2); ngx.say("must not show") end)
ngx.sleep(0.001)
ngx.exit(ngx.HTTP_NOT_FOUND)
'''

# ngx.redirect in a thread while the entry sleeps
REDIRECT = r'''
ngx.thread.spawn(function()
    ngx.sleep(0.005)
    ngx.redirect("/elsewhere", 302)
end)
ngx.sleep(2)
ngx.say("must not show")
'''

# threads doing I/O (read_body, sleep), using ngx.ctx and ngx.var;
# coroutines inside threads, threads inside coroutines
IO = r'''
local spawn, wait = ngx.thread.spawn, ngx.thread.wait

-- the request body, read in a thread
local tr = spawn(function()
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    return #data, data:sub(1, 5)
end)
p("read body", wait(tr))
p("from the entry", #ngx.req.get_body_data())

-- ngx.ctx and ngx.var are the request's
ngx.ctx.from_entry = "e"
local tv = spawn(function()
    ngx.ctx.from_thread = ngx.ctx.from_entry .. "t"
    ngx.sleep(0.001)
    return ngx.var.request_method, ngx.var.arg_a, ngx.var.http_x_test
end)
p("var", wait(tv))
p("ctx", ngx.ctx.from_thread)

-- ngx.sleep in threads: each wait is its own
ngx.update_time()
local t0 = ngx.now()
local ts = {}
for i = 1, 50 do
    ts[i] = spawn(function() ngx.sleep(0.02); return i end)
end
local got = {}
for i = 1, 50 do
    local ok, v = wait(ts[i])
    got[#got + 1] = v
end
ngx.update_time()
p("slept together", #got, got[1], got[50], ngx.now() - t0 < 0.2)

-- coroutines inside a thread: one that sleeps, a wrap generator
local tco = spawn(function()
    local c = coroutine.create(function(a)
        ngx.sleep(0.005)
        local b = coroutine.yield(a + 1)
        ngx.sleep(0.001)
        return b * 2
    end)
    local ok1, v1 = coroutine.resume(c, 1)
    local ok2, v2 = coroutine.resume(c, 5)
    local gen = coroutine.wrap(function()
        for i = 1, 3 do ngx.sleep(0.001); coroutine.yield(i) end
    end)
    return ok1, v1, ok2, v2, gen() + gen() + gen(), coroutine.status(c)
end)
p("coroutine in thread", wait(tco))

-- a thread that is "normal" while it resumes a coroutine
local tn
local other = spawn(function()
    tn = coroutine.running()
    local c = coroutine.create(function() ngx.sleep(0.005) end)
    coroutine.resume(c)
    return "resumed"
end)
p("thread resuming a coroutine", coroutine.status(tn))
p("wait it", wait(other))

-- threads spawned in a coroutine, the coroutine waits on them
local c2 = coroutine.create(function()
    local a = spawn(function() ngx.sleep(0.01); return "a" end)
    local b = spawn(function() return "b" end)
    local r = { wait(a, b) }
    local s = { wait(a) }
    return r[2], s[2]
end)
p("waits in a coroutine", coroutine.resume(c2))

-- a coroutine wrap spawning a thread that outlives it
local wrapped = coroutine.wrap(function()
    spawn(function() ngx.sleep(0.005); p("outlived its coroutine") end)
    return "wrap returned"
end)
p(wrapped())
ngx.sleep(0.03)

-- a thread in a coroutine in a thread
local deep = spawn(function()
    local c = coroutine.create(function()
        local t = spawn(function() ngx.sleep(0.001); return "deep" end)
        return wait(t)
    end)
    return coroutine.resume(c)
end)
p("deep", wait(deep))
done()
'''

# output from threads: say, print and flush(true), in an order set by sleeps
OUTPUT = r'''
ngx.thread.spawn(function()
    ngx.say("hello from f")
    ngx.flush(true)
    ngx.sleep(0.03)
    ngx.print("f printed", " ", 1, "\n")
    ngx.say("f: flush ", ngx.flush(true), " ", ngx.flush())
end)
ngx.thread.spawn(function()
    ngx.say("hello from g")
    ngx.flush(true)
    ngx.sleep(0.06)
    ngx.say("g: say ", ngx.say())
end)
ngx.say("entry")
ngx.flush(true)
ngx.sleep(0.01)
ngx.say("entry after flush")
'''

# ngx.say, ngx.print and ngx.flush(true) with the client keeping up do not
# wait in lua-nginx-module: a thread doing output goes on at once, even
# after a print longer than any buffer
OUTPUT_NO_WAIT = r'''
ngx.thread.spawn(function()
    ngx.say("hello from f")
    ngx.flush(true)
    ngx.say("f after flush")
end)
ngx.thread.spawn(function()
    ngx.say("hello from g")
    ngx.flush(true)
    ngx.say("g after flush")
end)
ngx.thread.spawn(function()
    ngx.print(string.rep("x", 400000), "\n")
    ngx.say("a after the big print")
end)
ngx.thread.spawn(function() ngx.say("b") end)
ngx.say("entry")
'''

# threads in the rewrite and access phases (golapis: daemon-level
# handlers; nginx: location = /ref/phase.lua)
REWRITE = r'''
ngx.ctx.log = {}
local function add(s) table.insert(ngx.ctx.log, s) end
local t1 = ngx.thread.spawn(function()
    add("rewrite t1 start")
    ngx.sleep(0.04)
    add("rewrite t1 end")
end)
ngx.thread.spawn(function()
    ngx.sleep(0.01)
    add("rewrite t2 end")
end)
ngx.thread.spawn(function()
    ngx.sleep(0.005)
    error("rewrite thread error")
end)
add("rewrite entry returns " .. coroutine.status(t1))
'''

ACCESS = r'''
local function add(s) table.insert(ngx.ctx.log, s) end
local t = ngx.thread.spawn(function()
    ngx.sleep(0.005)
    add("access t woke")
    if ngx.var.arg_deny then
        ngx.exit(ngx.HTTP_FORBIDDEN)
    end
    return "access t"
end)
local k = ngx.thread.spawn(function()
    ngx.sleep(0.01)
    add("access k: must not show")
end)
add("access kill " .. tostring(ngx.thread.kill(k)))
local ok, v = ngx.thread.wait(t)
add("access waited " .. tostring(ok) .. " " .. tostring(v))
ngx.thread.spawn(function()
    ngx.sleep(0.01)
    add("access thread after the entry")
end)
'''

PHASE_CONTENT = r'''
for _, s in ipairs(ngx.ctx.log) do p(s) end
p("content")
done()
'''


def _files():
    return {
        "spawn.lua": SPAWN,
        "order.lua": ORDER,
        "yield.lua": YIELD,
        "yield2.lua": YIELD2,
        "wait.lua": WAIT,
        "kill.lua": KILL,
    }


def _raw(name, text, **kw):
    """(golapis, nginx, golapis (status, headers, body), nginx's), with
    the times the two requests took in g.took and n.took."""
    g, n, _ = diff_setup({name: text}, workers=1)
    t0 = time.monotonic()
    ours = http_get(n.port, "/" + name, **kw)
    g.took = time.monotonic() - t0
    t0 = time.monotonic()
    ref = http_get(n.port, "/ref/" + name, **kw)
    n.took = time.monotonic() - t0
    return g, n, ours, ref


def _same(ours, ref, status, body=None):
    """The same status (`status`) and body (error pages: the same but for
    the server footer); the body is `body` when given."""
    rb, ob = norm_ref(ref[2]), norm_footer(ours[2])
    assert ref[0] == status, ("ref status", ref[0], rb[:500])
    assert ours[0] == ref[0], ("status", ours[0], ref[0], ob[:500],
                               rb[:500])
    if body is not None:
        assert rb == body, ("ref body", _short(rb))
    assert ob == rb, ("body", _short(ob), _short(rb))


def _short(body):
    """A body for a message: its beginning and its end."""
    if len(body) <= 1200:
        return body
    return body[:500] + b"[... %d bytes ...]" % (len(body) - 1000) + \
        body[-500:]


THREAD_ERR_RE = re.compile(r"lua user thread aborted: runtime error: "
                           r"([^\n]*?)(?:, client: [^\n]*)?$", re.M)


def _thread_errors(text, docroot):
    """The messages of the "lua user thread aborted" lines of a log, the
    docroot path in them made "@DIR@"."""
    return [m.replace(docroot, "@DIR@") for m in THREAD_ERR_RE.findall(text)]


def _quiet_logs(g, n):
    """No Lua error in either log (a thread killed by ngx.exit is not
    one)."""
    for who, log in (("golapis", g.log()), ("nginx", n.log())):
        assert "thread aborted" not in log, (who, log[-2000:])


def test_thread_spawn():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/spawn.lua", g, min_lines=30)
    assert "f in 1 two 2 nil false" in lines, lines
    assert lines.index("f in 1 two 2 nil false") == 1, lines
    assert "after spawn thread zombie" in lines, lines
    assert "wait t2 true 42 t2 nil" in lines, lines
    assert lines.index("t2 spawned running") < lines.index("t2 after sleep")
    assert "entry sees inner nil" in lines, lines
    assert ("entry waits inner false only the parent coroutine can wait "
            "on the thread") in lines, lines
    assert ("spawn number false bad argument #1 to '?' (Lua function "
            "expected)") in lines, lines


def test_thread_order():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/order.lua", g, min_lines=12)
    assert lines[:8] == ["entry start", "c start", "a start", "quick",
                         "b start", "entry sleeps", "entry woke",
                         "entry returns"], lines
    assert lines[-2] == "last, long after the entry returned", lines


def test_thread_yield():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/yield.lua", g, min_lines=10)
    assert lines[:7] == ["0", "1", "f 1", "2", "f 2", "3", "g 1"], lines
    lines = diff_lines(n.port, "/yield2.lua", g, min_lines=6)
    assert lines[:7] == ["f 1", "g 1", "f 2", "done", "g 2", "f 3",
                         "g 3"], lines


def test_thread_wait():
    g, n, d = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/wait.lua", g, min_lines=40)
    assert "any true b b2" in lines, lines
    assert "wait again nil already waited or killed" in lines, lines
    assert "error later false boom later" in lines, lines
    assert ("no args false at least one coroutine should be specified"
            in lines), lines
    assert ("coroutine false attempt to wait on a coroutine that is not a "
            "user thread") in lines, lines
    assert "co waits child true true child of co" in lines, lines
    # each thread that died of an error is logged, as upstream
    ours = _thread_errors(g.log(), d)
    ref = _thread_errors(n.log(), d)
    assert ref == ["@DIR@/wait.lua:%d: boom at once"
                   % _line(WAIT, "boom at once"),
                   "boom later",
                   "@DIR@/wait.lua:%d: attempt to index local 'x' (a nil "
                   "value)" % _line(WAIT, "x.field"),
                   "unknown reason", "unknown reason", "fast",
                   "@DIR@/wait.lua:%d: slow" % _line(WAIT, '"slow"')], ref
    assert ours == ref, (ours, ref)


def _line(script, needle):
    """The line number of needle in script as served (after the
    prelude)."""
    text = LUA_PRELUDE + script
    return text[:text.index(needle)].count("\n") + 1


def test_thread_kill():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/kill.lua", g, min_lines=25)
    assert "kill 1" in lines, lines
    assert "kill again nil already waited or killed" in lines, lines
    assert "kill zombie nil already terminated" in lines, lines
    assert "kill entry nil not user thread" in lines, lines
    assert "kill itself true nil killer not parent" in lines, lines
    assert not [x for x in lines if "must not show" in x], lines
    # a killed thread no longer holds the request
    g, n, ours, ref = _raw("killlong.lua", KILL_LONG)
    _same(ours, ref, 200, b"long sleeper starts\nkill: 1\n")
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)


def test_thread_errors():
    g, n, d = diff_setup({"err.lua": ERRORS}, workers=1)
    ours = http_get(n.port, "/err.lua")
    ref = http_get(n.port, "/ref/err.lua")
    _same(ours, ref, 200, b"the entry goes on\nthe entry returns\n"
          b"a sibling goes on\n")
    og, rg = _thread_errors(g.log(), d), _thread_errors(n.log(), d)
    assert rg == ["@DIR@/err.lua:%d: thread error at once"
                  % _line(ERRORS, "error(\"thread"), "unknown reason",
                  "@DIR@/err.lua:%d: attempt to index local 'x' (a nil "
                  "value)" % _line(ERRORS, "x.field")], rg
    assert og == rg, (og, rg)
    assert "lua entry thread aborted" not in n.log()
    assert "lua entry thread aborted" not in g.log(), g.tail()
    g, n, ours, ref = _raw("alone.lua", ERROR_ONLY)
    _same(ours, ref, 200, b"")
    for log in (g.log(), n.log()):
        assert re.search(r"lua user thread aborted: runtime error: \S*"
                         r"alone\.lua:\d+: alone", log), log[-2000:]


def test_thread_entry_error():
    g, n, ours, ref = _raw("entryerr.lua", ENTRY_ERROR)
    _same(ours, ref, 500)
    time.sleep(0.05)
    for log in (g.log(), n.log()):
        assert re.search(r"lua entry thread aborted: runtime error: \S*"
                         r"entryerr\.lua:\d+: entry error", log), log[-2000:]
        assert "must not show" not in log, log[-2000:]
        assert "lua user thread aborted" not in log, log[-2000:]
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)


def test_thread_exit_in_thread():
    g, n, ours, ref = _raw("exit1.lua", EXIT_AT_SPAWN)
    _same(ours, ref, 200, b"before\nhello in thread\n")
    assert n.took < 0.9 and g.took < 0.9, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("exit2.lua", EXIT_ENTRY_SLEEPS)
    _same(ours, ref, 200, b"before\nhello in thread\nafter\n")
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("exit3.lua", EXIT_SIBLING)
    _same(ours, ref, 200, b"end\nf\n")
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("exit4.lua", EXIT_STATUS)
    _same(ours, ref, 403)
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("redirect.lua", REDIRECT)
    _same(ours, ref, 302)
    assert ours[1]["Location"] == ref[1]["Location"], (ours[1], ref[1])
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)


def test_thread_exit_in_entry():
    g, n, ours, ref = _raw("exit5.lua", EXIT_ENTRY)
    _same(ours, ref, 200, b"created: running running\ng: hello\n"
          b"res: true g\n")
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("exit6.lua", EXIT_ENTRY_CODE)
    _same(ours, ref, 200, b"thread says\n")
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)
    g, n, ours, ref = _raw("exit7.lua", EXIT_ENTRY_404)
    _same(ours, ref, 404)
    assert n.took < 1.5 and g.took < 1.5, (g.took, n.took)
    _quiet_logs(g, n)


def test_thread_io():
    g, n, _ = diff_setup({"io.lua": IO}, workers=1)
    kw = dict(method="POST", body=b"hello" * 2000,
              headers={"X-Test": "xt"})
    ref = http_get(n.port, "/ref/io.lua?a=1", **kw)
    ours = http_get(n.port, "/io.lua?a=1", **kw)
    assert ref[0] == 200, ref
    lines = ref[2].decode().split("\n")
    assert len(lines) > 10, lines
    assert "read body true 10000 hello" in lines, lines
    assert "var true POST 1 xt" in lines, lines
    assert "slept together 50 1 50 true" in lines, lines
    assert "coroutine in thread true true 2 true 10 6 dead" in lines, lines
    _same(ours, ref, 200)


def test_thread_output():
    g, n, ours, ref = _raw("output.lua", OUTPUT)
    _same(ours, ref, 200, b"hello from f\nhello from g\nentry\n"
          b"entry after flush\nf printed 1\nf: flush 1 1\n\ng: say 1\n")


def test_thread_output_does_not_wait():
    if os.environ.get("GL_FAULTS_LIB"):
        # the order it expects holds when a flush's write goes at once;
        # make test-faults makes writes wait at random, as a slow client
        # would (nginx's module then answers in another order too)
        print("SKIPPED under make test-faults: the expected order assumes "
              "writes that never wait")
        return
    g, n, ours, ref = _raw("nowait.lua", OUTPUT_NO_WAIT)
    _same(ours, ref, 200, b"hello from f\nf after flush\nhello from g\n"
          b"g after flush\n" + b"x" * 400000 + b"\na after the big print\n"
          b"b\nentry\n")


def _phase_setup():
    """golapis with REWRITE and ACCESS as its rewrite_by_lua and
    access_by_lua blocks, nginx with them in location = /ref/phase.lua;
    the content is phase.lua in both."""
    blocks = ("rewrite_by_lua_block {\n%s\n}\naccess_by_lua_block {\n%s\n}\n"
              % (REWRITE, ACCESS))
    loc = ("location = /ref/phase.lua {\ndefault_type text/html;\n%s"
           "content_by_lua_file $document_root/phase.lua;\n}\n" % blocks)
    return diff_setup({"phase.lua": PHASE_CONTENT}, workers=1,
                      nginx_kw={"extra_server": loc}, conf_extra=blocks)


def test_thread_rewrite_access_phases():
    g, n, d = _phase_setup()
    lines = diff_lines(n.port, "/phase.lua", g, min_lines=8)
    assert lines[:9] == [
        "rewrite t1 start", "rewrite entry returns running",
        "rewrite t2 end", "rewrite t1 end", "access kill 1",
        "access t woke", "access waited true access t",
        "access thread after the entry", "content"], lines
    # the chunk names differ by the config file's name and line
    og, rg = ([re.sub(r"\((?:golapis|nginx)\.conf:\d+\)", "(CONF)", m)
               for m in _thread_errors(x.log(), d)] for x in (g, n))
    chunk = "\n" + REWRITE     # line 1 is that of the block's "{"
    line = chunk[:chunk.index("error(")].count("\n") + 1
    assert rg == ["rewrite_by_lua(CONF):%d: rewrite thread error" % line], rg
    assert og == rg, (og, rg)
    # ngx.exit(403) in a thread of the access phase
    ours = http_get(n.port, "/phase.lua?deny=1")
    ref = http_get(n.port, "/ref/phase.lua?deny=1")
    _same(ours, ref, 403)
