"""require "resty.core" and friends (lua/resty/core*.lua, lua/ngx/process.lua
and the ngx.* modules golapis refuses, docs/api-resty-core.md).

The differential scripts run through golapis and through Debian's nginx
with the real lua-nginx-module and lua-resty-core: each prints one line per
case ("name ok|err results..."), and the lines must be equal.  What only
golapis can show (where the modules come from, the modules it refuses, the
one process) is checked against fixed answers.
"""

from harness import Golapis, Nginx, http_get, make_docroot, wait_for

# the lines are collected and printed at the end, so that cases may still
# set the status and headers
PRELUDE = r"""
local out = {}

local repr

repr = function(v)
    local t = type(v)
    if t == "string" then
        return string.format("%q", v)
    elseif t == "number" then
        return "n:" .. string.format("%.17g", v)
    elseif t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return repr(a) < repr(b) end)
        local parts = {}
        for _, k in ipairs(keys) do
            parts[#parts + 1] = "[" .. repr(k) .. "]=" .. repr(v[k])
        end
        return "{" .. table.concat(parts, ",") .. "}"
    elseif t == "function" or t == "cdata" or t == "userdata" then
        return t
    end
    return tostring(v)
end

local function pack(...)
    return select("#", ...), { ... }
end

-- errors without the file part of their position: the script's path
-- differs between the two servers
local function clean(v)
    if type(v) == "string" then
        return (v:gsub("^[^\n]-([^/\n]+%.lua:%d+:)", "%1"))
    end
    return v
end

local function case(name, f, ...)
    local n, r = pack(pcall(f, ...))
    local line = { name, r[1] and "ok" or "err" }
    for i = 2, n do
        line[#line + 1] = repr(clean(r[i]))
    end
    out[#out + 1] = table.concat(line, " ")
end

-- a module's table as "key:type" pairs
local function shape(t)
    local keys = {}
    for k, v in pairs(t) do keys[#keys + 1] = tostring(k) .. ":" .. type(v) end
    table.sort(keys)
    return table.concat(keys, " ")
end
"""

EPILOGUE = r"""
ngx.header["Content-Type"] = "text/plain"
ngx.say(table.concat(out, "\n"))
"""

SUBMODULES = ["base", "base64", "coroutine", "ctx", "exit", "hash", "misc",
              "ndk", "param", "phase", "regex", "request", "response",
              "shdict", "socket", "time", "uri", "utils", "var", "worker"]

CORE = PRELUDE + r"""
-- before anything else: the regex cache of a fresh worker is empty
case("regex-cache-fresh", function()
    return require("resty.core.regex").is_regex_cache_empty()
end)

case("core", function() return require("resty.core") end)
case("core-again", function()
    return require("resty.core") == require("resty.core")
end)

for _, name in ipairs({ %(submodules)s }) do
    case("mod-" .. name, function()
        local m = require("resty.core." .. name)
        if name == "regex" then
            -- lua-resty-core's also exports its internals; ours just this
            return m.version, type(m.is_regex_cache_empty),
                   type(m.set_buf_grow_ratio)
        end
        return shape(m), m.version or m._VERSION
    end)
end

-- ngx.* still work, through golapis's C or lua-resty-core's FFI
case("var", function()
    return ngx.var.request_method, ngx.var.arg_a, ngx.var.uri:match("[^/]+$")
end)
case("req-args", function() return ngx.req.get_uri_args() end)
case("req-method", ngx.req.get_method)
case("req-header", function() return ngx.req.get_headers()["x-rc"] end)
case("re-match", ngx.re.match, "hello 1234", [[(\d+)]], "jo")
case("re-gsub", ngx.re.gsub, "a-b-c", "-", "+")
case("re-find", ngx.re.find, "hello", "l+")
case("regex-cache-used", function()
    return require("resty.core.regex").is_regex_cache_empty()
end)
case("grow-ratio", function()
    return require("resty.core.regex").set_buf_grow_ratio(2)
end)
case("time", function()
    return type(ngx.now()), type(ngx.time()), ngx.time() - ngx.now() < 1,
           ngx.http_time(0), ngx.cookie_time(1e9), ngx.parse_http_time(
               "Thu, 01 Jan 1970 00:00:10 GMT")
end)
case("update-time", ngx.update_time)
case("hash", function()
    return ngx.md5("abc"), ngx.crc32_short("abc"), ngx.crc32_long("abc")
end)
case("uri", function()
    return ngx.escape_uri("a b/c"), ngx.unescape_uri("a%%20b")
end)
case("base64", function()
    return ngx.encode_base64("hello"), ngx.decode_base64("aGVsbG8=")
end)
case("phase", ngx.get_phase)
case("worker", function()
    return type(ngx.worker.pid()), ngx.worker.exiting(), ngx.worker.count()
end)
case("ctx", function()
    ngx.ctx.a = 1
    return ngx.ctx.a, require("resty.core.ctx").get_ctx_table() == ngx.ctx
end)
case("status-set", function() ngx.status = 203 return ngx.status end)
case("header-set", function()
    ngx.header["X-Rc-One"] = "1"
    ngx.header.x_rc_two = { "a", "b" }
    return ngx.header["X-Rc-One"], ngx.header["x-rc-two"]
end)

-- resty.core.base
local base = require "resty.core.base"
local ffi = require "ffi"

case("b-version", function() return base.version end)
case("b-consts", function()
    return base.FFI_OK, base.FFI_NO_REQ_CTX, base.FFI_BAD_CONTEXT,
           base.FFI_ERROR, base.FFI_AGAIN, base.FFI_BUSY, base.FFI_DONE,
           base.FFI_DECLINED
end)
case("b-request", function()
    local r = base.get_request()
    return type(r), r ~= nil, base.get_request() == r
end)
case("b-new-tab", function()
    local t = base.new_tab(4, 4)
    t[1] = "x"
    t.k = "y"
    return t
end)
case("b-clear-tab", function()
    local t = { 1, 2, a = 3 }
    local res = base.clear_tab(t)
    return t, res, next(t)
end)
case("b-ref", function()
    local tb = {}
    local a = base.ref_in_table(tb, "a")
    local b = base.ref_in_table(tb, "b")
    local c = base.ref_in_table(tb, "c")
    local none = base.ref_in_table(tb, nil)
    -- free b, as lua-resty-core's users do: link it into tb[0]'s list
    tb[b] = tb[0] or 0
    tb[0] = b
    local d = base.ref_in_table(tb, "d")
    local e = base.ref_in_table(tb, "e")
    return a, b, c, none, d, e, tb
end)
case("b-string-buf", function()
    local size = base.get_string_buf_size()
    local s1 = base.get_string_buf(10)
    local s2 = base.get_string_buf(4096)
    local big = base.get_string_buf(5000)
    local own = base.get_string_buf(10, true)
    return size, ffi.sizeof(s1), s1 == s2, ffi.sizeof(big), ffi.sizeof(own),
           own == s1, tostring(ffi.typeof(s1))
end)
case("b-set-buf-size", function()
    local old = base.get_string_buf_size()
    local r0 = base.set_string_buf_size(0)
    local a = base.get_string_buf_size()
    base.set_string_buf_size(-5)
    local b = base.get_string_buf_size()
    base.set_string_buf_size(100.5)
    local c = base.get_string_buf_size()
    local s = ffi.sizeof(base.get_string_buf(1))
    base.set_string_buf_size(old)
    return r0, a, b, c, s, ffi.sizeof(base.get_string_buf(1))
end)
case("b-ptrs", function()
    local sp, ep = base.get_size_ptr(), base.get_errmsg_ptr()
    return tostring(ffi.typeof(sp)), tostring(ffi.typeof(ep)),
           sp == base.get_size_ptr(), ep == base.get_errmsg_ptr()
end)
case("b-subsystem-ok", base.allows_subsystem, "stream", "http")
case("b-subsystem-no", function() base.allows_subsystem("stream") end)
case("b-subsystem-none", function() base.allows_subsystem() end)
case("b-types", function()
    return ffi.sizeof("ngx_str_t"),
           ffi.sizeof("ngx_http_lua_ffi_str_t"),
           tostring(ffi.typeof("ngx_http_request_t *"))
end)

-- the other exports
local utils = require "resty.core.utils"
case("u-replace", utils.str_replace_char, "a_b__c_", "_", "-")
case("u-replace-none", utils.str_replace_char, "abc", "_", "-")
case("u-replace-special", utils.str_replace_char, "a.b%%c%%", "%%", ".")
case("u-replace-dot", utils.str_replace_char, "a.b.c", ".", "%%")
case("u-replace-nul", utils.str_replace_char, "a\0b\0", "\0", "x")
case("u-replace-empty", utils.str_replace_char, "", "_", "-")
case("u-replace-all", utils.str_replace_char, "____", "_", "-")

local tm = require "resty.core.time"
case("t-monotonic", function()
    local m1 = tm.monotonic_msec()
    local t1 = tm.monotonic_time()
    ngx.sleep(0.05)
    local m2 = tm.monotonic_msec()
    return type(m1), m1 %% 1 == 0, m1 > 0, math.abs(t1 * 1000 - m1) < 1000,
           m2 - m1 >= 40, m2 - m1 < 5000
end)

local misc = require "resty.core.misc"
case("m-getter", function()
    misc.register_ngx_magic_key_getter("rc_magic", function()
        return "magic!"
    end)
    return ngx.rc_magic, rawget(ngx, "rc_magic")
end)
case("m-setter", function()
    local got
    misc.register_ngx_magic_key_setter("rc_magic", function(v) got = v end)
    ngx.rc_magic = 42
    return got, rawget(ngx, "rc_magic")
end)
case("m-others", function()
    ngx.rc_plain = "p"
    local p = rawget(ngx, "rc_plain")
    ngx.rc_plain = nil
    ngx.status = 202
    ngx.ctx.b = 2
    return p, ngx.status, ngx.ctx.b, ngx.ctx.a, ngx.rc_unknown
end)

local request = require "resty.core.request"
case("rq-set", function()
    request.set_req_header("X-Rc", "v1", true)
    request.set_req_header("X-Rc", "v2", false)
    request.set_req_header("X-Rc-New", { "n1", "n2" }, false)
    local h = ngx.req.get_headers()
    return h["x-rc"], h["x-rc-new"]
end)
case("rq-clear", function()
    request.set_req_header("X-Rc-New", nil, true)
    return ngx.req.get_headers()["x-rc-new"]
end)

case("rq-bad-name", function()
    request.set_req_header(nil, "x", true)
end)
case("rq-bad-value", function()
    request.set_req_header("X-Rc-Bad", nil, false)
end)
case("rq-number-name", function()
    request.set_req_header(42, "n", true)
    return ngx.req.get_headers()["42"]
end)

local response = require "resty.core.response"
case("rs-set", function()
    response.set_resp_header(ngx.header, "X-Rc-Resp", "1")
    response.set_resp_header(ngx.header, "X-Rc-Resp", "2", true)
    response.set_resp_header(ngx.header, "X-Rc-Gone", "g")
    response.set_resp_header(ngx.header, "X-Rc-Gone", nil)
    return ngx.header["X-Rc-Resp"], ngx.header["X-Rc-Gone"]
end)
case("rs-bad-value", function()
    response.set_resp_header(ngx.header, "X-Rc-Bad", nil, true)
end)
case("rs-empty-add", function()
    response.set_resp_header(ngx.header, "X-Rc-Empty", {}, true)
    return ngx.header["X-Rc-Empty"]
end)
case("rs-number-key", function()
    response.set_resp_header(ngx.header, 42, "n")
    return ngx.header["42"]
end)

-- ngx.process: what the two agree on inside a request
local process = require "ngx.process"
case("p-type", process.type)
case("p-agent", process.enable_privileged_agent)
case("p-agent-bad", process.enable_privileged_agent, -1)
case("p-master-pid", function() return type(process.get_master_pid()) end)
""" % {"submodules": ", ".join('"%s"' % m for m in SUBMODULES)} + EPILOGUE

# Debian's lua-resty-lrucache (and its pureffi flavour) on ngx.now and
# table.new
LRU = PRELUDE + r"""
require "resty.core"

for _, modname in ipairs({ "resty.lrucache", "resty.lrucache.pureffi" }) do
    local lrucache = require(modname)
    local p = modname:match("[^.]+$") .. "-"

    local c = lrucache.new(3)
    case(p .. "new-bad", function() return lrucache.new(0) end)
    case(p .. "set-get", function()
        c:set("a", 1)
        c:set("b", { x = 2 })
        c:set("c", "three", nil, 7)
        return c:get("a"), c:get("b"), c:get("c"), c:get("nope")
    end)
    case(p .. "count", function() return c:count(), c:capacity() end)
    case(p .. "evict", function()
        c:get("a")              -- a is now the most recently used
        c:set("d", 4)           -- evicts b, the least recently used
        return c:get("b"), c:get("a"), c:get("d"), c:count()
    end)
    case(p .. "keys", function()
        local keys = c:get_keys()
        table.sort(keys)
        return keys
    end)
    case(p .. "delete", function()
        c:delete("a")
        return c:get("a"), c:count()
    end)
    case(p .. "expire", function()
        c:set("t", "short", 0.01, 3)
        c:set("l", "long", 60)
        local fresh = c:get("t")
        ngx.sleep(0.1)
        local v, stale, flags = c:get("t")
        return fresh, v, stale, flags, (c:get("l"))
    end)
    case(p .. "flush", function()
        c:flush_all()
        return c:get("l"), c:get("d"), c:count()
    end)
    case(p .. "many", function()
        local big = lrucache.new(100)
        for i = 1, 1000 do big:set("k" .. i, i) end
        local hits = 0
        for i = 1, 1000 do if big:get("k" .. i) then hits = hits + 1 end end
        return hits, big:get("k1000"), big:get("k900"), (big:get("k901"))
    end)
end
""" + EPILOGUE

# a third-party FFI library written against resty.core.base, as many are
MYLIB = r"""
local base = require "resty.core.base"
base.allows_subsystem("http")

local ffi = require "ffi"
local C = ffi.C

ffi.cdef[[
int snprintf(char *str, size_t size, const char *format, ...);
]]

local _M = {}

function _M.fmt(n)
    if not base.get_request() then
        error("no request found")
    end
    local size = base.get_string_buf_size()
    local buf = base.get_string_buf(size)
    local len = C.snprintf(buf, size, "<%05d>", ffi.new("int", n))
    return ffi.string(buf, len)
end

function _M.len_into_size_ptr(s)
    local p = base.get_size_ptr()
    p[0] = #s
    return tonumber(p[0])
end

return _M
"""

USELIB = PRELUDE + r"""
local mylib = require "rc_mylib"
case("lib-fmt", mylib.fmt, 42)
case("lib-size", mylib.len_into_size_ptr, "hello")
""" + EPILOGUE


def _lines(body):
    out = {}
    order = []
    for line in body.decode("latin-1").split("\n"):
        if not line:
            continue
        name, _, rest = line.partition(" ")
        assert name not in out, "case name %r twice" % name
        out[name] = rest
        order.append(name)
    return out, order


def _compare(name, ours, ref):
    ol, oorder = _lines(ours)
    rl, rorder = _lines(ref)
    assert oorder == rorder, "%s: cases differ: %s\nours: %r\nref: %r" % (
        name, sorted(set(oorder) ^ set(rorder)), ours[:800], ref[:800])
    diffs = []
    for case in rorder:
        if ol[case] != rl[case]:
            diffs.append("  %s\n    nginx:   %s\n    golapis: %s"
                         % (case, rl[case][:400], ol[case][:400]))
    assert not diffs, "%s: %d of %d cases differ:\n%s" % (
        name, len(diffs), len(rorder), "\n".join(diffs))
    return ol


def _pair(files):
    """golapis (one worker) and nginx with the real module, both finding
    modules in the document root too"""
    docroot = make_docroot(files, copy_scripts=False)
    path = "lua_package_path '%s/?.lua;;';\n" % docroot
    g = Golapis(docroot=docroot, workers=1, conf_extra=path)
    n = Nginx(g, lua=True, extra_http=path)
    return g, n


def _both(n, path, query="", headers=None):
    s1, h1, ours = http_get(n.port, "/" + path + query, headers=headers)
    s2, h2, ref = http_get(n.port, "/ref/" + path + query, headers=headers)
    return (s1, h1, ours), (s2, h2, ref)


def test_resty_core_differential():
    g, n = _pair({"core.lua": CORE})
    hdr = {"X-Rc": "from-client"}
    (s1, h1, ours), (s2, h2, ref) = _both(n, "core.lua", "?a=1&b=two",
                                          headers=hdr)
    # 202: set by case m-others
    assert s2 == 202, (s2, ref[:800])
    assert s1 == 202, (s1, ours[:800], g.tail())
    ol = _compare("core.lua", ours, ref)
    assert len(ol) > 60, len(ol)
    # the cases that matter most, spelled out
    assert ol["core"] == 'ok {["version"]="0.1.25"}', ol["core"]
    assert ol["regex-cache-fresh"] == "ok true"
    assert ol["regex-cache-used"] == "ok false"
    assert ol["b-request"] == 'ok "cdata" true true'
    assert ol["u-replace"] == 'ok "a-b--c-"'
    assert ol["t-monotonic"] == 'ok "number" true true true true true'
    assert ol["m-getter"] == 'ok "magic!" nil'
    assert ol["m-setter"] == "ok n:42 nil"
    for h in (h1, h2):
        assert h.get("X-Rc-One") == "1"
        assert h.get_all("X-Rc-Two") == ["a", "b"]
        assert h.get_all("X-Rc-Resp") == ["1", "2"], h.get_all("X-Rc-Resp")
        assert h.get("X-Rc-Gone") is None


def test_resty_core_lrucache():
    g, n = _pair({"lru.lua": LRU})
    (s1, _, ours), (s2, _, ref) = _both(n, "lru.lua")
    assert s2 == 200, ref[:800]
    assert s1 == 200, (ours[:800], g.tail())
    ol = _compare("lru.lua", ours, ref)
    for p in ("lrucache-", "pureffi-"):
        assert ol[p + "set-get"] == 'ok n:1 {["x"]=n:2} "three" nil', \
            ol[p + "set-get"]
        assert ol[p + "evict"] == "ok nil n:1 n:4 n:3", ol[p + "evict"]
        # expired: nil, then the stale value and its flags
        assert ol[p + "expire"] == 'ok "short" nil "short" n:3 "long"', \
            ol[p + "expire"]
        assert ol[p + "many"] == "ok n:100 n:1000 nil n:901", ol[p + "many"]


def test_resty_core_base_library():
    g, n = _pair({"uselib.lua": USELIB, "rc_mylib.lua": MYLIB})
    (s1, _, ours), (s2, _, ref) = _both(n, "uselib.lua")
    assert s2 == 200, ref[:800]
    assert s1 == 200, (ours[:800], g.tail())
    ol = _compare("uselib.lua", ours, ref)
    assert ol == {"lib-fmt": 'ok "<00042>"', "lib-size": "ok n:5"}, ol


# base.get_request() is nil where there is no request (init, init_worker)
# and set in every request phase
PHASE_INIT = r"""
init_by_lua_block {
    _G.RC_INIT = type((require("resty.core.base").get_request()))
}
init_worker_by_lua_block {
    _G.RC_INIT_WORKER = type((require("resty.core.base").get_request()))
}
"""

PHASE_HANDLERS = r"""
rewrite_by_lua_block {
    ngx.ctx.rc_rewrite = require("resty.core.base").get_request() ~= nil
}
access_by_lua_block {
    ngx.ctx.rc_access = require("resty.core.base").get_request() ~= nil
}
body_filter_by_lua_block {
    if ngx.arg[2] then
        ngx.arg[1] = (ngx.arg[1] or "") .. "body_filter "
            .. tostring(require("resty.core.base").get_request() ~= nil)
            .. "\n"
    end
}
header_filter_by_lua_block {
    ngx.header["X-Rc-Hf"] = tostring(
        require("resty.core.base").get_request() ~= nil)
}
log_by_lua_block {
    ngx.log(ngx.ERR, "@@rc-log get_request: ",
            require("resty.core.base").get_request() ~= nil)
}
"""

PHASE_SCRIPT = r"""
ngx.header["Content-Type"] = "text/plain"
ngx.say(RC_INIT, " ", RC_INIT_WORKER, " ", ngx.ctx.rc_rewrite, " ",
        ngx.ctx.rc_access, " ",
        require("resty.core.base").get_request() ~= nil)
"""


def test_resty_core_get_request_phases():
    docroot = make_docroot({"ph.lua": PHASE_SCRIPT}, copy_scripts=False)
    g = Golapis(docroot=docroot, conf_extra=PHASE_INIT + PHASE_HANDLERS)
    # nginx's phase handlers in a location of their own, so that they do
    # not also run for the requests passed to golapis
    n = Nginx(g, lua=True, extra_http=PHASE_INIT, extra_server=(
        "location = /refph { %s content_by_lua_file %s/ph.lua; }"
        % (PHASE_HANDLERS, docroot)))
    s1, h1, b1 = http_get(n.port, "/ph.lua")
    s2, h2, b2 = http_get(n.port, "/refph")
    # nginx runs init_worker_by_lua with a fake request, golapis with none
    assert s2 == 200 and b2 == (b"nil cdata true true true\n"
                                b"body_filter true\n"), (s2, b2)
    assert s1 == 200 and b1 == b2.replace(b"cdata", b"nil"), (s1, b1,
                                                               g.tail())
    assert h2.get("X-Rc-Hf") == "true", h2.items()
    assert h1.get("X-Rc-Hf") == "true", h1.items()
    for who in (g, n):
        wait_for(lambda: "@@rc-log get_request: true" in who.log(), 5,
                 what="the log_by_lua line")


# what only golapis does
GOLAPIS_ONLY = PRELUDE + r"""
local lib = os.getenv("GOLAPIS_LUA_LIB")

-- our modules, not Debian's, answer to these names
local names = { "resty.core", "ngx.process", "ngx.ssl", "ngx.ssl.session",
                "ngx.ssl.clienthello", "ngx.ocsp", "ngx.balancer",
                "ngx.pipe" }
for _, m in ipairs(%(submodules)s) do
    names[#names + 1] = "resty.core." .. m
end
for _, name in ipairs(names) do
    case("path-" .. name, function()
        local p = package.searchpath(name, package.path)
        return p:sub(1, #lib + 1) == lib .. "/", p:sub(#lib + 2)
    end)
end

-- resty.core leaves golapis's ngx.* as they are
local before = {
    say = ngx.say, print = ngx.print, exit = ngx.exit, now = ngx.now,
    time = ngx.time, md5 = ngx.md5, escape_uri = ngx.escape_uri,
    encode_base64 = ngx.encode_base64, get_phase = ngx.get_phase,
    var = ngx.var, header = ngx.header, req = ngx.req,
    re_match = ngx.re.match, re_gsub = ngx.re.gsub,
    get_headers = ngx.req.get_headers, worker_pid = ngx.worker.pid,
    mt = getmetatable(ngx), index = getmetatable(ngx).__index,
}
case("core", function() return require("resty.core").version end)
case("same-ngx", function()
    local changed = {}
    local now = {
        say = ngx.say, print = ngx.print, exit = ngx.exit, now = ngx.now,
        time = ngx.time, md5 = ngx.md5, escape_uri = ngx.escape_uri,
        encode_base64 = ngx.encode_base64, get_phase = ngx.get_phase,
        var = ngx.var, header = ngx.header, req = ngx.req,
        re_match = ngx.re.match, re_gsub = ngx.re.gsub,
        get_headers = ngx.req.get_headers, worker_pid = ngx.worker.pid,
        mt = getmetatable(ngx), index = getmetatable(ngx).__index,
    }
    for k, v in pairs(before) do
        if now[k] ~= v then changed[#changed + 1] = k end
    end
    table.sort(changed)
    return table.concat(changed, ",")
end)
case("no-lrucache", function() return package.loaded["resty.lrucache"] end)

-- the modules golapis refuses, with the same error every time
for _, name in ipairs({ "ngx.ssl.session", "ngx.ssl.clienthello",
                        "ngx.ocsp", "ngx.balancer", "ngx.pipe" }) do
    case("refuse-" .. name, require, name)
    case("refuse-again-" .. name, require, name)
    case("refuse-loaded-" .. name, function()
        return package.loaded[name]
    end)
end
-- the error points at the require
case("refuse-where", function()
    local x = require("ngx.ssl.session")
    return x
end)
-- ngx.ssl loads (its PEM parsers serve tcpsock:setclientcert); what
-- serves nginx's own handshakes raises where it is called
case("ssl-server-name", function()
    local ssl = require("ngx.ssl")
    local name = ssl.server_name()
    return name
end)
case("ssl-parse", function()
    return require("ngx.ssl").parse_pem_cert("x")
end)

local process = require "ngx.process"
case("p-master-pid", function()
    return process.get_master_pid() == ngx.worker.pid(),
           process.get_master_pid()
end)
case("p-graceful", process.signal_graceful_exit)
case("p-init", function() return RC_P_INIT end)

case("ctx-table-arg", function()
    local t = require("resty.core.ctx").get_ctx_table({})
    return t
end)

-- golapis's own ngx.semaphore (lua/ngx/semaphore.lua), whatever the path
case("semaphore", function()
    local ok, err = pcall(require, "ngx.semaphore")
    return ok, (tostring(err):match(
        "undefined symbol: ngx_http_lua_ffi_[%%w_]+"))
end)
""" % {"submodules": "{ " + ", ".join('"%s"' % m for m in SUBMODULES)
       + " }"} + EPILOGUE

GOLAPIS_INIT = r"""
# the script below reads it (scripts see only what "env" lists)
env GOLAPIS_LUA_LIB;
init_by_lua_block {
    -- as OpenResty configs often do
    require "resty.core"
    local process = require "ngx.process"
    local ok, err = process.enable_privileged_agent()
    local ok2, err2 = process.enable_privileged_agent("x")
    _G.RC_P_INIT = table.concat({ process.type(), tostring(ok), err,
                               tostring(ok2), err2 }, "|")
}
"""

REFUSED = {
    "ngx.ssl.session":
        "ngx.ssl.session is not available in golapis (TLS ends at nginx)",
    "ngx.ssl.clienthello":
        "ngx.ssl.clienthello is not available in golapis (TLS ends at nginx)",
    "ngx.ocsp": "ngx.ocsp is not available in golapis (TLS ends at nginx)",
    "ngx.balancer": "ngx.balancer is not available in golapis (upstream "
                    "balancing is nginx's, in front of golapis)",
    "ngx.pipe": "ngx.pipe is not available in golapis yet",
}


def test_resty_core_golapis_only():
    docroot = make_docroot({"only.lua": GOLAPIS_ONLY}, copy_scripts=False)
    g = Golapis(docroot=docroot, workers=1, conf_extra=GOLAPIS_INIT)
    n = Nginx(g)
    s, _, body = http_get(n.port, "/only.lua")
    assert s == 200, (s, body[:800], g.tail())
    ol, _ = _lines(body)

    paths = {"resty.core": "resty/core.lua", "ngx.process": "ngx/process.lua",
             "ngx.ssl": "ngx/ssl.lua",
             "ngx.ssl.session": "ngx/ssl/session.lua",
             "ngx.ssl.clienthello": "ngx/ssl/clienthello.lua",
             "ngx.ocsp": "ngx/ocsp.lua", "ngx.balancer": "ngx/balancer.lua",
             "ngx.pipe": "ngx/pipe.lua"}
    for m in SUBMODULES:
        paths["resty.core." + m] = "resty/core/%s.lua" % m
    for name, rel in paths.items():
        assert ol["path-" + name] == 'ok true "%s"' % rel, (
            name, ol.get("path-" + name))

    assert ol["core"] == 'ok "0.1.25"', ol["core"]
    assert ol["same-ngx"] == 'ok ""', ol["same-ngx"]
    assert ol["no-lrucache"] == "ok nil", ol["no-lrucache"]

    for name, msg in REFUSED.items():
        assert ol["refuse-" + name] == 'err "%s"' % msg, (
            name, ol["refuse-" + name])
        assert ol["refuse-again-" + name] == 'err "%s"' % msg, (
            name, ol["refuse-again-" + name])
        assert ol["refuse-loaded-" + name] == "ok nil"
    assert ol["refuse-where"] == 'err "only.lua:%d: %s"' % (
        _line_of(GOLAPIS_ONLY, 'local x = require("ngx.ssl.session")'),
        REFUSED["ngx.ssl.session"]), ol["refuse-where"]
    assert ol["ssl-server-name"] == (
        'err "only.lua:%d: ngx.ssl.server_name is not available in golapis '
        '(TLS ends at nginx)"' % _line_of(GOLAPIS_ONLY,
                                           "local name = ssl.server_name()")), \
        ol["ssl-server-name"]
    assert ol["ssl-parse"] == 'ok nil "PEM_read_bio_X509_AUX() failed"', \
        ol["ssl-parse"]

    assert ol["p-master-pid"] == "ok true n:%d" % g.pid, ol["p-master-pid"]
    # called by pcall: no position
    assert ol["p-graceful"] == ('err "signal_graceful_exit is not supported '
                                'by golapis"'), ol["p-graceful"]
    assert ol["p-init"] == (
        'ok "worker|nil|the privileged agent is not supported by golapis|'
        "nil|bad 'connections' argument: number expected and greater than "
        '0"'), ol["p-init"]
    assert ol["ctx-table-arg"] == ('err "only.lua:%d: get_ctx_table(ctx) '
                                   'is not supported by golapis yet"'
                                   % _line_of(GOLAPIS_ONLY,
                                              'local t = require("resty.'
                                              'core.ctx").get_ctx_table({})'
                                              )), \
        ol["ctx-table-arg"]
    assert ol["semaphore"] == "ok true nil", ol["semaphore"]


def _line_of(script, text):
    for i, line in enumerate(script.split("\n"), 1):
        if text in line:
            return i
    raise AssertionError("%r not in the script" % text)


# Debian's client libraries index ngx.socket.tcp (and udp) as they load:
# they load on golapis as they do in nginx (test_socket_libs.py runs them)
CLIENTS = r"""
require "resty.core"
ngx.header["Content-Type"] = "text/plain"
ngx.say(ngx.socket ~= nil)
for _, name in ipairs({ "nginx.redis", "nginx.memcached",
                        "nginx.dns.resolver" }) do
    local ok, m = pcall(require, name)
    if ok then
        ngx.say(name, " ok ", type(m), " ", type(m.new), " ", m._VERSION)
    else
        ngx.say(name, " err ", (tostring(m):gsub("^.*/", "")))
    end
end
"""


def test_resty_core_client_libraries():
    g, n = _pair({"cl.lua": CLIENTS})
    (s1, _, ours), (s2, _, ref) = _both(n, "cl.lua")
    assert s2 == 200 and s1 == 200, (s1, s2, ours, ref, g.tail())
    assert ref == (b"true\n"
                   b"nginx.redis ok table function 0.27\n"
                   b"nginx.memcached ok table function 0.13\n"
                   b"nginx.dns.resolver ok table function 0.20\n"), ref
    assert ours == ref, ours
