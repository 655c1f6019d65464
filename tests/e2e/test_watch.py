"""lua_max_run_time and lua_block_warn_time (src/lua/gl_watch.c): Lua code
that runs too long without yielding to its worker's loop is interrupted
(its request gets a 500, the worker goes on) or, past the warning time,
reported with its traceback.  Code that the interpreter does not run (a
loop compiled by LuaJIT's JIT) cannot be interrupted: the watchdog says
so, and exits with status 1 when every worker is stuck."""

import os
import re
import signal
import threading
import time

from harness import Golapis, Nginx, http_get, make_docroot, wait_for

SCRIPTS = {
    # an interpreted loop (the JIT off for this code)
    "loop.lua": "jit.off()\nlocal n = 0\nwhile true do n = n + 1 end\n",
    # the same inside pcall: catching the error does not keep it running
    "pcall.lua": ("jit.off()\nlocal n = 0\nwhile true do\n"
                  "    pcall(function() while true do n = n + 1 end end)\n"
                  "end\n"),
    # backtracking patterns: each call takes a while, the loop never ends
    # (interpreted: a trace that calls string.find checks no hook either)
    "pattern.lua": ('jit.off()\nlocal s = string.rep("a", 30)\n'
                    'local p = string.rep("a-", 5) .. "b"\n'
                    "while true do s:find(p) end\n"),
    # a blocking call
    "block.lua": ('local f = io.popen("sleep 0.3")\nf:read("*a")\n'
                  'f:close()\nngx.say("done")\n'),
    # a loop the JIT compiles: no hook is checked there
    "jit.lua": "local n = 0\nwhile true do n = n + 1 end\n",
    # a timer's handler that never yields
    "timer.lua": ('ngx.timer.at(0, function()\n    jit.off()\n'
                  "    while true do end\nend)\n"
                  'ngx.say("timer made")\n'),
}

CONF = "lua_max_run_time 300ms;\nlua_block_warn_time 100ms;\n"

# ThreadSanitizer defers a signal until its thread's next libc call: a
# pure Lua loop makes none, so in that build the watchdog's signal never
# arms the hook.  The interruption itself is then tested by the other
# builds; the watchdog thread is still run under TSan by the tests that
# need no signal (the stuck worker, the limits off).
TSAN = os.environ.get("GL_SANITIZER") == "thread"


def _no_signals_here(what):
    if TSAN:
        print("SKIPPED under TSan (%s): it defers signals to the next libc "
              "call" % what)
        return True
    return False


def _setup(workers=1, conf=CONF):
    d = make_docroot()
    for name, text in SCRIPTS.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    g = Golapis(docroot=d, workers=workers, conf_extra=conf)
    return g, Nginx(g)


def _timed(n, path):
    t0 = time.monotonic()
    st, _, body = http_get(n.port, path, timeout=20)
    return st, body, time.monotonic() - t0


def test_runaway_loops_interrupted():
    if _no_signals_here('runaway_loops_interrupted'):
        return
    g, n = _setup()
    for name, line in (("loop.lua", 3), ("pcall.lua", 4),
                       ("pattern.lua", 4)):
        st, body, took = _timed(n, "/" + name)
        assert st == 500, (name, st, body, g.tail())
        assert 0.25 < took < 3, (name, took)
        want = "%s/%s:%d: lua_max_run_time (300ms) exceeded" % (
            g.docroot, name, line)
        wait_for(lambda: want in g.log(), 5, what=want)
        # the worker goes on
        st, body, _ = _timed(n, "/hello.lua")
        assert st == 200, (st, body)
    assert g.running()


def test_hello_waits_on_a_runaway_and_gets_its_answer():
    if _no_signals_here('hello_waits_on_a_runaway_and_gets_its_answer'):
        return
    # one worker: a hello sent while the loop runs is answered once the
    # loop is interrupted, not after nginx's timeout
    g, n = _setup(workers=1)
    out = {}

    def loop():
        out["loop"] = _timed(n, "/loop.lua")
    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.1)
    st, body, took = _timed(n, "/hello.lua")
    t.join()
    assert st == 200 and took < 3, (st, body, took)
    assert out["loop"][0] == 500, out


def test_block_warning():
    if _no_signals_here('block_warning'):
        return
    g, n = _setup(conf="lua_max_run_time 5s;\nlua_block_warn_time 100ms;\n")
    st, body, took = _timed(n, "/block.lua")
    assert (st, body) == (200, b"done\n"), (st, body)
    want = re.compile(r"\[warn\] .*lua code has run for \d+ms without "
                      r"yielding \(lua_block_warn_time 100ms\)[^\n]*\n"
                      r"stack traceback:\n\t%s/block\.lua:\d+: in "
                      % re.escape(g.docroot))
    wait_for(lambda: want.search(g.log()), 5, what="the warning")
    # once per run
    assert len(re.findall("lua_block_warn_time 100ms", g.log())) == 1
    # a script that yields in time gets none
    mark = g.mark()
    assert _timed(n, "/hello.lua")[0] == 200
    assert "lua_block_warn_time" not in g.log_since(mark)


def test_timer_interrupted():
    if _no_signals_here('timer_interrupted'):
        return
    g, n = _setup()
    st, body, _ = _timed(n, "/timer.lua")
    assert (st, body) == (200, b"timer made\n")
    wait_for(lambda: "lua_max_run_time (300ms) exceeded" in g.log(), 5,
             what="the timer's interruption")
    assert _timed(n, "/hello.lua")[0] == 200
    assert g.running()


def test_off():
    g, n = _setup(conf="lua_max_run_time 0;\nlua_block_warn_time 0;\n")
    st, body, took = _timed(n, "/block.lua")
    assert (st, body) == (200, b"done\n")
    time.sleep(0.1)
    assert "lua_block_warn_time" not in g.log()


def _fire(n, path):
    def fire():
        try:
            http_get(n.port, path, timeout=10)
        except Exception:
            pass
    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


def test_jit_loop_stuck_worker_replaced():
    # one worker, stuck in a compiled loop that nothing can interrupt:
    # another starts in its place, and the hellos go there
    g, n = _setup(workers=1, conf=CONF + "worker_shutdown_timeout 1s;\n")
    _fire(n, "/jit.lua")
    wait_for(lambda: "worker 1 starts in place of a stuck one" in g.log(),
             5, what="the replacement")
    for _ in range(5):
        st, body, took = _timed(n, "/hello.lua")
        assert st == 200 and took < 2, (st, body, took)
    assert g.running()


def test_jit_loop_stuck_exits_when_every_worker_is():
    # the replacements are as many as the workers: once they are stuck
    # too, the watchdog reports it and golapis exits 1
    g, n = _setup(workers=1)
    _fire(n, "/jit.lua")
    wait_for(lambda: "worker 1 starts in place" in g.log(), 5,
             what="the replacement")
    _fire(n, "/jit.lua")
    assert g.wait(10) == 1, g.tail()
    log = g.log()
    assert "cannot be interrupted" in log, log
    assert "every worker is stuck in lua code" in log, log


def test_jit_loop_stuck_worker_is_passed_by():
    # two workers, one stuck in a compiled loop: its connections are shut
    # down (nginx answers the stuck request 502 at once, not after its own
    # timeout), new connections go to the other worker, golapis stays up
    g, n = _setup(workers=2, conf=CONF + "worker_shutdown_timeout 1s;\n")
    out = {}

    def fire():
        out["stuck"] = _timed(n, "/jit.lua")
    t = threading.Thread(target=fire, daemon=True)
    t.start()
    wait_for(lambda: "connections are shut down" in g.log(), 5,
             what="the stuck worker's report")
    t.join(5)
    st, body, took = out["stuck"]
    assert st == 502 and took < 3, (st, took)
    for _ in range(10):
        st, body, took = _timed(n, "/hello.lua")
        assert st == 200 and took < 2, (st, body, took)
    assert g.running()
    assert "every worker is stuck" not in g.log()
    # the stop cannot wait for the stuck worker: its timeout cuts it
    assert g.stop(timeout=10) == 1


# lua_max_memory: a request that grows the heap past the limit fails alone
# ("not enough memory", 500); the heap is collected after it, so that the
# next requests run

MEM = {
    "hog.lua": ("local t = {}\nfor i = 1, 1e9 do\n"
                "    t[i] = string.rep('x', 100) .. i\nend\n"),
    "small.lua": ("local t = {}\nfor i = 1, 1000 do t[i] = tostring(i) end\n"
                  "ngx.say(#t, ' ', collectgarbage('count') < 16 * 1024)\n"),
}


def test_max_memory():
    d = make_docroot()
    for name, text in MEM.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    g = Golapis(docroot=d, workers=1, conf_extra="lua_max_memory 16m;\n")
    n = Nginx(g)
    for _ in range(2):
        st, body, _ = _timed(n, "/hog.lua")
        assert st == 500, (st, body, g.tail())
        st, body, _ = _timed(n, "/small.lua")
        assert (st, body) == (200, b"1000 true\n"), (st, body, g.tail())
    log = g.log()
    assert "not enough memory" in log, log
    assert re.search(r"lua_max_memory \(16777216 bytes\) reached: \d+ "
                     r"allocations refused", log), log
    assert _timed(n, "/hello.lua")[0] == 200
    assert g.running()


# loops LuaJIT compiles, whose allocations fail inside compiled code:
# Debian 12's LuaJIT crashed the process there, so the states under
# lua_max_memory are interpreted, jit.on() or not
JIT_FILL = (
    "{on}local keep\n"
    "local function fill()\n"
    "    keep = {{}}\n"
    "    while true do keep[#keep + 1] = string.rep('x', 1000) .. #keep end\n"
    "end\n"
    "local a, b = pcall(fill)\nkeep = nil\ncollectgarbage()\n"
    "local c, d = pcall(fill)\nkeep = nil\ncollectgarbage()\n"
    "ngx.say(a, ' ', b, ' ', c, ' ', d, ' ', (jit.status()))\n")


def test_max_memory_compiled_loops():
    d = make_docroot({"fill.lua": JIT_FILL.format(on=""),
                      "fillon.lua": JIT_FILL.format(on="jit.on()\n"),
                      # what killed the process (SIGSEGV in LuaJIT's
                      # unwinder): the heap still full at the second
                      "crash.lua": ("local keep = {}\nlocal function fill()\n"
                                    "    while true do keep[#keep + 1] = "
                                    "string.rep('x', 1000) .. #keep end\n"
                                    "end\npcall(fill)\npcall(fill)\n"
                                    "keep = nil\nngx.say('survived')\n")})
    g = Golapis(docroot=d, workers=1, conf_extra="lua_max_memory 2m;\n")
    n = Nginx(g)
    for _ in range(3):
        assert _timed(n, "/crash.lua")[:2] == (200, b"survived\n"), g.tail()
    for _ in range(2):
        for path in ("/fill.lua", "/fillon.lua"):
            st, body, _ = _timed(n, path)
            assert (st, body) == (200, b"false not enough memory false "
                                       b"not enough memory false\n"), \
                (path, st, body, g.tail())
    assert g.running()
    # without the limit the compiler is on
    g2 = Golapis(docroot=d, workers=1)
    n2 = Nginx(g2)
    st, body, _ = _timed(n2, "/hello.lua")
    assert st == 200
    with open(os.path.join(d, "status.lua"), "w") as f:
        f.write("ngx.say(jit.status())\n")
    assert _timed(n2, "/status.lua")[1].startswith(b"true"), g2.tail()


def test_max_memory_checked():
    from harness import golapis_cmd, mktemp
    path = os.path.join(mktemp("mem-"), "c.conf")
    with open(path, "w") as f:
        f.write("listen 127.0.0.1:1;\ndocument_root .;\n"
                "lua_max_memory 100k;\n")
    rc, out, err = golapis_cmd(["-t", "-c", path])
    assert rc == 1 and "\"lua_max_memory\" must be 0 (no limit) or at " \
        "least 1m" in err, (rc, err)


def test_system_memory_shortage():
    # no lua_max_memory, but an address-space limit (prlimit --as): the
    # request that runs out fails alone, the heap is collected before the
    # next one, and golapis goes on
    import resource
    if os.environ.get("GL_SANITIZER"):
        # the sanitizers' allocators reserve terabytes and abort when the
        # system refuses them memory: nothing to learn from them here
        print("SKIPPED under a sanitizer: it aborts on a refused mmap")
        return
    d = make_docroot()
    with open(os.path.join(d, "hog.lua"), "w") as f:
        f.write(MEM["hog.lua"])
    g = Golapis(docroot=d, workers=1)
    n = Nginx(g)
    vm = int(re.search(r"VmSize:\s+(\d+)", open(
        "/proc/%d/status" % g.pid).read()).group(1)) * 1024
    limit = vm + 256 * 1024 * 1024
    resource.prlimit(g.pid, resource.RLIMIT_AS, (limit, limit))
    for _ in range(2):
        assert _timed(n, "/hog.lua")[0] == 500
        st, body, _ = _timed(n, "/hello.lua")
        assert st == 200, (st, body, g.tail())
    assert re.search(r"the system refused \d+ allocations of the Lua heap",
                     g.log()), g.tail()
    assert g.running()


# A Lua panic: an error outside any protected call, such as a __gc
# metamethod that fails in a collection step golapis's own code caused
# (LuaJIT passes a finalizer's error on to whatever made the step run).
# LuaJIT would end the process; golapis retires that worker's Lua state,
# closes its connections and starts a new worker in its place.

GC = {
    # a finalizer that fails, each request; the error surfaces in whatever
    # code runs the collection step
    "gcerr.lua": ('local p = newproxy(true)\n'
                  'getmetatable(p).__gc = function() error("gc boom") end\n'
                  'ngx.say("ok")\n'),
    # the same, kept alive by the request's globals while the request
    # grows the heap past lua_max_memory
    "gchog.lua": ('local p = newproxy(true)\n'
                  'getmetatable(p).__gc = function() error("gc boom") end\n'
                  'keep = p\n' + MEM["hog.lua"]),
}


def _gc_setup(conf="", retires=False):
    d = make_docroot()
    for name, text in GC.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    saved = os.environ.get("ASAN_OPTIONS")
    if retires:
        # what a retired Lua state holds is kept, never freed (its memory
        # cannot be trusted); LeakSanitizer cannot see that the blocks
        # only the state's own (mmap'd) heap points to are kept
        os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else "") \
            + "detect_leaks=0"
    try:
        g = Golapis(docroot=d, workers=1, conf_extra=conf)
    finally:
        if saved is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = saved
    return g, Nginx(g)


def test_gc_error_in_a_full_collection():
    # the full collection golapis makes before the next request (the heap
    # reached lua_max_memory) runs the finalizer in a protected call: the
    # error is logged, nothing else happens
    g, n = _gc_setup("lua_max_memory 16m;\n")
    for _ in range(2):
        st, body, _ = _timed(n, "/gchog.lua")
        assert st == 500, (st, body, g.tail())
        st, body, _ = _timed(n, "/hello.lua")
        assert st == 200, (st, body, g.tail())
    log = g.log()
    assert re.search(r"a __gc metamethod failed in a full collection of the "
                     r"Lua heap: .*gchog.lua:2: gc boom", log), log
    assert "PANIC" not in log, log
    assert g.running()
    assert g.stop() == 0


def _panic_once(g, n):
    """Requests /gcerr.lua until a worker panics (502), then waits for the
    log line."""
    mark = g.mark()
    for _ in range(5000):
        if _timed(n, "/gcerr.lua")[0] == 502:
            break
    wait_for(lambda: "is retired after a panic" in g.log_since(mark), 10,
             what="the retirement")
    return mark


def test_replacement_that_cannot_start():
    # a SIGHUP brings an init_worker_by_lua that fails: the workers keep
    # their code, but a worker that panics then cannot start again; its
    # slot is passed by (no request waits for it), and once the config
    # is mended it starts again
    g, n = _gc_setup(retires=True)
    with open(g.conf_path) as f:
        good = f.read()
    flag = os.path.join(g.dir, "fail")
    with open(flag, "w"):
        pass
    with open(g.conf_path, "w") as f:
        f.write(good + (
            "init_by_lua_block { local f = io.open(%r) "
            "if f then f:close() error('cannot start') end }\n" % flag))
    mark = g.mark()
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in g.log_since(mark), 10,
             what="the failed reload")
    mark = _panic_once(g, n)
    wait_for(lambda: "cannot start worker 0 again" in g.log_since(mark), 10,
             what="the failed start")
    # requests go on (none to the empty slot: none waits for it)
    t0 = time.monotonic()
    assert g.running()
    os.remove(flag)
    wait_for(lambda: "worker 0 starts again" in g.log_since(mark), 20,
             what="the slot tried again")
    for _ in range(5):
        st, body, took = _timed(n, "/hello.lua")
        assert (st, body) == (200, b"hello, world\n") and took < 2, \
            (st, body, took, time.monotonic() - t0)
    assert g.running()
    assert g.stop() == 0


def test_panic_loop_is_slowed_down():
    # a worker that panics as soon as it starts (its first timer) is not
    # replaced without end, each keeping its Lua state: the replacements
    # slow down, and golapis does not take the dead for stuck
    g, n = _gc_setup(retires=True)
    with open(g.conf_path) as f:
        text = f.read()
    with open(g.conf_path, "w") as f:
        f.write(text + (
            # interpreted (jit.off): a finalizer's error raised in a
            # compiled loop's collection step crashes Debian's LuaJIT
            # itself (upstream's LuaJIT#1247), no panic to catch
            "init_worker_by_lua_block { if ngx.worker.id() == 0 and "
            "ngx.worker.count() == 1 then ngx.timer.at(0, function() "
            "jit.off() "
            "for i = 1, 200 do local p = newproxy(true) "
            "getmetatable(p).__gc = function() error('gc boom') end end "
            "local t = {} for i = 1, 1e5 do t[i] = {} end end) end }\n"))
    mark = g.mark()
    g.send_signal(signal.SIGHUP)
    time.sleep(4)
    log = g.log_since(mark)
    assert g.running(), g.tail()
    assert "every worker is stuck" not in log, log
    assert "starts in place of a stuck one" not in log, log
    # a second apart at least, then 2, 4...: a handful in 4 s
    assert log.count("is retired after a panic") <= 5, log.count(
        "is retired after a panic")


def test_panic_retires_the_worker():
    g, n = _gc_setup(retires=True)
    statuses = {}
    sent = 0
    while g.log().count("PANIC: unprotected error") < 3 and sent < 5000:
        st, body, _ = _timed(n, "/gcerr.lua")
        statuses[st] = statuses.get(st, 0) + 1
        sent += 1
        # the next request is answered, by the worker that took the
        # retired one's place
        if st == 502:
            st, body, _ = _timed(n, "/hello.lua")
            assert (st, body) == (200, b"hello, world\n"), (st, body)
    log = g.log()
    # deterministic for this script: a few hundred requests each
    assert log.count("PANIC: unprotected error") == 3, (sent, statuses)
    assert re.search(r"\[alert\] .* PANIC: unprotected error in call to Lua "
                     r"API \(.*gcerr.lua:2: gc boom\): the worker's Lua "
                     r"state is retired", log), log
    assert log.count("worker 0 is retired after a panic") == 3, log
    assert log.count("worker 0 starts again") == 3, log
    # the finalizer's error fails the requests in whose code it surfaces;
    # no other outcome
    assert set(statuses) <= {200, 500, 502}, statuses
    assert "starts in place of a stuck one" not in log, log
    for _ in range(5):
        assert _timed(n, "/hello.lua")[0] == 200
    assert g.running()
    assert g.stop() == 0
