"""ngx.log, print, the level constants and ngx.errlog: the lines in
golapis's error log against those the real lua-nginx-module writes for the
same script.

Our line prefix differs from nginx's on purpose: "PID#WORKER:" for
"PID#TID:", no "*CONNECTION " number, and level 0 reads "[stderr]" where
nginx writes "[]"; lines() below compares what follows the prefix, with
the level."""

import re

from harness import Golapis, Nginx, http_get, make_docroot, mktemp, wait_for

PREFIX_RE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w*)\] \d+#\w+: "
                       r"(?:\*\d+ )?(.*)$", re.S)

# Host without a port: Debian's fastcgi_params sends HTTP_HOST as $host
HOST = {"Host": "localhost"}

STRIP_DIR = r'''
local function e(ok, err)
    if ok then return "ok " .. tostring(err) end
    return "err " .. tostring(err):gsub("^.-([^/]+%.lua:%d+:)", "%1")
end
'''


def lines(text):
    """[(level, message)] of the lines with an "@@" marker or from x.lua;
    the message with /ref/ made / (nginx's URI has that prefix)."""
    out = []
    for line in text.split("\n"):
        if "@@" not in line and "[lua] x.lua:" not in line:
            continue
        m = PREFIX_RE.match(line)
        assert m, "not a log line: %r" % line
        level = m.group(1) or "stderr"
        out.append((level, m.group(2).replace("/ref/", "/")))
    return out


def _both(script, path="x.lua", golapis_level="info", nginx_level=None,
          headers=HOST, query=""):
    """Runs script as golapis and as the real module; returns
    ((status, body, loglines), (status, body, loglines))."""
    g = Golapis(docroot=make_docroot({path: script}), log_level=golapis_level)
    extra = ""
    ref_log = None
    if nginx_level:
        # the request's log: an http-level error_log of its own
        ref_log = mktemp("reflog-") + "/lua.log"
        extra = "error_log %s %s;" % (ref_log, nginx_level)
    n = Nginx(g, lua=True, extra_http=extra)
    s1, _, b1 = http_get(n.port, "/" + path + query, headers=headers)
    s2, _, b2 = http_get(n.port, "/ref/" + path + query, headers=headers)

    def ref_text():
        if ref_log is None:
            return n.log()
        with open(ref_log, errors="replace") as f:
            return f.read()

    # both write their lines before the answer; wait for a late writer all
    # the same
    wait_for(lambda: "@@end" in g.log() and "@@end" in ref_text(), 5,
             what="the @@end log lines")
    return (s1, b1, lines(g.log())), (s2, b2, lines(ref_text()))


LOGS = STRIP_DIR + r'''
ngx.header["Content-Type"] = "text/plain"
ngx.log(ngx.ERR, "@@a ", "hello, log", 1234, 3.14159, " ", -0, " ", 2^31,
        " ", 1e15, " ", 0/0, " ", 1/0, " ", -1/0, " ", 0.1, " ", 1/3, " ",
        -2147483648, " ", 2^53)
ngx.log(ngx.WARN, "@@b ", true, false, nil, ngx.null)
print("@@c print ", 1, nil)
print()
print(nil)
ngx.log(ngx.STDERR, "@@d stderr")
ngx.log(ngx.EMERG, "@@e emerg")
ngx.log(ngx.ALERT, "@@f alert")
ngx.log(ngx.CRIT, "@@g crit")
ngx.log(ngx.NOTICE, "@@h notice")
ngx.log(ngx.INFO, "@@i info")
-- below the level: no line, and the arguments are not even checked
ngx.log(ngx.DEBUG, "@@j debug", {}, print)
local t = setmetatable({}, {
    __tostring = function() return "tostring: value" end})
ngx.log(ngx.ERR, "@@k ", t, " hello ", t)
local n = setmetatable({}, {__tostring = function() return 42 end})
ngx.log(ngx.ERR, "@@l [", n, "]")
local function foo() ngx.log(ngx.ERR, "@@m in foo") end
foo()
local M = {}
function M.bar() ngx.log(ngx.ERR, "@@n in bar") end
M.bar()
function M:baz() print("@@o in baz") end
M:baz()
local function deep() local x = 1; ngx.log(ngx.ERR, "@@p", " deep ", x) end
local function mid() deep() end
mid()
pcall(ngx.log, ngx.ERR, "@@q via pcall")
ngx.log(ngx.ERR, "@@r nul\0byte")
ngx.log("4", "@@s string level")
ngx.log(4.9, "@@t float level")
local log = ngx.log
log(ngx.ERR, "@@u a local alias")

-- argument errors
ngx.say(e(pcall(ngx.log, ngx.ERR, {})))
ngx.say(e(pcall(ngx.log, ngx.ERR, "a", function() end)))
ngx.say(e(pcall(ngx.log, ngx.ERR, "a", io.stdout)))
ngx.say(e(pcall(ngx.log, 9, "a")))
ngx.say(e(pcall(ngx.log, -1, "a")))
ngx.say(e(pcall(ngx.log, ngx.ERROR, "a")))
ngx.say(e(pcall(ngx.log, nil, "a")))
ngx.say(e(pcall(ngx.log, "x", "a")))
ngx.say(e(pcall(ngx.log)))
ngx.say(e(pcall(print, "a", {})))
ngx.say(e(pcall(print, io.stdout)))
ngx.say(e(pcall(function() ngx.log(ngx.ERR, {}) end)))
ngx.say(e(pcall(function() print("x", true, {}) end)))
ngx.say(e(pcall(function() ngx.log(ngx.ERR, 1, setmetatable({}, {
    __tostring = function() error("inner") end})) end)))
ngx.say(e(pcall(function() log(100, "x") end)))
ngx.say(ngx.log(ngx.ERR, "@@v returns nothing"))
ngx.say(print("@@w returns nothing"))

-- the constants
ngx.say(ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN,
        ngx.NOTICE, ngx.INFO, ngx.DEBUG)
ngx.log(ngx.ERR, "@@end")
'''


def test_log_differential():
    ours, ref = _both(LOGS)
    assert ref[0] == 200, ref
    assert ours[:2] == ref[:2], "golapis:\n%s\nnginx:\n%s" % (
        ours[1].decode(errors="replace"), ref[1].decode(errors="replace"))
    assert ours[2] == ref[2], "golapis:\n%s\nnginx:\n%s" % (
        "\n".join(map(repr, ours[2])), "\n".join(map(repr, ref[2])))
    # and what both should say, so both being wrong alike shows too
    suffix = (', client: 127.0.0.1, server: localhost, request: '
              '"GET /x.lua HTTP/1.1", host: "localhost"')
    assert ("[lua] x.lua:8: @@a hello, log12343.14159 0 2147483648 1e+15 "
            "-nan inf -inf 0.1 0.33333333333333 -2147483648 "
            "9.007199254741e+15" + suffix) in [m for _, m in ours[2]], ours[2]
    assert ("warn", "[lua] x.lua:11: @@b truefalsenilnull" + suffix) \
        in ours[2], ours[2]
    assert ("notice", "[lua] x.lua:12: @@c print 1nil" + suffix) in ours[2]
    assert ("notice", "[lua] x.lua:13: " + suffix) in ours[2], ours[2]
    assert ("notice", "[lua] x.lua:14: nil" + suffix) in ours[2], ours[2]
    assert ("stderr", "[lua] x.lua:15: @@d stderr" + suffix) in ours[2]
    assert not any("@@j" in m for _, m in ours[2]), ours[2]
    assert ("error", "[lua] x.lua:28: foo(): @@m in foo" + suffix) \
        in ours[2], ours[2]
    assert ("notice", "[lua] x.lua:33: baz(): @@o in baz" + suffix) \
        in ours[2], ours[2]
    assert ("error", "[lua] [C]:-1: @@q via pcall" + suffix) in ours[2]
    assert ("error", "[lua] x.lua:39: @@r nul\0byte" + suffix) in ours[2]
    body = ours[1].decode()
    assert "err bad argument #1 to '?' (expected table to have __tostring " \
        "metamethod)" in body, body
    assert "err x.lua:57: bad argument #1 to 'log' (expected table to " \
        "have __tostring metamethod)" in body, body
    assert "err x.lua:61: bad argument #1 to 'log' (bad log level: 100)" \
        in body, body
    assert "\n012345678\n" in body, body


def test_log_uncaught_error_is_500():
    # a bad argument not caught: the request fails as in nginx
    script = ('ngx.log(ngx.ERR, "@@x", {})\n'
              'ngx.say("not reached")\n'
              'ngx.log(ngx.ERR, "@@end")\n')
    g = Golapis(docroot=make_docroot({"x.lua": script}))
    n = Nginx(g, lua=True)
    s1, _, b1 = http_get(n.port, "/x.lua", headers=HOST)
    s2, _, b2 = http_get(n.port, "/ref/x.lua", headers=HOST)
    assert s1 == s2 == 500, (s1, s2)
    wait_for(lambda: "expected table to have" in g.log(), 5,
             what="the error line")
    assert re.search(r"lua entry thread aborted: runtime error: \S*x\.lua:1: "
                     r"bad argument #2 to 'log' \(expected table to have "
                     r"__tostring metamethod\)", g.log()), g.log()
    assert "[lua] x.lua:1: @@x" not in g.log(), g.log()


FILTER = r'''
ngx.header["Content-Type"] = "text/plain"
for level = ngx.STDERR, ngx.DEBUG do
    ngx.log(level, "@@lvl ", level)
end
print("@@printed")
local errlog = require "ngx.errlog"
for level = ngx.STDERR, ngx.DEBUG do
    errlog.raw_log(level, "@@raw " .. level)
end
ngx.say(errlog.get_sys_filter_level())
ngx.log(ngx.STDERR, "@@end")
'''


def _levels(loglines):
    return [(lvl, re.sub(r".*(@@\w+ ?\d*).*", r"\1", m))
            for lvl, m in loglines]


def test_log_level_filter():
    # error_log ... notice: info and debug are dropped, print (notice) stays
    ours, ref = _both(FILTER, golapis_level="notice", nginx_level="notice")
    assert ours[:2] == ref[:2], (ours[:2], ref[:2])
    assert ours[1] == b"6\n", ours[1]
    assert ours[2] == ref[2], (ours[2], ref[2])
    names = ["stderr", "emerg", "alert", "crit", "error", "warn", "notice"]
    want = [(names[i], "@@lvl %d" % i) for i in range(7)]
    want += [("notice", "@@printed")]
    want += [(names[i], "@@raw %d" % i) for i in range(7)]
    want += [("stderr", "@@end")]
    assert _levels(ours[2]) == want, _levels(ours[2])


def test_log_level_filter_error():
    # the default level, error: print is not seen
    ours, ref = _both(FILTER, golapis_level="error", nginx_level="error")
    assert ours[:2] == ref[:2], (ours[:2], ref[:2])
    assert ours[1] == b"4\n", ours[1]
    assert ours[2] == ref[2], (ours[2], ref[2])
    assert not any("@@printed" in m for _, m in ours[2]), ours[2]
    assert len(ours[2]) == 5 + 5 + 1, ours[2]


def test_log_debug_has_no_request_info():
    # as in nginx, a debug line gets no ", client: ..." suffix
    ours, ref = _both(FILTER, golapis_level="debug", nginx_level="debug")
    assert ours[:2] == ref[:2], (ours[:2], ref[:2])
    assert ours[1] == b"8\n", ours[1]
    assert ours[2] == ref[2], (ours[2], ref[2])
    debug = [m for lvl, m in ours[2] if lvl == "debug"]
    assert debug == ["[lua] x.lua:4: @@lvl 8", "@@raw 8"], debug
    others = [m for lvl, m in ours[2] if lvl != "debug"]
    assert len(others) == 18 and all(", client: " in m for m in others), \
        others


def test_log_request_info():
    # the suffix as nginx builds it: client, server, request line (with the
    # query string), host, referrer
    script = 'ngx.log(ngx.WARN, "@@end")\n'
    ours, ref = _both(script, query="?a=1&b=%20c",
                      headers={"Host": "example.org",
                               "Referer": "http://r.example/p?q=1"})
    assert ours[2] == ref[2], (ours[2], ref[2])
    assert ours[2] == [("warn", '[lua] x.lua:1: @@end, client: 127.0.0.1, '
                        'server: localhost, request: "GET /x.lua?a=1&b=%20c '
                        'HTTP/1.1", host: "example.org", referrer: '
                        '"http://r.example/p?q=1"')], ours[2]


def test_log_long_message():
    # nginx cuts a line at 2048 bytes; golapis at GL_LOG_LINE_MAX (8192)
    # with the newline, so a long message loses its request suffix the
    # same way
    script = ('ngx.log(ngx.ERR, "@@long ", string.rep("a", 7000), "z")\n'
              'ngx.log(ngx.ERR, "@@huge ", string.rep("b", 20000), "z")\n'
              'ngx.log(ngx.ERR, "@@end")\n')
    g = Golapis(docroot=make_docroot({"x.lua": script}))
    n = Nginx(g)
    status, _, _ = http_get(n.port, "/x.lua", headers=HOST)
    assert status == 200
    wait_for(lambda: "@@end" in g.log(), 5, what="the log lines")
    raw = g.log().split("\n")
    long_ = [x for x in raw if "@@long" in x]
    huge = [x for x in raw if "@@huge" in x]
    assert len(long_) == 1 and len(huge) == 1, (len(long_), len(huge))
    assert long_[0].endswith('az, client: 127.0.0.1, server: localhost, '
                             'request: "GET /x.lua HTTP/1.1", host: '
                             '"localhost"'), long_[0][-200:]
    assert len(huge[0]) + 1 == 8192, len(huge[0])
    assert huge[0].endswith("bbbb"), huge[0][-50:]
    # the next line is whole
    assert any(x.endswith('@@end, client: 127.0.0.1, server: localhost, '
                          'request: "GET /x.lua HTTP/1.1", host: '
                          '"localhost"') for x in raw), raw[-3:]


ERRLOG = STRIP_DIR + r'''
ngx.header["Content-Type"] = "text/plain"
local errlog = require "ngx.errlog"
ngx.say(type(errlog.version), " ", type(errlog.raw_log), " ",
        type(errlog.get_sys_filter_level), " ", type(errlog.set_filter_level),
        " ", type(errlog.get_logs))
ngx.say(errlog.get_sys_filter_level())
errlog.raw_log(ngx.ERR, "@@raw plain")
errlog.raw_log(ngx.WARN, "@@raw with\0nul")
errlog.raw_log(ngx.INFO, "@@raw info")
errlog.raw_log(ngx.DEBUG, "@@raw debug, filtered")
ngx.say(e(pcall(errlog.raw_log, 9, "x")))
ngx.say(e(pcall(errlog.raw_log, -1, "x")))
ngx.say(e(pcall(errlog.raw_log, "1", "x")))
ngx.say(e(pcall(errlog.raw_log, nil, "x")))
ngx.say(e(pcall(errlog.raw_log, 1, 2)))
ngx.say(e(pcall(errlog.raw_log, 1)))
ngx.say(e(pcall(function() errlog.raw_log(1, {}) end)))
ngx.say(e(pcall(function() errlog.raw_log(42, "x") end)))
ngx.say(errlog.raw_log(ngx.ERR, "@@raw returns nothing"))
-- without lua_capture_error_log
ngx.say(errlog.set_filter_level())
ngx.say(errlog.set_filter_level(nil))
ngx.say(errlog.set_filter_level(false))
ngx.say("SET ", errlog.set_filter_level(ngx.WARN))
ngx.say("GET ", errlog.get_logs())
ngx.say("GET ", errlog.get_logs(5, {}))
errlog.raw_log(ngx.ERR, "@@end")
'''


def test_errlog_differential():
    ours, ref = _both(ERRLOG)
    assert ref[0] == ours[0] == 200, (ours[:2], ref[:2])
    # Debian's lua-nginx-module is built without OpenResty's nginx patch
    # for lua_capture_error_log, so it says "missing the capture error log
    # patch for nginx"; golapis answers as OpenResty does when the
    # directive is not set
    ref_body = ref[1].replace(
        b"missing the capture error log patch for nginx",
        b'directive "lua_capture_error_log" is not set')
    assert ours[1] == ref_body, "golapis:\n%s\nnginx:\n%s" % (
        ours[1].decode(errors="replace"), ref[1].decode(errors="replace"))
    assert ours[2] == ref[2], (ours[2], ref[2])
    body = ours[1].decode()
    assert body.startswith("string function function function function\n7\n")
    assert "err bad log level\n" in body, body
    assert "err x.lua:23: bad argument #2 to 'raw_log' (must be a string)" \
        in body, body
    assert "err x.lua:24: bad log level" in body, body
    assert ('SET nildirective "lua_capture_error_log" is not set\n' in body)
    assert ('GET nildirective "lua_capture_error_log" is not set\n' in body)
    suffix = (', client: 127.0.0.1, server: localhost, request: '
              '"GET /x.lua HTTP/1.1", host: "localhost"')
    assert ours[2][:3] == [("error", "@@raw plain" + suffix),
                           ("warn", "@@raw with\0nul" + suffix),
                           ("info", "@@raw info" + suffix)], ours[2]
