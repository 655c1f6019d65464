"""Hot reload: scripts and modules edited on disk while requests run, the
hold-still rule, files that do not compile, init_by_lua per generation,
SIGHUP, lua_code_cache off.

Load generators are Python threads requesting one URI in a loop through
nginx; every answer is kept with the times its request started and ended,
so that a test can tell when a new version first appeared and that no old
answer was given to a request started after every worker had reloaded.
GL_TEST_NOTES=1 prints the measured reload delays.
"""

import bisect
import os
import re
import signal
import sys
import threading
import time

from harness import (Golapis, Nginx, close_kept, fcgi_get, http_get,
                     make_docroot, mktemp, wait_for)

# the machine may be slow (a sanitizer build): time limits scale with it
SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

RELOADED_RE = re.compile(r"worker (\d+): Lua code reloaded, generation (\d+)")
EXIT_RE = re.compile(r"worker (\d+) exiting: (\d+) connections, (\d+) "
                     r"requests, (\d+) reloads, (\d+) failed reloads")


def _note(text):
    if os.environ.get("GL_TEST_NOTES"):
        sys.stdout.write("    note: %s\n" % text)
        sys.stdout.flush()


# ---------------------------------------------------------------------------
# helpers

def _write(path, text, how):
    """Writes a new version of path: "replace" writes a temp file in the
    same dir and renames it over path (atomic); "inplace" truncates and
    rewrites path itself."""
    if how == "replace":
        tmp = os.path.join(os.path.dirname(path),
                           ".%s.tmp" % os.path.basename(path))
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    else:
        assert how == "inplace", how
        with open(path, "w") as f:
            f.write(text)


class Load:
    """`threads` threads requesting `path` from nginx at `port` in a loop,
    the last `plain` of them with a connection per request, the others
    with keep-alive; each answer is kept as (start, end, status, body,
    content type), each exception as (start, text).  A context manager:
    the threads stop on exit."""

    def __init__(self, port, path, threads=3, plain=1):
        self.port = port
        self.path = path
        self.results = []
        self.errors = []
        self._ends = {}         # a 200's body -> the end times, in order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i >= threads - plain,),
                             daemon=True)
            for i in range(threads)]
        for t in self._threads:
            t.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self, plain):
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    status, headers, body = http_get(
                        self.port, self.path, keepalive=not plain,
                        timeout=10)
                except Exception as e:
                    with self._lock:
                        self.errors.append((t0, repr(e)))
                    time.sleep(0.01)
                    continue
                item = (t0, time.monotonic(), status, body,
                        headers.get("Content-Type"))
                with self._lock:
                    self.results.append(item)
                    if status == 200:
                        self._ends.setdefault(body, []).append(item[1])
        finally:
            close_kept()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(20)

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def count(self):
        with self._lock:
            return len(self.results)

    def first(self, body, since):
        """The end time of the first answer `body` that ended after since,
        or None."""
        with self._lock:
            ends = self._ends.get(body, ())
            i = bisect.bisect_left(ends, since)
            return ends[i] if i < len(ends) else None

    def bad(self, ok):
        """The answers that are not a 200 with ok(body, content type), and
        the exceptions."""
        out = [r for r in self.snapshot()
               if r[2] != 200 or not ok(r[3], r[4])]
        with self._lock:
            return out + list(self.errors)


def _gens(g):
    """{worker: its latest generation} from the reload notices."""
    out = {}
    for w, gen in RELOADED_RE.findall(g.log()):
        out[int(w)] = max(out.get(int(w), 1), int(gen))
    return out


def _wait_gen(g, gen, workers=2, timeout=5):
    """Waits until every worker logged generation >= gen; returns the time
    it saw that."""
    def ok():
        gens = _gens(g)
        return all(gens.get(w, 1) >= gen for w in range(workers))
    wait_for(ok, timeout * SLACK, 0.005,
             what="every worker at generation %d" % gen)
    return time.monotonic()


def _warm(g, script, workers=2):
    """Runs script once in every worker (each FastCGI connection goes to
    the next worker in turn), so that every worker's current generation
    has compiled it, and the modules it requires, from the file as it is
    now.  Else a worker would compile it on its first request, from
    whatever the file holds then (see test_half_written_after_reload)."""
    for _ in range(workers):
        status, headers, body = fcgi_get(g.sock, script)
        assert status == 200, "warming %s: %s %r" % (script, status, body)


def _exits(g):
    """{worker: (connections, requests, reloads, failed reloads)}."""
    return {int(m[0]): tuple(int(x) for x in m[1:])
            for m in EXIT_RE.findall(g.log())}


def _stop(g):
    rc = g.stop()
    assert rc == 0, "golapis exit status %s:\n%s" % (rc, g.tail())


def _backdate(d):
    """Sets the mtime of the files in d an hour back: as deployed files,
    not ones written a moment ago, which a first load does not cache
    until they held still for an interval (docs/reload.md)."""
    t = time.time() - 3600
    for name in os.listdir(d):
        os.utime(os.path.join(d, name), (t, t))


def _setup(files, interval, conf_extra="", mods=None, workers=2,
           keepalive=True, log_level="info"):
    """A docroot with `files`, a module dir with `mods` (on
    lua_package_path), golapis with housekeeping_interval `interval` and
    nginx in front.  Returns (golapis, nginx, docroot, module dir)."""
    www = make_docroot(files, copy_scripts=False)
    _backdate(www)
    extra = "housekeeping_interval %s;\n" % interval
    moddir = None
    if mods is not None:
        moddir = mktemp("mods-")
        for name, text in mods.items():
            with open(os.path.join(moddir, name), "w") as f:
                f.write(text)
        _backdate(moddir)
        extra += 'lua_package_path "%s/?.lua;;";\n' % moddir
    g = Golapis(extra + conf_extra, docroot=www, workers=workers,
                log_level=log_level)
    n = Nginx(g, keepalive=keepalive)
    return g, n, www, moddir


def _edits(g, load, interval, path, script, edits, workers=2, gen0=1):
    """Makes each edit (how, text, the body it must give) of path (the
    script `script` or a module it requires) while `load` runs.  Each must
    show within 1 s (more on a slow build) and no sooner than one interval
    (the hold-still rule); once every worker has logged its reload, no
    request may get an older answer.  Returns the delays."""
    delays = []
    for i, (how, text, want) in enumerate(edits):
        n0 = load.count()
        _write(path, text, how)
        t_w = time.monotonic()
        t_first = wait_for(lambda: load.first(want, t_w), 5 * SLACK, 0.002,
                           what="%r after edit %d (%s)" % (want, i + 1, how))
        delay = t_first - t_w
        t_all = _wait_gen(g, gen0 + i + 1, workers)
        _warm(g, script, workers)
        # a little more load on the new generation, then check it all
        wait_for(lambda: any(r[0] > t_all for r in load.snapshot()[-20:]),
                 5 * SLACK, what="answers after the reload")
        stale = [r for r in load.snapshot()
                 if r[0] > t_all and r[2] == 200 and r[3] != want]
        assert not stale, ("edit %d (%s): requests started after every "
                           "worker reloaded got the old answer: %r"
                           % (i + 1, how, stale[:5]))
        assert load.count() > n0, "the load generator is not running"
        assert delay <= 1.0 * SLACK, (
            "edit %d (%s): the new version took %.3fs to show "
            "(housekeeping_interval %s)" % (i + 1, how, delay, interval))
        assert delay >= 0.8 * interval, (
            "edit %d (%s): the new version showed after %.3fs, sooner than "
            "one housekeeping_interval (%s): taken before it held still"
            % (i + 1, how, delay, interval))
        delays.append(delay)
    return delays


# ---------------------------------------------------------------------------
# 1, 2: a script, a module

def test_script_edit():
    interval = 0.1
    g, n, www, _ = _setup({"v.lua": 'ngx.say("version 1")\n'}, interval)
    path = os.path.join(www, "v.lua")
    bodies = {b"version %d\n" % i for i in range(1, 5)}
    with Load(n.port, "/v.lua") as load:
        wait_for(lambda: load.first(b"version 1\n", 0), 5,
                 what="version 1")
        _warm(g, path)
        delays = _edits(g, load, interval, path, path, [
            ("replace", 'ngx.say("version 2")\n', b"version 2\n"),
            ("inplace", 'ngx.say("version 3")\n', b"version 3\n"),
            # same size, same inode: only the mtime tells
            ("inplace", 'ngx.say("version 4")\n', b"version 4\n"),
        ])
    bad = load.bad(lambda b, ct: b in bodies)
    assert not bad, "failed or wrong answers during reloads: %r" % bad[:5]
    _note("script edit, interval %s: delays %s s over %d requests"
          % (interval, " ".join("%.3f" % d for d in delays),
             len(load.results)))
    _stop(g)
    exits = _exits(g)
    assert sorted(exits) == [0, 1] and all(
        e[2] == 3 and e[3] == 0 for e in exits.values()), \
        "expected 3 reloads, 0 failed, per worker: %r" % exits


def test_module_edit():
    interval = 0.1
    mod = "local M = {}\nM.version = %d\nreturn M\n"
    g, n, www, moddir = _setup(
        {"m.lua": 'ngx.say("module ", require("relmod").version)\n'},
        interval, mods={"relmod.lua": mod % 1})
    path = os.path.join(moddir, "relmod.lua")
    bodies = {b"module %d\n" % i for i in range(1, 4)}
    with Load(n.port, "/m.lua") as load:
        wait_for(lambda: load.first(b"module 1\n", 0), 5, what="module 1")
        script = os.path.join(www, "m.lua")
        _warm(g, script)
        delays = _edits(g, load, interval, path, script, [
            ("replace", mod % 2, b"module 2\n"),
            ("inplace", mod % 3, b"module 3\n"),
        ])
    bad = load.bad(lambda b, ct: b in bodies)
    assert not bad, "failed or wrong answers during reloads: %r" % bad[:5]
    _note("module edit, interval %s: delays %s s over %d requests"
          % (interval, " ".join("%.3f" % d for d in delays),
             len(load.results)))


# ---------------------------------------------------------------------------
# 3: a hundred reloads under load, requests in flight across them

def test_hundred_reloads():
    interval = 0.05
    reloads = 100
    d = mktemp("gc-")
    closed = os.path.join(d, "closed")
    # a userdata in each generation's _G writes a line when the state is
    # closed: old generations must go once their requests ended
    init = ('init_by_lua_block {\n'
            '    local u = newproxy(true)\n'
            '    getmetatable(u).__gc = function()\n'
            '        local f = io.open("%s", "a")\n'
            '        f:write("closed\\n")\n'
            '        f:close()\n'
            '    end\n'
            '    GEN_GUARD = u\n'
            '}\n' % closed)
    g, n, www, moddir = _setup({
        "fast.lua": 'ngx.say(require("m").version)\n',
        "slow.lua": ('local a = require("m").version\n'
                     'ngx.sleep(0.2)\n'
                     'ngx.say(a, " ", require("m").version)\n'),
    }, interval, conf_extra=init, mods={"m.lua": "return {version = 0}\n"},
        log_level="notice")
    path = os.path.join(moddir, "m.lua")
    t_edit = []
    t0 = time.monotonic()
    with Load(n.port, "/fast.lua", threads=3, plain=1) as fast, \
            Load(n.port, "/slow.lua", threads=3, plain=1) as slow:
        wait_for(lambda: fast.first(b"0\n", 0), 5, what="version 0")
        for i in range(1, reloads + 1):
            _write(path, "return {version = %d}\n" % i, "replace")
            t_w = time.monotonic()
            want = b"%d\n" % i
            t_first = wait_for(lambda: fast.first(want, t_w), 5 * SLACK,
                               0.002, what="version %d" % i)
            t_edit.append((t_w, t_first))
            t_all = _wait_gen(g, i + 1)
        took = time.monotonic() - t0
        # the slow requests in flight during the last reload end
        time.sleep(0.3)
    last = b"%d\n" % reloads
    stale = [r for r in fast.snapshot() if r[0] > t_all and r[3] != last]
    assert not stale, "old answers after the last reload: %r" % stale[:5]

    bad = fast.bad(lambda b, ct: re.fullmatch(rb"\d+\n", b) is not None)
    assert not bad, "fast: failed or wrong answers: %r" % bad[:5]
    bad = slow.bad(lambda b, ct: re.fullmatch(rb"(\d+) \1\n", b) is not None)
    assert not bad, ("slow: failed answers, or a request that saw two "
                     "versions of the module: %r" % bad[:5])
    # some slow requests must have finished on an old generation after a
    # newer one served
    shown = [(t_first, i + 1) for i, (t_w, t_first) in enumerate(t_edit)]

    def newest_at(t):
        v = 0
        for tf, i in shown:
            if tf <= t:
                v = i
        return v

    on_old = sum(1 for t_s, t_e, st, b, ct in slow.results
                 if int(b.split()[0]) < newest_at(t_e))
    assert on_old >= 10, ("only %d of %d slow requests finished on an old "
                          "generation" % (on_old, len(slow.results)))

    delays = sorted(tf - tw for tw, tf in t_edit)
    _note("%d reloads in %.1fs, interval %s: delay median %.3f, max %.3f; "
          "%d fast, %d slow requests, %d slow ones ended on an old "
          "generation" % (reloads, took, interval, delays[len(delays) // 2],
                          delays[-1], len(fast.results), len(slow.results),
                          on_old))

    def nclosed():
        try:
            with open(closed) as f:
                return f.read().count("closed\n")
        except FileNotFoundError:
            return 0

    # every old generation of both workers closed, the current ones not
    wait_for(lambda: nclosed() >= 2 * reloads, 5 * SLACK,
             what="%d old generations closed (%d so far)"
             % (2 * reloads, nclosed()))
    assert nclosed() == 2 * reloads, \
        "%d generations closed, expected %d" % (nclosed(), 2 * reloads)
    _stop(g)
    exits = _exits(g)
    assert sorted(exits) == [0, 1], "exit lines: %r" % exits
    for w, (conns, reqs, rel, failed) in exits.items():
        assert rel >= reloads and failed == 0, (
            "worker %d: %d reloads, %d failed (expected >= %d, 0)"
            % (w, rel, failed, reloads))
    assert nclosed() == 2 * reloads + 2, \
        "%d generations closed at exit, expected %d" % (nclosed(),
                                                        2 * reloads + 2)


test_hundred_reloads.TIMEOUT = 120


# ---------------------------------------------------------------------------
# 4: a file that does not compile

def test_syntax_error_keeps_old_code():
    interval = 0.1
    script = ('ngx.say("script %d module ", require("sm").v)\n'
              'local x = 1\n'
              'if x then ngx.say("x") end\n')
    broken_script = ('ngx.say("script broken")\n'
                     'local x = 1\n'
                     'local = x\n')
    mod = 'local M = {}\nM.v = %d\nreturn M\n'
    broken_mod = 'local M = {}\nM.v = = 9\nreturn M\n'
    g, n, www, moddir = _setup({"s.lua": script % 1}, interval,
                               mods={"sm.lua": mod % 1})
    spath = os.path.realpath(os.path.join(www, "s.lua"))
    mpath = os.path.realpath(os.path.join(moddir, "sm.lua"))
    ok = {b"script %d module %d\nx\n" % sm
          for sm in ((1, 1), (3, 2), (3, 3))}

    def only(load, since, body):
        got = [r for r in load.snapshot() if r[0] > since]
        assert got, "no answers since the edit"
        wrong = [r for r in got if r[3] != body]
        assert not wrong, "expected only %r, got %r" % (body, wrong[:5])

    with Load(n.port, "/s.lua") as load:
        wait_for(lambda: load.first(b"script 1 module 1\nx\n", 0), 5,
                 what="version 1")
        _warm(g, spath)
        # the script breaks: logged once with file:line, the old code goes on
        mark = g.mark()
        _write(spath, broken_script, "replace")
        t_w = time.monotonic()
        wait_for(lambda: "not reloading: %s:3:" % spath in g.log_since(mark),
                 3 * SLACK, what="'not reloading: %s:3:' in the log" % spath)
        # while it is broken, a module change waits too
        _write(mpath, mod % 2, "replace")
        time.sleep(6 * interval)
        only(load, t_w, b"script 1 module 1\nx\n")
        log = g.log_since(mark)
        assert log.count("not reloading:") == 1, \
            "the error should be logged once:\n%s" % log
        assert "Lua code reloaded" not in log, \
            "reloaded with a script that does not compile:\n%s" % log

        # fixed: both changes are taken
        _write(spath, script % 3, "inplace")
        t_w = time.monotonic()
        wait_for(lambda: load.first(b"script 3 module 2\nx\n", t_w),
                 3 * SLACK, what="the fixed script")
        _wait_gen(g, 2)
        _warm(g, spath)

        # the module breaks, then is fixed
        mark = g.mark()
        _write(mpath, broken_mod, "inplace")
        t_w = time.monotonic()
        wait_for(lambda: "not reloading: %s:2:" % mpath in g.log_since(mark),
                 3 * SLACK, what="'not reloading: %s:2:' in the log" % mpath)
        time.sleep(3 * interval)
        only(load, t_w, b"script 3 module 2\nx\n")
        _write(mpath, mod % 3, "replace")
        t_w = time.monotonic()
        wait_for(lambda: load.first(b"script 3 module 3\nx\n", t_w),
                 3 * SLACK, what="the fixed module")
    bad = load.bad(lambda b, ct: b in ok)
    assert not bad, "failed or wrong answers: %r" % bad[:5]


# ---------------------------------------------------------------------------
# 5: a file being written is not loaded half-written

FULL = ('ngx.say("begin %d")\n'
        '-- ' + "filler " * 40 + '\n'
        'ngx.say("end %d")\n')


def _half(i):
    """The first part of FULL % (i, i): it compiles, and would answer
    "begin i" alone."""
    text = FULL % (i, i)
    return text[:text.index("\n") + 1 + 100]


def test_half_written_not_loaded():
    interval = 0.2
    hold = 0.4 * interval
    rounds = 8
    g, n, www, _ = _setup({"h.lua": FULL % (0, 0)}, interval)
    path = os.path.join(www, "h.lua")
    full = {b"begin %d\nend %d\n" % (i, i) for i in range(rounds + 1)}
    holds = []
    with Load(n.port, "/h.lua") as load:
        wait_for(lambda: load.first(b"begin 0\nend 0\n", 0), 5,
                 what="version 0")
        _warm(g, path)
        for i in range(1, rounds + 1):
            text = FULL % (i, i)
            half = _half(i)
            # start at a different point of the housekeeping turn each time
            time.sleep(interval * i / rounds)
            with open(path, "w") as f:
                f.write(half)
                f.flush()
                t_h = time.monotonic()
                time.sleep(hold)
                f.write(text[len(half):])
            holds.append(time.monotonic() - t_h)
            t_w = time.monotonic()
            wait_for(lambda: load.first(b"begin %d\nend %d\n" % (i, i), t_w),
                     3 * SLACK, what="version %d" % i)
            _wait_gen(g, i + 1)
            # every worker's new generation compiles the file before the
            # next round (see test_half_written_after_reload)
            _warm(g, path)
    # (a test machine too slow to hold a half version for less than an
    # interval makes the test meaningless)
    assert max(holds) < interval, \
        "a half version was held %.3fs, not less than an interval" % max(
            holds)
    halves = [r for r in load.snapshot()
              if r[3].startswith(b"begin ") and b"end" not in r[3]]
    assert not halves, "a half-written file was loaded: %r" % halves[:5]
    bad = load.bad(lambda b, ct: b in full)
    assert not bad, "failed or wrong answers: %r" % bad[:5]


def test_half_written_after_reload():
    """After a reload, a new generation compiles each script and module on
    its first use, from the file as it is then: a file being written at
    that moment is loaded half-written (the hold-still rule only guards
    the reload decision)."""
    interval = 0.1
    g, n, www, _ = _setup({"h.lua": FULL % (1, 1)}, interval,
                          keepalive=False)
    path = os.path.join(www, "h.lua")
    for _ in range(4):
        status, headers, body = http_get(n.port, "/h.lua")
        assert (status, body) == (200, b"begin 1\nend 1\n"), (status, body)
    # version 2 is taken; no request comes until version 3 is being written
    _write(path, FULL % (2, 2), "replace")
    _wait_gen(g, 2)
    got = []
    with open(path, "w") as f:
        f.write(_half(3))
        f.flush()
        t_h = time.monotonic()
        for _ in range(4):
            if time.monotonic() - t_h > 0.5 * interval:
                break
            got.append(http_get(n.port, "/h.lua")[::2])
        f.write((FULL % (3, 3))[len(_half(3)):])
    assert got, "no request was made while the file was half-written"
    for status, body in got:
        assert status == 200 and body in (b"begin 2\nend 2\n",
                                          b"begin 3\nend 3\n"), (
            "a request while h.lua was half-written got %s %r: the new "
            "generation loaded the half file" % (status, body))


# ---------------------------------------------------------------------------
# 6: init_by_lua and init_worker_by_lua run for each generation

def test_init_runs_per_generation():
    interval = 0.1
    d = mktemp("init-")
    count = os.path.join(d, "count")
    conf = ('init_by_lua_block {\n'
            '    local f = io.open("%s", "a")\n'
            '    f:write("init\\n")\n'
            '    f:close()\n'
            '    INIT_MOD = require("im").version\n'
            '}\n'
            'init_worker_by_lua_block {\n'
            '    local f = io.open("%s", "a")\n'
            '    f:write("init_worker ", ngx.worker.id(), "\\n")\n'
            '    f:close()\n'
            '}\n' % (count, count))
    g, n, www, moddir = _setup(
        {"i.lua": 'ngx.say("init saw ", INIT_MOD)\n'}, interval,
        conf_extra=conf, mods={"im.lua": 'return {version = "a"}\n'})

    def lines():
        with open(count) as f:
            return sorted(f.read().splitlines())

    def want(k):
        return sorted(["init"] * 2 * k + ["init_worker 0"] * k
                      + ["init_worker 1"] * k)

    assert lines() == want(1), lines()
    assert http_get(n.port, "/i.lua")[::2] == (200, b"init saw a\n")
    # the module init_by_lua requires changes: init_by_lua runs again
    _write(os.path.join(moddir, "im.lua"), 'return {version = "b"}\n',
           "replace")
    _wait_gen(g, 2)
    assert lines() == want(2), lines()
    assert http_get(n.port, "/i.lua")[::2] == (200, b"init saw b\n")
    # a script changes: a whole new generation, init and all
    _write(os.path.join(www, "i.lua"), 'ngx.say("init now ", INIT_MOD)\n',
           "inplace")
    _wait_gen(g, 3)
    assert lines() == want(3), lines()
    assert http_get(n.port, "/i.lua")[::2] == (200, b"init now b\n")


def test_init_failure_keeps_old_generation():
    interval = 0.1
    d = mktemp("initf-")
    init = os.path.join(d, "init.lua")
    with open(init, "w") as f:
        f.write('INIT_V = "i1"\n')
    g, n, www, _ = _setup({"i.lua": 'ngx.say(INIT_V)\n'}, interval,
                          conf_extra="init_by_lua_file %s;\n" % init)
    with Load(n.port, "/i.lua") as load:
        wait_for(lambda: load.first(b"i1\n", 0), 5, what="i1")
        _write(init, 'INIT_V = "i2"\n', "replace")
        t_w = time.monotonic()
        wait_for(lambda: load.first(b"i2\n", t_w), 3 * SLACK, what="i2")
        _wait_gen(g, 2)
        # compiles, fails when it runs: every worker keeps generation 2
        mark = g.mark()
        _write(init, 'INIT_V = "i3"\nerror("init boom")\n', "replace")
        wait_for(lambda: g.log_since(mark).count(
            "reload failed, the old code goes on serving") == 2, 3 * SLACK,
            what="two 'reload failed' lines")
        t_f = time.monotonic()
        assert "init boom" in g.log_since(mark), g.log_since(mark)
        time.sleep(3 * interval)
        after = [r for r in load.snapshot() if r[0] > t_f]
        assert after and all(r[3] == b"i2\n" for r in after), \
            "after a failed reload: %r" % [r[3] for r in after][:10]
        # fixed
        _write(init, 'INIT_V = "i4"\n', "replace")
        t_w = time.monotonic()
        wait_for(lambda: load.first(b"i4\n", t_w), 3 * SLACK, what="i4")
    bad = load.bad(lambda b, ct: b in (b"i1\n", b"i2\n", b"i4\n"))
    assert not bad, "failed or wrong answers: %r" % bad[:5]
    _stop(g)
    exits = _exits(g)
    assert sorted(exits) == [0, 1] and all(
        e[2] == 2 and e[3] == 1 for e in exits.values()), \
        "expected 2 reloads and 1 failed per worker: %r" % exits


# ---------------------------------------------------------------------------
# 7: SIGHUP

def _rewrite_conf(g, old, new):
    with open(g.conf_path) as f:
        text = f.read()
    assert old in text, (old, text)
    with open(g.conf_path, "w") as f:
        f.write(text.replace(old, new))


def test_sighup():
    interval = 0.1
    block = "content_by_lua_block { ngx.say('conf %s') }\n"
    g, n, www, _ = _setup({"s.lua": 'ngx.say("the script")\n'}, interval,
                          conf_extra="# MARK\n" + block % "v1")
    ok = {(b"conf v1\n", "text/html"), (b"conf v2\n", "text/plain"),
          (b"conf v3\n", "text/x-v3")}
    with Load(n.port, "/s.lua") as load:
        wait_for(lambda: load.first(b"conf v1\n", 0), 5, what="conf v1")
        # a changed block and default_type
        _rewrite_conf(g, block % "v1",
                      block % "v2" + "default_type text/plain;\n")
        g.send_signal(signal.SIGHUP)
        t_h = time.monotonic()
        t_first = wait_for(lambda: load.first(b"conf v2\n", t_h), 3 * SLACK,
                           what="conf v2 after SIGHUP")
        t_all = _wait_gen(g, 2)
        _note("SIGHUP: new config served after %.3fs" % (t_first - t_h))
        time.sleep(2 * interval)
        stale = [r for r in load.snapshot()
                 if r[0] > t_all and r[3] != b"conf v2\n"]
        assert not stale, "old config after the reload: %r" % stale[:5]

        # broken configs: logged, the old one goes on
        for bad_text, where in (
                ("no_such_directive on;\n", "golapis.conf:"),
                ("log_by_lua_block { ngx.log( }\n", "log_by_lua")):
            mark = g.mark()
            _rewrite_conf(g, "# MARK\n", "# MARK\n" + bad_text)
            g.send_signal(signal.SIGHUP)
            t_b = time.monotonic()
            wait_for(lambda: "reload failed, the old configuration stays:"
                     in g.log_since(mark), 3 * SLACK,
                     what="'reload failed' for %r" % bad_text)
            line = [x for x in g.log_since(mark).splitlines()
                    if "reload failed" in x][0]
            assert where in line, "the error does not say where: %s" % line
            time.sleep(3 * interval)
            after = [r for r in load.snapshot() if r[0] > t_b]
            assert after and all(r[3] == b"conf v2\n" for r in after), \
                "after a bad config: %r" % [r[3] for r in after][:5]
            assert "Lua code reloaded" not in g.log_since(mark)
            _rewrite_conf(g, "# MARK\n" + bad_text, "# MARK\n")

        # and a good one again
        _rewrite_conf(g, block % "v2" + "default_type text/plain;\n",
                      block % "v3" + "default_type text/x-v3;\n")
        g.send_signal(signal.SIGHUP)
        t_h = time.monotonic()
        wait_for(lambda: load.first(b"conf v3\n", t_h), 3 * SLACK,
                 what="conf v3 after SIGHUP")
    bad = load.bad(lambda b, ct: (b, ct) in ok)
    assert not bad, "failed or inconsistent answers: %r" % bad[:5]
    _stop(g)
    exits = _exits(g)
    assert sorted(exits) == [0, 1] and all(
        e[2] == 2 and e[3] == 0 for e in exits.values()), \
        "expected 2 reloads, 0 failed, per worker: %r" % exits


def test_sighup_init_error_keeps_old_config():
    """A config that passes the check but whose init_by_lua fails when it
    runs: every worker keeps its old generation, and should keep the old
    config with it (and later code reloads should still work)."""
    interval = 0.1
    g, n, www, moddir = _setup(
        {"s.lua": 'ngx.say("script ", require("hm").v)\n'}, interval,
        conf_extra="# MARK\n", mods={"hm.lua": 'return {v = 1}\n'})
    assert http_get(n.port, "/s.lua")[::2] == (200, b"script 1\n")
    mark = g.mark()
    _rewrite_conf(g, "# MARK\n", "init_by_lua_block { error('boom') }\n"
                  "default_type text/x-new;\n")
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: g.log_since(mark).count(
        "reload failed, the old code goes on serving") == 2, 3 * SLACK,
        what="two 'reload failed' lines")
    errs = []
    status, headers, body = http_get(n.port, "/s.lua")
    if (status, body, headers.get("Content-Type")) != (200, b"script 1\n",
                                                        "text/html"):
        errs.append("after the failed reload: %s %r Content-Type %s (the "
                    "old config's text/html expected)"
                    % (status, body, headers.get("Content-Type")))
    # a code change later: the old config's generation reloads fine
    _write(os.path.join(moddir, "hm.lua"), 'return {v = 2}\n', "replace")
    try:
        _wait_gen(g, 3, timeout=2)
    except AssertionError:
        errs.append("a module change after the failed SIGHUP did not "
                    "reload:\n" + "\n".join(g.log_since(mark).splitlines()
                                            [-6:]))
    assert not errs, "\n".join(errs)


def test_sighup_refused_keeps_the_error_log():
    # a config a module refuses (its access_log cannot be opened: a
    # directory) changes nothing, not even the error log it names
    g, n, www, _ = _setup({"s.lua": 'ngx.say("s")\n'}, 0.1)
    new_log = os.path.join(g.dir, "new-error.log")
    mark = g.mark()
    _rewrite_conf(g, "error_log %s" % g.error_log,
                  "access_log %s;\nerror_log %s" % (g.dir, new_log))
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, the old configuration stays"
             in g.log_since(mark), 5 * SLACK, what="the refused reload")
    assert not os.path.exists(new_log), open(new_log).read()
    mark = g.mark()
    g.send_signal(signal.SIGUSR1)
    wait_for(lambda: "reopened" in g.log_since(mark), 5 * SLACK,
             what="a line in the old error log")
    assert http_get(n.port, "/s.lua")[::2] == (200, b"s\n")


def test_sighup_inflight_keeps_config():
    """A request in flight across SIGHUP finishes on its generation: with
    the config it started with."""
    g, n, www, _ = _setup(
        {"s.lua": 'ngx.sleep(0.5)\nngx.say("slept")\n'}, 0.1,
        conf_extra="# MARK\n")
    res = {}

    def run():
        try:
            res["r"] = http_get(n.port, "/s.lua", timeout=10)
        except Exception as e:
            res["r"] = (None, {}, repr(e))

    t = threading.Thread(target=run)
    t.start()
    try:
        time.sleep(0.2)
        _rewrite_conf(g, "# MARK\n", "default_type text/plain;\n")
        g.send_signal(signal.SIGHUP)
        _wait_gen(g, 2)
    finally:
        t.join(10)
    status, headers, body = res["r"]
    assert (status, body) == (200, b"slept\n"), (status, body)
    assert http_get(n.port, "/s.lua")[1].get("Content-Type") == \
        "text/plain", "the new default_type is not in effect"
    assert headers.get("Content-Type") == "text/html", (
        "a request started before SIGHUP got Content-Type %s: the new "
        "config's default_type, with the old generation"
        % headers.get("Content-Type"))


def test_sighup_without_end():
    """Reloads by SIGHUP have no cap: each config is freed when the last
    worker, request and generation that started with it let go of it.  A
    request in flight across 100 reloads keeps its own config to its end
    (its Content-Type comes from it when it answers); under the
    sanitizers, a config freed too early or never shows."""
    g, n, www, _ = _setup(
        {"s.lua": 'ngx.sleep(tonumber(ngx.var.arg_t) or 0)\n'
                  'ngx.say("slept")\n'}, 0.1,
        conf_extra="default_type text/x-v0;\n")
    res = {}

    def run():
        try:
            res["r"] = http_get(n.port, "/s.lua?t=%g" % (2 * SLACK),
                                timeout=30)
        except Exception as e:
            res["r"] = (None, {}, repr(e))

    t = threading.Thread(target=run)
    t.start()
    try:
        time.sleep(0.3)
        prev = "default_type text/x-v0;\n"
        for k in range(1, 101):
            cur = "default_type text/x-v%d;\n" % k
            _rewrite_conf(g, prev, cur)
            prev = cur
            g.send_signal(signal.SIGHUP)
            _wait_gen(g, k + 1, timeout=10)
            if k % 25 == 0:
                st, headers, _ = http_get(n.port, "/s.lua")
                assert (st, headers.get("Content-Type")) == (
                    200, "text/x-v%d" % k), (k, st, headers)
    finally:
        t.join(30)
    status, headers, body = res["r"]
    assert (status, body) == (200, b"slept\n"), (status, body)
    assert headers.get("Content-Type") == "text/x-v0", headers
    log = g.log()
    assert "reload refused" not in log and "reload failed" not in log, \
        g.tail()
    _stop(g)
    exits = _exits(g)
    assert sorted(exits) == [0, 1] and all(
        e[2] == 100 and e[3] == 0 for e in exits.values()), exits


def test_sighup_listen_and_pid_stay():
    """listen and pid need a restart: each reload compares with what
    golapis started with (not with the last config), and the stop closes
    the sockets and removes the pid file golapis made."""
    g, n, www, _ = _setup({"s.lua": 'ngx.say("ok")\n'}, 0.1)
    extra_sock = os.path.join(g.dir, "extra.sock")
    other_pid = os.path.join(g.dir, "other.pid")
    with open(g.conf_path) as f:
        text = f.read()
    text = text.replace("pid %s;" % g.pid_file, "pid %s;" % other_pid)
    text += "listen unix:%s;\n" % extra_sock
    with open(g.conf_path, "w") as f:
        f.write(text)
    for k in (2, 3):
        mark = g.mark()
        g.send_signal(signal.SIGHUP)
        _wait_gen(g, k)
        log = g.log_since(mark)
        assert '"listen" changes need a restart' in log, log
        assert '"pid" changes need a restart; the pid file stays "%s"' \
            % g.pid_file in log, log
        assert http_get(n.port, "/s.lua")[::2] == (200, b"ok\n")
    assert not os.path.exists(extra_sock) and not os.path.exists(other_pid)
    assert os.path.exists(g.pid_file)
    _stop(g)
    assert not os.path.exists(g.pid_file) and not os.path.exists(g.sock)
    assert "unlink" not in g.log(), g.tail()


# ---------------------------------------------------------------------------
# 8: lua_code_cache off

def test_code_cache_off_script():
    interval = 0.1
    g, n, www, _ = _setup({"c.lua": 'ngx.say("cc 1")\n'}, interval,
                          conf_extra="lua_code_cache off;\n")
    path = os.path.join(www, "c.lua")
    assert http_get(n.port, "/c.lua")[::2] == (200, b"cc 1\n")
    # every request compiles the file: an edit shows at once
    for i, how in ((2, "inplace"), (3, "replace"), (4, "inplace")):
        _write(path, 'ngx.say("cc %d")\n' % i, how)
        for _ in range(4):
            got = http_get(n.port, "/c.lua")[::2]
            assert got == (200, b"cc %d\n" % i), (i, how, got)
    time.sleep(4 * interval)
    log = g.log()
    assert "changed" not in log and "Lua code reloaded" not in log, \
        "lua_code_cache off: files are watched anyway:\n%s" % log


def test_code_cache_off_module():
    """As in lua-nginx-module, lua_code_cache off loads modules anew for
    each request, so their edits show at once too."""
    g, n, www, moddir = _setup(
        {"c.lua": 'ngx.say("module ", require("ccm").v)\n'}, 0.1,
        conf_extra="lua_code_cache off;\n", mods={"ccm.lua": "return {v=1}\n"},
        workers=1)
    assert http_get(n.port, "/c.lua")[::2] == (200, b"module 1\n")
    _write(os.path.join(moddir, "ccm.lua"), "return {v=2}\n", "replace")
    got = http_get(n.port, "/c.lua")[::2]
    assert got == (200, b"module 2\n"), (
        "lua_code_cache off: a module edit does not show (got %r): modules "
        "stay in package.loaded and are not watched" % (got,))
