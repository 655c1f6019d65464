"""ngx.timer.at, ngx.timer.every, ngx.timer.running_count and
ngx.timer.pending_count, lua_max_pending_timers and lua_max_running_timers,
differential against the real lua-nginx-module 0.10.23: the same script
under golapis (/NAME.lua) and under nginx (/ref/NAME.lua) must print the
same lines, and the error-log lines about timers must say the same.

A timer cannot print into the response of the request that made it once
that has ended, so the scripts create timers, wait (short ngx.sleep
loops with a bound) and print what the handlers recorded in upvalues, or
the handlers write into a shared dict that a second request reads.  At a
graceful stop the handlers write into a file under the docroot.

What upstream does that a reimplementation might not:
- ngx.timer.at and ngx.timer.every return the number 1, not true;
- a delay that is zero in whole milliseconds is zero (every(0.0001):
  "delay cannot be zero");
- inside an every handler pending_count already counts the next run;
- the request-only APIs raise "API disabled in the context of ngx.timer"
  (C functions) or "API disabled in the current context" (lua-resty-core's
  FFI ones); ngx.ctx, ngx.sleep, light threads, semaphores and shared
  dicts work; ngx.exit ends the handler;
- at a graceful stop pending timers run at once with premature = true and
  ngx.worker.exiting() true; new timers with a delay get nil, "process
  exiting", but zero-delay ones are still accepted and run (premature
  false);
- errors in lua-resty-core's own files carry its file's position: the
  scripts drop the position of any file outside the docroot (m()).

GL_REF_ONLY=1 checks only the nginx side (no golapis started).
"""

import os
import re
import signal
import time

from harness import (LUA_PRELUDE, NORM_POSITION, REF_ONLY, ref_both,
                     ref_get, ref_lines, ref_setup, wait_for)

SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

NORM = NORM_POSITION
setup = ref_setup
lines = ref_lines
get = ref_get
both = ref_both


LOG_START = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w*)\] ", re.M)


def records(text):
    """The error log as [(level, text of the entry)]: an entry runs to the
    next line with a log prefix (tracebacks span several lines)."""
    starts = list(LOG_START.finditer(text))
    out = []
    for i, mt in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        out.append((mt.group(1), text[mt.end():end]))
    return out


# ---------------------------------------------------------------------------
# ngx.timer.at: results, the handler's arguments, order, the counts

AT = r'''
local function h(name)
    return function(premature, ...)
        p(name, "premature", premature, "nargs", select("#", ...), ...)
        p(name, "phase", ngx.get_phase(), "running",
          ngx.timer.running_count(), "pending", ngx.timer.pending_count())
        return "ignored"
    end
end
p("counts before", ngx.timer.pending_count(), ngx.timer.running_count())
p("at 0.02", ngx.timer.at(0.02, h("t20"), "x", nil, 3))
p("at 0", ngx.timer.at(0, h("t0"), { 1, 2 }, true))
p("at 0.01", ngx.timer.at(0.01, h("t10")))
p("at '0.005'", ngx.timer.at("0.005", h("t5"), 1, nil))
-- the same delay: in the order they were made
p("type", type(ngx.timer.at(0, h("t0b"))))
p("counts after", ngx.timer.pending_count(), ngx.timer.running_count())
p("not yet run: nothing yields")
ngx.sleep(0.002)
p("after the first yield", ngx.timer.pending_count())
for _ = 1, 100 do
    if ngx.timer.pending_count() == 0 then break end
    ngx.sleep(0.002)
end
p("all ran", ngx.timer.pending_count(), ngx.timer.running_count())

-- a handler that sleeps: running_count from the request
local state = "created"
ngx.timer.at(0, function()
    state = "running"
    ngx.sleep(0.02)
    state = "done"
end)
for _ = 1, 100 do
    if state == "running" then break end
    ngx.sleep(0.001)
end
p("while a handler sleeps", state, ngx.timer.running_count(),
  ngx.timer.pending_count())
for _ = 1, 100 do
    if state == "done" then break end
    ngx.sleep(0.005)
end
ngx.sleep(0.001)
p("after it", state, ngx.timer.running_count())

-- timers made by timers, closures of the request
local seen = {}
local depth = 0
local function chain(premature, n)
    depth = depth + 1
    seen[#seen + 1] = n .. ":" .. tostring(premature)
    if n < 3 then
        local ok, err = ngx.timer.at(0, chain, n + 1)
        seen[#seen + 1] = "made " .. tostring(ok) .. " " .. tostring(err)
    end
end
ngx.timer.at(0, chain, 1)
for _ = 1, 100 do
    if depth == 3 then break end
    ngx.sleep(0.002)
end
p("chain", table.concat(seen, ", "))

local keys = {}
for k, v in pairs(ngx.timer) do keys[#keys + 1] = k .. ":" .. type(v) end
table.sort(keys)
p("ngx.timer", table.concat(keys, " "))
done()
'''


def test_timer_at():
    g, n, _ = setup({"at.lua": AT})
    out = lines(n, g, "/at.lua", min_lines=20)
    want = [
        "counts before 0 0", "at 0.02 1", "at 0 1", "at 0.01 1",
        "at '0.005' 1", "type number", "counts after 5 0",
        "not yet run: nothing yields",
        "t0 premature false nargs 2 {1=1,2=2} true",
        "t0 phase timer running 1 pending 4",
        "t0b premature false nargs 0",
        "t0b phase timer running 1 pending 3",
        "after the first yield 3",
        "t5 premature false nargs 2 1 nil",
        "t5 phase timer running 1 pending 2",
        "t10 premature false nargs 0",
        "t10 phase timer running 1 pending 1",
        "t20 premature false nargs 3 x nil 3",
        "t20 phase timer running 1 pending 0",
        "all ran 0 0",
        "while a handler sleeps running 1 0",
        "after it done 0",
        "chain 1:false, made 1 nil, 2:false, made 1 nil, 3:false",
        "ngx.timer at:function every:function pending_count:function "
        "running_count:function", ""]
    assert out == want, out


# ---------------------------------------------------------------------------
# ngx.timer.every; the argument errors of both

EVERY = r'''
local n, stop = 0, false
p("every", ngx.timer.every(0.005, function(premature, a, b)
    if stop then return end
    n = n + 1
    p("tick", n, premature, a, b, "pending", ngx.timer.pending_count(),
      "running", ngx.timer.running_count())
    if n == 3 then stop = true end
end, "arg1", 2))
p("pending", ngx.timer.pending_count())
for _ = 1, 200 do
    if stop then break end
    ngx.sleep(0.002)
end
p("stopped at", n, "still pending", ngx.timer.pending_count())
ngx.sleep(0.02)
p("no more ticks", n)

-- an error in an every handler does not stop it
local runs = 0
ngx.timer.every(0.002, function()
    runs = runs + 1
    if runs <= 2 then error("every fails " .. runs) end
end)
for _ = 1, 200 do
    if runs >= 4 then break end
    ngx.sleep(0.002)
end
p("runs despite errors", runs >= 4)

local function try(f)
    local ok, err = pcall(f)
    return tostring(ok) .. " " .. tostring(m(err))
end
local fn = function() end
p("every 0", try(function() local a = ngx.timer.every(0, fn) return a end))
p("every 0.0001", try(function()
    local a = ngx.timer.every(0.0001, fn)
    return a
end))
p("every '0'", try(function() local a = ngx.timer.every("0", fn) return a end))
p("every 1 arg", try(function() local a = ngx.timer.every(1) return a end))
p("every none", try(function() local a = ngx.timer.every() return a end))
p("every C fn", try(function()
    local a = ngx.timer.every(1, print)
    return a
end))
p("every table", try(function() local a = ngx.timer.every(1, {}) return a end))
p("every 'x'", try(function() local a = ngx.timer.every("x", fn) return a end))
p("every nil delay", try(function()
    local a = ngx.timer.every(nil, fn)
    return a
end))
p("at none", try(function() local a = ngx.timer.at() return a end))
p("at 1 arg", try(function() local a = ngx.timer.at(1) return a end))
p("at nil fn", try(function() local a = ngx.timer.at(1, nil) return a end))
p("at C fn", try(function() local a = ngx.timer.at(0, print) return a end))
p("at string fn", try(function() local a = ngx.timer.at(0, "f") return a end))
p("at 'soon'", try(function() local a = ngx.timer.at("soon", fn) return a end))
p("at nil delay", try(function() local a = ngx.timer.at(nil, fn) return a end))
p("at {} delay", try(function() local a = ngx.timer.at({}, fn) return a end))
p("at via pcall", pcall(ngx.timer.at, "x", fn))
p("every via pcall", pcall(ngx.timer.every, 0, fn))
p("at 0.0001", ngx.timer.at(0.0001, fn))
p("counts ignore args", ngx.timer.running_count(1, 2),
  ngx.timer.pending_count("x") >= 2)
done()
'''


def test_timer_every():
    g, n, _ = setup({"every.lua": EVERY})
    out = lines(n, g, "/every.lua", min_lines=25)
    d = "every.lua:"
    for want in ("every 1", "pending 1",
                 "tick 1 false arg1 2 pending 1 running 1",
                 "tick 3 false arg1 2 pending 1 running 1",
                 "stopped at 3 still pending 1", "no more ticks 3",
                 "runs despite errors true",
                 "at via pcall false bad argument #1 to '?' (number "
                 "expected, got string)",
                 "every via pcall false delay cannot be zero",
                 "at 0.0001 1", "counts ignore args 0 true"):
        assert want in out, (want, out)
    for name, msg in (
            ("every 0", "delay cannot be zero"),
            ("every 0.0001", "delay cannot be zero"),
            ("every 1 arg", "expecting at least 2 arguments but got 1"),
            ("every none", "expecting at least 2 arguments but got 0"),
            ("every C fn", "bad argument #2 to 'every' (Lua function "
                           "expected)"),
            ("every 'x'", "bad argument #1 to 'every' (number expected, "
                          "got string)"),
            ("at nil fn", "bad argument #2 to 'at' (Lua function "
                          "expected)"),
            ("at nil delay", "bad argument #1 to 'at' (number expected, "
                             "got nil)")):
        line = [l for l in out if l.startswith(name + " false ")]
        assert len(line) == 1 and d in line[0] \
            and line[0].endswith(": " + msg), (name, msg, out)
    # each failing run logged once, as an error with the timer context
    for log in [n.log()] + ([] if REF_ONLY else [g.log()]):
        errs = [t for lv, t in records(log) if "every fails" in t]
        assert len(errs) == 2 and all(
            "lua entry thread aborted: runtime error: " in t
            and "context: ngx.timer" in t for t in errs), log[-3000:]
        assert [lv for lv, t in records(log) if "every fails" in t] == \
            ["error", "error"], log[-3000:]


# ---------------------------------------------------------------------------
# lua_max_pending_timers, lua_max_running_timers

PENDING = r'''
local ran = 0
local function h() ran = ran + 1 end
for i = 1, 5 do
    p("at", i, ngx.timer.at(0.001 * i, h))
end
p("every", ngx.timer.every(1, h))
p("pending", ngx.timer.pending_count())
for _ = 1, 100 do
    if ran == 3 then break end
    ngx.sleep(0.002)
end
p("ran", ran, "pending", ngx.timer.pending_count())
for i = 1, 4 do p("at again", i, ngx.timer.at(0, h)) end
for _ = 1, 100 do
    if ran == 6 then break end
    ngx.sleep(0.002)
end
p("ran", ran)
done()
'''


def test_timer_max_pending():
    conf = "lua_max_pending_timers 3;"
    g, n, _ = setup({"pending.lua": PENDING}, conf=conf, http=conf)
    out = lines(n, g, "/pending.lua", min_lines=12)
    assert out == [
        "at 1 1", "at 2 1", "at 3 1", "at 4 nil too many pending timers",
        "at 5 nil too many pending timers",
        "every nil too many pending timers", "pending 3", "ran 3 pending 0",
        "at again 1 1", "at again 2 1", "at again 3 1",
        "at again 4 nil too many pending timers", "ran 6", ""], out


RUNNING = r'''
local ran = {}
local function h(premature, name)
    ran[#ran + 1] = name .. " starts, running " .. ngx.timer.running_count()
    ngx.sleep(0.02)
    ran[#ran + 1] = name .. " ends"
end
p(ngx.timer.at(0, h, "a"))
p(ngx.timer.at(0.005, h, "b"))
p(ngx.timer.at(0.04, h, "c"))
for _ = 1, 100 do
    if #ran == 4 then break end
    ngx.sleep(0.005)
end
ngx.sleep(0.005)
p(table.concat(ran, ", "))
p("counts", ngx.timer.pending_count(), ngx.timer.running_count())
done()
'''

MAX_RUNNING_RE = re.compile(
    r"lua failed to run timer with function defined at (\S+): "
    r"(\d+ lua_max_running_timers are not enough)")


def test_timer_max_running():
    conf = "lua_max_running_timers 1;"
    g, n, d = setup({"running.lua": RUNNING}, conf=conf, http=conf)
    out = lines(n, g, "/running.lua", min_lines=4)
    assert out == ["1", "1", "1",
                   "a starts, running 1, a ends, c starts, running 1, c ends",
                   "counts 0 0", ""], out
    # b did not run: nginx says so at level alert, naming where the
    # handler was defined ("@" and the chunk name, and the line)

    def found(text):
        return [(lv, mt.group(1), mt.group(2)) for lv, t in records(text)
                for mt in [MAX_RUNNING_RE.search(t)] if mt]
    ref = found(n.log())
    line = [i + 1 for i, l in enumerate(
        (LUA_PRELUDE + NORM + RUNNING).split("\n"))
        if l.startswith("local function h(")]
    want = [("alert", "@%s/running.lua:%d" % (d, line[0]),
             "1 lua_max_running_timers are not enough")]
    assert ref == want, (ref, want, n.log())
    if not REF_ONLY:
        assert found(g.log()) == ref, g.tail()


# ---------------------------------------------------------------------------
# inside a handler: the phase, what is disabled, what works

INSIDE = r'''
local rec = {}
local function r(name, ...)
    local t = { ... }
    for i = 1, select("#", ...) do t[i] = tostring(m(t[i])) end
    rec[#rec + 1] = name .. ": " .. table.concat(t, " ", 1, select("#", ...))
end
local function try(name, f, ...)
    r(name, pcall(f, ...))
end
local finished = false
ngx.timer.at(0, function(premature)
    r("phase", ngx.get_phase())
    try("say", ngx.say, "x")
    try("print", ngx.print, "x")
    try("flush", ngx.flush)
    try("eof", ngx.eof)
    try("send_headers", ngx.send_headers)
    try("header get", function() local v = ngx.header["X-A"] return v end)
    try("header set", function() ngx.header["X-A"] = "1" end)
    try("req.get_headers", ngx.req.get_headers)
    try("req.get_method", ngx.req.get_method)
    try("req.get_uri_args", ngx.req.get_uri_args)
    try("req.read_body", ngx.req.read_body)
    try("req.get_body_data", ngx.req.get_body_data)
    try("req.set_header", ngx.req.set_header, "A", "b")
    try("req.http_version", ngx.req.http_version)
    try("req.raw_header", ngx.req.raw_header)
    try("req.start_time", function() return type(ngx.req.start_time()) end)
    try("req.is_internal", ngx.req.is_internal)
    try("var.uri", function() local v = ngx.var.uri return v end)
    try("var.remote_addr", function()
        local v = ngx.var.remote_addr
        return v
    end)
    try("var set", function() ngx.var.foo = 1 end)
    try("status get", function() local v = ngx.status return v end)
    try("status set", function() ngx.status = 201 end)
    try("headers_sent", function() local v = ngx.headers_sent return v end)
    try("is_subrequest", function() local v = ngx.is_subrequest return v end)
    try("redirect", ngx.redirect, "/x")
    try("exec", ngx.exec, "/x")
    try("on_abort", ngx.on_abort, function() end)
    try("ctx", function() ngx.ctx.a = 1 return ngx.ctx.a end)
    try("time", function() return type(ngx.time()), type(ngx.now()) end)
    try("log", ngx.log, ngx.INFO, "@@ a log line in a timer")
    try("worker.exiting", ngx.worker.exiting)
    try("worker.pid", function() return type(ngx.worker.pid()) end)
    try("worker.id", ngx.worker.id)
    try("worker.count", ngx.worker.count)
    try("sleep", ngx.sleep, 0.001)
    try("thread", function()
        local t = ngx.thread.spawn(function(a)
            ngx.sleep(0.001)
            return a * 2
        end, 21)
        return ngx.thread.wait(t)
    end)
    try("semaphore", function()
        local s = require("ngx.semaphore").new(0)
        ngx.thread.spawn(function() ngx.sleep(0.001) s:post() end)
        return s:wait(1)
    end)
    try("shdict", function()
        local d = ngx.shared.d
        d:set("k", 7)
        return d:incr("k", 1)
    end)
    try("coroutine", function()
        local c = coroutine.wrap(function()
            ngx.sleep(0.001)
            coroutine.yield(5)
        end)
        return c()
    end)
    try("timer.at", function() return ngx.timer.at(0, function() end) end)
    finished = true
    try("exit", ngx.exit, 200)
    r("not reached")
end)
for _ = 1, 200 do
    if finished then break end
    ngx.sleep(0.002)
end
ngx.sleep(0.01)
for _, l in ipairs(rec) do p(l) end
done()
'''


def test_timer_handler_context():
    conf = "lua_shared_dict d 1m;"
    g, n, d = setup({"inside.lua": INSIDE}, conf=conf, http=conf)
    out = lines(n, g, "/inside.lua", min_lines=40)
    tdis = "API disabled in the context of ngx.timer"
    cdis = "API disabled in the current context"
    for want in ("phase: timer", "say: false " + tdis,
                 "print: false " + tdis, "flush: false " + tdis,
                 "eof: false " + tdis, "send_headers: false " + tdis,
                 "req.read_body: false " + tdis, "redirect: false " + tdis,
                 "exec: false " + tdis, "on_abort: false " + tdis,
                 "req.get_headers: false " + cdis,
                 "req.get_method: false " + cdis,
                 "req.is_internal: false " + cdis,
                 "req.start_time: true number", "ctx: true 1",
                 "time: true number number", "log: true",
                 "worker.exiting: true false", "worker.pid: true number",
                 "worker.id: true 0", "worker.count: true 1",
                 "sleep: true", "thread: true true 42",
                 "semaphore: true true nil", "shdict: true 8",
                 "coroutine: true 5", "timer.at: true 1"):
        assert want in out, (want, out)
    # lua-resty-core raises these for the caller: the script's position
    for name in ("header get", "var.uri", "var set", "status get",
                 "headers_sent", "is_subrequest"):
        assert [l for l in out if re.match(
            r"%s: false %s/inside\.lua:\d+: %s$" % (
                re.escape(name), re.escape(d), cdis), l)], (name, out)
    assert out[-2].startswith("timer.at:") and "not reached" not in out, out
    # ngx.log in a timer: the line says "context: ngx.timer"
    for log in [n.log()] + ([] if REF_ONLY else [g.log()]):
        ent = [t for lv, t in records(log) if "@@ a log line" in t]
        assert len(ent) == 1 and re.search(
            r"\[lua\] \[C\]:-1: @@ a log line in a timer, "
            r"context: ngx\.timer", ent[0]), log[-2000:]


# ---------------------------------------------------------------------------
# errors in handlers: logged as upstream, the worker goes on

ERRORS = r'''
local state = {}
ngx.timer.at(0, function()
    state.first = true
    error("timer went wrong")
end)
ngx.timer.at(0.002, function()
    state.second = true
    local x = nil
    return x.field
end)
ngx.timer.at(0.004, function()
    ngx.sleep(0.001)
    state.third = true
    error({ code = 1 })
end)
ngx.timer.at(0.008, function() state.fourth = true ngx.exit(500) end)
ngx.timer.at(0.012, function()
    ngx.log(ngx.WARN, "@@ after the errors")
    state.fifth = "ran after the errors"
    ngx.timer.at(0, function(premature, v)
        state.nested = v
    end, "inner")
end)
for _ = 1, 100 do
    if state.nested then break end
    ngx.sleep(0.002)
end
p(state)
done()
'''

ALIVE = r'''
ngx.say("alive ", ngx.timer.pending_count(), " ", ngx.timer.running_count())
'''

ABORTED_RE = re.compile(r"lua entry thread aborted: runtime error: ([^\n]*)")


def test_timer_handler_errors():
    g, n, d = setup({"errors.lua": ERRORS, "alive.lua": ALIVE})
    out = lines(n, g, "/errors.lua", min_lines=0)
    assert out == ['{"fifth"="ran after the errors","first"=true,'
                   '"fourth"=true,"nested"="inner","second"=true,'
                   '"third"=true}', ""], out
    lines(n, g, "/alive.lua", min_lines=0)

    def summary(log):
        """[(level, message, the context)] of the aborted threads and the
        @@ line"""
        res = []
        for lv, t in records(log):
            mt = ABORTED_RE.search(t)
            if mt:
                res.append((lv, mt.group(1),
                            "context: ngx.timer" in t))
            elif "@@" in t:
                mt = re.search(r"\[lua\] (errors\.lua:\d+: @@ after the "
                               r"errors), context: ngx\.timer", t)
                res.append((lv, mt and mt.group(1), True))
        # in the order of the timers' delays, unless the machine is slow
        return sorted(res, key=repr)
    ref = summary(n.log())
    src = (LUA_PRELUDE + NORM + ERRORS).split("\n")

    def at(text):
        return [i + 1 for i, l in enumerate(src) if text in l][0]
    assert ref == sorted([
        ("error", "%s/errors.lua:%d: timer went wrong"
         % (d, at('error("timer went wrong")')), True),
        ("error", "%s/errors.lua:%d: attempt to index local 'x' (a nil "
         "value)" % (d, at("return x.field")), True),
        ("error", "unknown reason", True),
        ("warn", "errors.lua:%d: @@ after the errors"
         % at('"@@ after the errors"'), True)], key=repr), (ref, n.log())
    if not REF_ONLY:
        assert summary(g.log()) == ref, g.tail()


# ---------------------------------------------------------------------------
# timers outliving the request; timers from init_worker_by_lua and
# log_by_lua (the background refresh and the after-the-answer patterns)

LATER = r'''
local d = ngx.shared.cache
local key = ngx.var.uri .. ":later"
d:delete(key)
local greeting = "made by " .. ngx.var.uri:gsub("^/ref", "")
local counter = 0
local function bump(n) counter = counter + n return counter end
local ok, err = ngx.timer.at(0.02, function(premature, extra)
    local t = {}
    for i = 1, 3 do t[i] = bump(i) end
    d:set(key, greeting .. " " .. table.concat(t, ",") .. " " .. extra
          .. " " .. tostring(premature))
end, "extra")
p("created", ok, err, "counter", counter)
done()
'''

LOGGED = r'''
ngx.say("logged")
'''

READ = r'''
local d = ngx.shared.cache
local prefix = ngx.var.uri:gsub("/read%.lua$", "")
local function poll(key)
    for _ = 1, 200 do
        local v = d:get(key)
        if v then return v end
        ngx.sleep(0.005)
    end
end
for _ = 1, 200 do
    if (d:get("refreshes") or 0) >= 4 then break end
    ngx.sleep(0.005)
end
p("init_worker at", d:get("init_at"))
p("init_worker every", d:get("init_every"))
p("init_worker pending", d:get("init_pending"))
p("first refresh", d:get("first"))
local v, n = d:get("value"), d:get("refreshes")
p("refreshed", n >= 4, v == "v" .. n)
p("later", poll(prefix .. "/later.lua:later"))
p("from log_by_lua", poll(prefix .. "/logged.lua:log"))
ngx.sleep(0.001)
p("pending in a request", ngx.timer.pending_count())
done()
'''

BACKGROUND_CONF = r'''
lua_shared_dict cache 1m;
init_worker_by_lua_block {
    local d = ngx.shared.cache
    local function refresh(premature, what)
        if premature then return end
        local n = d:incr("refreshes", 1, 0)
        d:set("value", "v" .. n)
        if n == 1 then
            d:set("first", ngx.get_phase() .. " " .. what .. " running "
                  .. ngx.timer.running_count())
        end
    end
    local ok, err = ngx.timer.at(0, refresh, "at")
    d:set("init_at", tostring(ok) .. " " .. tostring(err))
    ok, err = ngx.timer.every(0.005, refresh, "every")
    d:set("init_every", tostring(ok) .. " " .. tostring(err))
    d:set("init_pending", ngx.timer.pending_count())
}
log_by_lua_block {
    local u = ngx.var.uri
    if u:find("/logged.lua", 1, true) then
        local status = ngx.status
        ngx.timer.at(0, function(premature)
            ngx.shared.cache:set(u .. ":log", "status " .. status .. " "
                                 .. ngx.get_phase())
        end)
    end
}
'''


def test_timer_background():
    g, n, _ = setup({"later.lua": LATER, "logged.lua": LOGGED,
                     "read.lua": READ},
                    conf=BACKGROUND_CONF, http=BACKGROUND_CONF)

    def flow(prefix):
        return [get(n, prefix + "/later.lua"), get(n, prefix + "/logged.lua"),
                get(n, prefix + "/read.lua")]

    ref = both(flow)
    assert ref[:2] == ["created 1 nil counter 0\n", "logged\n"], ref
    assert ref[2].split("\n") == [
        "init_worker at 1 nil", "init_worker every 1 nil",
        "init_worker pending 2", "first refresh timer at running 1",
        "refreshed true true",
        "later made by /later.lua 1,3,6 extra false",
        "from log_by_lua status 200 timer", "pending in a request 1",
        ""], ref


# ---------------------------------------------------------------------------
# a graceful stop runs the pending timers at once, premature

STOP = r'''
local side = ngx.var.uri:find("^/ref/") and "ref" or "golapis"
local path = "@DIR@/stop-" .. side .. ".txt"
local function rec(line)
    local f = assert(io.open(path, "a"))
    f:write(line, "\n")
    f:close()
end
local function h(premature, name)
    local ok, err = ngx.timer.at(1, function() rec("never") end)
    local ok0, err0 = ngx.timer.at(0, function(pr)
        rec(name .. " its zero-delay timer: premature " .. tostring(pr)
            .. ", exiting " .. tostring(ngx.worker.exiting()))
    end)
    local oke, erre = ngx.timer.every(1, function() end)
    rec(name .. ": premature " .. tostring(premature)
        .. ", exiting " .. tostring(ngx.worker.exiting())
        .. ", phase " .. ngx.get_phase()
        .. ", at(1) " .. tostring(ok) .. " " .. tostring(err)
        .. ", at(0) " .. tostring(ok0) .. " " .. tostring(err0)
        .. ", every(1) " .. tostring(oke) .. " " .. tostring(erre))
end
p(ngx.timer.at(5, h, "at 5"))
p(ngx.timer.at(10, h, "at 10"))
local n = 0
p(ngx.timer.every(3, function(premature, name)
    n = n + 1
    h(premature, name .. n)
end, "every 3, run "))
p(ngx.timer.at(0.001, function(premature)
    rec("before the stop: premature " .. tostring(premature))
end))
ngx.sleep(0.01)
p("pending", ngx.timer.pending_count(), "exiting", ngx.worker.exiting())
done()
'''


def test_timer_graceful_stop():
    g, n, d = setup({"stop.lua": STOP})
    want_body = "1\n1\n1\n1\npending 3 exiting false\n"
    assert get(n, "/ref/stop.lua") == want_body
    if not REF_ONLY:
        assert get(n, "/stop.lua") == want_body, g.tail()

    def stopped(name, stop):
        t0 = time.monotonic()
        stop()
        took = time.monotonic() - t0
        path = os.path.join(d, "stop-%s.txt" % name)
        text = open(path).read() if os.path.exists(path) else ""
        return took, sorted(text.split("\n"))

    took, ref = stopped("ref", n.stop)
    assert took < 3 * SLACK, took
    tail = (", at(1) nil process exiting, at(0) 1 nil, "
            "every(1) nil process exiting")
    assert ref == sorted([
        "before the stop: premature false",
        "every 3, run 1: premature true, exiting true, phase timer" + tail,
        "at 5: premature true, exiting true, phase timer" + tail,
        "at 10: premature true, exiting true, phase timer" + tail,
        "every 3, run 1 its zero-delay timer: premature false, "
        "exiting true",
        "at 5 its zero-delay timer: premature false, exiting true",
        "at 10 its zero-delay timer: premature false, exiting true",
        ""]), ref
    if REF_ONLY:
        return
    took, ours = stopped("golapis",
                         lambda: g.stop(sig=signal.SIGQUIT, timeout=10))
    assert ours == ref, (ours, ref, g.tail())
    assert took < 3 * SLACK, (took, g.tail())
    assert g.returncode == 0, g.tail()


# more pending timers than lua_max_running_timers (256) at a stop: each
# premature run starts and ends before the next starts, so all of them run
# (none is dropped with "lua_max_running_timers are not enough")

STOP_MANY = r'''
local side = ngx.var.uri:find("^/ref/") and "ref" or "golapis"
local path = "@DIR@/stop-many-" .. side .. ".txt"
local function h(premature, i)
    local f = assert(io.open(path, "a"))
    f:write(i, " ", tostring(premature), " ",
            ngx.timer.running_count(), "\n")
    f:close()
end
for i = 1, 300 do
    assert(ngx.timer.at(60 + i / 1000, h, i))
end
p("pending", ngx.timer.pending_count())
done()
'''


def test_timer_graceful_stop_many():
    g, n, d = setup({"stop_many.lua": STOP_MANY})
    assert get(n, "/ref/stop_many.lua") == "pending 300\n"
    if not REF_ONLY:
        assert get(n, "/stop_many.lua") == "pending 300\n", g.tail()

    def lines(name):
        with open(os.path.join(d, "stop-many-%s.txt" % name)) as f:
            return f.read().split("\n")

    n.stop()
    want = ["%d true 1" % i for i in range(1, 301)] + [""]
    assert lines("ref") == want
    if REF_ONLY:
        return
    g.stop(sig=signal.SIGQUIT, timeout=10)
    assert lines("golapis") == want, g.tail()
    assert "not enough" not in g.log(), g.tail()
    assert g.returncode == 0, g.tail()


# ---------------------------------------------------------------------------
# golapis only: a reload retires a generation of the Lua state; its pending
# timers run at once with premature = true and ngx.worker.exiting() true
# for them, so an every loop of the old code stops, and the new code's
# init_worker_by_lua starts its own (docs/api-timer.md)

RETIRE_CONF = r'''
lua_shared_dict t 1m;
init_worker_by_lua_block {
    local d = ngx.shared.t
    local id = d:incr("gens", 1, 0)
    ngx.timer.every(0.01, function(premature)
        if premature then
            d:set("premature" .. id, tostring(ngx.worker.exiting()))
            return
        end
        d:incr("ticks" .. id, 1, 0)
    end)
}
'''

RETIRE_PROBE = r'''
local d = ngx.shared.t
ngx.say(d:get("gens"), " ", d:get("ticks1"), " ", d:get("premature1"),
        " ", d:get("ticks2"), " ", d:get("premature2"), " ",
        tostring(ngx.worker.exiting()))
'''


def test_timer_retired_generation():
    if REF_ONLY:
        return
    g, n, _ = setup({"probe.lua": RETIRE_PROBE}, conf=RETIRE_CONF)

    def probe():
        return get(n, "/probe.lua").split()

    wait_for(lambda: probe()[1] not in ("nil", "0"), 5, what="ticks")
    assert probe()[0] == "1", probe()
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: probe()[0] == "2" and probe()[2] == "true"
             and probe()[3] != "nil", 10 * SLACK,
             what="a new generation with its own timer")
    old = probe()[1]
    time.sleep(0.1)
    gens, ticks1, prem1, ticks2, prem2, exiting = probe()
    # the old loop stopped; the new one runs and is not exiting
    assert ticks1 == old and prem1 == "true", probe()
    assert prem2 == "nil" and exiting == "false", probe()
    assert int(ticks2) > 0, probe()
    assert "reload" in g.log() and "failed" not in g.log(), g.tail()
