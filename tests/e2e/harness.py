"""
The end-to-end harness: golapis and nginx in temp dirs, an HTTP client, a
FastCGI client (tests/tools/fcgi_mux), and the bookkeeping tests/run needs:
every process started here is registered, and cleanup() stops them all.

Everything listens on 127.0.0.1 or a unix socket inside a temp dir; nothing
outside the temp dirs is written.
"""

import ctypes
import ctypes.util
import errno
import http.client
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(HERE, "scripts")


def _abs_env(name, default):
    v = os.environ.get(name) or default
    return v if os.path.isabs(v) else os.path.join(REPO, v)


# our Lua modules straight from the tree (lua/), not the installed copy
os.environ.setdefault("GOLAPIS_LUA_LIB", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "lua"))
GOLAPIS_BIN = _abs_env("GOLAPIS_BIN", "objs/golapis")
BUILDDIR = _abs_env("GL_BUILDDIR", "objs")
NGINX_BIN = os.environ.get("NGINX_BIN", "nginx")
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                        use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):          # not Linux: no safety net
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _die_with_us():
    """A preexec_fn: the child gets SIGTERM when the test runner dies, so
    a runner killed by a timeout leaves no golapis or nginx behind (their
    own stop() covers every normal end).  Only for children of the main
    thread: the signal follows the thread that forked, not the process."""
    if (_prctl is None
            or threading.current_thread() is not threading.main_thread()):
        return None
    parent = os.getpid()

    def fn():
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:         # died before prctl took hold
            os.kill(os.getpid(), signal.SIGTERM)
    return fn


NGINX_MODULES = "/usr/lib/nginx/modules"

# "runtime error:" alone would match Lua's own error lines; UBSan's start
# with FILE:LINE:COL
SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|WARNING: ThreadSanitizer|LeakSanitizer|"
    r"[\w./+-]+:\d+:\d+: runtime error:|SUMMARY: UndefinedBehaviorSanitizer")

WORKER_EXIT_RE = re.compile(
    r"worker (\d+) exiting: (\d+) connections, (\d+) requests")


# ---------------------------------------------------------------------------
# bookkeeping

_base = None
_started = []          # every Golapis and Nginx since the last cleanup()
_lock = threading.Lock()


def base_dir():
    """The suite's temp dir; tests/run removes it at the end."""
    global _base
    if _base is None:
        _base = tempfile.mkdtemp(prefix="gl-e2e-")
    return _base


def mktemp(prefix="t-"):
    return tempfile.mkdtemp(prefix=prefix, dir=base_dir())


def _register(obj):
    with _lock:
        _started.append(obj)


def cleanup():
    """Stops everything still running; returns the instances started since
    the previous cleanup() (tests/run scans their logs)."""
    with _lock:
        objs = list(_started)
        _started.clear()
    for o in objs:
        try:
            o.close()
        except Exception:
            pass
    return objs


def remove_base():
    global _base
    if _base is not None:
        shutil.rmtree(_base, ignore_errors=True)
        _base = None


def sanitizer_reports(text):
    return [line for line in text.splitlines() if SANITIZER_RE.search(line)]


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_for(pred, timeout, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unix_connectable(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_connectable(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.close()
        return True
    except OSError:
        return False


def unix_conns(path):
    """How many accepted connections the listener at path has (ss -x)."""
    out = subprocess.run(["ss", "-xH", "state", "established"],
                         capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[3:4] == [path])


def make_docroot(files=None, copy_scripts=True):
    """A fresh document root: a copy of tests/e2e/scripts plus `files`
    ({relative name: text})."""
    d = mktemp("www-")
    if copy_scripts:
        for name in os.listdir(SCRIPTS):
            src = os.path.join(SCRIPTS, name)
            if os.path.isfile(src):
                shutil.copy(src, os.path.join(d, name))
    for name, text in (files or {}).items():
        p = os.path.join(d, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return d


# ---------------------------------------------------------------------------
# golapis

class StartError(AssertionError):
    pass


class Golapis:
    """golapis in a fresh temp dir.

    conf_extra is appended to the generated config; conf (a whole text)
    replaces it.  Starts at once unless start=False; wait=True waits for
    the socket to accept connections."""

    def __init__(self, conf_extra="", workers=2, log_level="info",
                 docroot=SCRIPTS, sock=None, conf=None, start=True,
                 wait=True, ready_timeout=10):
        self.dir = mktemp("golapis-")
        self.sock = sock or os.path.join(self.dir, "golapis.sock")
        self.docroot = docroot
        self.error_log = os.path.join(self.dir, "error.log")
        self.pid_file = os.path.join(self.dir, "golapis.pid")
        self.conf_path = os.path.join(self.dir, "golapis.conf")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.ready_timeout = ready_timeout
        self.proc = None
        self.returncode = None
        if conf is None:
            conf = ("listen unix:%s mode=0666;\n"
                    "workers %s;\n"
                    "error_log %s %s;\n"
                    "pid %s;\n"
                    "document_root %s;\n"
                    "%s\n") % (self.sock, workers, self.error_log, log_level,
                               self.pid_file, docroot, conf_extra)
            # as nginx's "user root;" below: as root golapis would become
            # nobody, who cannot read these 0700 temp dirs
            if os.geteuid() == 0 and not re.search(r"^\s*user\s",
                                                   conf_extra, re.M):
                conf += "user root;\n"
        with open(self.conf_path, "w") as f:
            f.write(conf)
        _register(self)
        if start:
            self.start(wait)

    def start(self, wait=True):
        if not os.access(GOLAPIS_BIN, os.X_OK):
            raise StartError("no golapis binary at %s (set GOLAPIS_BIN)"
                             % GOLAPIS_BIN)
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [GOLAPIS_BIN, "-c", self.conf_path], stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err, cwd=self.dir,
            start_new_session=True, preexec_fn=_die_with_us())
        self.pid = self.proc.pid
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        end = time.monotonic() + (timeout or self.ready_timeout)
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise StartError("golapis exited with %s at start:\n%s"
                                 % (rc, self.tail()))
            if unix_connectable(self.sock):
                return
            if time.monotonic() > end:
                raise StartError("golapis socket %s not ready in time:\n%s"
                                 % (self.sock, self.tail()))
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=10):
        """Waits for an exit that should happen by itself; returns the code."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("golapis did not exit within %ss" % timeout)
        return self.returncode

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and waits for the exit; returns the exit code (negative
        for a death by signal).  On timeout kills it and raises."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.close()
                raise AssertionError("golapis did not exit within %ss of %s"
                                     % (timeout, signal.Signals(sig).name))
        self.returncode = self.proc.returncode
        return self.returncode

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait(5)
        for f in ("_out", "_err"):
            if hasattr(self, f):
                getattr(self, f).close()

    # logs

    def log(self):
        return _read(self.error_log)

    def stderr(self):
        return _read(self.stderr_path)

    def stdout(self):
        return _read(self.stdout_path)

    def mark(self):
        return len(self.log())

    def log_since(self, mark):
        return self.log()[mark:]

    def tail(self, n=25):
        out = []
        for title, text in (("error log", self.log()),
                            ("stderr", self.stderr())):
            lines = text.splitlines()[-n:]
            if lines:
                out.append("--- golapis %s (%s) ---" % (title, self.dir))
                out.extend(lines)
        return "\n".join(out)

    def all_output(self):
        return self.log() + "\n" + self.stderr() + "\n" + self.stdout()

    def worker_exits(self):
        """{worker: (connections, requests)} from the exit notices."""
        return {int(w): (int(c), int(r))
                for w, c, r in WORKER_EXIT_RE.findall(self.log())}

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def golapis_cmd(args, timeout=10):
    """Runs the golapis binary with args; returns (rc, stdout, stderr)."""
    p = subprocess.run([GOLAPIS_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------
# nginx

class Nginx:
    """nginx (master + 1 worker, daemon off) in a temp dir, in front of a
    Golapis.  location / passes to golapis with SCRIPT_FILENAME built from
    root (= the golapis document root).  keepalive=True uses an upstream
    with keepalive 8 and fastcgi_keep_conn on.  lua=True loads the real
    lua module and adds location /ref/NAME.lua running
    content_by_lua_file ROOT/NAME.lua, for differential tests."""

    def __init__(self, golapis, keepalive=False, extra_http="",
                 extra_server="", extra_location="", lua=False, root=None,
                 start=True):
        self.golapis = golapis
        self.dir = mktemp("nginx-")
        self.port = free_port()
        self.root = root or (golapis.docroot if golapis else SCRIPTS)
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.proc = None
        d = self.dir
        sock = golapis.sock if golapis else os.path.join(d, "none.sock")
        lines = []
        if lua:
            lines.append("load_module %s/ndk_http_module.so;" % NGINX_MODULES)
            lines.append("load_module %s/ngx_http_lua_module.so;"
                         % NGINX_MODULES)
        if os.geteuid() == 0:
            lines.append("user root;")
        lines += [
            "worker_processes 1;",
            "daemon off;",
            "master_process on;",
            "pid %s/nginx.pid;" % d,
            "lock_file %s/nginx.lock;" % d,
            "error_log %s info;" % self.error_log,
            "worker_rlimit_nofile 16384;",
            "events { worker_connections 4096; }",
            "http {",
            "    access_log off;",
            "    client_body_temp_path %s/client_body;" % d,
            "    fastcgi_temp_path %s/fastcgi;" % d,
            "    proxy_temp_path %s/proxy;" % d,
            "    uwsgi_temp_path %s/uwsgi;" % d,
            "    scgi_temp_path %s/scgi;" % d,
        ]
        if keepalive:
            lines += [
                "    upstream golapis {",
                "        server unix:%s;" % sock,
                "        keepalive 8;",
                "    }",
            ]
        lines += [
            "    " + extra_http,
            "    server {",
            "        listen 127.0.0.1:%d backlog=4096;" % self.port,
            "        server_name localhost;",
            "        root %s;" % self.root,
            "        location / {",
            "            fastcgi_pass %s;" % ("golapis" if keepalive
                                              else "unix:" + sock),
        ]
        if keepalive:
            lines.append("            fastcgi_keep_conn on;")
        lines += [
            "            include %s;" % FASTCGI_PARAMS,
            "            fastcgi_param SCRIPT_FILENAME "
            "$document_root$fastcgi_script_name;",
            "            " + extra_location,
            "        }",
        ]
        if lua:
            lines += [
                "        location ~ ^/ref/(?<refscript>[^/]+\\.lua)$ {",
                "            default_type text/html;",
                "            content_by_lua_file %s/$refscript;" % self.root,
                "        }",
            ]
        lines += [
            "        " + extra_server,
            "    }",
            "}",
        ]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        _register(self)
        if start:
            self.start()

    def start(self, timeout=10):
        self._out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [NGINX_BIN, "-p", self.dir + "/", "-c", self.conf_path,
             "-e", self.error_log],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out,
            cwd=self.dir, start_new_session=True,
            preexec_fn=_die_with_us())
        end = time.monotonic() + timeout
        while not tcp_connectable(self.port):
            if self.proc.poll() is not None:
                raise StartError("nginx exited with %s at start:\n%s"
                                 % (self.proc.returncode, self.tail()))
            if time.monotonic() > end:
                raise StartError("nginx not listening in time:\n"
                                 + self.tail())
            time.sleep(0.02)
        return self

    def log(self):
        return _read(self.error_log)

    def tail(self, n=15):
        text = (self.log() + _read(os.path.join(self.dir, "stdout.log")))
        lines = text.splitlines()[-n:]
        return "\n".join(["--- nginx error log (%s) ---" % self.dir] + lines)

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.close()

    def close(self):
        if self.proc is not None:
            # the worker is in the master's process group; a killed master
            # would leave it serving
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            if self.proc.poll() is None:
                self.proc.wait(5)
        if hasattr(self, "_out"):
            self._out.close()

    def get(self, path, **kw):
        return http_get(self.port, path, **kw)


# ---------------------------------------------------------------------------
# http

_kept = threading.local()


def http_get(port, path, keepalive=False, method="GET", body=None,
             headers=None, timeout=30):
    """One request to 127.0.0.1:port; returns (status, headers, body).
    headers is an http.client.HTTPMessage (case-insensitive .get()).
    keepalive=True reuses this thread's connection to that port."""
    hdrs = dict(headers or {})
    conn = None
    if keepalive:
        conns = getattr(_kept, "conns", None)
        if conns is None:
            conns = _kept.conns = {}
        conn = conns.get(port)
        if conn is None:
            conn = conns[port] = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        hdrs.setdefault("Connection", "close")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    except Exception:
        if keepalive:
            _kept.conns.pop(port, None)
        conn.close()
        raise
    finally:
        if not keepalive:
            conn.close()


def close_kept():
    for c in getattr(_kept, "conns", {}).values():
        c.close()
    _kept.conns = {}


def parallel_http(port, paths, timeout=30, method="GET"):
    """Fires one HTTP/1.0 request per path at once, each on its own
    connection, with a selector; returns [(status, body) or
    (None, error)] in order, and the seconds it all took."""
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    results = [None] * len(paths)
    state = {}
    for i, path in enumerate(paths):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            results[i] = (None, os.strerror(err))
            s.close()
            continue
        req = ("%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n"
               % (method, path)).encode()
        state[s] = [i, req, bytearray()]
        sel.register(s, selectors.EVENT_WRITE)
    end = start + timeout
    while state:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, ev in sel.select(min(left, 1.0)):
            s = key.fileobj
            i, req, buf = state[s]
            try:
                if ev & selectors.EVENT_WRITE:
                    n = s.send(req)
                    state[s][1] = req = req[n:]
                    if not req:
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                results[i] = (None, str(e))
                chunk = None
            if chunk:
                buf += chunk
                continue
            if results[i] is None:
                results[i] = _parse_http(bytes(buf))
            sel.unregister(s)
            s.close()
            del state[s]
    for s, (i, _, _) in state.items():
        results[i] = (None, "timeout")
        sel.unregister(s)
        s.close()
    sel.close()
    return results, time.monotonic() - start


def _parse_http(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return (None, "incomplete response: %r" % raw[:200])
    try:
        status = int(head.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return (None, "bad status line: %r" % head[:200])
    return (status, body)


# ---------------------------------------------------------------------------
# fastcgi, through tests/tools/fcgi_mux

_mux_path = None


def fcgi_mux_bin():
    """The fcgi_mux tool: the built one, else compiled here once."""
    global _mux_path
    if _mux_path:
        return _mux_path
    src = os.path.join(REPO, "tests", "tools", "fcgi_mux.c")
    built = os.path.join(BUILDDIR, "tests", "tools", "fcgi_mux")
    if (os.access(built, os.X_OK)
            and os.path.getmtime(built) >= os.path.getmtime(src)):
        _mux_path = built
        return built
    out = os.path.join(mktemp("tools-"), "fcgi_mux")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-o", out, src],
                   check=True)
    _mux_path = out
    return out


class MuxResult:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.raw = out
        self.stderr = err.decode("utf-8", "replace")
        self.events = []            # the arrival-order lines
        self.responses = {}         # id -> dict
        self.final = None           # closed | timeout | done
        pos = 0
        while pos < len(out):
            nl = out.find(b"\n", pos)
            if nl < 0:
                nl = len(out)
            line = out[pos:nl].decode("utf-8", "replace")
            pos = nl + 1
            if line.startswith("response "):
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                n_out, n_err = int(kv["stdout"]), int(kv["stderr"])
                r = {"ended": kv["ended"] == "1",
                     "app_status": int(kv["app_status"]),
                     "protocol_status": int(kv["protocol_status"]),
                     "stdout": out[pos:pos + n_out],
                     "stderr": out[pos + n_out:pos + n_out + n_err]}
                pos += n_out + n_err
                self.responses[int(kv["id"])] = r
            elif line in ("closed", "timeout", "done"):
                self.final = line
            elif line:
                self.events.append(line)

    def values(self):
        return dict(e[len("value "):].split("=", 1)
                    for e in self.events if e.startswith("value "))

    def http(self, rid=1):
        """(status, headers, body) of request rid's CGI response."""
        return parse_cgi(self.responses[rid]["stdout"])

    def __repr__(self):
        return ("MuxResult(rc=%s, final=%s, events=%s, responses=%s, "
                "stderr=%r)" % (self.rc, self.final, self.events,
                                {k: (v["ended"], v["stdout"][:300])
                                 for k, v in self.responses.items()},
                                self.stderr))


def mux_args(sock, args, timeout):
    return [fcgi_mux_bin(), "-s", sock, "-t", str(timeout)] + list(args)


def mux(sock, args, timeout=10, input=None):
    """Runs fcgi_mux -s sock ARGS; returns a MuxResult."""
    p = subprocess.run(mux_args(sock, args, timeout), input=input,
                       capture_output=True, timeout=timeout + 20)
    return MuxResult(p.returncode, p.stdout, p.stderr)


def mux_start(sock, args, timeout=10):
    return subprocess.Popen(mux_args(sock, args, timeout),
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def mux_finish(p, timeout=30):
    out, err = p.communicate(timeout=timeout)
    return MuxResult(p.returncode, out, err)


def parse_cgi(data):
    """A CGI response (headers, blank line, body) -> (status, {lowercase
    name: value}, body).  Status defaults to 200."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            head, body = data[:i], data[i + len(sep):]
            break
    else:
        raise AssertionError("no header/body separator in %r" % data[:300])
    headers = {}
    for line in head.decode("latin-1").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    status = 200
    if "status" in headers:
        status = int(headers["status"].split()[0])
    return status, headers, body


def fcgi_get(sock, script, params=None, timeout=10, extra=()):
    """One request straight to golapis; returns (status, headers, body)."""
    args = ["-r", "-f", script]
    for k, v in (params or {}).items():
        args += ["-p", "%s=%s" % (k, v)]
    r = mux(sock, args + list(extra), timeout=timeout)
    assert r.rc == 0 and 1 in r.responses and r.responses[1]["ended"], \
        "fcgi request for %s failed: %r" % (script, r)
    return r.http(1)


def expect_hello(port, path="/hello.lua", **kw):
    status, headers, body = http_get(port, path, **kw)
    assert status == 200, "hello: status %s, body %r" % (status, body[:300])
    assert body == b"hello, world\n", "hello: body %r" % body[:300]
    return headers


# ---------------------------------------------------------------------------
# differential tests: the same script through golapis (/NAME.lua) and
# through the real lua-nginx-module (/ref/NAME.lua, Nginx(..., lua=True))

# added by nginx itself or hop-by-hop: not the script's doing
HOP_HEADERS = ("date", "server", "connection", "transfer-encoding",
               "content-length", "keep-alive")

FOOTER_RE = re.compile(rb"<hr><center>[^<]*</center>")


def norm_footer(body):
    """An error page with its server footer ("nginx/1.22.1" from nginx,
    "golapis" from golapis) replaced by a placeholder."""
    return FOOTER_RE.sub(b"<hr><center>SERVER</center>", body)


def norm_ref(body):
    """A /ref/ response's body with "/ref/" made "/" (the URI differs by
    that prefix) and the error page footer neutralized."""
    return norm_footer(body.replace(b"/ref/", b"/"))


def header_list(headers, skip=HOP_HEADERS):
    """[(name, value)] of an http.client message, without the `skip`
    names (lowercase), sorted by lowercase name (values of one name keep
    their order); names keep their case, as a script set them."""
    out = [(k, v) for k, v in headers.items() if k.lower() not in skip]
    return sorted(out, key=lambda kv: kv[0].lower())


def http_raw(port, data, timeout=30):
    """Sends the bytes `data` (a whole HTTP request, which should say
    "Connection: close") to 127.0.0.1:port; returns (status, headers,
    body) like http_get.  For requests http.client cannot make: repeated
    headers, HTTP/1.0, odd request lines."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        return resp.status, resp.headers, body
    finally:
        s.close()


def http_pair(port, path, raw=None, **kw):
    """(golapis, ref) results of the same request to PATH and to
    /ref + PATH; with raw (bytes containing "{PATH}") the request is sent
    with http_raw instead, PATH substituted."""
    return (_http_one(port, path, raw, kw),
            _http_one(port, "/ref" + path, raw, kw))


def _http_one(port, path, raw, kw):
    if raw is not None:
        return http_raw(port, raw.replace(b"{PATH}", path.encode()),
                        timeout=kw.get("timeout", 30))
    return http_get(port, path, **kw)


def assert_same(port, path, check_headers=(), all_headers=False,
                norm=None, ref_status=None, raw=None, **kw):
    """Requests PATH from golapis and /ref + PATH from lua-nginx-module and
    asserts the same status, the same body (the ref body through norm_ref,
    both through `norm` when given), and the same values of the header
    names in `check_headers` (every header but HOP_HEADERS with
    all_headers); kw goes to http_get (method, body, headers, ...).
    ref_status, when given, is checked first, so that a script that fails
    both ways does not pass.  Returns (golapis result, ref result).
    With GL_REF_ONLY=1 in the environment only the ref side is checked
    (and returned as both), to try a new test's expectations against
    lua-nginx-module before golapis has the feature."""
    ref_only = os.environ.get("GL_REF_ONLY")
    rs, rh, rb = _http_one(port, "/ref" + path, raw, kw)
    if not ref_only:
        gs, gh, gb = _http_one(port, path, raw, kw)
    else:
        gs, gh, gb = rs, rh, rb
    rb = norm_ref(rb)
    gb = norm_footer(gb)
    if norm is not None:
        gb, rb = norm(gb), norm(rb)
    if ref_status is not None:
        assert rs == ref_status, ("%s: the ref status is %s, not %s; "
                                  "body %r" % (path, rs, ref_status, rb))
    if ref_only:
        # checking a test's expectations against lua-nginx-module alone
        return (rs, rh, rb), (rs, rh, rb)
    assert gs == rs, ("%s: status golapis %s, ref %s\ngolapis body: %r\n"
                      "ref body: %r" % (path, gs, rs, gb[:2000], rb[:2000]))
    assert gb == rb, _body_diff(path, gb, rb)
    if all_headers:
        gl, rl = header_list(gh), header_list(rh)
        assert gl == rl, "%s: headers\ngolapis %r\nref     %r" % (path, gl,
                                                                 rl)
    for name in check_headers:
        gv, rv = gh.get_all(name), rh.get_all(name)
        assert gv == rv, ("%s: header %s: golapis %r, ref %r"
                          % (path, name, gv, rv))
    return (gs, gh, gb), (rs, rh, rb)


def _body_diff(path, gb, rb):
    gl, rl = gb.split(b"\n"), rb.split(b"\n")
    lines = ["%s: bodies differ (golapis vs ref)" % path]
    for i in range(max(len(gl), len(rl))):
        a = gl[i] if i < len(gl) else None
        b = rl[i] if i < len(rl) else None
        if a != b:
            lines.append("  line %d:\n    golapis %r\n    ref     %r"
                         % (i + 1, a, b))
    return "\n".join(lines[:40])


def ok_pair(port, path, g=None, timeout=30):
    """GET PATH from golapis and /ref + PATH from lua-nginx-module, both
    of which must answer 200 (the reference first, so that a script that
    fails both ways does not pass); returns (golapis body, ref body)."""
    rst, _, ref = http_get(port, "/ref" + path, timeout=timeout)
    assert rst == 200, "%s: reference status %s: %r" % (path, rst,
                                                        ref[:500])
    st, _, ours = http_get(port, path, timeout=timeout)
    assert st == 200, "%s: status %s: %r\n%s" % (
        path, st, ours[:500], g.tail() if g is not None else "")
    return ours, ref


def diff_lines(port, path, g=None, min_lines=10, timeout=30):
    """ok_pair(), then the two bodies must agree line by line and have
    more than min_lines lines (so that a script that stops early on both
    sides does not pass); returns golapis's lines."""
    ours, ref = ok_pair(port, path, g, timeout)
    ol = ours.decode("latin-1").split("\n")
    rl = ref.decode("latin-1").split("\n")
    diffs = []
    for i in range(max(len(ol), len(rl))):
        a = ol[i] if i < len(ol) else "<missing>"
        b = rl[i] if i < len(rl) else "<missing>"
        if a != b:
            diffs.append("  line %d:\n    golapis: %s\n    nginx:   %s"
                         % (i + 1, a[:400], b[:400]))
    assert not diffs, "%s: %d of %d lines differ:\n%s" % (
        path, len(diffs), len(rl), "\n".join(diffs[:40]))
    assert len(rl) > min_lines, (path, ref[:500])
    return ol


def http_timed(port, path, headers=None, method="GET", timeout=30):
    """One HTTP/1.1 request (Connection: close) on a raw socket, read
    until the server closes; returns (raw response bytes, [(seconds since
    the request was sent, total bytes received by then)]), to see when
    each part of a streamed response arrived."""
    hdrs = {"Host": "localhost", "Connection": "close"}
    hdrs.update(headers or {})
    req = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()))
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw = bytearray()
    events = []
    try:
        s.sendall(req.encode())
        t0 = time.monotonic()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
            events.append((time.monotonic() - t0, len(raw)))
    finally:
        s.close()
    return bytes(raw), events


def arrival(raw, events, marker):
    """When (seconds, from http_timed's events) the bytes `marker` had
    fully arrived; None if they never did."""
    i = raw.find(marker)
    if i < 0:
        return None
    for t, n in events:
        if n >= i + len(marker):
            return t
    return None


# Lua for test scripts that print many checks in one response: p(...)
# adds a line (tables shown with sorted keys, strings in them quoted),
# done() prints them all.
LUA_PRELUDE = r'''
local _out = {}
local function show(v, top)
    if type(v) == "string" then
        return top and v or string.format("%q", v)
    end
    if type(v) ~= "table" then
        return tostring(v)
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
        if type(a) == type(b)
           and (type(a) == "number" or type(a) == "string")
        then
            return a < b
        end
        return type(a) < type(b)
    end)
    local o = {}
    for _, k in ipairs(keys) do
        o[#o + 1] = show(k) .. "=" .. show(v[k])
    end
    return "{" .. table.concat(o, ",") .. "}"
end
local function p(...)
    local x = {...}
    for i = 1, select("#", ...) do x[i] = show(x[i], true) end
    _out[#_out + 1] = table.concat(x, " ", 1, select("#", ...))
end
local function done()
    ngx.say(table.concat(_out, "\n"))
end
'''


def diff_setup(files, nginx_kw=None, **golapis_kw):
    """For differential tests: a fresh docroot holding `files` ({name:
    Lua text}, each after LUA_PRELUDE, "@DIR@" replaced by the docroot's
    path), a Golapis on it (golapis_kw) and an Nginx with the ref
    location (nginx_kw).  Returns (golapis, nginx, docroot)."""
    d = make_docroot(copy_scripts=False)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(LUA_PRELUDE + text.replace("@DIR@", d))
    g = Golapis(docroot=d, **golapis_kw)
    n = Nginx(g, lua=True, **(nginx_kw or {}))
    return g, n, d


# Differential tests that GL_REF_ONLY=1 can run against lua-nginx-module
# alone (no golapis started), to try their expectations first.

REF_ONLY = bool(os.environ.get("GL_REF_ONLY"))

# Lua for such scripts: m(v) drops the "FILE.lua:N: " position of an error
# raised in a file outside the docroot (lua-resty-core's files and
# golapis's lua/ are not the same files); positions in the scripts stay
NORM_POSITION = r'''
local DIR = "@DIR@"
local function m(v)
    if type(v) ~= "string" or v:sub(1, #DIR) == DIR then return v end
    return (v:gsub("^[^%s:]+%.lua:%d+: ", ""))
end
'''


def ref_setup(files, conf="", http="", prelude=NORM_POSITION):
    """diff_setup with workers=1 and `prelude` before each file, `conf`
    for golapis and `http` for nginx's http{}; with GL_REF_ONLY only the
    nginx (golapis None)."""
    files = dict((k, prelude + v) for k, v in files.items())
    if not REF_ONLY:
        return diff_setup(files, workers=1, conf_extra=conf,
                          nginx_kw={"extra_http": http})
    d = make_docroot(copy_scripts=False)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(LUA_PRELUDE + text.replace("@DIR@", d))
    return None, Nginx(None, lua=True, root=d, extra_http=http), d


def ref_lines(n, g, path, min_lines):
    """diff_lines, or the ref's lines alone with GL_REF_ONLY."""
    if not REF_ONLY:
        return diff_lines(n.port, path, g, min_lines=min_lines)
    st, _, body = http_get(n.port, "/ref" + path)
    assert st == 200, (st, body[:500])
    out = body.decode("latin-1").split("\n")
    assert len(out) > min_lines, out
    return out


def ref_get(n, path):
    """The body of a 200 answer to PATH, as text."""
    st, _, body = http_get(n.port, path, timeout=20)
    assert st == 200, (path, st, body[:500])
    return body.decode("latin-1")


def ref_both(flow):
    """Runs flow(prefix) for nginx ("/ref") then golapis (""), each
    returning a list of response bodies; asserts they are equal; returns
    the ref's (alone with GL_REF_ONLY)."""
    ref = flow("/ref")
    if REF_ONLY:
        return ref
    ours = flow("")
    assert ours == ref, "golapis:\n%r\nnginx:\n%r" % (ours, ref)
    return ref
