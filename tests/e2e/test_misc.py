"""ngx.config and ngx.worker."""

import os
import re
import signal
import threading
import time

from harness import Golapis, Nginx, golapis_cmd, http_get, make_docroot

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
