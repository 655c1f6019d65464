"""ngx.config, ngx.worker and os.exit."""

import os
import re
import signal
import threading
import time

from harness import (Golapis, Nginx, golapis_cmd, http_get, make_docroot,
                     wait_for)

CONFIG = r'''
ngx.header["Content-Type"] = "text/plain"
local c = ngx.config
ngx.say(c.subsystem, " ", c.ngx_lua_version, " ", c.nginx_version)
ngx.say(type(c.debug), " ", type(c.prefix), " ", type(c.prefix()), " ",
        type(c.nginx_configure), " ", type(c.nginx_configure()))
ngx.say(c.prefix():sub(-1), " ", c.prefix():sub(1, 1))
ngx.say(c.nginx_configure() == "" or c.nginx_configure():sub(1, 3) == " --")
local w = ngx.worker
ngx.say(type(w.id()), " ", type(w.count()), " ", type(w.pid()), " ",
        type(w.exiting()), " ", type(w.pids()), " ", type(w.pids()[1]))
ngx.say(w.exiting(), " ", w.id() < w.count(), " ", w.pids()[1] ~= nil)
'''

VALUES = r'''
ngx.header["Content-Type"] = "text/plain"
ngx.say(ngx.worker.id(), " ", ngx.worker.count(), " ", ngx.worker.pid(),
        " ", tostring(ngx.worker.exiting()), " ",
        table.concat(ngx.worker.pids(), ","))
ngx.say(ngx.config.prefix())
ngx.say(tostring(ngx.config.debug))
ngx.say("[", ngx.config.nginx_configure(), "]")
'''


def test_config_worker_differential():
    g = Golapis(docroot=make_docroot({"c.lua": CONFIG}))
    n = Nginx(g, lua=True)
    s1, _, b1 = http_get(n.port, "/c.lua")
    s2, _, b2 = http_get(n.port, "/ref/c.lua")
    assert (s1, b1) == (s2, b2), (b1.decode(), b2.decode())
    assert b1.decode().splitlines() == [
        "http 10023 1022001",
        "boolean function string function string",
        "/ /",
        "true",
        "number number number boolean table number",
        "false true true",
    ], b1


def _golapis_build():
    """debug and configure arguments as golapis -v reports them."""
    rc, out, err = golapis_cmd(["-v"])
    assert rc == 0, (rc, out, err)
    debug = re.search(r"^debug: (\w+)$", out, re.M).group(1)
    args = re.search(r"^configure arguments: ?(.*)$", out, re.M).group(1)
    return debug == "yes", args


def test_config_and_worker_values():
    g = Golapis(docroot=make_docroot({"v.lua": VALUES}), workers=2)
    n = Nginx(g)
    status, _, body = http_get(n.port, "/v.lua")
    assert status == 200, (status, body)
    worker, prefix, debug, configure = body.decode().splitlines()
    wid, count, pid, exiting, pids = worker.split()
    assert wid in ("0", "1") and count == "2", worker
    # one process: every worker has golapis's pid
    assert pid == str(g.pid) and pids == str(g.pid), (worker, g.pid)
    assert exiting == "false", worker
    # the directory of the config file, with a slash as nginx's prefix
    assert prefix == os.path.dirname(os.path.realpath(g.conf_path)) + "/", \
        (prefix, g.conf_path)
    want_debug, args = _golapis_build()
    assert debug == ("true" if want_debug else "false"), debug
    assert configure == ("[ %s]" % args if args else "[]"), (configure, args)


def test_worker_ids():
    # a new connection per request: the acceptor deals them round robin,
    # so both workers answer
    g = Golapis(docroot=make_docroot({"v.lua": VALUES}), workers=2)
    n = Nginx(g)
    ids = set()
    for _ in range(8):
        status, _, body = http_get(n.port, "/v.lua")
        assert status == 200, (status, body)
        wid, count = body.decode().split()[:2]
        assert count == "2", body
        ids.add(int(wid))
        if ids == {0, 1}:
            break
    assert ids == {0, 1}, ids


def test_worker_count_auto():
    g = Golapis(docroot=make_docroot({"v.lua": VALUES}), workers="auto")
    n = Nginx(g)
    status, _, body = http_get(n.port, "/v.lua")
    assert status == 200, (status, body)
    wid, count = body.decode().split()[:2]
    ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
    assert int(count) == ncpu and 0 <= int(wid) < ncpu, (body, ncpu)


EXITING = r'''
ngx.header["Content-Type"] = "text/plain"
local before = ngx.worker.exiting()
ngx.say("started")
ngx.flush()
ngx.sleep(0.8)
ngx.say(tostring(before), " ", tostring(ngx.worker.exiting()))
'''


def test_worker_exiting():
    # a request in flight sees exiting() turn true once SIGTERM came
    g = Golapis(docroot=make_docroot({"e.lua": EXITING}), workers=1)
    n = Nginx(g)
    result = {}

    def fetch():
        result["r"] = http_get(n.port, "/e.lua", timeout=10)

    t = threading.Thread(target=fetch)
    t.start()
    # the script sleeps 0.8 s: the signal comes in the middle of it
    time.sleep(0.3)
    g.send_signal(signal.SIGTERM)
    t.join(10)
    assert "r" in result, "no answer"
    status, _, body = result["r"]
    assert status == 200, (status, body)
    assert body == b"started\nfalse true\n", body
    assert g.wait(10) == 0


# ---------------------------------------------------------------------------
# os.exit: never the end of golapis (test_compat.py has it in a content
# handler, with and without output)

OS_EXIT_CONF = r'''
init_by_lua_block {
    local ok, err = pcall(os.exit, 1)
    OS_EXIT_INIT = tostring(ok) .. " " .. tostring(err):gsub("^.*: os", "os")
    OS_EXIT_SAME = require("os").exit == os.exit
}
init_worker_by_lua_block { os.exit(2) }
header_filter_by_lua_block { if ngx.var.arg_hf then os.exit() end }
log_by_lua_block { if ngx.var.arg_log then os.exit(true) end }
'''

OS_EXIT_SCRIPTS = {
    "init.lua": 'ngx.say(OS_EXIT_INIT, " ", tostring(OS_EXIT_SAME))\n',
    "co.lua": 'coroutine.wrap(function() os.exit(5) end)()\n'
              'ngx.say("not reached")\n',
    "eof.lua": 'ngx.say("sent")\nngx.eof()\nos.exit()\n'
               'ngx.log(ngx.ERR, "not reached")\n',
    "hello.lua": 'ngx.say("hello")\n',
}


def test_os_exit_everywhere():
    # init_by_lua and init_worker_by_lua: an error (logged, the worker
    # runs); the filters and log_by_lua: an error (a 500 from the header
    # filter); a user coroutine: the request ends with a 500; after
    # ngx.eof(): the script ends.  Each time a log line says where.
    g = Golapis(docroot=make_docroot(OS_EXIT_SCRIPTS, copy_scripts=False),
                conf_extra=OS_EXIT_CONF, workers=1)
    n = Nginx(g)
    log = g.log()
    assert re.search(r"\[error\] [^\n]*os\.exit\(1\) called at "
                     r"init_by_lua[^\n]*: golapis does not exit", log), log
    assert re.search(r"init_worker_by_lua error: [^\n]*os\.exit"
                     r"\(2\) called: golapis does not exit", log), log
    s, h, b = http_get(n.port, "/init.lua")
    assert (s, b) == (200, b"false os.exit(1) called: golapis does not "
                           b"exit true\n"), (s, b)
    s, h, b = http_get(n.port, "/co.lua")
    assert s == 500, (s, b)
    s, h, b = http_get(n.port, "/hello.lua?hf=1")
    assert s == 500, (s, b)
    s, h, b = http_get(n.port, "/eof.lua?log=1")
    assert (s, b) == (200, b"sent\n"), (s, b)
    # log_by_lua runs after the response: its lines come a bit later
    wait_for(lambda: "failed to run log_by_lua*" in g.log(), 5,
             what="log_by_lua's error line")
    log = g.log()
    for call in ("os.exit(5) called at %s/co.lua:1: golapis does not exit, "
                 "the request ends" % g.docroot,
                 "os.exit() called at %s/eof.lua:3: golapis does not exit, "
                 "the request ends" % g.docroot,
                 "failed to run header_filter_by_lua*",
                 "os.exit() called: golapis does not exit",
                 "failed to run log_by_lua*"):
        assert call in log, (call, log)
    assert "not reached" not in log, log
    assert g.running()
    s, h, b = http_get(n.port, "/hello.lua")
    assert (s, b) == (200, b"hello\n"), (s, b)


def test_os_exit_in_init_by_lua_fails_the_start():
    # as any error of init_by_lua: golapis does not start, and says why
    # (where the real os.exit would have ended it with that status)
    g = Golapis(docroot=make_docroot(OS_EXIT_SCRIPTS, copy_scripts=False),
                conf_extra="init_by_lua_block { os.exit(0) }\n", workers=1,
                wait=False)
    assert g.wait() == 1, g.tail()
    out = g.log() + g.stderr()
    assert re.search(r"init_by_lua error: [^\n]*os\.exit\(0\) "
                     r"called: golapis does not exit", out), out
