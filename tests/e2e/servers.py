"""
Real servers for the cosocket tests: Redis, Memcached, dnsmasq, a silent
UDP port, a TLS nginx (certificates made with the openssl command) and a
websocket echo server run by nginx's own lua module.

Each listens on 127.0.0.1 and a free port, lives in a temp dir under the
suite's (harness.mktemp), is registered with harness so that cleanup()
stops it at the end of the test, failed or not, and gets SIGTERM if the
test runner dies (harness._die_with_us: PR_SET_PDEATHSIG).
"""

import os
import random
import socket
import struct
import subprocess
import time

import harness
from harness import (StartError, _die_with_us, _read, _register, free_port,
                     mktemp, tcp_connectable)


def free_port_both():
    """A port free for TCP and UDP alike (dnsmasq takes both)."""
    for _ in range(50):
        p = free_port()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise StartError("no port free for both TCP and UDP")


class Server:
    """A child process in its own temp dir and session; stdout and stderr
    go to DIR/NAME.log.  ready() says when it serves."""

    name = "server"

    def __init__(self):
        self.dir = mktemp(self.name + "-")
        self.log_path = os.path.join(self.dir, self.name + ".log")
        self.proc = None

    def argv(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def start(self, timeout=10):
        self._out = open(self.log_path, "ab")
        _register(self)
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=self._out, cwd=self.dir, start_new_session=True,
            preexec_fn=_die_with_us())
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StartError("%s exited with %s at start:\n%s"
                                 % (self.name, self.proc.returncode,
                                    self.tail()))
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            if time.monotonic() > end:
                raise StartError("%s not ready in %ss:\n%s"
                                 % (self.name, timeout, self.tail()))
            time.sleep(0.02)

    def log(self):
        return _read(self.log_path)

    def tail(self, n=20):
        lines = self.log().splitlines()[-n:]
        return "\n".join(["--- %s log (%s) ---" % (self.name, self.dir)]
                         + lines)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                self.proc.kill()
            self.proc.wait(5)
        if hasattr(self, "_out"):
            self._out.close()

    stop = close


class Redis(Server):
    """redis-server on 127.0.0.1:port and the unix socket self.sock, no
    persistence."""

    name = "redis"

    def __init__(self):
        super().__init__()
        self.port = free_port()
        self.sock = os.path.join(self.dir, "redis.sock")
        self.start()

    def argv(self):
        return ["redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--unixsocket", self.sock,
                "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no",
                "--logfile", ""]

    def ready(self):
        return os.path.exists(self.sock) and self.command("PING") == b"+PONG"

    def command(self, *args):
        """One command over a fresh connection; the first reply line."""
        req = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in
            (x.encode() if isinstance(x, str) else x for x in args))
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        try:
            s.sendall(req)
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf.split(b"\r\n", 1)[0]
        finally:
            s.close()


class Memcached(Server):
    name = "memcached"

    def __init__(self):
        super().__init__()
        self.port = free_port()
        self.start()

    def argv(self):
        a = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
             "-m", "16", "-c", "256"]
        if os.geteuid() == 0:
            a += ["-u", "root"]
        return a

    def ready(self):
        return tcp_connectable(self.port)


def dns_query(port, name, qtype=1, timeout=1.0):
    """One UDP query to 127.0.0.1:port; the rcode and the answer count."""
    qid = random.randint(0, 0xffff)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    finally:
        s.close()
    rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        raise OSError("wrong DNS id")
    return flags & 0xf, ancount


class Dnsmasq(Server):
    """dnsmasq answering for `hosts` ({name: address}) only, on
    127.0.0.1:port (UDP and TCP), TTL `ttl`; everything else NXDOMAIN
    (--no-resolv: no upstream)."""

    name = "dnsmasq"

    def __init__(self, hosts, ttl=30):
        super().__init__()
        self.port = free_port_both()
        self.hosts = dict(hosts)
        self.ttl = ttl
        self.hosts_file = os.path.join(self.dir, "hosts")
        with open(self.hosts_file, "w") as f:
            for name, addr in self.hosts.items():
                f.write("%s %s\n" % (addr, name))
        os.chmod(self.dir, 0o755)
        os.chmod(self.hosts_file, 0o644)
        self.start()

    def argv(self):
        a = ["/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", "--port=%d" % self.port,
             "--listen-address=127.0.0.1", "--bind-interfaces",
             "--addn-hosts=%s" % self.hosts_file,
             "--local-ttl=%d" % self.ttl,
             # answers for these domains come from the hosts file alone:
             # NXDOMAIN for the rest (not REFUSED, as with no upstream)
             ] + ["--local=/%s/" % dom for dom in self.domains()] + [
             "--pid-file=%s" % os.path.join(self.dir, "dnsmasq.pid")]
        if os.geteuid() == 0:
            a.append("--user=root")
        return a

    def domains(self):
        return sorted(set(n.split(".", 1)[1] for n in self.hosts
                          if "." in n))

    def ready(self):
        name = next(iter(self.hosts))
        rcode, n = dns_query(self.port, name, timeout=0.2)
        return rcode == 0 and n > 0


class SilentUdp:
    """A bound UDP port that never answers (datagrams pile up unread): a
    name server that times out."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        _register(self)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# certificates

_certs = {}

CA_NAME = "golapis test CA"
TLS_NAME = "test.golapis.local"
OTHER_NAME = "other.golapis.local"


def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr))


def _key(d, name):
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt",
              "ec_paramgen_curve:P-256", "-out", name + ".key"], d)


def _signed(d, name, cn, ca, usage="serverAuth"):
    """NAME.crt for cn (CN and subjectAltName), signed by ca (NAME of a
    CA made by _ca), valid for a day, for usage (serverAuth, clientAuth)."""
    _key(d, name)
    _openssl(["req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
              "-out", name + ".csr"], d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=%s\n" % (cn, usage))
    _openssl(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
              "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
              "-sha256", "-extfile", name + ".ext", "-out", name + ".crt"], d)


def _ca(d, name, cn):
    _key(d, name)
    _openssl(["req", "-new", "-x509", "-key", name + ".key", "-subj",
              "/CN=" + cn, "-days", "2", "-sha256",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-out", name + ".crt"], d)


def certs():
    """Certificates, made once per test run: {"dir", "ca" (the CA file
    the clients trust), "test"/"other" (signed by it, for TLS_NAME and
    OTHER_NAME), "self" (self-signed, for TLS_NAME), "rogue" (TLS_NAME
    signed by a CA nobody trusts)}: each a (cert, key) pair but "ca"."""
    base = harness.base_dir()
    c = _certs.get(base)
    if c and os.path.exists(c["ca"]):
        return c
    d = mktemp("certs-")
    _ca(d, "ca", CA_NAME)
    _ca(d, "rogueca", "rogue CA")
    _signed(d, "test", TLS_NAME, "ca")
    _signed(d, "other", OTHER_NAME, "ca")
    _signed(d, "rogue", TLS_NAME, "rogueca")
    # a client certificate signed by the CA, and one nobody trusts
    _signed(d, "client", "client.golapis.local", "ca", usage="clientAuth")
    _signed(d, "rogueclient", "client.golapis.local", "rogueca",
            usage="clientAuth")
    # self-signed leaf: a certificate that is its own issuer, not a CA
    _key(d, "self")
    with open(os.path.join(d, "self.ext"), "w") as f:
        f.write("[v3]\nsubjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                % TLS_NAME)
    _openssl(["req", "-new", "-x509", "-key", "self.key", "-subj",
              "/CN=" + TLS_NAME, "-days", "2", "-sha256", "-config",
              os.path.join(d, "self.ext"), "-extensions", "v3",
              "-out", "self.crt"], d)
    c = {"dir": d, "ca": os.path.join(d, "ca.crt")}
    for n in ("test", "other", "self", "rogue", "client", "rogueclient"):
        c[n] = (os.path.join(d, n + ".crt"), os.path.join(d, n + ".key"))
    _certs[base] = c
    return c


# ---------------------------------------------------------------------------
# nginx as a TLS server and as a websocket echo server (harness.Nginx with
# the servers in its http{}: its own server{}, a FastCGI pass to nowhere,
# only tells when it is up)

TLS_BODY = ('"server=%s reused=$ssl_session_reused '
            'req=$connection_requests '
            'proto=$ssl_protocol sni=$ssl_server_name\\n"')


class TlsNginx:
    """nginx serving TLS on 127.0.0.1:
    - port: TLS_NAME (default server, cert "test") and OTHER_NAME (cert
      "other") by SNI; body "server=test|other reused=r|. proto=...
      sni=..."; GET /cipher answers "$ssl_protocol $ssl_cipher";
    - self_port: the self-signed certificate (server=self);
    - rogue_port: a certificate from an unknown CA (server=rogue);
    - tls13_port: TLSv1.3 only, the "test" certificate (server=tls13);
    - mtls_port: the "test" certificate, and a client certificate from the
      CA required: GET answers "$ssl_client_verify $ssl_client_s_dn".
    Every server has a session cache and logs $ssl_session_reused in
    self.access_log."""

    def __init__(self):
        c = self.certs = certs()
        self.port = free_port()
        self.self_port = free_port()
        self.rogue_port = free_port()
        self.tls13_port = free_port()
        self.mtls_port = free_port()
        d = mktemp("tlsnginx-")
        self.access_log = os.path.join(d, "access.log")
        common = ("ssl_session_cache shared:GLTLS:1m; "
                  "ssl_session_timeout 5m; "
                  "access_log %s gltls; " % self.access_log)

        def server(port, name, cert, label, extra="", default=False):
            return (
                "server { listen 127.0.0.1:%d ssl%s; server_name %s; "
                "ssl_certificate %s; ssl_certificate_key %s; %s %s "
                "location = /cipher { return 200 "
                "\"$ssl_protocol $ssl_cipher\\n\"; } "
                "location / { return 200 %s; } }\n"
                % (port, " default_server" if default else "", name,
                   cert[0], cert[1], common, extra, TLS_BODY % label))

        http = (
            "log_format gltls '$server_port $ssl_server_name "
            "$ssl_session_reused $ssl_protocol $request_uri';\n"
            "ssl_protocols TLSv1.2 TLSv1.3;\n"
            + server(self.port, TLS_NAME, c["test"], "test", default=True)
            + server(self.port, OTHER_NAME, c["other"], "other")
            + server(self.self_port, TLS_NAME, c["self"], "self")
            + server(self.rogue_port, TLS_NAME, c["rogue"], "rogue")
            + server(self.tls13_port, TLS_NAME, c["test"], "tls13",
                     extra="ssl_protocols TLSv1.3;")
            + "server { listen 127.0.0.1:%d ssl; server_name %s; "
              "ssl_certificate %s; ssl_certificate_key %s; "
              "ssl_verify_client on; ssl_client_certificate %s; "
              "location / { return 200 "
              "\"$ssl_client_verify $ssl_client_s_dn\\n\"; } }\n"
            % (self.mtls_port, TLS_NAME, c["test"][0], c["test"][1],
               c["ca"]))
        self.nginx = harness.Nginx(None, extra_http=http)

    def access_lines(self):
        return _read(self.access_log).splitlines()


WS_ECHO = r'''
        location = /echo {
            content_by_lua_block {
                local server = require "nginx.websocket.server"
                local wb, err = server:new{ timeout = 5000,
                                            max_payload_len = 1000000 }
                if not wb then
                    ngx.log(ngx.ERR, "websocket server: ", err)
                    return ngx.exit(400)
                end
                while true do
                    local data, typ, err = wb:recv_frame()
                    if not data then
                        return ngx.exit(444)
                    end
                    if typ == "close" then
                        wb:send_close(1000, "bye: " .. data)
                        return
                    elseif typ == "ping" then
                        wb:send_pong(data)
                    elseif typ == "text" then
                        wb:send_text("echo: " .. data)
                    elseif typ == "binary" then
                        wb:send_binary(data)
                    end
                end
            }
        }
'''


class WsEcho:
    """A websocket echo server in nginx's lua module (nginx.websocket.server)
    on 127.0.0.1:port, at /echo: text frames come back as "echo: TEXT",
    binary ones unchanged, a ping gets a pong with its payload, a close
    gets a close (1000, "bye: MSG")."""

    def __init__(self):
        self.nginx = harness.Nginx(None, lua=True, extra_server=WS_ECHO)
        self.port = self.nginx.port
