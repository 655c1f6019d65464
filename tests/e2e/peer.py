"""
A scriptable mock peer for the cosocket tests: TCP and UDP on 127.0.0.1
(free ports) and on unix sockets in a temp dir, served by threads of the
test process, stopped by close() (also from harness.cleanup(), which the
runner calls after every test, failed or not).

TCP: every connection runs a script, a line of space-separated steps.  On
the command listeners (`port`, `unix`) the script is the first line the
client sends; on a listener made by listen(script) every connection runs
that script from the start, before reading anything.  Steps:

  w:DATA   write DATA, percent-decoded ("%0d%0a" is CRLF, "%20" a space,
           "%25" a percent sign)
  b:DATA   write DATA one byte at a time, 5 ms apart (TCP_NODELAY is on)
  z:N      write N bytes of "0123456789" repeated
  s:MS     sleep MS milliseconds
  r:N      read N bytes (and drop them)
  l        read a line (and drop it)
  e        echo: write back whatever arrives, until the client's FIN,
           then close
  d        drain: read and drop everything until the client's FIN, then
           close
  n        hold the connection without reading anything until the client
           closes it (the listener's SO_RCVBUF is small, so that a client
           sending a lot fills its send buffer)
  i        write "conn N\\n", N the connection's number on this peer
  u        write the datagrams the unix datagram listener got since the
           last u, "|"-separated, and a "\\n"
  c        close gracefully: FIN, then read and drop until the client
           closes (so that unread input does not turn the close into a
           reset), then close
  x        reset: close with SO_LINGER 0 (an RST)

A script that ends without c, x, e, d or n closes as c does.

Ports and paths, also as placeholders for subst() in Lua text:
  port     @PORT@      the TCP command listener
  unix     @UNIX@      the unix stream command listener ("unix:" + path
                       is the connect() argument: @UNIXSOCK@)
  refused  @REFUSED@   a TCP port bound but not listening: connections are
                       refused
  full     @FULL@      a TCP port whose accept queue is full (listen(0),
                       never accepted, filled by the peer itself): connects
                       get no answer and time out
  udp      @UDP@       UDP: echoes each datagram, except "silent..." (no
                       answer), "twice:X" (X twice), "big:N" (N bytes of
                       "x")
  udp_refused @UDPREFUSED@  a UDP port nothing is bound to (ICMP port
                       unreachable: "connection refused")
  udp_unix @UDPUNIX@   a unix datagram socket path: keeps the datagrams
                       (answers those with a sender address as udp does)
  nofile   @NOFILE@    a unix path where nothing exists
"""

import os
import select
import socket
import struct
import tempfile
import threading
import time
import urllib.parse

import harness


def unquote(data):
    return urllib.parse.unquote_to_bytes(data)


class Peer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="peer-", dir=harness.base_dir())
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._conns = set()
        self._listeners = []
        self.accepted = 0
        self.scripts = []           # every script run, in order
        self.unix_dgrams = []
        self._unread_udata = []
        harness._register(self)
        try:
            self._start()
        except Exception:
            self.close()
            raise

    # -- setup -------------------------------------------------------------

    def _start(self):
        self.port = self._tcp_listener(None)
        self.unix = os.path.join(self.dir, "peer.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.unix)
        s.listen(128)
        self._serve(s, None)

        # refused: bound, not listening
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind(("127.0.0.1", 0))
        self.refused = self._refused.getsockname()[1]

        # full: listen(0), never accepted, its queue filled here
        self._full = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._full.bind(("127.0.0.1", 0))
        self._full.listen(0)
        self.full = self._full.getsockname()[1]
        self._fillers = []
        for _ in range(4):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.full))
            self._fillers.append(c)
        time.sleep(0.05)

        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self.udp = self._udp.getsockname()[1]
        self._spawn(self._udp_loop, self._udp, False)

        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        self.udp_refused = u.getsockname()[1]
        u.close()

        self.udp_unix = os.path.join(self.dir, "peer.dgram")
        self._udpu = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._udpu.bind(self.udp_unix)
        self._spawn(self._udp_loop, self._udpu, True)

        self.nofile = os.path.join(self.dir, "nothing-here.sock")

    def _tcp_listener(self, script, rcvbuf=4096):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # inherited by the accepted sockets: a peer that stops reading
        # stops the client soon
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        self._serve(s, script)
        return s.getsockname()[1]

    def listen(self, script):
        """A new TCP port whose every connection runs `script` at once."""
        return self._tcp_listener(script)

    def listen_unix(self, script, name=None):
        path = os.path.join(self.dir, name or "l%d.sock" % len(
            self._listeners))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(128)
        self._serve(s, script)
        return path

    def subst(self, text):
        for k, v in (("@PORT@", self.port), ("@UNIXSOCK@", "unix:" +
                                              self.unix),
                     ("@UNIX@", self.unix), ("@REFUSED@", self.refused),
                     ("@FULL@", self.full), ("@UDPUNIX@", self.udp_unix),
                     ("@UDPREFUSED@", self.udp_refused),
                     ("@UDP@", self.udp), ("@NOFILE@", self.nofile)):
            text = text.replace(k, str(v))
        return text

    # -- threads -----------------------------------------------------------

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()
        return t

    def _serve(self, lsock, script):
        self._listeners.append(lsock)
        lsock.settimeout(0.1)
        self._spawn(self._accept_loop, lsock, script)

    def _accept_loop(self, lsock, script):
        while not self._stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                n = self.accepted
                self._conns.add(c)
            self._spawn(self._conn, c, n, script)

    def _udp_loop(self, s, unix):
        s.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, addr = s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if unix:
                with self._lock:
                    self.unix_dgrams.append(data)
                    self._unread_udata.append(data)
            replies = [data]
            if data.startswith(b"silent"):
                replies = []
            elif data.startswith(b"twice:"):
                replies = [data[6:], data[6:]]
            elif data.startswith(b"big:"):
                replies = [b"x" * int(data[4:])]
            if unix and not addr:
                continue
            for r in replies:
                try:
                    s.sendto(r, addr)
                except OSError:
                    pass

    # -- a connection ------------------------------------------------------

    def _conn(self, c, n, script):
        buf = bytearray()
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) \
                if c.family == socket.AF_INET else None
            c.settimeout(0.1)
            if script is None:
                line = self._read_line(c, buf)
                if line is None:
                    return
                script = line.decode("latin-1").strip()
            with self._lock:
                self.scripts.append(script)
            self._run(c, n, script, buf)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def _recv(self, c):
        """Some bytes; b"" at EOF; None when stopping."""
        while not self._stop.is_set():
            try:
                return c.recv(65536)
            except socket.timeout:
                continue
        return None

    def _read_line(self, c, buf):
        while b"\n" not in buf:
            d = self._recv(c)
            if not d:
                return None
            buf += d
        i = buf.index(b"\n")
        line = bytes(buf[:i + 1])
        del buf[:i + 1]
        return line

    def _sleep(self, secs):
        self._stop.wait(secs)

    def _run(self, c, n, script, buf):
        for step in script.split():
            op, _, arg = step.partition(":")
            if op == "w":
                c.sendall(unquote(arg))
            elif op == "b":
                for ch in unquote(arg):
                    c.sendall(bytes([ch]))
                    self._sleep(0.005)
            elif op == "z":
                want = int(arg)
                c.sendall((b"0123456789" * (want // 10 + 1))[:want])
            elif op == "s":
                self._sleep(int(arg) / 1000.0)
            elif op == "r":
                want = int(arg)
                while len(buf) < want:
                    d = self._recv(c)
                    if not d:
                        return
                    buf += d
                del buf[:want]
            elif op == "l":
                if self._read_line(c, buf) is None:
                    return
            elif op == "i":
                c.sendall(b"conn %d\n" % n)
            elif op == "u":
                with self._lock:
                    got, self._unread_udata = self._unread_udata, []
                c.sendall(b"|".join(got) + b"\n")
            elif op == "e":
                if buf:
                    c.sendall(bytes(buf))
                    buf.clear()
                while True:
                    d = self._recv(c)
                    if not d:
                        return
                    c.sendall(d)
            elif op == "d":
                buf.clear()
                while self._recv(c):
                    pass
                return
            elif op == "n":
                self._hold_unread(c)
                return
            elif op == "x":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                return
            elif op == "c":
                break
            else:
                c.sendall(b"peer: bad step %s\n" % step.encode())
                break
        self._graceful(c)

    def _graceful(self, c):
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            return
        end = time.monotonic() + 5
        while time.monotonic() < end:
            d = self._recv(c)
            if not d:
                return

    def _hold_unread(self, c):
        p = select.poll()
        p.register(c, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        while not self._stop.is_set():
            if p.poll(100):
                return

    # -- the end -----------------------------------------------------------

    def close(self):
        self._stop.set()
        for s in (self._listeners + getattr(self, "_fillers", [])
                  + [getattr(self, n, None) for n in
                     ("_refused", "_full", "_udp", "_udpu")]):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def count_open(self):
        """How many accepted TCP connections are still open here."""
        with self._lock:
            return len(self._conns)

    def drop_all(self):
        """Closes every accepted connection from this side (a FIN)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# for the test scripts

# Lua after harness's NORM_POSITION (m()): try(f, ...) is pcall with the
# positions of files outside the docroot dropped; fmt(...) shows every
# value of a call (trailing nils too), strings quoted with control bytes
# as \NNN, so that "" and nil and a missing value all differ; q(label,
# ...) adds the line "label: fmt(...)"; peer(script) connects to the
# command port and sends the script line.
SOCK_LUA = r'''
local function try(f, ...)
    local r = { pcall(f, ...) }
    for i = 2, table.maxn(r) do r[i] = m(r[i]) end
    return unpack(r, 1, table.maxn(r))
end
local function esc(s)
    return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
        return string.format("\\%d", c:byte())
    end) .. '"'
end
local function fmt(...)
    local t = {}
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if type(v) == "string" then
            t[i] = esc(m(v))
        elseif type(v) == "number" or type(v) == "boolean" or v == nil then
            t[i] = tostring(v)
        else
            t[i] = type(v)
        end
    end
    local n = select("#", ...)
    return "[" .. n .. "]" .. (n > 0 and " " or "") .. table.concat(t, " ")
end
local function q(label, ...)
    p(label .. ": " .. fmt(...))
end
local PORT = @PORT@
local function peer(script, timeout)
    local s = ngx.socket.tcp()
    s:settimeout(timeout or 2000)
    local ok, err = s:connect("127.0.0.1", PORT)
    if not ok then return nil, "connect: " .. tostring(err) end
    if script then
        local n, err = s:send(script .. "\n")
        if not n then return nil, "send: " .. tostring(err) end
    end
    return s
end
'''


def setup(peer, files, conf="", http=""):
    """harness.ref_setup with SOCK_LUA before each script and the peer's
    placeholders filled in."""
    return harness.ref_setup(
        dict((k, peer.subst(SOCK_LUA + v)) for k, v in files.items()),
        conf, http)
