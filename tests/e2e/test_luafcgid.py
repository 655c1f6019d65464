"""luafcgid scripts on golapis: a script that defines a global main(env, r)
and prints nothing while its chunk runs gets main called with the FastCGI
params and a request object (r:header, r:puts, r:gets, r:flush, r:reset,
r:config, r:log).  There is no luafcgid here to compare with: the
expectations come from luafcgid's source (src/request.c, src/main.c) and
docs/api-luafcgid.md, which says where golapis differs on purpose."""

import hashlib
import os
import re
import socket
import threading
import time

from harness import (Golapis, Nginx, arrival, assert_same, http_get,
                     http_timed, make_docroot, mktemp)

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "luafcgid")
HOST = {"Host": "localhost"}
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"


def _setup(files=None, conf_extra="", workers=1, lua=False,
           nginx_kw=None):
    """A docroot with the example scripts under luafcgid/ and `files`
    ({name: Lua text}, "@DIR@" made the docroot), the docroot on
    package.path (for shared modules), one golapis worker (one Lua state,
    so that what a request leaves is there for the next) and nginx."""
    scripts = {}
    for name in os.listdir(EXAMPLES):
        with open(os.path.join(EXAMPLES, name)) as f:
            scripts["luafcgid/" + name] = f.read()
    d = make_docroot(scripts, copy_scripts=False)
    for name, text in (files or {}).items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text.replace("@DIR@", d))
    tmp = mktemp("lfbody-")
    conf = ("lua_package_path '%s/?.lua;;';\n"
            "client_body_temp_path %s;\n%s" % (d, tmp, conf_extra))
    g = Golapis(docroot=d, workers=workers, conf_extra=conf)
    n = Nginx(g, lua=lua, **(nginx_kw or {}))
    return g, n, d


def _get(n, path, **kw):
    kw.setdefault("headers", HOST)
    return http_get(n.port, path, **kw)


def _ok(n, path, **kw):
    status, headers, body = _get(n, path, **kw)
    assert status == 200, "%s: status %s, body %r" % (path, status,
                                                      body[:500])
    return headers, body


def _log_has(g, needle):
    # log lines may come after the answer (log_by_lua runs after it)
    deadline = time.monotonic() + 5
    while needle not in g.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    text = g.log()
    assert needle in text, "no %r in the golapis log:\n%s" % (
        needle, text[-3000:])


# ---------------------------------------------------------------------------
# luafcgid's example, as it is


def _fastcgi_param_names():
    names = set()
    with open(FASTCGI_PARAMS) as f:
        for line in f:
            m = re.match(r"\s*fastcgi_param\s+(\S+)", line)
            # if_not_empty ones (HTTPS) are not sent when empty
            if m and "if_not_empty" not in line:
                names.add(m.group(1))
    return names


def test_dumpenv_get():
    g, n, d = _setup()
    path = "/luafcgid/dumpenv.lua?a=1&b=x%20y&a=2&c+d=%3D%26"
    headers, body = _ok(n, path)
    text = body.decode()
    # luafcgid's defaults: 200, text/html; and the script's header
    assert headers.get("Content-Type") == "text/html", headers
    assert headers.get_all("X-Powered-By") == ["Lua"], headers
    assert text.startswith("<h1>Environment</h1><pre>\n"), text[:200]
    env = dict(re.findall(r"^([A-Z_]+) = (.*)$", text.split("</pre>")[0],
                          re.M))
    # env holds every param nginx sent, as it sent it
    missing = _fastcgi_param_names() - set(env)
    assert not missing, "params not in env: %s\n%s" % (missing, text)
    assert env["REQUEST_METHOD"] == "GET", env
    assert env["QUERY_STRING"] == path.split("?", 1)[1], env
    assert env["REQUEST_URI"] == path, env
    assert env["SCRIPT_FILENAME"] == d + "/luafcgid/dumpenv.lua", env
    assert env["HTTP_HOST"] == "localhost", env
    # lf.parse: repeated names gather their values, "+" and %XX decoded
    assert text.endswith("<h1>GET Params</h1><pre>\n"
                         "a = 1,2\nb = x y\nc d = =&\n</pre>\n"), text
    assert "POST" not in text.split("</pre>", 1)[1], text


def test_dumpenv_post():
    g, n, d = _setup()
    headers, body = _ok(n, "/luafcgid/dumpenv.lua", method="POST",
                        body=b"name=golapis&x=%41",
                        headers={"Host": "localhost", "Content-Type":
                                 "application/x-www-form-urlencoded"})
    text = body.decode()
    assert "REQUEST_METHOD = POST\n" in text, text
    assert "CONTENT_LENGTH = 18\n" in text, text
    assert "GET Params" not in text, text
    assert text.endswith("<h1>POST</h1>\n<textarea>name=golapis&x=%41"
                         "</textarea>"), text


# ---------------------------------------------------------------------------
# who is a luafcgid script

PLAIN = r'''
-- an OpenResty script that happens to have a function named main
function main(env, r)
    r:puts("main was called")
end
ngx.say("plain ", type(env), " ", ngx.var.request_method)
'''

NOT_A_FUNCTION = r'''
main = "not a function"
'''


def test_openresty_script_with_main_is_not_luafcgid():
    # the same answer as lua-nginx-module's: main is never called
    g, n, d = _setup({"plain.lua": PLAIN, "notfn.lua": NOT_A_FUNCTION},
                     lua=True)
    (gs, gh, gb), _ = assert_same(n.port, "/plain.lua", headers=HOST,
                                  check_headers=("Content-Type",))
    assert gb == b"plain nil GET\n", gb
    (gs, gh, gb), _ = assert_same(n.port, "/notfn.lua", headers=HOST,
                                  check_headers=("Content-Type",))
    assert gb == b"", gb


ONCE = r'''
calls = 0
function main(env, r)
    calls = calls + 1
    r:puts("main " .. calls)
    -- a main that defines main again: still called once
    function main(env2, r2)
        r2:puts(" and again")
    end
end
'''

ONE_ARG = r'''
function main(env, r)
    r:puts("first", " second")
end
'''

SILENT = r'''
local keep = require "keep"
keep.silent = 0
function main(env, r)
    -- a main that prints nothing ends its coroutine as the chunk did
    keep.silent = keep.silent + 1
    if keep.silent == 5 then
        r:puts("main called again and again")
    end
end
'''

COUNT = r'''
ngx.print(require("keep").silent)
'''

WAITS = r'''
function main(env, r)
    r:puts("before ")
    ngx.sleep(0.2)
    r:puts("after")
end
'''

FAILS = r'''
function main(env, r)
    r:puts("never sent")
    error("main failed on purpose")
end
'''


def test_main_once_waits_fails():
    g, n, d = _setup({"once.lua": ONCE, "onearg.lua": ONE_ARG,
                      "waits.lua": WAITS, "fails.lua": FAILS,
                      "keep.lua": KEEP, "silent.lua": SILENT,
                      "count.lua": COUNT})
    for _ in range(2):
        # globals are per request: calls starts again at 0 each time
        _, body = _ok(n, "/once.lua")
        assert body == b"main 1", body
    _, body = _ok(n, "/silent.lua")
    assert body == b"", body
    _, body = _ok(n, "/count.lua")
    assert body == b"1", body
    _, body = _ok(n, "/onearg.lua")
    # only the first argument of puts counts, as in luafcgid
    assert body == b"first", body
    t0 = time.monotonic()
    _, body = _ok(n, "/waits.lua")
    assert body == b"before after", body
    assert time.monotonic() - t0 >= 0.2
    status, _, body = _get(n, "/fails.lua")
    assert status == 500 and b"never sent" not in body, (status, body)
    _log_has(g, "main failed on purpose")


TYPES = r'''
ngx.header["X-Chunk"] = "set by the chunk"
function main(env, r)
    local t = {type(env), type(r), tostring(getmetatable(r)),
               tostring(getmetatable(env)), ngx.get_phase(),
               tostring(r):match("^luafcgid request: ") and "ok"
               or tostring(r)}
    r:puts(table.concat(t, " "))
end
'''


def test_types():
    g, n, d = _setup({"types.lua": TYPES})
    headers, body = _ok(n, "/types.lua")
    assert body == (b"table userdata luafcgid request nil content ok"), body
    assert headers.get("X-Chunk") == "set by the chunk", headers


HANDLE = r'''
function handle(env, r)
    r:puts("handle called for ", env.SCRIPT_NAME)
end
'''

MAIN_ONLY = r'''
function main(env, r)
    r:puts("main called")
end
'''


def test_handler_directive():
    g, n, d = _setup({"handle.lua": HANDLE, "main.lua": MAIN_ONLY},
                     conf_extra="luafcgid_handler handle;\n")
    _, body = _ok(n, "/handle.lua")
    assert body == b"handle called for ", body
    # main is not the handler here: a script that prints nothing
    headers, body = _ok(n, "/main.lua")
    assert body == b"", body


def test_handler_from_lua():
    # golapis.luafcgid_handler overrides the directive; false turns
    # luafcgid scripts off
    g, n, d = _setup({"handle.lua": HANDLE, "main.lua": MAIN_ONLY},
                     conf_extra="init_by_lua_block { "
                                "golapis.luafcgid_handler = 'handle' }\n")
    _, body = _ok(n, "/handle.lua")
    assert body == b"handle called for ", body
    _, body = _ok(n, "/main.lua")
    assert body == b"", body
    g, n, d = _setup({"main.lua": MAIN_ONLY},
                     conf_extra="init_by_lua_block { "
                                "golapis.luafcgid_handler = false }\n")
    _, body = _ok(n, "/main.lua")
    assert body == b"", body
    _, body = _ok(n, "/luafcgid/dumpenv.lua")
    assert body == b"", body


# ---------------------------------------------------------------------------
# headers and status

HEADERS = r'''
function main(env, r)
    r:header("X-Two", "a")
    r:header("X-Line: b")
    r:header("  X-Spaces :   c d  ")
    r:header("Set-Cookie", "s=1")
    r:header("Set-Cookie: t=2")
    r:header("X-Num", 5)
    r:header("Content-Type", "text/plain; charset=utf-8")
    r:header("Content-Type: application/json")
    r:header()
    local out = {}
    for _, args in ipairs({{"X-No-Colon"}, {"Bad Name", "v"},
                           {"X-Inj", "a\r\nX-Evil: 1"}, {"", "v"},
                           {": v"}, {"X-Nul", "a\0b"}}) do
        local ok, err = pcall(r.header, r, unpack(args))
        out[#out + 1] = tostring(ok) .. " " .. tostring(err)
    end
    r:puts(table.concat(out, "\n"))
end
'''

DEFAULT_TYPE = r'''
function main(env, r)
    r:puts("x")
end
'''

CHUNK_TYPE = r'''
ngx.header.content_type = "text/css"
function main(env, r)
    r:puts("x")
end
'''


def test_header_forms():
    g, n, d = _setup({"headers.lua": HEADERS, "deftype.lua": DEFAULT_TYPE,
                      "chunktype.lua": CHUNK_TYPE},
                     conf_extra="default_type application/octet-stream;\n")
    headers, body = _ok(n, "/headers.lua")
    assert headers.get_all("X-Two") == ["a"], headers
    assert headers.get_all("X-Line") == ["b"], headers
    assert headers.get_all("X-Spaces") == ["c d"], headers
    assert headers.get_all("Set-Cookie") == ["s=1", "t=2"], headers
    assert headers.get_all("X-Num") == ["5"], headers
    # Content-Type replaces the default and itself: the last one counts
    assert headers.get_all("Content-Type") == ["application/json"], headers
    assert headers.get("X-Evil") is None, headers
    lines = body.decode().split("\n")
    assert len(lines) == 6, lines
    assert re.match(r'false .*bad header line "X-No-Colon"', lines[0]), lines
    assert re.match(r'false .*bad header name "Bad Name"', lines[1]), lines
    assert re.match(r'false .*bad value for header "X-Inj"', lines[2]), lines
    assert re.match(r'false .*bad header name ""', lines[3]), lines
    assert re.match(r'false .*bad header name ""', lines[4]), lines
    assert re.match(r'false .*bad value for header "X-Nul"', lines[5]), lines
    # luafcgid's default type, not default_type
    headers, _ = _ok(n, "/deftype.lua")
    assert headers.get_all("Content-Type") == ["text/html"], headers
    # a type the chunk set stays
    headers, _ = _ok(n, "/chunktype.lua")
    assert headers.get_all("Content-Type") == ["text/css"], headers


STATUS = r'''
function main(env, r)
    local how = env.QUERY_STRING
    if how == "pair" then
        r:header("Status", "404 Not Found")
    elseif how == "line" then
        r:header("Status: 201 Created")
    elseif how == "odd" then
        r:header("status", "299 Whatever")
    elseif how == "bare" then
        r:header("Status", "503")
    elseif how == "bad" then
        r:header("Status", "abc")
    elseif how == "small" then
        r:header("Status", "099 Low")
    end
    r:puts("page for ", how)
end
'''


def test_status_by_header():
    g, n, d = _setup({"status.lua": STATUS})
    for how, code in (("pair", 404), ("line", 201), ("odd", 299),
                      ("bare", 503), ("none", 200)):
        status, headers, body = _get(n, "/status.lua?" + how)
        # the script's own page, not an error page
        assert (status, body) == (code, b"page for "), (how, status, body)
        assert headers.get("Status") is None, headers
    for how in ("bad", "small"):
        status, _, body = _get(n, "/status.lua?" + how)
        assert status == 500, (how, status, body)
    _log_has(g, 'bad status "abc"')
    _log_has(g, 'bad status "099 Low"')


# ---------------------------------------------------------------------------
# puts, flush, reset

PUTS = r'''
function main(env, r)
    local nreset = select("#", r:reset())
    r:puts("a")
    r:reset()
    r:puts("b")
    r:puts(42)
    r:puts("", "ignored")
    r:puts()
    r:flush()
    r:puts("c")
    r:reset()
    r:puts("d")
    local ok, err = pcall(r.puts, r, {})
    r:puts(ok and " table taken" or " table refused")
    local nputs = select("#", r:puts(" e"))
    r:puts(" " .. nputs .. nreset)
end
'''

STREAM = r'''
function main(env, r)
    r:header("X-Early", "1")
    r:puts("first\n")
    r:flush()
    -- after the flush the header block is gone: these are dropped, as
    -- luafcgid drops them
    r:header("X-Late", "1")
    r:header("Status", "500 Too Late")
    ngx.sleep(0.6)
    r:puts("second\n")
    r:flush()
    r:flush()
    r:puts("third\n")
end
'''

EMPTY_FLUSH = r'''
function main(env, r)
    r:header("Status", "202 Accepted")
    r:flush()
    r:header("Status", "500 Too Late")
    r:header("X-Late", "1")
end
'''


def test_puts_flush_reset():
    # fastcgi_buffering off: nginx passes on each record as it comes
    g, n, d = _setup({"puts.lua": PUTS, "stream.lua": STREAM,
                      "emptyflush.lua": EMPTY_FLUSH},
                     nginx_kw={"extra_location": "fastcgi_buffering off;"})
    _, body = _ok(n, "/puts.lua")
    assert body == b"b42d table refused e 00", body
    raw, events = http_timed(n.port, "/stream.lua")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"X-Early: 1" in head and b"X-Late" not in head, head
    first = arrival(raw, events, b"first\n")
    second = arrival(raw, events, b"second\n")
    assert first is not None and second is not None, raw
    # r:flush() sent the first line before the sleep
    assert first < 0.5 <= second, (first, second)
    assert b"third\n" in rest, raw
    # a flush with nothing buffered sends the header block
    status, headers, body = _get(n, "/emptyflush.lua")
    assert (status, body) == (202, b""), (status, body)
    assert headers.get("X-Late") is None, headers


BIG = r'''
function main(env, r)
    local line = string.rep("x", 99) .. "\n"
    for i = 1, 20000 do
        r:puts(line)
    end
    r:puts("end\n")
end
'''


def test_big_buffered_page():
    # 2 MB buffered by r:puts, sent when main returns (more than the
    # output queue takes at once: ngx.print waits for it to drain)
    g, n, d = _setup({"big.lua": BIG})
    _, body = _ok(n, "/big.lua")
    assert len(body) == 2000004 and body.endswith(b"x\nend\n"), len(body)


# ---------------------------------------------------------------------------
# gets

ECHO = r'''
function main(env, r)
    local body = r:gets()
    r:header("X-Len", tostring(body and #body))
    r:header("X-Same", tostring(r:gets() == body))
    r:header("X-In-File", tostring(ngx.req.get_body_file() ~= nil))
    r:puts(body or "")
end
'''


def test_gets():
    g, n, d = _setup({"echo.lua": ECHO})
    headers, body = _ok(n, "/echo.lua")
    assert headers.get("X-Len") == "nil" and body == b"", (headers, body)
    small = b"a=1&b=2"
    headers, body = _ok(n, "/echo.lua", method="POST", body=small)
    assert body == small, body
    assert headers.get("X-Len") == "7", headers
    assert headers.get("X-Same") == "true", headers
    assert headers.get("X-In-File") == "false", headers
    # over client_body_buffer_size (16k): golapis keeps it in a file
    big = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(4000))
    big += b"\0\r\n%s end"
    headers, body = _ok(n, "/echo.lua", method="POST", body=big)
    assert headers.get("X-Len") == str(len(big)), headers
    assert headers.get("X-In-File") == "true", headers
    assert headers.get("X-Same") == "true", headers
    assert body == big, "body differs: %d bytes, %d sent" % (len(body),
                                                             len(big))


ECHO_WAIT = r'''
function main(env, r)
    ngx.update_time()
    local t0 = ngx.now()
    local body = r:gets()
    ngx.update_time()
    r:header("X-Waited", tostring(ngx.now() - t0 >= 0.3))
    r:puts(body)
end
'''


def test_gets_waits_for_the_body():
    # fastcgi_request_buffering off: nginx passes the body on as it comes,
    # so main starts before it is all there and r:gets() waits for it
    g, n, d = _setup({"echo.lua": ECHO_WAIT},
                     nginx_kw={"extra_location":
                               "fastcgi_request_buffering off;"})
    s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
    try:
        s.sendall(b"POST /echo.lua HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\nContent-Length: 10\r\n\r\n"
                  b"01234")
        time.sleep(0.5)
        s.sendall(b"56789")
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw
    assert b"X-Waited: true" in head, raw
    assert b"0123456789" in body, raw


# ---------------------------------------------------------------------------
# config, log

CONFIG1 = r'''
function main(env, r)
    local out = {tostring(r:config("k"))}
    out[#out + 1] = select("#", r:config("k", "v1"))
    r:config("n", 42)
    out[#out + 1] = r:config("k")
    out[#out + 1] = type(r:config("n")) .. r:config("n")
    out[#out + 1] = select("#", r:config())
    out[#out + 1] = tostring(pcall(r.config, r, "t", {}))
    r:puts(table.concat(out, " "))
end
'''

CONFIG2 = r'''
function main(env, r)
    local v = r:config("k")
    r:config("k", nil)
    r:puts(tostring(v) .. " ")
    r:puts(tostring(r:config("k")))
end
'''


def test_config():
    g, n, d = _setup({"config1.lua": CONFIG1, "config2.lua": CONFIG2})
    _, body = _ok(n, "/config1.lua")
    assert body == b"nil 0 v1 string42 0 false", body
    # the same worker: the value is still there, then removed
    _, body = _ok(n, "/config2.lua")
    assert body == b"v1 nil", body
    _, body = _ok(n, "/config2.lua")
    assert body == b"nil nil", body


LOG = r'''function main(env, r)
    r:log("100% sure: %s %d %n %% %")
    r:log(12)
    r:log()
    r:puts("logged")
end
'''


def test_log_percent():
    g, n, d = _setup({"log.lua": LOG})
    _, body = _ok(n, "/log.lua")
    assert body == b"logged", body
    # literally, at level error, with the caller's file and line
    _log_has(g, "[error] ")
    _log_has(g, "luafcgid: log.lua:2: 100% sure: %s %d %n %% %\n")
    _log_has(g, "luafcgid: log.lua:3: 12\n")


# ---------------------------------------------------------------------------
# r after its request

KEEP = "return {}\n"

HOLD = r'''
local keep = require "keep"
function main(env, r)
    keep.r = r
    r:puts("held")
    ngx.sleep(1)
end
'''

USE = r'''
local keep = require "keep"
function main(env, r)
    local old = keep.r
    local out = {tostring(old):match("^luafcgid request[^:]*")}
    local calls = {
        header = {"X-A", "1"}, puts = {"x"}, gets = {}, flush = {},
        reset = {}, config = {"k"}, log = {"x"},
    }
    for _, name in ipairs({"header", "puts", "gets", "flush", "reset",
                           "config", "log"}) do
        local ok, err = pcall(old[name], old, unpack(calls[name]))
        out[#out + 1] = name .. " " .. tostring(ok) .. " " .. tostring(err)
    end
    r:puts(table.concat(out, "\n"))
end
'''

USE_UNPROTECTED = r'''
local keep = require "keep"
function main(env, r)
    keep.r:puts("into an old request")
end
'''


def test_r_after_request():
    g, n, d = _setup({"keep.lua": KEEP, "hold.lua": HOLD, "use.lua": USE,
                      "use2.lua": USE_UNPROTECTED})
    held = {}

    def hold():
        held["result"] = _get(n, "/hold.lua")

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.4)
    # while /hold.lua runs: its r is not this request's
    _, body = _ok(n, "/use.lua")
    lines = body.decode().split("\n")
    assert lines[0] == "luafcgid request", lines
    for line in lines[1:]:
        assert re.match(r"\w+ false .*r:\w+\(\): the request object of "
                        r"another request$", line), lines
    t.join(10)
    assert held["result"][0] == 200 and held["result"][2] == b"held", held
    # after it: every method raises
    _, body = _ok(n, "/use.lua")
    lines = body.decode().split("\n")
    assert lines[0] == "luafcgid request (over)", lines
    assert len(lines) == 8, lines
    for line in lines[1:]:
        name = line.split()[0]
        assert re.match(r"%s false .*luafcgid r:%s\(\): request is over$"
                        % (name, name), line), lines
    status, _, body = _get(n, "/use2.lua")
    assert status == 500 and b"into an old request" not in body, (status,
                                                                   body)
    _log_has(g, "use2.lua:4: luafcgid r:puts(): request is over")


HOLD_LONG = r'''
local keep = require "keep"
function main(env, r)
    keep.r = r
    r:puts("held")
    ngx.sleep(10)
end
'''


def test_r_after_cancel():
    # the client goes away while main waits: nginx closes the FastCGI
    # connection, golapis cancels the request (lua_check_client_abort on;
    # without it the request would go on to its end, as upstream), and its
    # r is over
    g, n, d = _setup({"keep.lua": KEEP, "hold.lua": HOLD_LONG,
                      "use.lua": USE},
                     conf_extra="lua_check_client_abort on;\n")
    s = socket.create_connection(("127.0.0.1", n.port))
    s.sendall(b"GET /hold.lua HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.4)
    _, body = _ok(n, "/use.lua")
    assert body.startswith(b"luafcgid request\n"), body
    s.close()
    end = time.monotonic() + 5
    while True:
        _, body = _ok(n, "/use.lua")
        if body.startswith(b"luafcgid request (over)\n"):
            break
        assert time.monotonic() < end, body
        time.sleep(0.1)
    assert b"request is over" in body, body


OTHER_PHASE = r'''
local keep = require "keep"
function main(env, r)
    keep.r = r
    r:puts("content")
end
'''


def test_r_in_log_phase():
    # the same request, but after content: the output methods are off
    g, n, d = _setup({"keep.lua": KEEP, "phase.lua": OTHER_PHASE},
                     conf_extra="log_by_lua_block { "
                                "local r = require('keep').r "
                                "if r then "
                                "local ok, err = pcall(r.puts, r, 'x') "
                                "ngx.log(ngx.ERR, 'log phase: ', err) "
                                "end }\n")
    _, body = _ok(n, "/phase.lua")
    assert body == b"content", body
    _log_has(g, "log phase: API disabled in the context of log_by_lua*")
