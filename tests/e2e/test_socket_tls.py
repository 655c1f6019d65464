"""
TLS on the cosockets: tcpsock:sslhandshake(reused_session, server_name,
ssl_verify) against a TLS nginx (servers.TlsNginx, certificates made with
openssl at test time), with `lua_ssl_trusted_certificate CA;
lua_ssl_verify_depth 2;` in both configurations, and lua_ssl_protocols /
lua_ssl_ciphers.

Differential: each script runs under golapis (/NAME.lua) and under the
real lua-nginx-module 0.10.23 (/ref/NAME.lua), and both must print the
same lines, which must also be the EXPECTED ones below (so a script that
fails the same way on both sides does not pass).

What upstream (0.10.23 on OpenSSL 3.0) does that the tests rely on:
- success returns the session userdata (type "cdata" under
  lua-resty-core's FFI sslhandshake), or true when reused_session is
  false;
- a verify failure is nil, "N: TEXT" with X509_verify_cert_error_string:
  "18: self-signed certificate" for a self-signed leaf,
  "21: unable to verify the first certificate" for a leaf from a CA that
  is not trusted (the server sends the leaf alone);
- a good chain for another name is nil, "certificate host mismatch";
- verify on with no server_name checks the chain only;
- the socket is closed after a failed handshake (send: nil, "closed");
- a TLS version the server refuses is nil, "handshake failed";
- the session of a first handshake, given to the next one, is resumed
  (the server sees $ssl_session_reused "r");
- under TLSv1.3 that session is taken before the server's ticket and
  never resumes: test_tls_session_reuse_tls13 does not compare it;
- a pooled TLS connection (setkeepalive) comes back with getreusedtimes
  1 and talks TLS without a new handshake; sslhandshake on it returns a
  session at once (one value, no error);
- with no lua_ssl_protocols the client offers up to TLSv1.2 (0.10.23's
  default "SSLv3 TLSv1 TLSv1.1 TLSv1.2"), so a TLSv1.3-only server fails
  the handshake.

GL_REF_ONLY=1 checks only the nginx side (no golapis started).
"""

from harness import ref_both, ref_get, ref_lines, ref_setup
import servers
import socket
import ssl
import threading
import time
from test_socket_libs import check, fill

# https_get(sock, host, path): a keep-alive GET over the socket; the body
# (Content-Length bytes) or nil, err
HTTPS = r'''
local function https_get(sock, host, path)
    local ok, err = sock:send("GET " .. (path or "/") .. " HTTP/1.1\r\nHost: "
                              .. host .. "\r\n\r\n")
    if not ok then return nil, "send: " .. err end
    local line, err = sock:receive()
    if not line then return nil, "status: " .. err end
    local len
    while true do
        local h, err = sock:receive()
        if not h then return nil, "header: " .. err end
        if h == "" then break end
        local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
        if n then len = tonumber(n) end
    end
    local body, err = sock:receive(len)
    if not body then return nil, "body: " .. err end
    return line .. " | " .. body:gsub("\n$", "")
end
local function conn(port)
    local sock = ngx.socket.tcp()
    sock:settimeout(3000)
    local ok, err = sock:connect("127.0.0.1", port)
    if not ok then p("connect failed", err) end
    return sock
end
'''


def conf_lines(t, extra=()):
    lines = ["lua_ssl_trusted_certificate %s;" % t.certs["ca"],
             "lua_ssl_verify_depth 2;"] + list(extra)
    return "\n".join(lines)


def run(script, expected, extra=(), name="tls.lua", more=None):
    """script (after HTTPS, its @PORT@s filled) as NAME, and the `more`
    scripts ({name: text}), under golapis and nginx with conf_lines(t,
    extra); NAME's lines must be `expected`.  Returns (t, g, n)."""
    t = servers.TlsNginx()
    files = {}
    for k, v in dict(more or {}, **{name: script}).items():
        files[k] = fill(HTTPS + v, port=t.port, self_port=t.self_port,
                        rogue_port=t.rogue_port, tls13_port=t.tls13_port,
                        mtls_port=t.mtls_port,
                        client_cert=t.certs["client"][0],
                        client_key=t.certs["client"][1],
                        rogue_client_cert=t.certs["rogueclient"][0],
                        rogue_client_key=t.certs["rogueclient"][1])
    c = conf_lines(t, extra)
    g, n, _ = ref_setup(files, conf=c, http=c)
    for attempt in range(20):
        try:
            out = ref_lines(n, g, "/" + name, min_lines=len(expected) - 1)
            break
        except AssertionError:
            # lua-nginx-module 0.10.23: a handshake that completes within
            # its first call (a slow client, a fast server: both CPUs busy)
            # and fails verification dies of lua-resty-core's
            # "socket.lua:244: assertion failed!" (an upstream bug, not a
            # difference): the reference request is tried again
            if attempt == 19 or "assertion failed" not in n.log():
                raise
            time.sleep(0.05)
    check(out, expected, name)
    return t, g, n


VERIFY = r'''
local s = conn(@PORT@)
local sess, err = s:sslhandshake(nil, "test.golapis.local", true)
p("verify on, right name", type(sess), err)
p("GET", https_get(s, "test.golapis.local"))
p("GET again", https_get(s, "test.golapis.local"))
p("close", s:close())

s = conn(@PORT@)
p("reused_session false", s:sslhandshake(false, "test.golapis.local", true))
p("GET", https_get(s, "test.golapis.local"))
s:close()

-- SNI picks the certificate: verifying "other" only passes with its own
s = conn(@PORT@)
sess, err = s:sslhandshake(nil, "other.golapis.local", true)
p("SNI other, verify on", type(sess), err)
p("GET", https_get(s, "other.golapis.local"))
s:close()

-- verify off: any certificate
s = conn(@SELF_PORT@)
p("self-signed, verify off", s:sslhandshake(false, "test.golapis.local"))
p("GET", https_get(s, "test.golapis.local"))
s:close()
s = conn(@ROGUE_PORT@)
p("unknown CA, verify off", s:sslhandshake(false, "test.golapis.local",
                                           false))
p("GET", https_get(s, "test.golapis.local"))
s:close()
s = conn(@PORT@)
p("wrong name, verify off", s:sslhandshake(false, "wrong.golapis.local"))
p("GET", https_get(s, "wrong.golapis.local"))
s:close()
s = conn(@PORT@)
p("no name, verify off", s:sslhandshake(false))
p("GET", https_get(s, "test.golapis.local"))
s:close()

-- verify on: the failures
s = conn(@SELF_PORT@)
p("self-signed, verify on", s:sslhandshake(nil, "test.golapis.local", true))
p("send after failure", s:send("x"))
p("close after failure", s:close())
s = conn(@ROGUE_PORT@)
p("unknown CA, verify on", s:sslhandshake(nil, "test.golapis.local", true))
-- each socket is closed before the next: lua-nginx-module 0.10.23 can
-- fail an assertion in lua-resty-core's sslhandshake when the GC
-- finalizes an abandoned one during another's handshake (seen under load)
s:close()
s = conn(@PORT@)
p("wrong name, verify on", s:sslhandshake(nil, "wrong.golapis.local", true))
p("send after failure", s:send("x"))
s:close()
s = conn(@PORT@)
p("SNI other, reused_session false", s:sslhandshake(false,
  "other.golapis.local", true))
s:close()
s = conn(@PORT@)
p("no name, verify on", s:sslhandshake(false, nil, true))
p("GET", https_get(s, "test.golapis.local"))
s:close()

-- not connected, not a session
local nc = ngx.socket.tcp()
local function try(f, ...)
    local r = { pcall(f, ...) }
    for i = 2, table.maxn(r) do r[i] = m(r[i]) end
    return unpack(r, 1, table.maxn(r))
end
p("handshake before connect",
  try(nc.sslhandshake, nc, false, "test.golapis.local"))
s = conn(@PORT@)
s:close()
done()
'''

VERIFY_EXPECTED = [
    'verify on, right name cdata nil',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'GET again HTTP/1.1 200 OK | server=test reused=. req=2 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'close 1',
    'reused_session false true',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'SNI other, verify on cdata nil',
    'GET HTTP/1.1 200 OK | server=other reused=. req=1 proto=TLSv1.2'
    ' sni=other.golapis.local',
    'self-signed, verify off true',
    'GET HTTP/1.1 200 OK | server=self reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'unknown CA, verify off true',
    'GET HTTP/1.1 200 OK | server=rogue reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'wrong name, verify off true',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=wrong.golapis.local',
    'no name, verify off true',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2 sni=',
    'self-signed, verify on nil 18: self-signed certificate',
    'send after failure nil closed',
    'close after failure nil closed',
    'unknown CA, verify on nil 21: unable to verify the first certificate',
    'wrong name, verify on nil certificate host mismatch',
    'send after failure nil closed',
    'SNI other, reused_session false true',
    'no name, verify on true',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2 sni=',
    'handshake before connect false socket is never created nor connected',
]


def test_tls_verify():
    run(VERIFY, VERIFY_EXPECTED, name="verify.lua")


SESSION = r'''
local MASK = @MASK@
local function get(sock)
    local r, err = https_get(sock, "test.golapis.local")
    if not r then return nil, err end
    if MASK then r = r:gsub("reused=[r.]", "reused=?") end
    return r
end
local s = conn(@PORT@)
local sess, err = s:sslhandshake(nil, "test.golapis.local", true)
p("first handshake", type(sess), err)
p("GET", get(s))
s:close()

s = conn(@PORT@)
local sess2, err = s:sslhandshake(sess, "test.golapis.local", true)
p("with the session", type(sess2), err)
p("GET", get(s))
s:close()

s = conn(@PORT@)
p("no session", type(s:sslhandshake(nil, "test.golapis.local", true)))
p("GET", get(s))
s:close()

-- the session a resumed handshake returned, used again
s = conn(@PORT@)
local sess3, err = s:sslhandshake(sess2, "test.golapis.local", true)
p("with the second session", type(sess3), err)
p("GET", get(s))
s:close()

-- a session and reused_session false at once is not possible: false
-- means no session back
s = conn(@PORT@)
p("session false after a session", s:sslhandshake(false,
  "test.golapis.local", true))
p("GET", get(s))
s:close()
done()
'''

SESSION_EXPECTED = [
    'first handshake cdata nil',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'with the session cdata nil',
    'GET HTTP/1.1 200 OK | server=test reused=r req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'no session cdata',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'with the second session cdata nil',
    'GET HTTP/1.1 200 OK | server=test reused=r req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'session false after a session true',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
]


def test_tls_session_reuse():
    """TLSv1.2: the session userdata of one handshake resumes the next
    (the server's $ssl_session_reused is "r")."""
    run(SESSION.replace("@MASK@", "false"), SESSION_EXPECTED,
        name="session.lua", extra=["lua_ssl_protocols TLSv1.2;"])


def test_tls_session_reuse_tls13():
    """TLSv1.3: handshakes given a session succeed.  Whether they resume
    is not compared: upstream takes the session right after the
    handshake, before the server's ticket, so under TLSv1.3 it never
    resumes (reused=. every time); golapis may do better."""
    expected = [l.replace("TLSv1.2", "TLSv1.3").replace("reused=r",
                                                        "reused=?")
                .replace("reused=.", "reused=?") for l in SESSION_EXPECTED]
    run(SESSION.replace("@MASK@", "true"), expected, name="session13.lua",
        extra=["lua_ssl_protocols TLSv1.2 TLSv1.3;"])


POOL = r'''
local s = conn(@PORT@)
local sess, err = s:sslhandshake(nil, "test.golapis.local", true)
p("handshake", type(sess), err)
p("GET", https_get(s, "test.golapis.local"))
p("setkeepalive", s:setkeepalive(10000, 4))
local s2 = conn(@PORT@)
p("reused", s2:getreusedtimes())
p("GET without a handshake", https_get(s2, "test.golapis.local"))
p("handshake on the pooled connection",
  type(s2:sslhandshake(nil, "test.golapis.local", true)))
p("GET", https_get(s2, "test.golapis.local"))
p("setkeepalive", s2:setkeepalive(10000, 4))
done()
'''

POOL_EXPECTED = [
    'handshake cdata nil',
    'GET HTTP/1.1 200 OK | server=test reused=. req=1 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'setkeepalive 1',
    'reused 1',
    'GET without a handshake HTTP/1.1 200 OK | server=test reused=. req=2'
    ' proto=TLSv1.2 sni=test.golapis.local',
    'handshake on the pooled connection cdata',
    'GET HTTP/1.1 200 OK | server=test reused=. req=3 proto=TLSv1.2'
    ' sni=test.golapis.local',
    'setkeepalive 1',
]

POOL_NEXT = r'''
local s = conn(@PORT@)
local n = s:getreusedtimes()
if n == 0 then
    local sess, err = s:sslhandshake(false, "test.golapis.local", true)
    if not sess then ngx.say("handshake: ", err) return end
end
ngx.say("reused ", n, " ", https_get(s, "test.golapis.local"))
ngx.say("setkeepalive ", s:setkeepalive(10000, 4))
'''


def test_tls_pool():
    """A pooled TLS connection, within a request and across requests: the
    same TLS connection to the server ($connection_requests goes on)."""
    t, g, n = run(POOL, POOL_EXPECTED, name="pool.lua",
                  more={"next.lua": POOL_NEXT})

    def flow(prefix):
        return [ref_get(n, prefix + "/next.lua") for _ in range(2)]
    out = ref_both(flow)
    assert out == [
        "reused 2 HTTP/1.1 200 OK | server=test reused=. req=4 proto=TLSv1.2"
        " sni=test.golapis.local\nsetkeepalive 1\n",
        "reused 3 HTTP/1.1 200 OK | server=test reused=. req=5 proto=TLSv1.2"
        " sni=test.golapis.local\nsetkeepalive 1\n"], out


PROTOCOLS = r'''
local s = conn(@PORT@)
p("handshake", type(s:sslhandshake(nil, "test.golapis.local", true)))
p("GET /cipher", https_get(s, "test.golapis.local", "/cipher"))
s:close()
s = conn(@TLS13_PORT@)
local ok, err = s:sslhandshake(false, "test.golapis.local", true)
p("TLSv1.3-only server", ok, err)
if ok then p("GET /cipher", https_get(s, "test.golapis.local", "/cipher")) end
done()
'''


def test_tls_protocols_and_ciphers():
    """lua_ssl_protocols TLSv1.2 and lua_ssl_ciphers: the server sees
    that protocol and cipher; a TLSv1.3-only server refuses."""
    run(PROTOCOLS, [
        'handshake cdata',
        'GET /cipher HTTP/1.1 200 OK | TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256',
        'TLSv1.3-only server nil handshake failed',
    ], name="proto.lua", extra=[
        "lua_ssl_protocols TLSv1.2;",
        "lua_ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;"])


def test_tls_default_protocols():
    """No lua_ssl_protocols: upstream 0.10.23's default is "SSLv3 TLSv1
    TLSv1.1 TLSv1.2", without TLSv1.3, so TLSv1.2 is negotiated and a
    TLSv1.3-only server refuses the handshake."""
    run(PROTOCOLS, [
        'handshake cdata',
        'GET /cipher HTTP/1.1 200 OK | TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384',
        'TLSv1.3-only server nil handshake failed',
    ], name="default.lua")


def test_tls13():
    """lua_ssl_protocols TLSv1.3 (and lua_ssl_ciphers, which concerns
    TLSv1.2 and below, left as it is): TLSv1.3 on both servers."""
    run(PROTOCOLS, [
        'handshake cdata',
        'GET /cipher HTTP/1.1 200 OK | TLSv1.3 TLS_AES_256_GCM_SHA384',
        'TLSv1.3-only server true nil',
        'GET /cipher HTTP/1.1 200 OK | TLSv1.3 TLS_AES_256_GCM_SHA384',
    ], name="tls13.lua", extra=[
        "lua_ssl_protocols TLSv1.3;",
        "lua_ssl_ciphers HIGH:!aNULL:!MD5;"])


for _f in (test_tls_verify, test_tls_session_reuse,
           test_tls_session_reuse_tls13, test_tls_pool,
           test_tls_protocols_and_ciphers, test_tls_default_protocols,
           test_tls13):
    _f.TIMEOUT = 30


# ---------------------------------------------------------------------------
# the lua_ssl_* directives are checked with the config (golapis -t, start)

def test_tls_directives_checked():
    import os
    from harness import golapis_cmd, mktemp
    d = mktemp("tlsconf-")
    ca = servers.certs()["ca"]
    cases = [
        ("lua_ssl_trusted_certificate %s;\nlua_ssl_verify_depth 3;\n"
         "lua_ssl_protocols TLSv1.2 TLSv1.3;\nlua_ssl_ciphers HIGH;\n" % ca,
         0, "test is successful"),
        ("lua_ssl_trusted_certificate %s/none.pem;\n" % d, 1,
         'lua ssl: SSL_CTX_load_verify_locations("%s/none.pem") failed'
         % d),
        ("lua_ssl_ciphers NOPE-NOTHING;\n", 1,
         'lua ssl: SSL_CTX_set_cipher_list("NOPE-NOTHING") failed'),
        ("lua_ssl_protocols TLSv9;\n", 1,
         'invalid value "TLSv9" in "lua_ssl_protocols"'),
        ("lua_ssl_verify_depth -1;\n", 1, "lua_ssl_verify_depth"),
        ("lua_ssl_certificate x.pem;\n", 1,
         "lua_ssl_certificate and lua_ssl_certificate_key go together"),
        ("lua_ssl_certificate %s/x.pem;\nlua_ssl_certificate_key %s;\n"
         % (d, servers.certs()["client"][1]), 1,
         'lua ssl: SSL_CTX_use_certificate_chain_file("%s/x.pem") failed'
         % d),
        ("lua_ssl_certificate %s;\nlua_ssl_certificate_key %s;\n"
         % servers.certs()["client"], 0, "test is successful"),
    ]
    for i, (lines, rc, want) in enumerate(cases):
        path = os.path.join(d, "c%d.conf" % i)
        with open(path, "w") as f:
            f.write("listen 127.0.0.1:1; document_root %s;\n" % d + lines)
        got = golapis_cmd(["-t", "-c", path])
        assert got[0] == rc and want in got[1] + got[2], (lines, got)


# ---------------------------------------------------------------------------
# client certificates: ngx.ssl's PEM parsers and tcpsock:setclientcert,
# against a server that requires a certificate from the CA

MTLS = r"""
local ssl = require "ngx.ssl"
local function read(path)
    local f = assert(io.open(path))
    local s = f:read("*a")
    f:close()
    return s
end
local cert_pem, key_pem = read("@CLIENT_CERT@"), read("@CLIENT_KEY@")
local chain, err = ssl.parse_pem_cert(cert_pem)
p("parse cert", type(chain), err)
local pkey, err2 = ssl.parse_pem_priv_key(key_pem)
p("parse key", type(pkey), err2)
p("bad cert", ssl.parse_pem_cert("nope"))
p("bad key", ssl.parse_pem_priv_key("nope"))
p("cert as key", ssl.parse_pem_priv_key(cert_pem))
-- a one-certificate PEM: the DER is its base64 body
local body = cert_pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", "")
p("der cert", ssl.cert_pem_to_der(cert_pem) == ngx.decode_base64(body))
local der_key = ssl.priv_key_pem_to_der(key_pem)
p("der key", type(der_key), #der_key > 32)
p("der bad", ssl.cert_pem_to_der("nope"))
p("der bad key", ssl.priv_key_pem_to_der("nope"))

local s = conn(@MTLS_PORT@)
p("cert only", s:setclientcert(chain))
p("key only", s:setclientcert(nil, pkey))
p("cert not cdata", s:setclientcert("x", pkey))
p("key not cdata", s:setclientcert(chain, "y"))
p("set", s:setclientcert(chain, pkey))
p("handshake", type(s:sslhandshake(nil, "test.golapis.local", true)))
p("GET", https_get(s, "test.golapis.local"))
s:close()

s = conn(@MTLS_PORT@)
s:setclientcert(chain, pkey)
p("cleared", s:setclientcert())
p("handshake without", type(s:sslhandshake(false, "test.golapis.local")))
local r = https_get(s, "test.golapis.local")
p("GET without", r and r:match("^[^|]*"))
s:close()

s = conn(@MTLS_PORT@)
s:setclientcert(assert(ssl.parse_pem_cert(read("@ROGUE_CLIENT_CERT@"))),
                assert(ssl.parse_pem_priv_key(read("@ROGUE_CLIENT_KEY@"))))
p("handshake rogue", type(s:sslhandshake(false, "test.golapis.local")))
r = https_get(s, "test.golapis.local")
p("GET rogue", r and r:match("^[^|]*"))
s:close()
done()
"""

MTLS_EXPECTED = [
    'parse cert cdata nil',
    'parse key cdata nil',
    'bad cert nil PEM_read_bio_X509_AUX() failed',
    'bad key nil PEM_read_bio_PrivateKey() failed',
    'cert as key nil PEM_read_bio_PrivateKey() failed',
    'der cert true',
    'der key string true',
    'der bad nil PEM_read_bio_X509_AUX() failed',
    'der bad key nil PEM_read_bio_PrivateKey() failed',
    'cert only nil client certificate must be supplied with corresponding'
    ' private key',
    'key only nil client certificate must be supplied with corresponding'
    ' private key',
    'cert not cdata nil bad cert arg: cdata expected, got string',
    'key not cdata nil bad pkey arg: cdata expected, got string',
    'set true',
    'handshake cdata',
    'GET HTTP/1.1 200 OK | SUCCESS CN=client.golapis.local',
    'cleared true',
    'handshake without boolean',
    'GET without HTTP/1.1 400 Bad Request ',
    'handshake rogue boolean',
    'GET rogue HTTP/1.1 400 Bad Request ',
]


def test_tls_client_certificate():
    run(MTLS, MTLS_EXPECTED, name="mtls.lua")


# lua_ssl_certificate (a directive of later lua-nginx-module versions; not
# in 0.10.23, so golapis only): the client certificate of every handshake
# that does not set its own

DEFAULT_CERT = r"""
local s = conn(@MTLS_PORT@)
p("handshake", type(s:sslhandshake(false, "test.golapis.local")))
p("GET", https_get(s, "test.golapis.local"))
s:close()
done()
"""


def test_tls_default_client_certificate():
    from harness import REF_ONLY, diff_setup, http_get
    if REF_ONLY:
        return
    t = servers.TlsNginx()
    c = conf_lines(t, ["lua_ssl_certificate %s;" % t.certs["client"][0],
                       "lua_ssl_certificate_key %s;"
                       % t.certs["client"][1]])
    g, n, _ = diff_setup({"dc.lua": fill(HTTPS + DEFAULT_CERT,
                                         mtls_port=t.mtls_port)},
                         workers=1, conf_extra=c)
    st, _, body = http_get(n.port, "/dc.lua")
    assert st == 200 and body.decode().splitlines() == [
        "handshake boolean",
        "GET HTTP/1.1 200 OK | SUCCESS CN=client.golapis.local"], (
        st, body, g.tail())


# a TLS server that closes without close_notify (as many HTTPS servers
# do): upstream (nginx sets SSL_OP_IGNORE_UNEXPECTED_EOF) reads it as
# the end of the stream, not an error
NO_CLOSE_NOTIFY = r'''
local s = ngx.socket.tcp()
s:settimeout(3000)
p("connect", s:connect("127.0.0.1", @PORT@))
p("handshake", s:sslhandshake(false, nil, false))
p("send", s:send("x"))
p("all", s:receive("*a"))
s = ngx.socket.tcp()
s:settimeout(3000)
s:connect("127.0.0.1", @PORT@)
s:sslhandshake(false, nil, false)
s:send("x")
p("line", s:receive())
p("line again", s:receive())
done()
'''


def test_tls_peer_closes_without_close_notify():
    c = servers.certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*c["test"])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    stop = threading.Event()

    def serve():
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except OSError:
                continue
            try:
                conn.settimeout(5)
                t = ctx.wrap_socket(conn, server_side=True)
                t.recv(1)
                t.sendall(b"hello\nworld")
                t.close()       # no unwrap(): no close_notify
            except (OSError, ssl.SSLError):
                conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        g, n, _ = ref_setup({"eof.lua": NO_CLOSE_NOTIFY.replace(
            "@PORT@", str(ls.getsockname()[1]))})
        out = ref_lines(n, g, "/eof.lua", min_lines=5)
    finally:
        stop.set()
        th.join(5)
        ls.close()
    check(out, ["connect 1", "handshake true", "send 1", "all hello",
                "world", "line hello", "line again nil closed world"],
          "eof.lua")
