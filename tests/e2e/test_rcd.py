"""rc.d/golapis, the FreeBSD rc.d script, run here on Linux.

The script runs as it is but for its system paths: a copy of it, made per
test, has /etc/rc.subr, /usr/sbin/daemon, /usr/local/sbin/golapis and
/var/run/golapis pointed at stand-ins for rc.subr and daemon(8)
(tests/e2e/rcd/, with rc.subr(8)'s and daemon(8)'s meaning for what the
script uses), the golapis under test and a temp dir.  Its rc.conf sets the
rest (config, log file, user).  Run as root, golapis becomes nobody, as
it would become www on FreeBSD.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import threading
import time

from harness import GOLAPIS_BIN as _GOLAPIS_BIN
from harness import (HERE, REPO, SCRIPTS, _register, base_dir, fcgi_get,
                     mktemp, sanitizer_reports, unix_connectable, wait_for)

# the binary rc.d/golapis runs: check_pidfile matches the process by it,
# so it must be the program itself, not make test-faults' wrapper script
# (which execs another path); the rc.d tests are about the script, and run
# golapis without the fault shim
GOLAPIS_BIN = os.environ.get("GL_FAULTS_BIN") or _GOLAPIS_BIN

RC_D = os.path.join(REPO, "rc.d", "golapis")
RCD = os.path.join(HERE, "rcd")

# the script's paths that the copy changes: each is there, else the test
# would not know what the script does with it
SYSTEM_PATHS = ("/etc/rc.subr", "/usr/sbin/daemon", "/usr/local/sbin/golapis",
                "/var/run/golapis")

# and the ones rc.conf changes (": ${golapis_config:=/usr/...}")
RC_CONF_VARS = ("golapis_config", "golapis_logfile")


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _pid_in(path):
    text = _read(path).split()
    return int(text[0]) if text and text[0].isdigit() else None


def _alive(pid):
    """True for a running process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rpartition(")")[2].split()[1])


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")[:-1]
    except OSError:
        return []


class RcService:
    """A copy of rc.d/golapis in a temp dir, with its rc.conf, golapis's
    config and a document root.  run(cmd) runs "golapis cmd" as service(8)
    would; close() kills whatever is still running from this dir."""

    def __init__(self, enable="YES", flags="", daemon_term=None):
        if os.geteuid() == 0:
            # golapis, once nobody, reads its config (SIGHUP) and scripts
            # and removes its socket here
            os.chmod(base_dir(), 0o711)
            self.user = "nobody"
        else:
            self.user = pwd.getpwuid(os.getuid()).pw_name
        self.dir = mktemp("rcd-")
        os.chmod(self.dir, 0o755)
        self.rundir = os.path.join(self.dir, "run", "golapis")
        self.sock = os.path.join(self.rundir, "golapis.sock")
        # /var/run itself: root's
        os.mkdir(os.path.join(self.dir, "run"), 0o755)
        self.daemon_pidfile = os.path.join(self.dir, "run", "golapis.pid")
        self.golapis_pidfile = os.path.join(self.rundir, "golapis.pid")
        self.logfile = os.path.join(self.dir, "golapis.log")
        self.conf = os.path.join(self.dir, "golapis.conf")
        self.www = os.path.join(self.dir, "www")
        self.script = os.path.join(self.dir, "golapis")
        self.seen = set()
        os.mkdir(self.www, 0o755)
        shutil.copy(os.path.join(SCRIPTS, "hello.lua"), self.www)
        with open(os.path.join(self.www, "slow.lua"), "w") as f:
            f.write('ngx.log(ngx.NOTICE, "request in flight")\n'
                    'ngx.sleep(1)\n'
                    'ngx.say("slept 1")\n')
        for name in os.listdir(self.www):
            os.chmod(os.path.join(self.www, name), 0o644)
        self.write_conf()
        with open(os.path.join(self.dir, "rc.conf"), "w") as f:
            f.write('golapis_enable="%s"\n'
                    'golapis_config="%s"\n'
                    'golapis_user="%s"\n'
                    'golapis_flags="%s"\n'
                    'golapis_logfile="%s"\n'
                    % (enable, self.conf, self.user,
                       flags.format(conf=self.conf), self.logfile))
        self.env = dict(os.environ)
        # an installed golapis: its own Lua library (nobody may not read
        # the tree's), no rc.subr $flags
        self.env.pop("GOLAPIS_LUA_LIB", None)
        self.env.pop("flags", None)
        self.env["RCD_RC_CONF"] = os.path.join(self.dir, "rc.conf")
        if daemon_term:
            self.env["RCD_DAEMON_TERM"] = daemon_term
        self.copy_script()
        _register(self)

    def write_conf(self, extra=""):
        text = ("listen unix:%s;\n"
                "workers 1;\n"
                "error_log stderr notice;\n"
                "document_root %s;\n" % (self.sock, self.www))
        if os.geteuid() == 0:
            text += "user %s;\n" % self.user
        with open(self.conf, "w") as f:
            f.write(text + extra)
        os.chmod(self.conf, 0o644)

    def copy_script(self):
        text = _read(RC_D)
        to = {
            "/etc/rc.subr": os.path.join(RCD, "rc.subr"),
            "/usr/sbin/daemon": os.path.join(RCD, "daemon"),
            "/usr/local/sbin/golapis": GOLAPIS_BIN,
            "/var/run/golapis": os.path.join(self.dir, "run", "golapis"),
        }
        code = "\n".join(line for line in text.splitlines()
                         if not line.lstrip().startswith("#"))
        for path in SYSTEM_PATHS:
            assert path in code, \
                "rc.d/golapis no longer uses %s: update this test" % path
        # nothing else of the system's may be used for real
        rest = code
        for path in SYSTEM_PATHS:
            rest = rest.replace(path, "")
        for line in rest.splitlines():
            if re.search(r"(^|[\s\"'=:])/(etc|usr|var|run|tmp)\b", line):
                m = re.match(r'\s*: \$\{(\w+):="/[^"]*"\}\s*$', line)
                assert m and m.group(1) in RC_CONF_VARS, \
                    "rc.d/golapis uses a system path this test does not " \
                    "redirect: %r" % line
        for path in SYSTEM_PATHS:
            text = text.replace(path, to[path])
        with open(self.script, "w") as f:
            f.write(text)

    def run(self, cmd, timeout=30):
        """service golapis cmd: returns (exit status, stdout + stderr)."""
        p = subprocess.run(["sh", self.script, cmd], env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, cwd="/")
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.remember()
        return p.returncode, out

    def ok(self, cmd, timeout=30):
        rc, out = self.run(cmd, timeout)
        assert rc == 0, "%s: exit status %s:\n%s" % (cmd, rc, out)
        return out

    def remember(self):
        for path in (self.daemon_pidfile, self.golapis_pidfile):
            pid = _pid_in(path)
            if pid:
                self.seen.add(pid)

    def daemon_pid(self):
        return _pid_in(self.daemon_pidfile)

    def golapis_pid(self):
        pid = _pid_in(self.golapis_pidfile)
        if pid:
            self.seen.add(pid)
        return pid

    def log(self):
        return _read(self.logfile)

    def ours(self):
        """Our pids that still run: those seen, and any process whose
        command line names this test's dir (a golapis restarted since)."""
        pids = set(p for p in self.seen if _alive(p)
                   and any(self.dir in a for a in _cmdline(p)))
        for name in os.listdir("/proc"):
            if name.isdigit() and _alive(int(name)):
                if any(self.dir in a for a in _cmdline(int(name))):
                    pids.add(int(name))
        return pids

    def wait_serving(self, timeout=10):
        wait_for(lambda: unix_connectable(self.sock), timeout,
                 what="golapis's socket %s\n%s" % (self.sock, self.log()))

    def check_log(self):
        san = sanitizer_reports(self.log())
        assert not san, "sanitizer report:\n" + "\n".join(san[:20])

    def close(self):
        # the supervisors first: they would restart golapis
        pids = self.ours()
        for pid in sorted(pids, key=lambda p: "daemon" not in
                          " ".join(_cmdline(p))):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _hello(svc):
    status, headers, body = fcgi_get(svc.sock,
                                     os.path.join(svc.www, "hello.lua"))
    assert (status, body) == (200, b"hello, world\n"), (status, body)


def _slow_request(svc):
    """Starts a request that takes a second, in a thread; returns once
    golapis runs it."""
    result = {}
    mark = len(svc.log())

    def run():
        try:
            result["resp"] = fcgi_get(svc.sock,
                                      os.path.join(svc.www, "slow.lua"),
                                      timeout=20)
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: "request in flight" in svc.log()[mark:], 10,
             what="the request to start")
    return t, result


def _assert_stopped(svc):
    assert not svc.ours(), "processes left: %s" % [
        " ".join(_cmdline(p)) for p in svc.ours()]
    for path in (svc.daemon_pidfile, svc.golapis_pidfile, svc.sock):
        assert not os.path.exists(path), "%s left behind" % path
    rc, out = svc.run("status")
    assert rc == 1 and "golapis is not running." in out, (rc, out)


def test_syntax():
    for sh in ("sh", "dash"):
        if shutil.which(sh):
            p = subprocess.run([sh, "-n", RC_D], capture_output=True)
            assert p.returncode == 0, "%s -n: %s" % (sh, p.stderr)
    if shutil.which("shellcheck"):
        # rc.subr reads the variables the script sets (SC2034)
        p = subprocess.run(["shellcheck", "-s", "sh", "-S", "warning",
                            "-e", "SC2034", RC_D], capture_output=True)
        assert p.returncode == 0, p.stdout.decode()


def test_start_status_stop():
    svc = RcService()
    out = svc.ok("start")
    assert "Performing sanity check on golapis configuration" in out, out
    assert "Starting golapis." in out, out
    svc.wait_serving()
    dpid, gpid = svc.daemon_pid(), svc.golapis_pid()
    assert dpid and gpid, "pid files: %s %s" % (dpid, gpid)
    assert _alive(dpid) and _alive(gpid)
    assert _ppid(gpid) == dpid, "golapis is not daemon(8)'s child"
    assert _cmdline(gpid) == [GOLAPIS_BIN, "-c", svc.conf], _cmdline(gpid)
    # the pid rc.subr knows is the supervisor's
    out = svc.ok("status")
    assert "golapis is running as pid %d." % dpid in out, out
    assert "itself is not running" not in out, out
    st = os.stat(svc.rundir)
    assert st.st_uid == pwd.getpwnam(svc.user).pw_uid, \
        "%s does not belong to %s" % (svc.rundir, svc.user)
    # the pid file root signals is not where that user may write
    st = os.stat(os.path.dirname(svc.daemon_pidfile))
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o022, \
        "daemon(8)'s pid file is in a directory others may write"
    _hello(svc)
    # golapis's stderr, its error_log, reached daemon(8)'s output file
    wait_for(lambda: " started, 1 workers" in svc.log(), 5,
             what="the start notice in %s" % svc.logfile)
    if os.geteuid() == 0:
        assert 'running as user "nobody"' in svc.log(), svc.log()
    rc, out = svc.run("start")
    assert rc == 1 and "already running? (pid=%d)" % dpid in out, (rc, out)

    # a graceful stop: the request in flight ends well, then both go
    t, result = _slow_request(svc)
    out = svc.ok("stop")
    assert "Stopping golapis." in out, out
    assert not _alive(gpid) and not _alive(dpid), "stop returned too soon"
    t.join(20)
    assert "error" not in result, result.get("error")
    status, headers, body = result["resp"]
    assert (status, body) == (200, b"slept 1\n"), (status, body)
    assert "shutting down gracefully" in svc.log(), svc.log()
    # golapis (nobody) could remove its socket from its directory
    _assert_stopped(svc)
    rc, out = svc.run("stop")
    assert rc == 1 and "golapis not running?" in out, (rc, out)
    svc.check_log()


def test_stop_waits_for_golapis():
    # daemon(8) of FreeBSD 13 exits as soon as it has passed TERM on: stop
    # still returns only once golapis has finished its requests
    svc = RcService(daemon_term="exit")
    svc.ok("start")
    svc.wait_serving()
    gpid = svc.golapis_pid()
    t, result = _slow_request(svc)
    svc.ok("stop")
    assert not _alive(gpid), "stop returned with golapis still running"
    t.join(20)
    assert "error" not in result, result.get("error")
    assert result["resp"][2] == b"slept 1\n", result["resp"]
    _assert_stopped(svc)


def test_reload_reopen_configtest():
    # golapis_flags go to golapis (here a harmless second -c), not to
    # daemon(8), which would take them for its own
    svc = RcService(flags="-c {conf}")
    out = svc.ok("configtest")
    assert "configuration file %s test is successful" % svc.conf in out, out
    svc.ok("start")
    svc.wait_serving()
    gpid = svc.golapis_pid()
    assert _cmdline(gpid) == [GOLAPIS_BIN, "-c", svc.conf, "-c", svc.conf], \
        _cmdline(gpid)

    out = svc.ok("reload")
    assert "Reloading golapis config files." in out, out
    wait_for(lambda: 'SIGHUP received, reloading "%s"' % svc.conf
             in svc.log(), 5, what="the reload in the log")
    assert svc.golapis_pid() == gpid and _alive(gpid)
    _hello(svc)

    # newsyslog moves the file away, then reopen: daemon(8) opens a new
    # one, and golapis's next lines go there
    os.rename(svc.logfile, svc.logfile + ".0")
    out = svc.ok("reopen")
    assert "Reopening golapis log files." in out, out
    wait_for(lambda: "error log reopened" in svc.log(), 5,
             what="golapis's reopen notice in a new %s" % svc.logfile)
    assert "error log reopened" not in _read(svc.logfile + ".0")
    assert "SIGHUP received" not in svc.log(), "reopen reloaded golapis"
    assert svc.golapis_pid() == gpid and _alive(gpid)

    # a bad config: configtest says where; reload and restart refuse it
    # and leave golapis as it was
    line = len(_read(svc.conf).splitlines()) + 1
    svc.write_conf("no_such_directive 1;\n")
    rc, out = svc.run("configtest")
    assert rc != 0, out
    assert "%s:%d:" % (svc.conf, line) in out and "test failed" in out, out
    mark = len(svc.log())
    rc, out = svc.run("reload")
    assert rc != 0 and "Reloading" not in out, (rc, out)
    rc, out = svc.run("restart")
    assert rc != 0 and "Stopping" not in out, (rc, out)
    time.sleep(0.3)
    assert "SIGHUP" not in svc.log()[mark:], svc.log()[mark:]
    assert svc.golapis_pid() == gpid and _alive(gpid)
    _hello(svc)
    # nor does it start
    svc.ok("stop")
    rc, out = svc.run("start")
    assert rc != 0 and "Starting golapis." not in out, (rc, out)
    assert svc.daemon_pid() is None

    # restart with a good one: a new golapis
    svc.write_conf()
    svc.ok("start")
    svc.wait_serving()
    gpid = svc.golapis_pid()
    out = svc.ok("restart")
    assert "Stopping golapis." in out and "Starting golapis." in out, out
    svc.wait_serving()
    assert svc.golapis_pid() != gpid and not _alive(gpid)
    _hello(svc)
    svc.ok("stop")
    _assert_stopped(svc)
    svc.check_log()


def test_restart_after_kill():
    svc = RcService()
    svc.ok("start")
    svc.wait_serving()
    dpid, gpid = svc.daemon_pid(), svc.golapis_pid()
    t0 = time.monotonic()
    os.kill(gpid, signal.SIGKILL)
    wait_for(lambda: not _alive(gpid), 5, what="golapis to die")
    out = svc.ok("status")
    assert "golapis is running as pid %d." % dpid in out, out
    if time.monotonic() - t0 < 0.9:     # daemon -r waits a second
        assert "golapis itself is not running" in out, out
    # daemon(8) starts another, which replaces the stale socket
    wait_for(lambda: svc.golapis_pid() not in (None, gpid)
             and _alive(svc.golapis_pid()), 10, what="golapis restarted")
    svc.wait_serving()
    new = svc.golapis_pid()
    assert _ppid(new) == dpid
    _hello(svc)
    assert svc.log().count(" started, 1 workers") == 2, svc.log()
    svc.ok("stop")
    assert not _alive(new) and not _alive(dpid)
    _assert_stopped(svc)
    svc.check_log()


def test_not_enabled():
    svc = RcService(enable="NO")
    rc, out = svc.run("start")
    assert rc == 0 and "Cannot 'start' golapis. Set golapis_enable to YES" \
        in out, (rc, out)
    assert svc.daemon_pid() is None and not svc.ours()
    rc, out = svc.run("reload")
    assert "Cannot 'reload' golapis" in out, (rc, out)
    svc.ok("onestart")
    svc.wait_serving()
    _hello(svc)
    # a running service stops whatever golapis_enable says
    svc.ok("stop")
    _assert_stopped(svc)
