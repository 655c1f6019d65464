"""golapis as a service: golapis -s, -t's log check, "env", systemd's
readiness protocol (a fake NOTIFY_SOCKET) and watchdog, socket activation
(sockets passed as systemd passes them, and by systemd-socket-activate),
restarts and binary upgrades (SIGUSR2) under load with no failed request,
and the shipped unit files."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (GOLAPIS_BIN, Golapis, Nginx, golapis_cmd, http_get,
                     make_docroot, mktemp, unix_connectable, wait_for,
                     _die_with_us)

SLACK = 4 if os.environ.get("GL_SANITIZER") else 1
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

FILES = {
    "env.lua": 'local t = {}\n'
               'for _, k in ipairs({"GL_T_KEEP", "GL_T_SET", "GL_T_DROP",\n'
               '                    "HOME", "PATH", "TZ"}) do\n'
               '    t[#t + 1] = k .. "=" .. tostring(os.getenv(k))\n'
               'end\n'
               'ngx.say(table.concat(t, " "))\n',
    "block.lua": 'os.execute("sleep 1")\nngx.say("unblocked")\n',
    "pid.lua": 'ngx.say(ngx.worker.pid())\n',
    "children.lua": 'local t = {}\n'
                    'for i = 1, 30 do t[#t + 1] = os.execute("exit 3") end\n'
                    'local f = io.popen("echo hi; exit 2")\n'
                    'local out = f:read("*a")\n'
                    't[#t + 1] = out .. tostring(f:close())\n'
                    'ngx.say(table.concat(t, " "))\n',
}


class Load:
    """Threads asking nginx for path in a loop (keep-alive and not) until
    stopped; counts the answers and keeps every failure."""

    def __init__(self, port, path, threads=3):
        self.port, self.path = port, path
        self.ok = 0
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i == 0,),
                                          daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, plain):
        while not self._stop.is_set():
            try:
                st, _, body = http_get(self.port, self.path,
                                       keepalive=not plain, timeout=15)
            except Exception as e:
                st, body = None, repr(e).encode()
            with self._lock:
                if st == 200:
                    self.ok += 1
                else:
                    self.failures.append((time.monotonic(), st, body[:200]))

    def count(self):
        with self._lock:
            return self.ok

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return self.ok, self.failures


def _spawn(g, env=None, listen=()):
    """Starts golapis for g by hand, with env added to ours; the sockets
    of listen passed as systemd passes them: fds 3, 4... in the child,
    LISTEN_FDS, and LISTEN_PID (golapis's own pid: sh's $$, kept by
    exec)."""
    full = dict(os.environ)
    full.update(env or {})
    argv = [GOLAPIS_BIN, "-c", g.conf_path]
    die = _die_with_us()
    fds = [s.fileno() for s in listen]

    def preexec():
        # out of the way first, then to 3, 4...
        high = [os.dup2(fd, 200 + i) for i, fd in enumerate(fds)]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        if die is not None:
            die()

    if listen:
        full["LISTEN_FDS"] = str(len(listen))
        argv = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + argv
    g._out = open(g.stdout_path, "ab")
    g._err = open(g.stderr_path, "ab")
    g.proc = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL,
                              stdout=g._out, stderr=g._err, cwd=g.dir,
                              pass_fds=tuple(range(3, 3 + len(listen))),
                              start_new_session=True, preexec_fn=preexec)
    g.pid = g.proc.pid
    return g


def _conf_text(g, **kw):
    with open(g.conf_path) as f:
        return f.read()


def _rewrite(g, old, new):
    text = _conf_text(g)
    assert old in text, (old, text)
    with open(g.conf_path, "w") as f:
        f.write(text.replace(old, new))


# ---------------------------------------------------------------------------
# env

def test_env_as_nginx():
    os.environ["GL_T_KEEP"] = "kept"
    os.environ["GL_T_DROP"] = "dropped"
    os.environ.setdefault("TZ", "UTC")
    try:
        d = make_docroot(FILES)
        g = Golapis(docroot=d, workers=1,
                    conf_extra="env GL_T_KEEP;\nenv GL_T_SET=given;\n"
                               "env GL_T_ABSENT;\n")
    finally:
        del os.environ["GL_T_KEEP"], os.environ["GL_T_DROP"]
    n = Nginx(g)
    st, _, body = http_get(n.port, "/env.lua")
    assert (st, body.decode()) == (200, "GL_T_KEEP=kept GL_T_SET=given "
                                   "GL_T_DROP=nil HOME=nil PATH=nil "
                                   "TZ=%s\n" % os.environ["TZ"]), body
    # a reload cannot change it
    mark = g.mark()
    _rewrite(g, "env GL_T_SET=given;", "env GL_T_SET=other;")
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: '"env" changes need a restart' in g.log_since(mark),
             5 * SLACK, what="the env warning")
    assert b"GL_T_SET=given" in http_get(n.port, "/env.lua")[2]
    assert g.stop() == 0


def test_env_refused():
    for line, msg in (("env =x;", "invalid variable name"),
                      ("env A;\nenv A=1;", '"env A" is duplicate')):
        g = Golapis(workers=1, conf_extra=line + "\n", start=False)
        rc, out, err = golapis_cmd(["-t", "-c", g.conf_path])
        assert rc == 1 and msg in err, (line, rc, err)


def test_script_children_keep_their_exit_status():
    # the main thread waits for the pid of a SIGUSR2's binary alone (libev's
    # default loop would reap every child, and os.execute would get -1);
    # 768: "exit 3" as LuaJIT's os.execute gives it (a wait status)
    d = make_docroot(FILES)
    g = Golapis(docroot=d, workers=2)
    n = Nginx(g)
    for _ in range(3):
        st, _, body = http_get(n.port, "/children.lua")
        assert (st, body) == (200, b" ".join([b"768"] * 30)
                              + b" hi\ntrue\n"), body
    assert g.stop() == 0


# ---------------------------------------------------------------------------
# golapis -s, -t

def test_signal_option():
    g = Golapis(workers=1)
    c = ["-c", g.conf_path]
    mark = g.mark()
    assert golapis_cmd(["-s", "reload"] + c)[0] == 0
    wait_for(lambda: "SIGHUP received" in g.log_since(mark), 5 * SLACK,
             what="the reload")
    assert golapis_cmd(["-s", "reopen"] + c)[0] == 0
    wait_for(lambda: "reopened" in g.log_since(mark), 5 * SLACK,
             what="the reopen")
    rc, out, err = golapis_cmd(["-s", "restart"] + c)
    assert rc == 1 and 'invalid option: "-s restart"' in err, err
    assert golapis_cmd(["-s", "quit"] + c)[0] == 0
    assert g.wait(10 * SLACK) == 0
    # no process, no pid file
    rc, out, err = golapis_cmd(["-s", "stop"] + c)
    assert rc == 1 and "golapis.pid" in err and "No such file" in err, err


def test_config_test_opens_the_error_log():
    g = Golapis(workers=1, start=False)
    bad = os.path.join(g.dir, "no-such-dir", "error.log")
    _rewrite(g, "error_log %s" % g.error_log, "error_log %s" % bad)
    rc, out, err = golapis_cmd(["-t", "-c", g.conf_path])
    assert rc == 1, (rc, out, err)
    assert 'cannot open the error log "%s"' % bad in err, err
    assert "test failed" in err, err


# ---------------------------------------------------------------------------
# systemd's notifications

class Notify:
    """A fake NOTIFY_SOCKET: keeps every datagram, with its arrival time."""

    def __init__(self):
        self.path = os.path.join(mktemp("notify-"), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.got = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.got.append((time.monotonic(), data.decode()))

    def states(self):
        return [d for _, d in list(self.got)]

    def close(self):
        self._stop.set()
        self._t.join(5)
        self.sock.close()


def _has(states, key):
    return [s for s in states if key in s.split("\n")]


def test_notify_ready_reloading_stopping():
    nt = Notify()
    try:
        g = _spawn(Golapis(workers=2, start=False),
                   env={"NOTIFY_SOCKET": nt.path})
        wait_for(lambda: _has(nt.states(), "READY=1"), 10 * SLACK,
                 what="READY=1")
        # ready means accepting
        assert unix_connectable(g.sock)
        ready = _has(nt.states(), "READY=1")[0]
        assert "MAINPID=%d" % g.pid in ready.split("\n"), ready
        assert re.search(r"^STATUS=serving, 2 workers$", ready, re.M), ready
        g.send_signal(signal.SIGHUP)
        wait_for(lambda: len(_has(nt.states(), "READY=1")) == 2,
                 10 * SLACK, what="READY=1 after the reload")
        st = nt.states()
        rel = _has(st, "RELOADING=1")
        assert len(rel) == 1 and re.search(r"^MONOTONIC_USEC=\d+$", rel[0],
                                           re.M), st
        assert [x.split("\n")[0] for x in st] == ["READY=1", "RELOADING=1",
                                                 "READY=1"], st
        assert g.stop() == 0
        wait_for(lambda: _has(nt.states(), "STOPPING=1"), 5, what="STOPPING")
        # golapis passes nothing of it on to its scripts
        assert "NOTIFY_SOCKET" not in g.log()
    finally:
        nt.close()


def test_watchdog_pings_only_while_workers_answer():
    # WatchdogSec=0.3 s: a ping each 0.15 s, as long as the one worker's
    # loop answers; a script that blocks the worker (no lua_max_run_time)
    # stops the pings until it ends
    nt = Notify()
    try:
        d = make_docroot(FILES)
        g = _spawn(Golapis(docroot=d, workers=1, start=False,
                           conf_extra="lua_max_run_time 0;\n"
                                      "lua_block_warn_time 0;\n"),
                   env={"NOTIFY_SOCKET": nt.path,
                        "WATCHDOG_USEC": "300000"})
        n = Nginx(g)
        wait_for(lambda: len(_has(nt.states(), "WATCHDOG=1")) >= 4,
                 10 * SLACK, what="watchdog pings")
        t0 = time.monotonic()
        st, _, body = http_get(n.port, "/block.lua", timeout=10)
        t1 = time.monotonic()
        assert (st, body) == (200, b"unblocked\n")
        time.sleep(0.5 * SLACK)
        pings = [t for t, d in list(nt.got) if d == "WATCHDOG=1"]
        during = [t for t in pings if t0 + 0.35 < t < t1 - 0.05]
        assert not during, (t1 - t0, during)
        assert [t for t in pings if t > t1], "no ping after the block"
        assert "did not answer the service manager's watchdog check" \
            in g.log(), g.tail()
        assert g.stop() == 0
    finally:
        nt.close()


def test_watchdog_replacement_worker_not_late():
    # a worker stuck in a compiled loop is replaced; the new one has not
    # been asked yet at the next tick, and must not cost a ping (one
    # skipped ping is a gap of WatchdogSec: systemd's kill would race)
    nt = Notify()
    try:
        d = make_docroot({"jit.lua": "local n = 0\n"
                                     "while true do n = n + 1 end\n"})
        g = _spawn(Golapis(docroot=d, workers=1, start=False,
                           conf_extra="lua_max_run_time 300ms;\n"
                                      "worker_shutdown_timeout 1s;\n"),
                   env={"NOTIFY_SOCKET": nt.path,
                        "WATCHDOG_USEC": "1000000"})
        n = Nginx(g)
        wait_for(lambda: _has(nt.states(), "READY=1"), 10 * SLACK,
                 what="READY=1")
        t = threading.Thread(target=lambda: http_get(n.port, "/jit.lua",
                                                     timeout=20),
                             daemon=True)
        t.start()
        wait_for(lambda: "worker 1 starts in place of a stuck one"
                 in g.log(), 10 * SLACK, what="the replacement")
        since = time.monotonic()
        time.sleep(2.5)
        assert "worker 1 did not answer" not in g.log(), g.tail()
        pings = [t for t, x in list(nt.got) if x == "WATCHDOG=1"
                 and t > since]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 4 and max(gaps) < 0.9, gaps
        assert g.stop(timeout=10 * SLACK) == 1
    finally:
        nt.close()


def test_no_watchdog_pid_of_another():
    nt = Notify()
    try:
        g = _spawn(Golapis(workers=1, start=False),
                   env={"NOTIFY_SOCKET": nt.path, "WATCHDOG_USEC": "100000",
                        "WATCHDOG_PID": "1"})
        wait_for(lambda: _has(nt.states(), "READY=1"), 10 * SLACK,
                 what="READY=1")
        time.sleep(0.5)
        assert not _has(nt.states(), "WATCHDOG=1"), nt.states()
        assert g.stop() == 0
    finally:
        nt.close()


# ---------------------------------------------------------------------------
# socket activation

def _listening_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(128)
    return s


def test_socket_activation_and_restart_without_a_failed_request():
    d = make_docroot(FILES)
    g = Golapis(docroot=d, workers=2, start=False)
    us = _listening_unix(g.sock)
    ts = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ts.bind(("127.0.0.1", 0))
    ts.listen(128)
    tcp_port = ts.getsockname()[1]
    with open(g.conf_path, "a") as f:
        f.write("listen 127.0.0.1:%d;\n" % tcp_port)
    _spawn(g, listen=[us, ts])
    wait_for(lambda: "started, 2 workers" in g.log(), 10 * SLACK,
             what="golapis started")
    log = g.log()
    assert "using the socket passed as fd 3 for unix:%s" % g.sock in log, log
    assert "using the socket passed as fd 4 for 127.0.0.1:%d" % tcp_port \
        in log, log
    n = Nginx(g, keepalive=True)
    load = Load(n.port, "/pid.lua")
    try:
        wait_for(lambda: load.count() > 20, 10 * SLACK, what="load")
        # a restart: the listening sockets stay (we hold them, as systemd
        # does), the kernel queues what comes meanwhile
        assert g.stop() == 0
        assert os.path.exists(g.sock), "the socket file went"
        # nobody accepts for a while: the kernel queues the connections
        time.sleep(0.3)
        g2 = Golapis(docroot=d, workers=2, start=False)
        shutil.copy(g.conf_path, g2.conf_path)
        _rewrite(g2, g.error_log, g2.error_log)
        _spawn(g2, listen=[us, ts])
        before = load.count()
        wait_for(lambda: load.count() > before + 20, 10 * SLACK,
                 what="answers from the second golapis")
    finally:
        ok, failures = load.stop()
    assert not failures, failures[:5]
    assert ok > 40
    assert g2.stop() == 0
    assert os.path.exists(g.sock), "golapis removed a socket file it was given"
    us.close()
    ts.close()


def test_systemd_socket_activate():
    # systemd's own tool: it binds, passes the socket with LISTEN_FDNAMES
    g = Golapis(workers=1, start=False)
    # it passes on only the environment it is told to (-E): make
    # test-faults' wrapper needs its two variables
    argv = ["systemd-socket-activate", "-l", g.sock]
    for name in ("GL_FAULTS_BIN", "GL_FAULTS_LIB", "GOLAPIS_LUA_LIB"):
        if os.environ.get(name):
            argv += ["-E", name]
    argv += [GOLAPIS_BIN, "-c", g.conf_path]
    g._out = open(g.stdout_path, "ab")
    g._err = open(g.stderr_path, "ab")
    g.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=g._out,
                              stderr=g._err, cwd=g.dir,
                              start_new_session=True,
                              preexec_fn=_die_with_us())
    g.pid = g.proc.pid
    # it starts the program at the first connection
    wait_for(lambda: unix_connectable(g.sock), 10 * SLACK,
             what="systemd-socket-activate's socket")
    wait_for(lambda: "started, 1 workers" in g.log(), 10 * SLACK,
             what="golapis started")
    assert "using the socket passed as fd 3 for unix:%s" % g.sock \
        in g.log(), g.tail()
    n = Nginx(g)
    assert http_get(n.port, "/hello.lua")[0] == 200
    assert g.stop() == 0
    assert os.path.exists(g.sock)


# ---------------------------------------------------------------------------
# binary upgrade (SIGUSR2)

def _pid(path):
    with open(path) as f:
        return int(f.read())


def _pid_written(path):
    try:
        with open(path) as f:
            return f.read().endswith("\n")
    except FileNotFoundError:
        return False


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_upgrade_under_load_without_a_failed_request():
    d = make_docroot(FILES)
    g = Golapis(docroot=d, workers=2)
    n = Nginx(g, keepalive=True)
    old = g.pid
    oldbin = g.pid_file + ".oldbin"
    load = Load(n.port, "/pid.lua")
    try:
        wait_for(lambda: load.count() > 20, 10 * SLACK, what="load")
        g.send_signal(signal.SIGUSR2)
        # oldbin first: the old pid file is there until it is renamed
        wait_for(lambda: os.path.exists(oldbin)
                 and _pid_written(g.pid_file)
                 and _pid(g.pid_file) != old, 10 * SLACK,
                 what="the new pid file")
        new = _pid(g.pid_file)
        assert new != old and _pid(oldbin) == old
        wait_for(lambda: "%d#m: golapis/" % new in g.log(), 10 * SLACK,
                 what="the new binary started")
        # both serve; then the old one drains
        g.send_signal(signal.SIGQUIT)
        assert g.wait(15 * SLACK) == 0
        before = load.count()
        wait_for(lambda: load.count() > before + 30, 10 * SLACK,
                 what="answers from the new binary")
    finally:
        ok, failures = load.stop()
    assert not failures, failures[:5]
    log = g.log()
    assert "%d#m: using the socket passed as fd 3 for unix:%s" \
        % (new, g.sock) in log, log
    # the old one left the socket file and the new pid file
    assert os.path.exists(g.sock) and _pid(g.pid_file) == new
    assert not os.path.exists(oldbin)
    pids = {int(http_get(n.port, "/pid.lua")[2]) for _ in range(4)}
    assert old not in pids
    # and the new one, stopped, removes both
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not _alive(new), 15 * SLACK, what="the new one's end")
    assert not os.path.exists(g.sock) and not os.path.exists(g.pid_file)


def test_upgrade_new_binary_fails():
    g = Golapis(workers=1)
    n = Nginx(g)
    old = g.pid
    # the new binary will not start: its config is broken meanwhile
    with open(g.conf_path, "a") as f:
        f.write("no_such_directive;\n")
    mark = g.mark()
    g.send_signal(signal.SIGUSR2)
    wait_for(lambda: "exited with status 1: this golapis goes on"
             in g.log_since(mark), 10 * SLACK, what="the failed upgrade")
    assert _pid(g.pid_file) == old
    assert not os.path.exists(g.pid_file + ".oldbin")
    assert "unknown directive" in g.stderr(), g.stderr()
    assert http_get(n.port, "/hello.lua")[0] == 200
    assert g.stop() == 0
    assert not os.path.exists(g.sock) and not os.path.exists(g.pid_file)


def _upgraded(g, mark):
    """SIGUSR2 to g's golapis; the new binary's pid once it serves."""
    old = g.pid
    g.send_signal(signal.SIGUSR2)
    wait_for(lambda: os.path.exists(g.pid_file + ".oldbin")
             and _pid_written(g.pid_file) and _pid(g.pid_file) != old,
             10 * SLACK, what="the new pid file")
    new = _pid(g.pid_file)
    wait_for(lambda: "%d#m: golapis/" % new in g.log_since(mark)
             and "started" in g.log_since(mark).split("%d#m: golapis/"
                                                     % new)[1],
             10 * SLACK, what="the new binary started")
    return new


def test_upgrade_rolled_back():
    # docs/operations.md's roll-back: QUIT the new binary; the old one
    # goes on with its socket file, its pid file, and as the service's
    # main process (else systemd would stop the unit with it)
    nt = Notify()
    try:
        g = _spawn(Golapis(workers=1, start=False),
                   env={"NOTIFY_SOCKET": nt.path})
        wait_for(lambda: _has(nt.states(), "READY=1"), 10 * SLACK,
                 what="READY=1")
        n = Nginx(g)
        old = g.pid
        new = _upgraded(g, g.mark())
        wait_for(lambda: [x for x in _has(nt.states(), "READY=1")
                          if "MAINPID=%d" % new in x], 10 * SLACK,
                 what="the new binary's READY=1")
        mark = g.mark()
        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: "exited with status 0: this golapis goes on"
                 in g.log_since(mark), 10 * SLACK, what="the roll-back")
        assert os.path.exists(g.sock), "the new binary took the socket file"
        assert _pid(g.pid_file) == old
        assert not os.path.exists(g.pid_file + ".oldbin")
        for _ in range(3):
            assert http_get(n.port, "/hello.lua")[0] == 200
        # the new one gave the service back; the old one took it
        wait_for(lambda: "MAINPID=%d" % old in nt.states()[-1].split("\n"),
                 5 * SLACK, what="MAINPID back to the old one")
        st = nt.states()
        assert not _has(st, "STOPPING=1"), st
        back = [x for x in st if "MAINPID=%d" % old in x.split("\n")
                and "READY=1" in x.split("\n")]
        assert len(back) >= 2, st      # the first READY=1, and again now
        assert g.stop() == 0
        assert not os.path.exists(g.sock)
        wait_for(lambda: _has(nt.states(), "STOPPING=1"), 5, what="STOPPING")
    finally:
        nt.close()


def test_upgrade_new_binary_fails_with_the_sockets():
    # the new binary takes the sockets, then fails (init_by_lua raises):
    # the old one's socket file stays
    g = Golapis(workers=1)
    n = Nginx(g)
    old = g.pid
    with open(g.conf_path, "a") as f:
        f.write("init_by_lua_block { error('boom') }\n")
    mark = g.mark()
    g.send_signal(signal.SIGUSR2)
    wait_for(lambda: "exited with status 1: this golapis goes on"
             in g.log_since(mark), 10 * SLACK, what="the failed upgrade")
    assert "using the socket passed as fd 3" in g.log_since(mark), g.tail()
    assert os.path.exists(g.sock), "the failed binary took the socket file"
    assert _pid(g.pid_file) == old
    assert http_get(n.port, "/hello.lua")[0] == 200
    assert g.stop() == 0


def test_second_usr2_to_the_new_binary_ignored():
    # as nginx's: while the old binary runs, the new one starts no third
    # (which would take the .oldbin file the old one is known by)
    g = Golapis(workers=1)
    old = g.pid
    mark = g.mark()
    new = _upgraded(g, mark)
    os.kill(new, signal.SIGUSR2)
    wait_for(lambda: "SIGUSR2 ignored: the old binary (pid %d) still runs"
             % old in g.log_since(mark), 10 * SLACK, what="the warning")
    time.sleep(0.3 * SLACK)
    assert g.log_since(mark).count("#m: golapis/") == 1, g.tail()
    assert _pid(g.pid_file + ".oldbin") == old and _pid(g.pid_file) == new
    # the old one drains; the new one is on its own, and may upgrade
    g.send_signal(signal.SIGQUIT)
    assert g.wait(15 * SLACK) == 0
    assert os.path.exists(g.sock) and _pid(g.pid_file) == new
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not _alive(new), 15 * SLACK, what="the new one's end")
    assert not os.path.exists(g.sock)


def test_upgrade_leaves_a_socket_systemd_made():
    # golapis.socket made the socket file: the new binary of a SIGUSR2
    # gets it as the old one had it, not as its own to remove
    g = Golapis(workers=1, start=False)
    us = _listening_unix(g.sock)
    _spawn(g, listen=[us])
    wait_for(lambda: "started, 1 workers" in g.log(), 10 * SLACK,
             what="golapis started")
    new = _upgraded(g, g.mark())
    g.send_signal(signal.SIGQUIT)
    assert g.wait(15 * SLACK) == 0
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not _alive(new), 15 * SLACK, what="the new one's end")
    assert os.path.exists(g.sock), "the new binary removed systemd's file"
    us.close()


# ---------------------------------------------------------------------------
# the unit files

def test_units_verify():
    if shutil.which("systemd-analyze") is None:
        print("SKIPPED: no systemd-analyze here")
        return
    d = mktemp("units-")
    for name in ("golapis.service", "golapis.socket"):
        with open(os.path.join(REPO, "etc", name)) as f:
            text = f.read()
        # the paths of this tree, not of an install
        text = text.replace("/usr/local/sbin/golapis", GOLAPIS_BIN)
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    p = subprocess.run(["systemd-analyze", "verify",
                        os.path.join(d, "golapis.socket"),
                        os.path.join(d, "golapis.service")],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    mine = [l for l in out.splitlines() if "golapis" in l]
    assert p.returncode == 0 and not mine, out
