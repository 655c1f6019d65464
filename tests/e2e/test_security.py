"""Privileges and exposure (docs/security.md): user, listen owner=/group=,
allow/deny, script_extensions, impossible SCRIPT_FILENAMEs, the required
document_root.

The user tests need root (the CI runs as root); as anyone else they print
a loud SKIPPED and return."""

import grp
import os
import pwd
import re
import signal
import socket
import stat
import struct
import time

from harness import (Golapis, Nginx, base_dir, fcgi_get, free_port,
                     golapis_cmd, make_docroot, mktemp, mux, parse_cgi,
                     wait_for)


def _root():
    if os.geteuid() == 0:
        return True
    print("SKIPPED: needs root (golapis can only drop privileges as root)")
    return False


def _ids(path):
    """{"Uid": [real, effective, saved, fs], "Gid": [...], "Groups": [...]}
    of a /proc/.../status file."""
    ids = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                ids[k] = [int(x) for x in v.split()]
    return ids


def _conf_t(text):
    d = mktemp("conf-")
    path = os.path.join(d, "golapis.conf")
    with open(path, "w") as f:
        f.write(text % {"d": d})
    rc, out, err = golapis_cmd(["-t", "-c", path])
    return rc, out + err


# ---------------------------------------------------------------------------
# user

WHOAMI = """
local f = assert(io.open("/proc/self/status"))
for line in f:lines() do
    if line:match("^Uid:") or line:match("^Gid:") then ngx.say(line) end
end
f:close()
"""


def test_user_nobody():
    if not _root():
        return
    nobody = pwd.getpwnam("nobody")
    # nobody must reach the docroot, and write where the socket and the
    # pid file are, to remove them at exit
    os.chmod(base_dir(), 0o711)
    www = make_docroot({"whoami.lua": WHOAMI})
    os.chmod(www, 0o755)
    g = Golapis("user nobody;", docroot=www, start=False)
    os.chmod(g.dir, 0o755)
    os.chown(g.dir, nobody.pw_uid, nobody.pw_gid)
    g.start()

    # the workers are threads (the socket accepts before they all run)
    wait_for(lambda: len(os.listdir("/proc/%d/task" % g.pid)) > 2, 10,
             what="the worker threads")
    tasks = os.listdir("/proc/%d/task" % g.pid)
    for t in tasks:
        ids = _ids("/proc/%d/task/%s/status" % (g.pid, t))
        assert ids["Uid"] == [nobody.pw_uid] * 4, (t, ids)
        assert ids["Gid"] == [nobody.pw_gid] * 4, (t, ids)
        assert 0 not in ids["Groups"], (t, ids)

    st = os.stat(g.sock)
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), st

    n = Nginx(g)
    status, _, body = n.get("/whoami.lua")
    assert status == 200, (status, body)
    lines = body.decode().splitlines()
    assert [int(x) for x in lines[0].split()[1:]] == [nobody.pw_uid] * 4, \
        lines
    assert [int(x) for x in lines[1].split()[1:]] == [nobody.pw_gid] * 4, \
        lines
    status, _, body = n.get("/hello.lua")
    assert (status, body) == (200, b"hello, world\n"), (status, body)
    assert 'running as user "nobody"' in g.log(), g.tail()

    assert g.stop() == 0, g.tail()
    assert not os.path.exists(g.sock), "the socket file is still there"
    assert not os.path.exists(g.pid_file), "the pid file is still there"


def test_symlinks_in_the_users_directory():
    # golapis starts as root and opens its logs and pid file before it
    # becomes "user", in a directory that user owns: symlinks the user
    # (a compromised script) put there must not have root write to, or
    # give away, other files (nginx's CVE-2016-1247)
    if not _root():
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(base_dir(), 0o711)
    d = mktemp("userdir-")
    os.chmod(d, 0o755)
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    victims = {}
    for name in ("error.log", "golapis.pid", "access.log"):
        v = os.path.join(mktemp("victim-"), "secret")
        with open(v, "w") as f:
            f.write("root's own\n")
        os.chmod(v, 0o600)
        os.symlink(v, os.path.join(d, name))
        victims[name] = v
    www = make_docroot()
    os.chmod(www, 0o755)
    for name in victims:
        conf = ("listen unix:%s/s.sock;\nuser nobody;\ndocument_root %s;\n"
                "error_log %s;\n" % (d, www, os.path.join(d, "error.log")
                                    if name == "error.log"
                                    else os.path.join(d, "ok.log")))
        if name == "golapis.pid":
            conf += "pid %s/golapis.pid;\n" % d
        if name == "access.log":
            conf += "access_log %s/access.log;\n" % d
        path = os.path.join(mktemp("conf-"), "golapis.conf")
        with open(path, "w") as f:
            f.write(conf)
        rc, out, err = golapis_cmd(["-c", path], timeout=20)
        assert rc == 1, (name, rc, out, err)
        assert "Too many levels of symbolic links" in err + out + \
            _read_or_empty(os.path.join(d, "ok.log")), (name, out, err)
        for v in victims.values():
            st = os.stat(v)
            with open(v) as f:
                assert f.read() == "root's own\n", (name, v)
            assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, \
                (name, v, st)
    # a symlink where only root could have put it (/dev/stderr) is fine
    g = Golapis("user nobody;", docroot=www, start=False)
    os.chmod(g.dir, 0o755)
    os.chown(g.dir, nobody.pw_uid, nobody.pw_gid)
    with open(g.conf_path) as f:
        text = f.read()
    with open(g.conf_path, "w") as f:
        f.write(text.replace("error_log %s" % g.error_log,
                             "error_log /dev/stderr"))
    g.start()
    assert g.stop() == 0


def _read_or_empty(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_user_group():
    if not _root():
        return
    nogroup = grp.getgrgid(pwd.getpwnam("nobody").pw_gid)
    other = next(g for g in grp.getgrall()
                 if g.gr_gid not in (0, nogroup.gr_gid))
    os.chmod(base_dir(), 0o711)
    g = Golapis("user nobody %s;" % other.gr_name, start=False)
    os.chmod(g.dir, 0o777)
    g.start()
    ids = _ids("/proc/%d/status" % g.pid)
    assert ids["Gid"] == [other.gr_gid] * 4, ids
    assert g.stop() == 0, g.tail()
    assert not os.path.exists(g.sock)


def test_user_unknown():
    rc, out = _conf_t("listen unix:%(d)s/s.sock;\ndocument_root %(d)s;\n"
                      "user no_such_user_gl;\n")
    assert rc == 1 and 'unknown user "no_such_user_gl"' in out, out
    rc, out = _conf_t("listen unix:%(d)s/s.sock;\ndocument_root %(d)s;\n"
                      "user nobody no_such_group_gl;\n")
    assert rc == 1 and 'unknown group "no_such_group_gl"' in out, out
    rc, out = _conf_t("listen unix:%(d)s/s.sock owner=no_such_user_gl;\n"
                      "document_root %(d)s;\n")
    assert rc == 1 and 'unknown user "no_such_user_gl"' in out, out
    rc, out = _conf_t("listen unix:%(d)s/s.sock group=no_such_group_gl;\n"
                      "document_root %(d)s;\n")
    assert rc == 1 and 'unknown group "no_such_group_gl"' in out, out
    rc, out = _conf_t("listen 127.0.0.1:9 owner=nobody;\n"
                      "document_root %(d)s;\n")
    assert rc == 1 and "invalid parameter" in out, out


def test_user_reload_warns():
    me = pwd.getpwuid(os.geteuid()).pw_name
    g = Golapis("user %s;" % me)
    with open(g.conf_path) as f:
        text = f.read()
    with open(g.conf_path, "w") as f:
        f.write(text.replace("user %s;" % me, "user nobody;"))
    mark = g.mark()
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: '"user" changes need a restart' in g.log_since(mark),
             10, what="the user warning")
    assert _ids("/proc/%d/status" % g.pid)["Uid"][0] == os.geteuid()


# ---------------------------------------------------------------------------
# listen owner= group=

def test_listen_owner_group():
    if os.geteuid() == 0:
        owner = pwd.getpwnam("nobody")
        group = next(g for g in grp.getgrall() if g.gr_gid != 0)
    else:
        owner = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid())
    d = mktemp("sock-")
    sock = os.path.join(d, "owned.sock")
    g = Golapis("listen unix:%s mode=0660 owner=%s group=%s;"
                % (sock, owner.pw_name, group.gr_name))
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode), st
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == owner.pw_uid, (st.st_uid, owner)
    assert st.st_gid == group.gr_gid, (st.st_gid, group)
    status, _, body = fcgi_get(sock, os.path.join(g.docroot, "hello.lua"))
    assert (status, body) == (200, b"hello, world\n"), (status, body)
    assert g.stop() == 0
    assert not os.path.exists(sock)


# ---------------------------------------------------------------------------
# allow / deny

def _tcp(rules):
    port = free_port()
    g = Golapis("listen 127.0.0.1:%d;\n%s" % (port, rules))
    return g, port


def _tcp_hello(g, port):
    r = mux("127.0.0.1:%d" % port,
            ["-r", "-f", os.path.join(g.docroot, "hello.lua")], timeout=5)
    if 1 in r.responses and r.responses[1]["ended"]:
        return r.http(1)
    return None


def _closed_at_once(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.settimeout(0.5)
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
    finally:
        s.close()


def test_allow_deny():
    for rules in ("allow 127.0.0.1;\ndeny all;",
                  "deny 10.0.0.0/8;\nallow 127.0.0.0/8;\ndeny all;",
                  "deny ::1;\ndeny 127.0.0.2;\n",
                  "allow 127.0.0.1/32;\ndeny 127.0.0.1;"):
        g, port = _tcp(rules)
        got = _tcp_hello(g, port)
        assert got is not None and got[0] == 200, (rules, got, g.tail())
        assert not _closed_at_once(port), rules
        g.stop()

    for rules in ("deny 127.0.0.1;\nallow all;",
                  "allow 10.0.0.0/8;\ndeny all;",
                  "deny 127.0.0.0/8;",
                  "allow ::/0;\ndeny 0.0.0.0/0;\nallow all;",
                  "deny all;\nallow 127.0.0.1;"):
        g, port = _tcp(rules)
        mark = g.mark()
        assert _closed_at_once(port), rules
        assert _tcp_hello(g, port) is None, rules
        wait_for(lambda: "access forbidden by rule, client 127.0.0.1"
                 in g.log_since(mark), 5, what="the deny line")
        # the unix socket has its file permissions, not the rules
        status, _, _ = fcgi_get(g.sock, os.path.join(g.docroot, "hello.lua"))
        assert status == 200, rules
        g.stop()


def test_allow_deny_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        port = s.getsockname()[1]
        s.close()
    except OSError:
        print("no IPv6 loopback: IPv6 rules checked by -t only")
        return
    for rules, allowed in (("allow ::1;\ndeny all;", True),
                           ("deny ::1/128;\nallow all;", False),
                           ("allow 127.0.0.1;\ndeny all;", False),
                           ("allow fe80::/10;\nallow ::/127;\ndeny all;",
                            True)):
        g = Golapis("listen [::1]:%d;\n%s" % (port, rules))
        c = socket.create_connection(("::1", port), timeout=5)
        c.settimeout(0.5)
        try:
            closed = c.recv(1) == b""
        except socket.timeout:
            closed = False
        except ConnectionResetError:
            closed = True
        c.close()
        assert closed != allowed, (rules, closed)
        g.stop()


def test_allow_deny_check():
    good = ("allow 10.0.0.0/8;\nallow 192.168.1.1;\nallow fd00::/8;\n"
            "deny ::1;\nallow ::ffff:10.0.0.0/104;\ndeny 0.0.0.0/0;\n"
            "deny all;\n")
    rc, out = _conf_t("listen 127.0.0.1:9;\ndocument_root %(d)s;\n" + good)
    assert rc == 0, out
    for bad in ("allow 10.0.0.0/33;", "deny 1.2.3.4/;", "allow ::1/129;",
                "deny example.com;", "allow 300.1.1.1;", "deny 10.0.0.0/-1;",
                "allow 10.0.0.0/8x;", "deny;", "allow all none;"):
        rc, out = _conf_t("listen 127.0.0.1:9;\ndocument_root %(d)s;\n"
                          + bad + "\n")
        assert rc == 1, (bad, out)
        assert "golapis.conf:3:" in out, (bad, out)


# ---------------------------------------------------------------------------
# script_extensions, impossible paths, document_root

TXT = 'ngx.say("txt ran")\n'


def test_script_extensions():
    www = make_docroot({"notes.txt": TXT, "hidden.lua.bak": TXT})
    os.symlink(os.path.join(www, "notes.txt"), os.path.join(www, "link.lua"))
    g = Golapis(docroot=www)
    for name in ("notes.txt", "hidden.lua.bak", "link.lua"):
        status, _, body = fcgi_get(g.sock, os.path.join(www, name))
        assert status == 403, (name, status, body)
        assert b"txt ran" not in body, (name, body)
    status, _, body = fcgi_get(g.sock, os.path.join(www, "hello.lua"))
    assert (status, body) == (200, b"hello, world\n"), (status, body)
    g.stop()

    g = Golapis("script_extensions .lua .txt;", docroot=www)
    for name in ("notes.txt", "link.lua"):
        status, _, body = fcgi_get(g.sock, os.path.join(www, name))
        assert (status, body) == (200, b"txt ran\n"), (name, status, body)
    status, _, body = fcgi_get(g.sock, os.path.join(www, "hidden.lua.bak"))
    assert status == 403, (status, body)

    rc, out = _conf_t("listen unix:%(d)s/s.sock;\ndocument_root %(d)s;\n"
                      "script_extensions .lua a/b;\n")
    assert rc == 1 and 'invalid extension "a/b"' in out, out


def _fcgi_raw(path, params):
    """One FastCGI request with params (bytes: bytes, NULs allowed) over a
    unix socket; returns (status, headers, body)."""
    def record(rtype, content):
        return struct.pack(">BBHHBB", 1, rtype, 1, len(content), 0, 0) \
            + content

    def pair(k, v):
        return bytes([len(k)]) + struct.pack(">I", len(v) | 0x80000000) \
            + k + v

    data = record(1, struct.pack(">HB5x", 1, 0))
    data += record(4, b"".join(pair(k, v) for k, v in params.items()))
    data += record(4, b"") + record(5, b"")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(data)
    buf, out = b"", b""
    while True:
        chunk = s.recv(65536)
        assert chunk, "closed before END_REQUEST: %r" % buf
        buf += chunk
        while len(buf) >= 8:
            _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if rtype == 6:
                out += content
            elif rtype == 3:
                s.close()
                return parse_cgi(out)


def test_impossible_script_filename():
    g = Golapis()
    hello = os.path.join(g.docroot, "hello.lua").encode()
    base = {b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/hello.lua"}
    status, _, body = _fcgi_raw(g.sock, {**base, b"SCRIPT_FILENAME": hello})
    assert (status, body) == (200, b"hello, world\n"), (status, body)
    for bad in (hello + b"\0.php", hello + b"\0", b"hello.lua",
                b"../" + hello, b"/" + b"a" * 5000 + b".lua"):
        status, _, body = _fcgi_raw(g.sock, {**base, b"SCRIPT_FILENAME": bad})
        assert status == 403, (bad[:80], status, body)
        assert b"hello, world" not in body, (bad[:80], body)
    assert "not a possible path" in g.log(), g.tail()


def test_script_filename_cannot_forge_log_lines():
    # nginx decodes the URI into SCRIPT_FILENAME: %0a is a newline, which
    # a plain "%s" would write into the error log as a line of its own
    g = Golapis(log_level="info")
    base = {b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/x"}
    forged = b"\n2026/01/01 00:00:00 [emerg] 1#0: FORGED"
    for name in (g.docroot.encode() + b"/a" + forged + b".lua",
                 g.docroot.encode() + b"/a" + forged + b".txt",
                 b"/nowhere" + forged + b".lua",
                 g.docroot.encode() + b"/a\0" + forged + b".lua"):
        status, _, _ = _fcgi_raw(g.sock, {**base, b"SCRIPT_FILENAME": name})
        assert status in (403, 404), (name, status)
    log = g.log()
    assert not re.search(r"^2026/01/01 00:00:00 \[emerg\]", log, re.M), log
    assert log.count("\\x0A2026/01/01 00:00:00 [emerg] 1#0: FORGED") == 4, log


def test_document_root_follows_a_reload():
    # as script_extensions do; a root that cannot be resolved fails the
    # reload and the old one stays
    a = make_docroot({"a.lua": "ngx.say('a')\n"})
    b = make_docroot({"b.lua": "ngx.say('b')\n"})
    g = Golapis(docroot=a, workers=2)
    base = {b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/x"}

    def get(path):
        return _fcgi_raw(g.sock, {**base,
                                  b"SCRIPT_FILENAME": path.encode()})[0]

    assert (get(a + "/a.lua"), get(b + "/b.lua")) == (200, 403)
    with open(g.conf_path) as f:
        text = f.read()
    mark = g.mark()
    with open(g.conf_path, "w") as f:
        f.write(text.replace("document_root %s;" % a,
                             "document_root %s;" % b))
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: g.log_since(mark).count("Lua code reloaded") == 2,
             10, what="the reload")
    for _ in range(4):
        assert (get(a + "/a.lua"), get(b + "/b.lua")) == (403, 200)
    assert g.stop() == 0


def test_document_root_required():
    rc, out = _conf_t("listen unix:%(d)s/s.sock;\n")
    assert rc == 1, out
    assert 'no "document_root": it is required' in out, out
    assert "content_by_lua_block" in out, out
    rc, out = _conf_t("listen unix:%(d)s/s.sock;\n"
                      "content_by_lua_block { ngx.say('front') }\n")
    assert rc == 0, out

    # the DOCUMENT_ROOT param decides nothing: a front controller config
    # never runs SCRIPT_FILENAME, and document_root is the only root
    d = mktemp("conf-")
    g = Golapis(conf="listen unix:%s/s.sock;\n"
                "content_by_lua_block { ngx.say('front') }\n"
                "error_log %s/error.log info;\n%s"
                % (d, d, "user root;\n" if os.geteuid() == 0 else ""),
                sock=os.path.join(d, "s.sock"))
    status, _, body = fcgi_get(g.sock, "/etc/passwd",
                               params={"DOCUMENT_ROOT": "/"})
    assert (status, body) == (200, b"front\n"), (status, body)

    outside = make_docroot({"x.lua": 'ngx.say("outside")\n'})
    g2 = Golapis()
    status, _, body = fcgi_get(g2.sock, os.path.join(outside, "x.lua"),
                               params={"DOCUMENT_ROOT": outside})
    assert status == 403, (status, body)
