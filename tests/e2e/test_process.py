"""The process: signals, the socket and pid files, the config check."""

import os
import signal
import socket
import threading
import time

from harness import (Golapis, Nginx, SCRIPTS, fcgi_get, free_port,
                     golapis_cmd, http_get, make_docroot, mktemp,
                     wait_for)

HELLO = os.path.join(SCRIPTS, "hello.lua")


def _request_in_thread(port, path):
    result = {}

    def run():
        try:
            result["resp"] = http_get(port, path, timeout=30)
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


def test_sigterm_finishes_inflight():
    g = Golapis()
    n = Nginx(g)
    assert os.path.exists(g.pid_file), "no pid file %s" % g.pid_file
    with open(g.pid_file) as f:
        assert f.read().strip() == str(g.pid), "the pid file has a wrong pid"
    t, result = _request_in_thread(n.port, "/sleep3.lua")
    time.sleep(0.5)
    t0 = time.monotonic()
    g.send_signal(signal.SIGTERM)
    # it stops accepting at once, while the request still runs
    wait_for(lambda: not os.path.exists(g.sock), 2,
             what="the socket file to go after SIGTERM")
    assert g.running(), "golapis exited before the in-flight request ended"
    rc = g.wait(15)
    took = time.monotonic() - t0
    t.join(10)
    assert "error" not in result, "in-flight request failed: %r" % (
        result.get("error"),)
    status, headers, body = result["resp"]
    assert (status, body) == (200, b"slept 3\n"), (status, body)
    assert rc == 0, "exit status %s after SIGTERM" % rc
    assert took < 10, "SIGTERM took %.1fs with a 3 s request" % took
    assert not os.path.exists(g.sock), "socket file left behind"
    assert not os.path.exists(g.pid_file), "pid file left behind"


def test_sigquit_graceful():
    g = Golapis()
    fcgi_get(g.sock, HELLO)
    rc = g.stop(signal.SIGQUIT, timeout=10)
    assert rc == 0, "exit status %s after SIGQUIT" % rc
    assert not os.path.exists(g.sock), "socket file left behind"
    assert not os.path.exists(g.pid_file), "pid file left behind"


def test_shutdown_timeout():
    www = make_docroot({"sleep10.lua": 'ngx.sleep(10)\nngx.say("late")\n'})
    g = Golapis("worker_shutdown_timeout 1s;", docroot=www)
    n = Nginx(g)
    t, result = _request_in_thread(n.port, "/sleep10.lua")
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = g.stop(signal.SIGTERM, timeout=8)
    took = time.monotonic() - t0
    assert took < 4, \
        "worker_shutdown_timeout 1s, but the exit took %.1fs" % took
    assert took > 0.7, \
        "exited %.2fs after SIGTERM: did not wait for the request" % took
    # requests were cut: the exit status says so
    assert rc == 1, "exit status %s" % rc
    assert "exiting with requests in flight (exit status 1)" in g.log()
    t.join(10)
    assert not os.path.exists(g.sock), "socket file left behind"


def test_sigint_prompt():
    www = make_docroot({"sleep10.lua": 'ngx.sleep(10)\nngx.say("late")\n'})
    g = Golapis(docroot=www)
    n = Nginx(g)
    t, result = _request_in_thread(n.port, "/sleep10.lua")
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = g.stop(signal.SIGINT, timeout=8)
    took = time.monotonic() - t0
    t.join(10)
    assert rc == 0, "exit status %s after SIGINT" % rc
    assert took < 2, "SIGINT took %.2fs (a 10 s request was running)" % took
    assert not os.path.exists(g.sock), "socket file left behind"
    assert not os.path.exists(g.pid_file), "pid file left behind"


def test_second_instance_refused():
    g = Golapis()
    g2 = Golapis(sock=g.sock, wait=False)
    rc = g2.wait(10)
    assert rc != 0, "a second golapis on a live socket started (exit %s)" % rc
    out = g2.all_output()
    assert g.sock in out, \
        "the refusal should name the socket path; output:\n%s" % out
    assert os.path.exists(g.sock), "the second instance removed the socket"
    status, headers, body = fcgi_get(g.sock, HELLO)
    assert body == b"hello, world\n", body


def test_stale_socket_replaced():
    path = os.path.join(mktemp("stale-"), "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert os.path.exists(path)
    g = Golapis(sock=path)
    status, headers, body = fcgi_get(path, HELLO)
    assert (status, body) == (200, b"hello, world\n"), (status, body)


def test_non_socket_file_refused():
    path = os.path.join(mktemp("notsock-"), "golapis.sock")
    with open(path, "w") as f:
        f.write("precious\n")
    g = Golapis(sock=path, wait=False)
    rc = g.wait(10)
    assert rc != 0, "golapis started over a regular file (exit %s)" % rc
    with open(path) as f:
        assert f.read() == "precious\n", "the regular file was changed"


# the config check

def _conf(text):
    d = mktemp("conf-")
    p = os.path.join(d, "golapis.conf")
    with open(p, "w") as f:
        f.write(text)
    return d, p


GOOD = """# a good config
listen unix:%(d)s/golapis.sock mode=0666;
listen 127.0.0.1:%(port)d;
workers 2;
worker_connections 512;
worker_shutdown_timeout 5s;
document_root %(scripts)s;
error_log %(d)s/error.log info;
pid %(d)s/golapis.pid;
lua_package_path "%(d)s/?.lua;;";
lua_package_cpath '%(d)s/?.so;;';
lua_code_cache on;
fastcgi_params_max_size 16k;
client_max_body_size 2m;
default_type "text/plain";
"""


def test_config_ok():
    d, p = _conf("")
    with open(p, "w") as f:
        f.write(GOOD % {"d": d, "scripts": SCRIPTS, "port": free_port()})
    rc, out, err = golapis_cmd(["-t", "-c", p])
    both = out + err
    assert rc == 0, "golapis -t on a good config: exit %s\n%s" % (rc, both)
    assert "syntax is ok" in both, both
    assert "test is successful" in both, both
    assert not os.path.exists(os.path.join(d, "golapis.pid")), \
        "-t wrote a pid file"


BAD = [
    # (text, line of the error)
    ("listen unix:%(d)s/s.sock;\nworkers abc;\n", 2),
    ("listen unix:%(d)s/s.sock;\n\n# comment\nno_such_directive on;\n", 4),
    ("listen unix:%(d)s/s.sock;\nworkers 2 3;\n", 2),
    ("listen unix:%(d)s/s.sock;\nworker_connections -5;\n", 2),
    ("listen unix:%(d)s/s.sock;\nclient_max_body_size 10q;\n", 2),
    ("listen unix:%(d)s/s.sock;\nworker_shutdown_timeout soon;\n", 2),
    ("listen unix:%(d)s/s.sock;\nlua_code_cache maybe;\n", 2),
    ("listen unix:%(d)s/s.sock;\nerror_log stderr loud;\n", 2),
    ("listen unix:%(d)s/s.sock;\npid;\n", 2),
    ("listen unix:%(d)s/s.sock;\nworkers 2\n", None),
    ('listen unix:%(d)s/s.sock;\ndefault_type "text/plain;\n', None),
]


def test_config_errors():
    for text, line in BAD:
        d, p = _conf("")
        text = text % {"d": d}
        with open(p, "w") as f:
            f.write(text)
        rc, out, err = golapis_cmd(["-t", "-c", p])
        both = out + err
        assert rc == 1, "exit %s (not 1) for:\n%s\noutput: %s" % (
            rc, text, both)
        want = "%s:%s:" % (p, line) if line else "%s:" % p
        assert want in both, "no %r in the output for:\n%s\noutput: %s" % (
            want, text, both)


def test_config_error_at_start():
    d, p = _conf("")
    with open(p, "w") as f:
        f.write("listen unix:%s/s.sock;\nno_such_directive on;\n" % d)
    rc, out, err = golapis_cmd(["-c", p])
    assert rc == 1, "exit %s starting with a bad config" % rc
    assert "%s:2:" % p in out + err, out + err


def test_config_no_listen():
    d, p = _conf("workers 1;\n")
    rc, out, err = golapis_cmd(["-t", "-c", p])
    assert rc == 1, "a config without listen passed -t: %s" % (out + err)


def test_version():
    rc, out, err = golapis_cmd(["-v"])
    assert rc == 0, (rc, out, err)
    assert "0.1.0" in out + err, out + err
