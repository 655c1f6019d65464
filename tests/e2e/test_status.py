"""status_uri and ping_uri (src/api/gl_lua_status.c, docs/status.md): the
status page as plain text, JSON and Prometheus (or OpenMetrics) text, and
ngx.server_status() from Lua.  Each test does something a counter must
show (requests, a shared dict's keys, a pending timer, a request in
flight, a reload, a client_timeout...) and checks the page against it;
the formats are checked against each other, and the Prometheus text by a
strict parser of the exposition format (below), not by string matching."""

import json
import math
import os
import re
import signal
import socket
import threading
import time

from harness import (Golapis, Nginx, fcgi_get, free_port, golapis_cmd,
                     http_get, make_docroot, wait_for)

TSAN = os.environ.get("GL_SANITIZER") == "thread"
SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

CONF = "status_uri /golapis-status;\nping_uri /ping;\n"

SCRIPTS = {
    "slow.lua": "ngx.sleep(tonumber(ngx.var.arg_t) or 1)\nngx.say('slept')\n",
    "sets.lua": ("local d = ngx.shared.cache\n"
                 "for i = 1, 10 do assert(d:set('k' .. i, i)) end\n"
                 "ngx.say('set')\n"),
    "timer.lua": ("assert(ngx.timer.at(60, function() end))\n"
                  "ngx.say(ngx.worker.id())\n"),
    # the script the status_uri must win over
    "status.lua": "ngx.say('the script')\n",
    "count.lua": "ngx.say(ngx.worker.count())\n",
    "pool.lua": ("local s = ngx.socket.tcp()\n"
                 "assert(s:connect('127.0.0.1', tonumber(ngx.var.arg_port)))\n"
                 "assert(s:setkeepalive(10000, 4))\n"
                 "ngx.say(ngx.worker.id())\n"),
    "loop.lua": "jit.off()\nlocal n = 0\nwhile true do n = n + 1 end\n",
    "block.lua": ('local f = io.popen("sleep 0.3")\nf:read("*a")\n'
                  'f:close()\nngx.say("done")\n'),
    # ngx.server_status() flattened to "path type" lines, arrays as "[]"
    "lua_status.lua": r"""
local s = golapis.server_status()
assert(ngx.server_status == golapis.server_status)
local out = {}
local function walk(v, path)
    if type(v) ~= "table" then
        out[#out + 1] = path .. " " .. type(v)
        return
    end
    out[#out + 1] = path .. " table"
    if #v > 0 then
        for _, x in ipairs(v) do walk(x, path .. "[]") end
    else
        for k, x in pairs(v) do walk(x, path .. "." .. k) end
    end
end
walk(s, "")
table.sort(out)
local seen, uniq = {}, {}
for _, l in ipairs(out) do
    if not seen[l] then seen[l] = true; uniq[#uniq + 1] = l end
end
ngx.say(type(ngx.status), " ", ngx.status)
ngx.say(s.requests, " ", #s.workers, " ", s.workers[1].id, " ",
        s.workers[1].state, " ", s.latency.buckets[1].le, " ",
        s.shared_dicts.cache.capacity, " ", s.version, " ", s.pid)
ngx.say(table.concat(uniq, "\n"))
""",
}


def _setup(workers=2, conf=CONF, extra="lua_shared_dict cache 1m;\n",
           nginx=True, **kw):
    d = make_docroot(SCRIPTS)
    g = Golapis(docroot=d, workers=workers, conf_extra=conf + extra, **kw)
    return g, (Nginx(g) if nginx else None)


def _json(n):
    st, h, body = http_get(n.port, "/golapis-status?json")
    assert st == 200, (st, body)
    assert h.get("Content-Type") == "application/json", h.get("Content-Type")
    return json.loads(body)


def _prom(n, headers=None):
    st, h, body = http_get(n.port, "/golapis-status?prometheus",
                           headers=headers)
    assert st == 200, (st, body)
    return h.get("Content-Type"), body.decode()


# ---------------------------------------------------------------------------
# a strict parser of the Prometheus text format (0.0.4) and of OpenMetrics
# 1.0 text, as far as this page uses them

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = r"\{(?:%s=%s(?:,%s=%s)*)?\}" % (LABEL, LVALUE, LABEL, LVALUE)
VALUE = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN"
SAMPLE_RE = re.compile(r"^(%s)(%s)? (%s)$" % (NAME, LABELS, VALUE))
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|"
                     r"untyped|unknown|info|stateset|gaugehistogram)$" % NAME)
PAIR_RE = re.compile(r"(%s)=(%s)" % (LABEL, LVALUE))


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1),
                                                      m.group(1)), v[1:-1])


def _float(v):
    return float(v.replace("Inf", "inf"))


def parse_exposition(text, om=False):
    """{family: {"type", "help", "samples": [(name, {labels}, value)]}};
    raises AssertionError on anything out of the grammar or the rules:
    HELP and TYPE once each, before the family's samples; a family's
    samples together; names that fit the type (counters "_total",
    histograms "_bucket" with le, "_sum", "_count"); no label set twice;
    OpenMetrics: "# EOF" last, counter families named without "_total"."""
    assert text.endswith("\n"), "no newline at the end"
    lines = text[:-1].split("\n")
    if om:
        assert lines[-1] == "# EOF", "OpenMetrics text must end with # EOF"
        lines = lines[:-1]
        assert "# EOF" not in lines, "# EOF before the end"
    fams = {}
    order = []
    current = None
    done = set()

    def family_of(name):
        for suffix in ("_total", "_bucket", "_sum", "_count", ""):
            if suffix and not name.endswith(suffix):
                continue
            base = name[:len(name) - len(suffix)] if suffix else name
            f = fams.get(base)
            if f is None:
                continue
            t = f["type"]
            if t == "counter" and (suffix == "_total" if om else suffix == ""):
                return base
            if t == "histogram" and suffix in ("_bucket", "_sum", "_count"):
                return base
            if t == "gauge" and suffix == "":
                return base
        raise AssertionError("sample %s has no family with HELP and TYPE"
                             % name)

    for no, line in enumerate(lines, 1):
        where = "line %d: %r" % (no, line)
        assert line, "empty line (%s)" % where
        if line.startswith("#"):
            m = HELP_RE.match(line)
            if m:
                name = m.group(1)
                assert name not in done, "HELP after the samples: " + where
                f = fams.setdefault(name, {"type": None, "help": None,
                                           "samples": []})
                assert f["help"] is None, "second HELP: " + where
                assert not f["samples"], "HELP after samples: " + where
                assert m.group(2).strip(), "empty HELP: " + where
                f["help"] = m.group(2)
                if name not in order:
                    order.append(name)
                if current is not None and current != name:
                    done.add(current)
                current = name
                continue
            m = TYPE_RE.match(line)
            assert m, "a comment that is neither HELP nor TYPE: " + where
            name = m.group(1)
            assert name not in done, "TYPE after the samples: " + where
            f = fams.setdefault(name, {"type": None, "help": None,
                                       "samples": []})
            assert f["type"] is None, "second TYPE: " + where
            assert not f["samples"], "TYPE after samples: " + where
            f["type"] = m.group(2)
            if om and f["type"] == "counter":
                assert not name.endswith("_total"), \
                    "OpenMetrics counter family ends with _total: " + where
            if not om and f["type"] == "counter":
                assert name.endswith("_total"), \
                    "counter not named *_total: " + where
            if name not in order:
                order.append(name)
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: " + where
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        fam = family_of(name)
        assert fam not in done, "family %s split up: %s" % (fam, where)
        if current is not None and current != fam:
            done.add(current)
        current = fam
        f = fams[fam]
        assert f["help"] is not None and f["type"] is not None, \
            "sample before HELP and TYPE: " + where
        labels = {}
        for k, v in PAIR_RE.findall(labels_text):
            assert k not in labels, "label twice: " + where
            labels[k] = _unescape(v)
        v = _float(value)
        if f["type"] == "counter":
            assert v >= 0, "negative counter: " + where
        key = (name, tuple(sorted(labels.items())))
        assert key not in {(s[0], tuple(sorted(s[1].items())))
                           for s in f["samples"]}, "duplicate: " + where
        f["samples"].append((name, labels, v))

    for name, f in fams.items():
        assert f["type"] is not None and f["help"] is not None, \
            "family %s lacks HELP or TYPE" % name
        assert f["samples"], "family %s has no sample" % name
        if f["type"] == "histogram":
            _check_histogram(name, f["samples"])
    return fams


def _check_histogram(name, samples):
    groups = {}
    for s, labels, v in samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None,
                                     "count": None})
        if s == name + "_bucket":
            assert "le" in labels, "bucket without le"
            g["buckets"].append((_float(labels["le"]), v))
        elif s == name + "_sum":
            g["sum"] = v
        else:
            g["count"] = v
    for g in groups.values():
        les = [le for le, _ in g["buckets"]]
        assert les == sorted(les), "buckets out of order: %r" % les
        assert les and les[-1] == math.inf, "no +Inf bucket"
        counts = [c for _, c in g["buckets"]]
        assert counts == sorted(counts), "buckets not cumulative"
        assert g["count"] == counts[-1], "_count != +Inf bucket"
        assert g["sum"] is not None and g["sum"] >= 0, "no _sum"


def _by_worker(fams, name):
    return {int(s[1]["worker"]): s[2] for s in fams[name]["samples"]}


def _text_rows(body):
    """The plain text's table: {row name: [total or None, per worker...]}."""
    rows = {}
    for line in body.splitlines():
        m = re.match(r"^([a-z_]+) +(-?\d+(?: +-?\d+)*)$", line)
        if m:
            rows[m.group(1)] = [int(x) for x in m.group(2).split()]
    return rows


# ---------------------------------------------------------------------------

def test_ping():
    g, n = _setup()
    st, h, body = http_get(n.port, "/ping")
    assert (st, body) == (200, b"pong\n"), (st, body)
    assert h.get("Content-Type").startswith("text/plain")
    st, h, body = http_get(n.port, "/ping", method="HEAD")
    assert (st, body) == (200, b""), (st, body)
    st, h, body = http_get(n.port, "/ping", method="POST", body=b"x")
    assert st == 405 and h.get("Allow") == "GET, HEAD", (st, h.items())
    # only the exact URI (the rest is a script's, and there is none)
    assert http_get(n.port, "/ping/x")[0] == 403
    assert http_get(n.port, "/hello.lua")[2] == b"hello, world\n"


def test_off_by_default():
    g, n = _setup(conf="")
    assert http_get(n.port, "/ping")[0] == 403
    assert http_get(n.port, "/golapis-status")[0] == 403
    # and the Lua function is there all the same
    st, _, body = http_get(n.port, "/lua_status.lua")
    assert st == 200, (st, body)


def test_formats_agree_after_hellos():
    g, n = _setup(workers=2)
    N = 40
    for _ in range(N):
        assert http_get(n.port, "/hello.lua")[2] == b"hello, world\n"
    http_get(n.port, "/nothere.lua")          # a 404

    j = _json(n)
    assert j["version"] and j["pid"] == g.pid, (j["pid"], g.pid)
    assert j["workers_configured"] == 2 and len(j["workers"]) == 2
    assert 0 <= j["uptime"] < 600
    assert abs(j["start_time"] + j["uptime"] - time.time()) < 5
    # the hellos, the 404 and this request
    assert j["requests"] >= N + 2, j["requests"]
    assert j["requests_active"] >= 1
    assert j["responses"]["2xx"] >= N and j["responses"]["4xx"] >= 1
    assert j["connections_accepted"] >= N + 2
    # every total is the sum of the workers'
    for key, total in j.items():
        if isinstance(total, int) and key in j["workers"][0]:
            assert total == sum(w[key] for w in j["workers"]), key
    for w in j["workers"]:
        assert w["state"] == "running" and w["lua_generation"] == 1, w
        assert w["requests"] > 0, "a worker served nothing: %r" % j
        assert w["lua_heap_bytes"] > 50000, w
    # every request that ended is in the histogram, and only those
    lat = j["latency"]
    assert lat["count"] == j["requests"] - j["requests_active"], j
    assert sum(j["responses"].values()) == lat["count"], j
    counts = [b["count"] for b in lat["buckets"]]
    assert counts == sorted(counts) and counts[-1] <= lat["count"]
    assert [b["le"] for b in lat["buckets"]] == [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    assert 0 <= lat["sum"] < lat["count"] * 1.0
    assert set(j["shared_dicts"]) == {"cache", "golapis"}

    # the same through Prometheus: one request more
    ctype, text = _prom(n)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    fams = parse_exposition(text)
    req = _by_worker(fams, "golapis_requests_total")
    assert sum(req.values()) == j["requests"] + 1, (req, j["requests"])
    for w in j["workers"]:
        assert req[w["id"]] >= w["requests"]
        assert _by_worker(fams, "golapis_lua_generation")[w["id"]] == 1
    hist = {s[1].get("le"): s[2] for s in
            fams["golapis_request_duration_seconds"]["samples"]
            if s[0].endswith("_bucket")}
    count = [s[2] for s in fams["golapis_request_duration_seconds"]["samples"]
             if s[0].endswith("_count")][0]
    active = sum(_by_worker(fams, "golapis_requests_active").values())
    assert count == sum(req.values()) - active, (count, req, active)
    assert hist["+Inf"] == count and hist["0.005"] <= count
    resp = {s[1]["code"]: s[2] for s in
            fams["golapis_responses_total"]["samples"]}
    assert sum(resp.values()) == count
    assert fams["golapis_build_info"]["samples"][0][1]["version"] == \
        j["version"]
    state = {s[1]["worker"]: s[1]["state"] for s in
             fams["golapis_worker_state"]["samples"]}
    assert state == {"0": "running", "1": "running"}, state
    dicts = {s[1]["dict"]: s[2] for s in
             fams["golapis_shared_dict_capacity_bytes"]["samples"]}
    assert dicts == {"cache": 1048576, "golapis": 1048576}, dicts
    for name, f in fams.items():
        assert name.startswith("golapis_"), name

    # and as plain text: one request more again
    st, h, body = http_get(n.port, "/golapis-status")
    assert st == 200 and h.get("Content-Type").startswith("text/plain")
    text = body.decode()
    assert text.startswith("golapis %s, pid %d\n" % (j["version"], g.pid))
    rows = _text_rows(text)
    assert rows["requests"][0] == sum(req.values()) + 1, rows["requests"]
    assert rows["requests"][0] == sum(rows["requests"][1:])
    assert rows["lua_generation"] == [1, 1], rows["lua_generation"]
    assert re.search(r"^  cache +1048576 +\d+ +0$", text, re.M), text


def test_openmetrics_negotiated():
    g, n = _setup(workers=1)
    for _ in range(3):
        http_get(n.port, "/hello.lua")
    ctype, text = _prom(n, headers={
        "Accept": "application/openmetrics-text;version=1.0.0,"
                  "text/plain;version=0.0.4;q=0.5"})
    assert ctype.startswith("application/openmetrics-text; version=1.0.0"), \
        ctype
    fams = parse_exposition(text, om=True)
    assert fams["golapis_requests"]["type"] == "counter"
    assert _by_worker(fams, "golapis_requests")[0] >= 4
    # not the 0.0.4 text, which the strict parser tells apart
    try:
        parse_exposition(text)
    except AssertionError:
        pass
    else:
        raise AssertionError("OpenMetrics text parsed as 0.0.4")


def test_query_forms():
    # as Prometheus's "params" send them ("prometheus="), format=, others
    g, n = _setup(workers=1)
    for q, want in (("prometheus=", "text/plain; version=0.0.4"),
                    ("a=1&format=prometheus", "text/plain; version=0.0.4"),
                    ("json=1", "application/json"),
                    ("x=json&format=json", "application/json"),
                    ("jsonx", "text/plain; charset"),
                    ("format=", "text/plain; charset"),
                    ("", "text/plain; charset")):
        st, h, body = http_get(n.port, "/golapis-status?" + q)
        assert st == 200 and h.get("Content-Type").startswith(want), \
            (q, h.get("Content-Type"))


def test_listen_queues():
    # each listen socket's queue and backlog, from the kernel (sock_diag)
    port = free_port()
    g, n = _setup(workers=1, extra="listen 127.0.0.1:%d;\n" % port)
    with open("/proc/sys/net/core/somaxconn") as f:
        backlog = min(4096, int(f.read()))
    j = _json(n)
    want = ["unix:" + g.sock, "127.0.0.1:%d" % port]
    assert [x["address"] for x in j["listen"]] == want, j["listen"]
    for x in j["listen"]:
        assert x["queue"] >= 0 and x["backlog"] == backlog, j["listen"]
    fams = parse_exposition(_prom(n)[1])
    got = {s[1]["listen"]: s[2]
           for s in fams["golapis_listen_backlog"]["samples"]}
    assert got == {w: backlog for w in want}, got
    assert "listen 127.0.0.1:%d: 0 waiting to be accepted, backlog %d" % (
        port, backlog) in http_get(n.port, "/golapis-status")[2].decode()


def test_listen_queues_are_our_sockets():
    # another process listens on 127.0.0.1:P (backlog 7), golapis on
    # [::1]:P: the page shows golapis's own socket (found by inode, not
    # by port); a reload that changes the listen lines changes nothing
    # there, as it changes no socket
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen(7)
    port = other.getsockname()[1]
    other2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other2.bind(("127.0.0.1", 0))
    other2.listen(7)
    try:
        g, n = _setup(workers=1, extra="listen [::1]:%d;\n" % port)
        with open("/proc/sys/net/core/somaxconn") as f:
            backlog = min(4096, int(f.read()))
        want = [("unix:" + g.sock, backlog), ("[::1]:%d" % port, backlog)]
        got = [(x["address"], x["backlog"]) for x in _json(n)["listen"]]
        assert got == want, got
        mark = g.mark()
        with open(g.conf_path) as f:
            text = f.read()
        with open(g.conf_path, "w") as f:
            f.write(text.replace("listen [::1]:%d;" % port,
                                 "listen 127.0.0.1:%d;"
                                 % other2.getsockname()[1]))
        g.send_signal(signal.SIGHUP)
        wait_for(lambda: "need a restart" in g.log_since(mark), 5 * SLACK,
                 what="the reload")
        got = [(x["address"], x["backlog"]) for x in _json(n)["listen"]]
        assert got == want, got
    finally:
        other.close()
        other2.close()


def test_shared_dict_keys():
    g, n = _setup()
    j = _json(n)
    # a worker that ran no request yet has its heap known all the same
    assert all(w["lua_heap_bytes"] > 50000 for w in j["workers"]), j
    d = j["shared_dicts"]["cache"]
    assert d == {"capacity": 1048576, "free_space": 1048576, "keys": 0}, d
    assert http_get(n.port, "/sets.lua")[2] == b"set\n"
    d = _json(n)["shared_dicts"]["cache"]
    assert d["keys"] == 10 and d["free_space"] < d["capacity"], d
    fams = parse_exposition(_prom(n)[1])
    keys = {s[1]["dict"]: s[2]
            for s in fams["golapis_shared_dict_keys"]["samples"]}
    assert keys["cache"] == 10, keys


def test_timer_pending():
    g, n = _setup()
    st, _, body = http_get(n.port, "/timer.lua")
    assert st == 200, body
    wid = int(body)
    j = _json(n)
    assert j["timers_pending"] == 1, j
    assert j["workers"][wid]["timers_pending"] == 1, j["workers"]
    assert j["timers_running"] == 0


def test_active_request_and_latency():
    g, n = _setup(workers=2)
    out = {}

    def slow():
        out["slow"] = http_get(n.port, "/slow.lua?t=%d" % (1 * SLACK))
    t = threading.Thread(target=slow)
    t.start()
    # the sleeping request and this one
    wait_for(lambda: _json(n)["requests_active"] >= 2, 5 * SLACK,
             what="the sleeping request counted active")
    t.join()
    assert out["slow"][2] == b"slept\n"
    j = _json(n)
    assert j["requests_active"] == 1, j       # this one
    lat = {b["le"]: b["count"] for b in j["latency"]["buckets"]}
    # it took a second (or more under a sanitizer): above 0.5s
    assert lat[0.5] == j["latency"]["count"] - 1, j["latency"]
    assert j["latency"]["sum"] >= 0.9 * SLACK


def test_status_uri_wins_over_a_script():
    # status.lua exists in the docroot: the status page answers all the
    # same, and so with a content_by_lua front controller
    for extra in ("", "content_by_lua_block { ngx.say('front') }\n"):
        g, n = _setup(conf="status_uri /status.lua;\nping_uri /hello.lua;\n",
                      extra=extra)
        st, h, body = http_get(n.port, "/status.lua")
        assert st == 200 and body.startswith(b"golapis "), (extra, body)
        assert http_get(n.port, "/hello.lua")[2] == b"pong\n"
        st, _, body = http_get(n.port, "/status.lua?json")
        assert json.loads(body)["requests"] >= 2
        if extra:
            assert http_get(n.port, "/sets.lua")[2] == b"front\n"
        g.stop()


def test_no_filters_run_for_the_endpoints():
    # without a Lua state for the request, no header or body filter runs
    # (and none is tried)
    g, n = _setup(extra=(
        "header_filter_by_lua_block { ngx.header['X-Filtered'] = '1' }\n"
        "body_filter_by_lua_block { ngx.arg[1] = string.upper(ngx.arg[1]) }"
        "\n"))
    st, h, body = http_get(n.port, "/ping")
    assert (st, body, h.get("X-Filtered")) == (200, b"pong\n", None)
    st, h, body = http_get(n.port, "/golapis-status?json")
    assert st == 200 and json.loads(body)["requests"] >= 2
    # the scripts still get theirs
    st, h, body = http_get(n.port, "/hello.lua")
    assert (body, h.get("X-Filtered")) == (b"HELLO, WORLD\n", "1")


def test_head_and_script_name():
    g, n = _setup(workers=1)
    st, h, body = http_get(n.port, "/golapis-status?json", method="HEAD")
    assert st == 200 and body == b"", (st, body)
    assert int(h.get("Content-Length")) > 100
    # straight to golapis without DOCUMENT_URI: SCRIPT_NAME is matched
    st, h, body = fcgi_get(g.sock, "/nowhere/x.lua", params={
        "SCRIPT_NAME": "/golapis-status", "REQUEST_METHOD": "GET",
        "QUERY_STRING": "format=json"})
    assert st == 200 and json.loads(body)["workers_configured"] == 1
    st, h, body = fcgi_get(g.sock, "/nowhere/x.lua", params={
        "SCRIPT_NAME": "/ping", "REQUEST_METHOD": "GET"})
    assert (st, body) == (200, b"pong\n"), (st, body)


def test_server_status_from_lua():
    g, n = _setup(workers=2)
    st, _, body = http_get(n.port, "/lua_status.lua")
    assert st == 200, body
    lines = body.decode().splitlines()
    assert lines[0] == "number 0", lines[0]     # the response's, not set
    f = lines[1].split()
    assert int(f[0]) >= 1 and f[1:6] == ["2", "0", "running", "0.005",
                                          "1048576"], f
    assert int(f[7]) == g.pid
    lua_paths = set(lines[2:])

    # the JSON has the same structure, key for key
    def walk(v, path, out):
        if isinstance(v, dict):
            out.add(path + " table")
            for k, x in v.items():
                walk(x, path + "." + k, out)
        elif isinstance(v, list):
            out.add(path + " table")
            for x in v:
                walk(x, path + "[]", out)
        else:
            out.add(path + " " + ("string" if isinstance(v, str)
                                  else "number"))
    json_paths = set()
    walk(_json(n), "", json_paths)
    assert lua_paths == json_paths, (sorted(lua_paths ^ json_paths))


def test_reload_counted():
    g, n = _setup(workers=2)
    g.send_signal(signal.SIGHUP)

    def reloaded():
        j = _json(n)
        return all(w["lua_generation"] == 2 for w in j["workers"]) and j
    j = wait_for(reloaded, 10 * SLACK, what="generation 2 on every worker")
    assert j["lua_reloads"] == 2 and j["lua_reloads_failed"] == 0, j
    # a config whose init_by_lua fails: counted as failed, the old goes on
    with open(g.conf_path, "a") as f:
        f.write("init_by_lua_block { error('no') }\n")
    g.send_signal(signal.SIGHUP)
    j = wait_for(lambda: (lambda j: j["lua_reloads_failed"] == 2 and j)(
        _json(n)), 10 * SLACK, what="two failed reloads")
    assert all(w["lua_generation"] == 2 for w in j["workers"]), j


def test_tcp_pool_counted():
    g, n = _setup(workers=1)
    st, _, body = http_get(n.port, "/pool.lua?port=%d" % n.port)
    assert st == 200, body
    j = _json(n)
    assert j["tcp_pools"] == 1 and j["tcp_pool_idle"] == 1, j
    assert j["workers"][0]["tcp_pool_idle"] == 1


def test_client_timeout_counted():
    g, n = _setup(workers=1, extra="client_timeout 500ms;\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(g.sock)
    s.sendall(b"\x01\x01\x00")           # three bytes of a record header
    s.settimeout(10 * SLACK)
    assert s.recv(100) == b""            # closed by client_timeout
    s.close()
    j = wait_for(lambda: (lambda j: j["client_timeouts"] >= 1 and j)(
        _json(n)), 5 * SLACK, what="the client_timeout counted")
    assert j["connections"] >= 2 and j["keepalive_timeouts"] == 0, j


def test_runaway_and_block_counted():
    if TSAN:
        print("SKIPPED under TSan: it defers the watchdog's signal "
              "(see test_watch.py)")
        return
    g, n = _setup(workers=1, extra=("lua_max_run_time 1s;\n"
                                    "lua_block_warn_time 100ms;\n"))
    assert http_get(n.port, "/loop.lua")[0] == 500
    assert http_get(n.port, "/block.lua")[2] == b"done\n"
    j = _json(n)
    assert j["lua_interrupted"] == 1, j
    # the loop passed the warning time too
    assert j["lua_block_warnings"] == 2, j
    assert j["responses"]["5xx"] == 1
    assert j["workers"][0]["state"] == "running"


def test_conf_checked():
    d = make_docroot()
    for bad, msg in (("status_uri golapis-status;", 'must begin with "/"'),
                     ("ping_uri x;", 'must begin with "/"'),
                     ("status_uri /s;\nping_uri /s;", "are the same"),
                     ("status_uri /a;\nstatus_uri /b;", "is duplicate")):
        g = Golapis(docroot=d, conf_extra=bad, start=False)
        rc, out, err = golapis_cmd(["-t", "-c", g.conf_path])
        assert rc == 1 and msg in err, (bad, rc, out, err)


def test_stuck_worker_shown():
    # a loop the JIT compiles cannot be interrupted: the worker is stuck,
    # another starts with the next number (test_watch.py has the rest)
    g, n = _setup(workers=1, extra=("lua_max_run_time 300ms;\n"
                                    "worker_shutdown_timeout 1s;\n"))
    with open(os.path.join(g.docroot, "jit.lua"), "w") as f:
        f.write("local n = 0\nwhile true do n = n + 1 end\n")

    def fire():
        try:
            http_get(n.port, "/jit.lua", timeout=10)
        except Exception:
            pass
    threading.Thread(target=fire, daemon=True).start()
    wait_for(lambda: "worker 1 starts in place of a stuck one" in g.log(),
             5 * SLACK, what="the replacement")
    j = _json(n)
    assert j["workers_stuck"] == 1 and j["workers_configured"] == 1, j
    assert [(w["id"], w["state"]) for w in j["workers"]] == [
        (0, "stuck"), (1, "running")], j["workers"]
    fams = parse_exposition(_prom(n)[1])
    state = {s[1]["worker"]: s[1]["state"] for s in
             fams["golapis_worker_state"]["samples"]}
    assert state == {"0": "stuck", "1": "running"}, state
    # a reload counts the workers configured, not the threads started
    mark = g.mark()
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload" in g.log_since(mark), 5 * SLACK,
             what="the reload")
    time.sleep(0.3 * SLACK)
    assert '"workers" changes' not in g.log_since(mark), g.log_since(mark)
    j = _json(n)
    assert j["workers_configured"] == 1, j
    assert http_get(n.port, "/count.lua")[2] == b"1\n"


def test_retired_worker_shown():
    # a Lua panic retires the worker; another starts in its slot
    from test_watch import _gc_setup
    g, n = _gc_setup(conf=CONF, retires=True)
    sent = 0
    while "worker 0 starts again" not in g.log() and sent < 5000:
        http_get(n.port, "/gcerr.lua")
        sent += 1
    assert "worker 0 starts again" in g.log(), g.tail()
    j = _json(n)
    assert j["workers_retired"] >= 1, j
    w = j["workers"]
    assert len(w) == 1 and w[0]["state"] == "running", w
    assert w[0]["starts"] == 1 + j["workers_retired"], w
    # what the retired one had in flight went with it
    assert w[0]["requests_active"] == 1, w
