"""The operations logs (docs/logs.md): access_log and log_format
(src/api/gl_access_log.c) against nginx's own access log for the same
requests, request_slowlog_timeout and slowlog (src/lua/gl_slowlog.c), error_log
and access_log to syslog (src/core/gl_syslog.c), and SIGUSR1 reopening
them all."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from harness import (GOLAPIS_BIN, Golapis, Nginx, golapis_cmd, http_get,
                     http_raw, make_docroot, mktemp, parallel_http, wait_for)

# ThreadSanitizer defers a signal until its thread's next libc call: a
# pure Lua loop makes none, so the watchdog's way to the slow log cannot
# work there (as in test_watch.py)
TSAN = os.environ.get("GL_SANITIZER") == "thread"
SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

# nginx's combined format, as log parsers read it (fail2ban's nginx
# filters, goaccess's COMBINED): the whole line
COMBINED_RE = re.compile(
    r'^(?P<addr>\S+) - (?P<user>\S+) '
    r'\[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\x[0-9A-F]{2})*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "(?P<referer>(?:[^"\\]|\\x[0-9A-F]{2})*)" '
    r'"(?P<agent>(?:[^"\\]|\\x[0-9A-F]{2})*)"$')

SCRIPTS = {
    "sleepy.lua": ("local function nap()\n"
                   "    ngx.sleep(1)\n"
                   "end\n"
                   "local t = ngx.thread.spawn(function()\n"
                   "    ngx.sleep(1)\n"
                   "end)\n"
                   "nap()\n"
                   "ngx.thread.wait(t)\n"
                   "ngx.say('slept')\n"),
    # an interpreted loop: it never yields, its worker's loop cannot run
    "busy.lua": ("jit.off()\n"
                 "local n, t0 = 0, os.time()\n"
                 "local deadline = ngx.now() + 1\n"
                 "while ngx.now() + 0 < deadline do n = n + 1; "
                 "ngx.update_time() end\n"
                 "ngx.say('busy ', n > 0)\n"),
    "sized.lua": ('ngx.header["Content-Type"] = "text/plain"\n'
                  'ngx.print(string.rep("x", tonumber(ngx.var.arg_n) '
                  'or 10))\n'),
    "nap.lua": "ngx.sleep(tonumber(ngx.var.arg_t) or 0.2)\nngx.say('ok')\n",
    "setargs.lua": ("ngx.req.set_uri_args('changed=1')\n"
                    "ngx.say('ok')\n"),
}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _lines(path):
    return [l for l in _read(path).split("\n") if l]


def _setup(conf, workers=2, nginx_kw=None, files=None, error_log=True):
    """golapis with conf (@DIR@: a fresh dir for the logs) and an nginx in
    front; error_log=False: conf has the error_log directive"""
    d = mktemp("logs-")
    root = make_docroot(dict(SCRIPTS, **(files or {})))
    conf = conf.replace("@DIR@", d)
    if error_log:
        g = Golapis(docroot=root, workers=workers, conf_extra=conf)
    else:
        sock = os.path.join(d, "golapis.sock")
        g = Golapis(docroot=root, sock=sock, conf=(
            "listen unix:%s mode=0666;\nworkers %d;\npid %s/golapis.pid;\n"
            "document_root %s;\n%s%s\n"
            % (sock, workers, d, root, conf,
               "user root;\n" if os.geteuid() == 0 else "")))
    n = Nginx(g, **(nginx_kw or {}))
    return d, g, n


# ---------------------------------------------------------------------------
# access_log against nginx's

# the fields that must match between nginx's log and golapis's for the
# same request, with nginx's default escaping on both sides
DIFF_FORMAT = ("'$remote_addr|$remote_user|$request|$status|"
               "$body_bytes_sent|$http_referer|$http_user_agent|"
               "$request_method|$request_uri|$server_protocol|$http_x_test|"
               "$arg_a|$cookie_c|$http_cookie|$content_length|$host|"
               "$document_uri|$query_string'")

AGENT = 'agent "quoted" \\back\\ caf\xc3\xa9 \x01end'


def _requests(n):
    """The same requests, one at a time (the two logs in the same order)."""
    p = n.port
    out = []
    out.append(http_get(p, "/hello.lua")[0])
    out.append(http_get(p, "/hello.lua?a=1&b=%22x%22")[0])
    out.append(http_get(p, "/sized.lua?n=1234", headers={
        "User-Agent": AGENT.encode("latin-1").decode("latin-1"),
        "Referer": "http://example.com/from?x=\"y\"",
        "X-Test": "tab\there", "Cookie": "c=cv; d=2"})[0])
    out.append(http_get(p, "/hello.lua", method="HEAD")[0])
    out.append(http_get(p, "/readbody.lua", method="POST",
                        body=b"x" * 3000)[0])
    out.append(http_get(p, "/missing.lua")[0])
    out.append(http_get(p, "/exit404.lua")[0])
    out.append(http_get(p, "/status.lua")[0])
    out.append(http_get(p, "/error.lua")[0])
    out.append(http_get(p, "/big.lua")[0])
    # what http.client will not send: a raw quote and high bytes in the
    # request line, HTTP/1.0
    out.append(http_raw(p, b'GET /hello.lua?q="a\\b"\xe9 HTTP/1.0\r\n'
                           b'Host: localhost\r\nUser-Agent: raw\r\n\r\n')[0])
    out.append(http_raw(p, b"GET /sized.lua?n=7 HTTP/1.0\r\n"
                           b"Host: Example.COM:8080\r\n"
                           b"Connection: close\r\n\r\n")[0])
    return out


def test_access_log_against_nginx():
    d = mktemp("ngx-")
    ngx_log = os.path.join(d, "nginx-access.log")
    ngx_combined = os.path.join(d, "nginx-combined.log")
    dd, g, n = _setup(
        "log_format diff %s;\n"
        "access_log @DIR@/diff.log diff;\n"
        "access_log @DIR@/access.log;\n" % DIFF_FORMAT,
        nginx_kw={
            "extra_http": "log_format diff %s;" % DIFF_FORMAT,
            # nginx's $body_bytes_sent counts a chunked answer's framing
            "extra_server": ("chunked_transfer_encoding off;\n"
                             "access_log %s diff;\n"
                             "access_log %s combined;"
                             % (ngx_log, ngx_combined))})
    statuses = _requests(n)
    assert statuses == [200, 200, 200, 200, 200, 404, 404, 201, 500, 200,
                        200, 200], statuses

    ours = os.path.join(dd, "diff.log")
    wait_for(lambda: len(_lines(ours)) == len(statuses)
             and len(_lines(ngx_log)) == len(statuses), 10 * SLACK,
             what="a line per request in both logs")
    assert _lines(ours) == _lines(ngx_log), (
        "golapis:\n%s\nnginx:\n%s" % (_read(ours), _read(ngx_log)))

    # the default format is nginx's combined: the same lines but for the
    # time, which a regex of the format reads in both
    ours = _lines(os.path.join(dd, "access.log"))
    ref = _lines(ngx_combined)
    assert len(ours) == len(ref) == len(statuses), (ours, ref)
    for a, b in zip(ours, ref):
        ma, mb = COMBINED_RE.match(a), COMBINED_RE.match(b)
        assert ma and mb, (a, b)
        fa, fb = ma.groupdict(), mb.groupdict()
        assert abs(_epoch(fa.pop("time")) - _epoch(fb.pop("time"))) <= 2
        assert fa == fb, (a, b)

    # escaping, as nginx's: " \ and bytes outside 0x20..0x7e
    agent_line = [l for l in ours if "sized.lua?n=1234" in l][0]
    assert ('"agent \\x22quoted\\x22 \\x5Cback\\x5C caf\\xC3\\xA9 '
            '\\x01end"') in agent_line, agent_line
    assert '"GET /hello.lua?q=\\x22a\\x5Cb\\x22\\xE9 HTTP/1.0"' in \
        "\n".join(ours), ours


def _epoch(t):
    return time.mktime(time.strptime(t.split()[0], "%d/%b/%Y:%H:%M:%S"))


# ---------------------------------------------------------------------------
# formats and variables

def test_custom_formats():
    conf = (
        "log_format json escape=json '{\"request\":\"$request\",'\n"
        "    '\"status\":$status,\"agent\":\"$http_user_agent\",'\n"
        "    '\"missing\":\"$http_x_none\",\"cookie\":\"$cookie_c\"}';\n"
        "log_format raw escape=none '${request}|$http_user_agent|${status}"
        "|$http_x_none|';\n"
        "log_format golapis '$golapis_worker $pid $connection "
        "$connection_requests $bytes_sent $body_bytes_sent $msec "
        "$request_time $time_iso8601 $request_completion "
        "$sent_http_content_type $args $limit_rate';\n"
        "access_log @DIR@/json.log json;\n"
        "access_log @DIR@/raw.log raw;\n"
        "access_log @DIR@/golapis.log golapis;\n"
        "access_log @DIR@/cond.log combined if=$arg_log;\n"
        "log_by_lua_block { if ngx.var.arg_lr then "
        "ngx.var.limit_rate = ngx.var.arg_lr end }\n")
    d, g, n = _setup(conf, workers=1, nginx_kw={"keepalive": True})
    ua = 'say "hi"\\ \x02\x1b'
    for i in range(3):
        assert http_get(n.port, "/sized.lua?n=%d&log=%d" % (10 + i, i % 2),
                        keepalive=True, headers={"User-Agent": ua,
                                                 "Cookie": "c=v%d" % i}
                        )[0] == 200
    assert http_get(n.port, "/nap.lua?t=0.3&lr=4242", keepalive=True)[0] \
        == 200
    assert http_get(n.port, "/setargs.lua?x=1", keepalive=True)[0] == 200
    wait_for(lambda: len(_lines(os.path.join(d, "golapis.log"))) == 5,
             10 * SLACK, what="5 lines")

    js = _lines(os.path.join(d, "json.log"))
    assert js[0] == ('{"request":"GET /sized.lua?n=10&log=0 HTTP/1.1",'
                     '"status":200,"agent":"say \\"hi\\"\\\\ \\u0002\\u001B",'
                     '"missing":"","cookie":"v0"}'), js[0]

    raw = _lines(os.path.join(d, "raw.log"))
    # escape=none: a variable with no value is empty, not "-"
    assert raw[1] == 'GET /sized.lua?n=11&log=1 HTTP/1.1|%s|200||' % ua, raw

    # if=: only the requests whose $arg_log is neither "" nor "0"
    cond = _lines(os.path.join(d, "cond.log"))
    assert len(cond) == 1 and "n=11&log=1" in cond[0], cond

    rows = [l.split(" ") for l in _lines(os.path.join(d, "golapis.log"))]
    for r in rows:
        assert r[0] == "0" and r[1] == str(g.pid), r
        # $msec, $request_time: seconds with milliseconds
        assert re.match(r"^\d+\.\d{3}$", r[6]) and abs(
            float(r[6]) - time.time()) < 60, r
        assert re.match(r"^\d+\.\d{3}$", r[7]), r
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$",
                        r[8]), r
        assert r[9] == "OK", r
    # one connection from nginx (keep-alive): its requests count up
    assert len({r[2] for r in rows}) == 1, rows
    assert [int(r[3]) for r in rows] == [1, 2, 3, 4, 5], rows
    # $body_bytes_sent is the body, $bytes_sent with the header block
    assert [int(r[5]) for r in rows[:3]] == [10, 11, 12], rows
    assert all(int(r[4]) > int(r[5]) + 20 for r in rows), rows
    assert rows[0][10] == "text/plain", rows
    # the nap: its time, and log_by_lua's change seen (the line is
    # written after it)
    assert 0.28 <= float(rows[3][7]) < 5, rows[3]
    assert rows[3][12] == "4242" and rows[0][12] == "0", rows
    # $args as the script left them
    assert rows[4][11] == "changed=1", rows[4]


def test_config_errors():
    d = mktemp("conf-")
    cases = [
        ("log_format x '$remote_addr $no_such_var';",
         'unknown "no_such_var" variable'),
        ("log_format x '$';", 'invalid parameter "$"'),
        ("log_format x '${status';",
         'the closing bracket in "status" variable is missing'),
        # a name is letters, digits and "_", in ${} too, as nginx's
        ("log_format x '[${http_a b}]';",
         'the closing bracket in "http_a" variable is missing'),
        ("log_format x '${cookie_a.b}';",
         'the closing bracket in "cookie_a" variable is missing'),
        ("access_log a.log nope;", 'unknown log format "nope"'),
        ("log_format combined '$status';",
         'duplicate "log_format" name "combined"'),
        ("log_format x escape=yaml '$status';",
         'unknown log format escaping "yaml"'),
        ("access_log a.log combined buffer=32k;", '"buffer=32k": golapis '
         'writes each line at once'),
        ("access_log a.log combined foo;", 'invalid parameter "foo"'),
        ("access_log off x;", 'invalid parameter "x"'),
        ("access_log a.log combined if=$nope;", 'unknown "nope" variable'),
        ("error_log syslog:server=127.0.0.1,foo=1;",
         'unknown syslog parameter "foo=1"'),
        ("error_log syslog:facility=local0;", "no server specified"),
        # a port that atoi() would wrap into range (4294972810 % 2^32)
        ("error_log syslog:server=127.0.0.1:4294972810;",
         'invalid port in syslog server "4294972810"'),
        ("error_log syslog:server=127.0.0.1,tag=a-b;",
         'syslog "tag" only allows alphanumeric characters and underscore'),
        ("access_log syslog:server=127.0.0.1,severity=loud;",
         'unknown syslog severity "loud"'),
        # the config's checks after it is read: "file: message"
        ("request_slowlog_timeout 1s;",
         '"slowlog" must be specified for use with '
         '"request_slowlog_timeout"'),
        # the files must open, as at start
        ("access_log /nonexistent/dir/a.log;",
         'cannot write "/nonexistent/dir/a.log" (2: No such file or '
         'directory)'),
        ("slowlog /nonexistent/dir/slow.log;",
         'cannot write "/nonexistent/dir/slow.log" (2: No such file or '
         'directory)'),
    ]
    for i, (line, msg) in enumerate(cases):
        path = os.path.join(d, "c%d.conf" % i)
        with open(path, "w") as f:
            f.write("listen unix:%s/s.sock;\ndocument_root %s;\n%s\n"
                    % (d, d, line))
        rc, out, err = golapis_cmd(["-t", "-c", path])
        assert rc == 1, (line, out, err)
        # file:line as nginx, for the directives' own errors
        where = path + (":3: " if i < len(cases) - 3 else ": ")
        assert where + msg in err, (line, err)
    # and a good one: every directive and variable named in docs/logs.md
    path = os.path.join(d, "good.conf")
    with open(path, "w") as f:
        f.write("listen unix:%s/s.sock;\ndocument_root %s;\n"
                "log_format all '$remote_addr $remote_user $time_local '\n"
                "    '$time_iso8601 $msec $request $status $body_bytes_sent '\n"
                "    '$bytes_sent $request_time $http_referer $http_x_y '\n"
                "    '$pid $golapis_worker $connection $connection_requests '\n"
                "    '$request_completion $cookie_a $arg_b $sent_http_c '\n"
                "    '$host $args $uri $request_id $server_name';\n"
                "access_log a.log all if=$arg_x;\n"
                # format names in any case, if= again: as nginx's
                "access_log b.log COMBINED;\n"
                "log_format Main '$status';\n"
                "access_log c.log MAIN if=$arg_a if=$arg_b;\n"
                "access_log syslog:server=127.0.0.1:5514,tag=gl;\n"
                "error_log syslog:server=unix:/dev/log,facility=daemon "
                "notice;\n"
                "request_slowlog_timeout 2s;\nslowlog slow.log;\n"
                % (d, d))
    rc, out, err = golapis_cmd(["-t", "-c", path])
    assert rc == 0, err


def test_off_and_none():
    # no access_log: no file; "access_log off" wins over the others
    d, g, n = _setup("access_log @DIR@/a.log;\naccess_log off;\n")
    assert http_get(n.port, "/hello.lua")[0] == 200
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(d, "a.log"))


def test_request_line_and_completion():
    # $request is nginx's own line when it is passed: an absolute URI and
    # extra spaces as the client sent them; $request_completion is empty
    # for a request whose connection went before it ended
    d, g, n = _setup("log_format t '$status [$request_completion] "
                     "$request';\naccess_log @DIR@/a.log t;\n", workers=1,
                     nginx_kw={"extra_location":
                               "fastcgi_param REQUEST $request;"})
    path = os.path.join(d, "a.log")
    assert http_raw(n.port, b"GET http://localhost/hello.lua?a=1 HTTP/1.1\r\n"
                    b"Host: localhost\r\nConnection: close\r\n\r\n")[0] \
        == 200
    assert http_raw(n.port, b"GET   /hello.lua   HTTP/1.0\r\n\r\n")[0] \
        == 200
    wait_for(lambda: len(_lines(path)) == 2, 10 * SLACK, what="2 lines")
    s = socket.create_connection(("127.0.0.1", n.port))
    s.sendall(b"GET /nap.lua?t=0.5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.1)
    s.close()
    wait_for(lambda: len(_lines(path)) == 3, 10 * SLACK, what="3 lines")
    lines = _lines(path)
    assert lines[0] == "200 [OK] GET http://localhost/hello.lua?a=1 HTTP/1.1", \
        lines
    assert lines[1] == "200 [OK] GET   /hello.lua   HTTP/1.0", lines
    assert lines[2].endswith(" [] GET /nap.lua?t=0.5 HTTP/1.1"), lines


def test_status_and_ping_logged():
    # the endpoints answer before any Lua runs: their requests have their
    # lines all the same, as nginx's own for its locations
    d, g, n = _setup("access_log @DIR@/a.log;\nstatus_uri /golapis-status;\n"
                     "ping_uri /golapis-ping;\n", workers=1)
    assert http_get(n.port, "/golapis-ping")[0] == 200
    assert http_get(n.port, "/golapis-status?json")[0] == 200
    assert http_get(n.port, "/golapis-ping", method="POST", body=b"x")[0] \
        == 405
    assert http_get(n.port, "/hello.lua")[0] == 200
    path = os.path.join(d, "a.log")
    wait_for(lambda: len(_lines(path)) == 4, 10 * SLACK, what="4 lines")
    rows = [COMBINED_RE.match(l) for l in _lines(path)]
    assert all(rows), _lines(path)
    assert [(m.group("request"), m.group("status")) for m in rows] == [
        ("GET /golapis-ping HTTP/1.1", "200"),
        ("GET /golapis-status?json HTTP/1.1", "200"),
        ("POST /golapis-ping HTTP/1.1", "405"),
        ("GET /hello.lua HTTP/1.1", "200")], _lines(path)
    assert rows[0].group("bytes") == "5", rows[0].group(0)
    assert int(rows[1].group("bytes")) > 100, rows[1].group(0)


# ---------------------------------------------------------------------------
# lines from several workers, rotation

def test_lines_whole_under_load():
    d, g, n = _setup("access_log @DIR@/access.log;\n", workers=2)
    paths = ["/sized.lua?n=%d" % (1 + i * 37 % 3000) for i in range(300)]
    results, _ = parallel_http(n.port, paths)
    assert all(r[0] == 200 for r in results), results[:5]
    log = os.path.join(d, "access.log")
    wait_for(lambda: len(_lines(log)) == 300, 10 * SLACK,
             what="300 lines")
    seen = []
    for line in _lines(log):
        m = COMBINED_RE.match(line)
        assert m, line
        n_arg = int(m.group("request").split("n=")[1].split()[0])
        assert int(m.group("bytes")) == n_arg, line
        seen.append(n_arg)
    assert sorted(seen) == sorted(int(p.split("=")[1]) for p in paths)
    # both workers wrote
    g.stop()
    assert all(r > 0 for _, r in g.worker_exits().values()), \
        g.worker_exits()


def test_reopen_after_rename():
    d, g, n = _setup("access_log @DIR@/access.log;\n"
                     "request_slowlog_timeout 200ms;\n"
                     "slowlog @DIR@/slow.log;\n")
    files = [os.path.join(d, f) for f in ("access.log", "slow.log")]
    files.append(g.error_log)
    assert http_get(n.port, "/nap.lua?t=0.4")[0] == 200
    wait_for(lambda: all(_read(f) for f in files), 5 * SLACK,
             what="the three logs")
    for f in files:
        os.rename(f, f + ".1")
    # still written to the renamed files until SIGUSR1
    assert http_get(n.port, "/hello.lua?before")[0] == 200
    wait_for(lambda: "before" in _read(files[0] + ".1"), 5 * SLACK,
             what="the line before the reopen")
    g.send_signal(signal.SIGUSR1)
    wait_for(lambda: all(os.path.exists(f) for f in files), 5 * SLACK,
             what="the logs reopened")
    assert http_get(n.port, "/nap.lua?t=0.4&after")[0] == 200
    wait_for(lambda: "after" in _read(files[0])
             and "after" in _read(files[1]), 5 * SLACK,
             what="the lines after the reopen")
    assert "after" not in _read(files[0] + ".1")
    assert "after" not in _read(files[1] + ".1")
    assert "nap.lua?t=0.4 " in _read(files[1] + ".1")
    assert "reopened" in _read(files[2])
    assert "reopened" not in _read(files[2] + ".1")


# ---------------------------------------------------------------------------
# the slow log

ENTRY_RE = re.compile(
    r"^\[\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d\]  \[worker (\d+)\] "
    r"pid (\d+)\nscript_filename = (\S+)\nrequest = \"([^\"]*)\", "
    r"client: 127\.0\.0\.1, host: \"[^\"]*\", running for ([\d.]+)s, "
    r"in content_by_lua\*\n", re.M)


def _entries(path):
    text = _read(path)
    return [e for e in text.split("\n\n") if e.strip()]


def test_slowlog_sleeping_request():
    d, g, n = _setup("request_slowlog_timeout 300ms;\n"
                     "slowlog @DIR@/slow.log;\n", workers=1)
    slow = os.path.join(d, "slow.log")
    for _ in range(5):
        assert http_get(n.port, "/hello.lua")[0] == 200
    st, _, body = http_get(n.port, "/sleepy.lua")
    assert (st, body) == (200, b"slept\n")
    for _ in range(5):
        assert http_get(n.port, "/hello.lua")[0] == 200
    time.sleep(0.5)
    entries = _entries(slow)
    assert len(entries) == 1, _read(slow)
    e = entries[0]
    m = ENTRY_RE.match(e + "\n")
    assert m, e
    assert m.group(1) == "0" and m.group(2) == str(g.pid), e
    assert m.group(3) == os.path.join(g.docroot, "sleepy.lua"), e
    assert m.group(4) == "GET /sleepy.lua HTTP/1.1", e
    assert 0.3 <= float(m.group(5)) < 0.9, e
    script = os.path.join(g.docroot, "sleepy.lua")
    assert ("entry thread (waiting: ngx.sleep):\nstack traceback:\n"
            "\t[C]: in function 'sleep'\n"
            "\t%s:2: in function 'nap'\n"
            "\t%s:7: in main chunk\n" % (script, script)) in e + "\n", e
    assert ("light thread (waiting: ngx.sleep):\nstack traceback:\n"
            "\t[C]: in function 'sleep'\n"
            "\t%s:5: in function <%s:4>" % (script, script)) in e, e
    # and php-fpm's warning in the error log
    assert re.search(r"\[warn\] \d+#0: \*\d+ request running for 0\.\d+s "
                     r"\(request_slowlog_timeout 0\.3s\), logged in \"%s\", "
                     r"client: 127\.0\.0\.1, server: localhost, request: "
                     r"\"GET /sleepy\.lua HTTP/1\.1\""
                     % re.escape(slow), g.log()), g.log()


def test_slowlog_many_waiting():
    # each of them once, in the order they began, and none of the fast
    d, g, n = _setup("request_slowlog_timeout 200ms;\n"
                     "slowlog @DIR@/slow.log;\n", workers=2)
    paths = (["/nap.lua?t=0.5&i=%d" % i for i in range(20)]
             + ["/hello.lua?i=%d" % i for i in range(20)])
    results, _ = parallel_http(n.port, paths)
    assert all(r[0] == 200 for r in results), results
    time.sleep(0.3)
    entries = _entries(os.path.join(d, "slow.log"))
    reqs = sorted(ENTRY_RE.match(e + "\n").group(4) for e in entries)
    assert reqs == sorted("GET %s HTTP/1.0" % p for p in paths[:20]), reqs
    # the error log's warnings are rate-limited (10 a second, a few more
    # at a race between the two workers), the slow log has them all
    warns = g.log().count("request running for")
    assert 1 <= warns <= 14, g.log()


def test_slowlog_params_sent_late():
    # the deadline counts from the first record: a client that sends its
    # params after it still gets its request its entry (it once fell
    # behind the checks and never had one)
    from test_limits_conn import (FCGI_PARAMS, FCGI_STDIN, begin, connect,
                                  params, read_records, record)
    d, g, n = _setup("request_slowlog_timeout 300ms;\n"
                     "slowlog @DIR@/slow.log;\n", workers=1)
    s = connect(g.sock)
    try:
        s.sendall(begin(1))
        time.sleep(0.8)
        s.sendall(record(FCGI_PARAMS, 1, params(
            os.path.join(g.docroot, "nap.lua"), [("QUERY_STRING", "t=0.8")]))
            + record(FCGI_PARAMS, 1) + record(FCGI_STDIN, 1))
        out, ended = read_records(s, 1, timeout=10 * SLACK)
        assert ended and out.endswith(b"ok\n"), out
    finally:
        s.close()
    entries = _entries(os.path.join(d, "slow.log"))
    assert len(entries) == 1, entries
    assert "nap.lua:1: in main chunk" in entries[0], entries[0]


def test_slowlog_busy_loop():
    if TSAN:
        print("SKIPPED under TSan (slowlog_busy_loop): it defers signals "
              "to the next libc call")
        return
    d, g, n = _setup("request_slowlog_timeout 300ms;\n"
                     "slowlog @DIR@/slow.log;\n"
                     "lua_block_warn_time 0;\n", workers=1)
    st, _, body = http_get(n.port, "/busy.lua")
    assert (st, body) == (200, b"busy true\n")
    wait_for(lambda: _entries(os.path.join(d, "slow.log")), 5,
             what="the entry")
    entries = _entries(os.path.join(d, "slow.log"))
    assert len(entries) == 1, entries
    e = entries[0]
    m = ENTRY_RE.match(e + "\n")
    assert m and m.group(4) == "GET /busy.lua HTTP/1.1", e
    # written while the loop ran, not after
    assert 0.3 <= float(m.group(5)) < 0.8, e
    script = os.path.join(g.docroot, "busy.lua")
    assert re.search(r"entry thread \(running\):\nstack traceback:\n"
                     r"(\t\[C\]: in function '\w+'\n)?"
                     r"\t%s:4: in main chunk$" % re.escape(script), e), e
    assert g.running()


def test_slowlog_slow_write_keeps_the_run_time_limit():
    # the slow log's entry for a loop is written from the Lua hook: a
    # lua_max_run_time stop asked while that write was held (a full FIFO
    # here, a slow disk in life) must still stop the loop once it
    # returns, not wait until the worker is taken for stuck (2x the limit)
    if TSAN:
        print("SKIPPED under TSan (slowlog_slow_write): it defers signals "
              "to the next libc call")
        return
    d = mktemp("slowfifo-")
    fifo = os.path.join(d, "slow.fifo")
    os.mkfifo(fifo, 0o666)
    # a reader first (or golapis's open would wait), then the pipe full
    rfd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        try:
            while True:
                os.write(rfd, b"x" * 4096)
        except BlockingIOError:
            pass
        loop = ("jit.off()\nlocal t = os.clock()\n"
                "while os.clock() - t < 8 do end\nngx.say('done')\n")
        _, g, n = _setup("request_slowlog_timeout 1s;\nslowlog %s;\n"
                         "lua_max_run_time 2s;\nlua_block_warn_time 0;\n"
                         % fifo, workers=1, files={"loop8.lua": loop})
        result = {}

        def get():
            result["r"] = http_get(n.port, "/loop8.lua", timeout=30 * SLACK)
            result["t"] = time.monotonic() - t0

        t0 = time.monotonic()
        th = threading.Thread(target=get)
        th.start()
        # the entry's write waits from 1 s; the stop is asked at 2 s; the
        # worker would be taken for stuck at 4 s
        time.sleep(2.8)
        try:
            while True:
                os.read(rfd, 65536)
        except BlockingIOError:
            pass
        th.join(30 * SLACK)
        st, _, body = result["r"]
        assert st == 500, (st, body, g.tail())
        assert "lua_max_run_time (2000ms) exceeded" in g.log(), g.tail()
        assert "cannot be interrupted" not in g.log(), g.tail()
        assert result["t"] < 4, result["t"]
    finally:
        os.close(rfd)


def test_slowlog_off_by_default():
    d, g, n = _setup("slowlog @DIR@/slow.log;\n", workers=1)
    assert http_get(n.port, "/nap.lua?t=0.3")[0] == 200
    assert _read(os.path.join(d, "slow.log")) == ""


# ---------------------------------------------------------------------------
# syslog

SYSLOG_RE = re.compile(
    rb"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+) (\w+): (.*)$", re.S)


def _recv_all(s, until, timeout=5):
    out = []
    end = time.monotonic() + timeout * SLACK
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            out.append(s.recv(65536))
        except socket.timeout:
            break
        if until(out):
            break
    return out


def test_syslog_udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    try:
        d, g, n = _setup(
            "error_log syslog:server=127.0.0.1:%d,tag=gltest info;\n"
            "access_log syslog:server=127.0.0.1:%d,facility=local1,"
            "severity=notice,nohostname;\n" % (port, port), workers=1,
            error_log=False)
        assert http_get(n.port, "/error.lua")[0] == 500
        msgs = _recv_all(u, lambda out: any(b"GET /error.lua" in m
                                            and b"\"-\"" in m for m in out))
    finally:
        u.close()
    # the access line has no host name (nohostname)
    parsed = [SYSLOG_RE.match(m) for m in msgs if not m.startswith(b"<141>")]
    assert all(parsed), msgs
    host = socket.gethostname().lower().encode()
    # the error: local7 (23) * 8 + error (3), nginx's whole line after the
    # header
    err = [p for p in parsed if b"lua entry thread aborted" in p.group(4)]
    assert len(err) == 1, msgs
    assert err[0].group(1) == b"187" and err[0].group(2) == host
    assert err[0].group(3) == b"gltest"
    assert re.match(rb"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ "
                    rb"lua entry thread aborted: runtime error: ",
                    err[0].group(4)), err[0].group(4)
    assert b"\n" in err[0].group(4)       # the traceback, as it is
    started = [p for p in parsed if b"started, 1 workers" in p.group(4)]
    assert started and started[0].group(1) == b"189", msgs   # notice
    # the access line: local1 (17) * 8 + notice (5), no host name
    acc = [m for m in msgs if b"GET /error.lua" in m and b"lua entry" not in m]
    assert len(acc) == 1, msgs
    m = re.match(rb"^<141>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d golapis: (.*)$",
                 acc[0])
    assert m and COMBINED_RE.match(m.group(1).decode()), acc[0]


# run in a network namespace of its own, whose loopback is down at first
LATE_NET = r"""
import os, signal, socket, subprocess, sys, time
bin, conf, sock = sys.argv[1:4]
g = subprocess.Popen([bin, "-c", conf], stderr=subprocess.DEVNULL)
end = time.monotonic() + 20
while not os.path.exists(sock) and time.monotonic() < end:
    time.sleep(0.05)
subprocess.check_call(["ip", "link", "set", "lo", "up"])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5514))
u.settimeout(1.2)
got = b""
for i in range(6):
    g.send_signal(signal.SIGUSR1)
    try:
        got = u.recv(65536)
        break
    except socket.timeout:
        pass
g.send_signal(signal.SIGTERM)
g.wait(30)
sys.stdout.write(got.decode("utf-8", "replace"))
"""


def test_syslog_udp_server_reached_later():
    # golapis started before its syslog server could be reached (no route
    # yet: connect() failed): its lines get there once it can be, not
    # only after a restart
    d = mktemp("syslog-late-")
    os.chmod(d, 0o755)
    sock = os.path.join(d, "s.sock")
    conf = os.path.join(d, "golapis.conf")
    with open(conf, "w") as f:
        f.write("listen unix:%s;\nworkers 1;\ndocument_root %s;\n"
                "error_log syslog:server=127.0.0.1:5514,nohostname info;\n%s"
                % (sock, d, "user root;\n" if os.geteuid() == 0 else ""))
    script = os.path.join(d, "late.py")
    with open(script, "w") as f:
        f.write(LATE_NET)
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else \
        ["unshare", "-r", "-n"]
    p = subprocess.run(unshare + [sys.executable, script, GOLAPIS_BIN,
                                  conf, sock],
                       capture_output=True, timeout=60 * SLACK)
    assert p.returncode == 0, p.stderr.decode()
    assert "golapis: " in p.stdout.decode() and "[notice]" in \
        p.stdout.decode(), p.stdout


def test_syslog_unix_never_stalls():
    d = mktemp("syslog-")
    path = os.path.join(d, "log.sock")

    def listen():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        return s

    s = listen()
    dd, g, n = _setup("error_log syslog:server=unix:%s,tag=gl info;\n" % path,
                      workers=1, error_log=False)
    try:
        assert http_get(n.port, "/error.lua")[0] == 500
        msgs = _recv_all(s, lambda out: any(b"aborted" in m for m in out))
        assert any(re.match(rb"^<187>.* gl: .*\[error\].*lua entry thread "
                            rb"aborted", m, re.S) for m in msgs), msgs
        # nobody reads: the socket's queue fills, the lines are dropped,
        # the requests are answered at once all the same
        t0 = time.monotonic()
        for _ in range(600):
            assert http_get(n.port, "/error.lua")[0] == 500
        took = time.monotonic() - t0
        assert took < 30 * SLACK, took
        # the daemon goes away, and comes back: golapis connects again
        s.close()
        os.unlink(path)
        assert http_get(n.port, "/error.lua")[0] == 500
        s = listen()
        time.sleep(1.1)
        # the first line after it came back may be the reconnect's
        got = []
        for i in range(5):
            assert http_get(n.port, "/error.lua?again=%d" % i)[0] == 500
            got += _recv_all(s, lambda out: any(b"again" in m for m in out),
                             timeout=1)
            if any(b"again" in m for m in got):
                break
        assert any(b"again" in m for m in got), got
        assert g.running()
    finally:
        s.close()


def test_error_log_to_syslog_and_back_by_sighup():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    target = "syslog:server=127.0.0.1:%d info" % port
    try:
        d, g, n = _setup("error_log %s/error.log info;\n" % mktemp("el-"),
                         workers=1, error_log=False)
        path = [l for l in open(g.conf_path).read().split("\n")
                if l.startswith("error_log")][0].split()[1]

        def swap(old, new):
            with open(g.conf_path) as f:
                text = f.read()
            with open(g.conf_path, "w") as f:
                f.write(text.replace(old, new))
            g.send_signal(signal.SIGHUP)

        assert http_get(n.port, "/error.lua?one")[0] == 500
        wait_for(lambda: "/error.lua?one" in _read(path), 5 * SLACK,
                 what="the error in the file")
        swap("error_log %s info" % path, "error_log " + target)
        # the worker's line once it took the new config
        msgs = _recv_all(u, lambda out: any(b"reloaded" in m for m in out))
        assert any(b"reloaded" in m for m in msgs), msgs
        assert http_get(n.port, "/error.lua?two")[0] == 500
        msgs = _recv_all(u, lambda out: any(b"/error.lua?two" in m
                                            for m in out))
        assert any(b"/error.lua?two" in m for m in msgs), msgs
        assert "/error.lua?two" not in _read(path)
        swap("error_log " + target, "error_log %s info" % path)
        wait_for(lambda: "reloaded" in _read(path).split("?one")[-1],
                 5 * SLACK, what="the file again")
        assert http_get(n.port, "/error.lua?three")[0] == 500
        wait_for(lambda: "/error.lua?three" in _read(path), 5 * SLACK,
                 what="the error in the file again")
    finally:
        u.close()
