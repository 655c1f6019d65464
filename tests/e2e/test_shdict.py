"""ngx.shared.DICT (lua_shared_dict) and golapis.shared, differential
against the real lua-nginx-module with lua-resty-core, plus what only
golapis has: one dict shared by worker threads, kept across code reloads
and SIGHUP, golapis.shared.get/set/incr and golapis_shared_dict.

The differential scripts run many cases and print one canonical line per
case (the pcall status and a printable form of every result); the same
file goes through golapis and through nginx's content_by_lua_file, and the
bodies must be equal line for line.  Errors raised inside the library
itself (LuaJIT's FFI conversions, comparisons of a bad exptime) carry the
library's position, lua-resty-core's shdict.lua there and "ngx.shared"
here: the scripts print that prefix as "LIB:".  Errors the library raises
for the caller (bad "zone" argument, bad "exptime" argument) carry the
script's own position, the same both ways.

Where the two must differ, it is because the memory is not the same (nginx
keeps entries in slab pages of a shared memory zone, golapis charges each
entry its bytes against the dict's size, docs/shdict-core.md) or because
golapis frees expired entries in the background: the eviction script
prints only what does not depend on that, and the expiry scripts run with
a housekeeping interval long enough for nothing to be freed meanwhile.
"""

import os
import re
import signal
import threading
import time

from harness import (Golapis, Nginx, diff_lines, http_get, make_docroot,
                     wait_for)

SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

# the same dicts both ways; golapis also has its golapis.shared dict,
# "golapis", so nginx gets one of that name too
DICTS = ("lua_shared_dict dogs 1m; lua_shared_dict cats 1m; "
         "lua_shared_dict small 48k; lua_shared_dict tiny 16k;")
NGINX_DICTS = DICTS + " lua_shared_dict golapis 1m;"
# no background expiry during a test: nginx has none
GL_CONF = DICTS + "\nhousekeeping_interval 1h;"

PRELUDE = r"""
local function hex(s)
    return (s:gsub(".", function(c)
        return string.format("%02x", c:byte())
    end))
end

local repr

local function srepr(s)
    if #s > 200 then
        return "s#" .. #s .. ":" .. hex(ngx.md5_bin(s))
    end
    if s:find("[^%w%p ]") then
        return "x:" .. hex(s)
    end
    return string.format("%q", s)
end

repr = function(v)
    local t = type(v)
    if t == "string" then
        return srepr(v)
    elseif t == "number" then
        return "n:" .. string.format("%.17g", v)
    elseif t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return repr(a) < repr(b) end)
        local out = {}
        for _, k in ipairs(keys) do
            out[#out + 1] = "[" .. repr(k) .. "]=" .. repr(v[k])
        end
        return "{" .. table.concat(out, ",") .. "}"
    end
    return tostring(v)
end

local function pack(...)
    return select("#", ...), { ... }
end

-- errors from inside the library: its own position differs
local function lib(msg)
    if type(msg) ~= "string" then
        return msg
    end
    msg = msg:gsub("^[^:]*resty/core/shdict%.lua:%d+: ", "LIB: ")
    msg = msg:gsub("^ngx%.shared:%d+: ", "LIB: ")
    return msg
end

local function case(name, f, ...)
    local n, r = pack(pcall(f, ...))
    local out = { name, r[1] and "ok" or "err" }
    if not r[1] then
        r[2] = lib(r[2])
    end
    for i = 2, n do
        out[#out + 1] = repr(r[i])
    end
    ngx.say(table.concat(out, " "))
end

local function sorted_keys(d, n)
    local keys = n and d:get_keys(n) or d:get_keys()
    table.sort(keys)
    return table.concat(keys, ",")
end

for _, name in ipairs({ "dogs", "cats", "small", "tiny" }) do
    ngx.shared[name]:flush_all()
    ngx.shared[name]:flush_expired()
end
"""

# values, flags, and their round trip through get and get_stale
VALUES = PRELUDE + r"""
local d = ngx.shared.dogs

local function rt(name, v, flags)
    case(name .. " set", d.set, d, "k", v, 0, flags)
    case(name .. " get", d.get, d, "k")
    case(name .. " get_stale", d.get_stale, d, "k")
end

rt("str", "hello")
rt("empty", "")
rt("bin", "a\0b\255\r\n")
rt("int", 42)
rt("neg", -7)
rt("float", 3.14159)
rt("negzero", -0.0)
rt("nan", 0/0)
rt("inf", math.huge)
rt("ninf", -math.huge)
rt("2^53+2", 2^53 + 2)
rt("denormal", 5e-324)
rt("true", true)
rt("false", false)
rt("numstr", "42")
rt("floatstr", "1.50")
rt("bigstr", string.rep("abc", 100000))
rt("flags1", "v", 1)
rt("flags0", "v", 0)
rt("flagsffff", "v", 0xffff)
rt("flags-1", "v", -1)
rt("flags2^31-1", "v", 2^31 - 1)
rt("flags1.9", "v", 1.9)
rt("flags-1.9", "v", -1.9)
rt("flagsfalse", "v", false)
rt("flags-num", 5, 3)
rt("flags-bool", true, 9)
case("flags-str", d.set, d, "k", "v", 0, "3")
case("flags-table", d.set, d, "k", "v", 0, {})
case("flags-true", d.set, d, "k", "v", 0, true)
case("get-after-flags", d.get, d, "k")
case("table", d.set, d, "k", {})
case("function", d.set, d, "k", print)
case("lightud", d.set, d, "k", ngx.null)
case("coroutine", d.set, d, "k", coroutine.create(function() end))
case("kept", d.get, d, "k")
case("safe_set", d.safe_set, d, "k", "safe", 0, 2)
case("safe_set-get", d.get, d, "k")
case("nil-deletes", d.set, d, "k", nil)
case("after-nil", d.get, d, "k")
case("after-nil-stale", d.get_stale, d, "k")
case("missing", d.get, d, "nope")
case("missing-stale", d.get_stale, d, "nope")
case("numbers-share-keys", function()
    d:set(12, "twelve")
    d:set(1.5, "x")
    return d:get("12"), d:get("1.5"), d:get(12.0), d:get(true)
end)
case("bool-key", function()
    d:set(true, "t")
    d:set(false, "f")
    return d:get("true"), d:get("false"), d:get(true), d:get(false)
end)
case("table-key", function()
    local t = {}
    d:set(t, "tab")
    return d:get(t), d:get(tostring(t))
end)
"""

# every keyed method with every kind of key
KEYS = PRELUDE + r"""
local d = ngx.shared.dogs

local keys = {
    { "nil", nil }, { "empty", "" }, { "max", string.rep("k", 65535) },
    { "over", string.rep("k", 65536) }, { "int", 1 }, { "float", 1.5 },
    { "huge", 1e100 }, { "true", true }, { "false", false },
    { "nul", "a\0b" }, { "space", " " },
}

for _, kv in ipairs(keys) do
    local name, key = kv[1], kv[2]
    case(name .. " set", d.set, d, key, "v-" .. name)
    case(name .. " get", d.get, d, key)
    case(name .. " get_stale", d.get_stale, d, key)
    case(name .. " add", d.add, d, key, 1)
    case(name .. " safe_add", d.safe_add, d, key, 1)
    case(name .. " safe_set", d.safe_set, d, key, "w")
    case(name .. " replace", d.replace, d, key, "x")
    case(name .. " incr", d.incr, d, key, 1)
    case(name .. " incr-init", d.incr, d, key, 1, 0)
    case(name .. " ttl", d.ttl, d, key)
    case(name .. " expire", d.expire, d, key, 0)
    case(name .. " delete", d.delete, d, key)
    case(name .. " incr-new", d.incr, d, key, 1, 0)
    case(name .. " lpush", d.lpush, d, key, "a")
    case(name .. " delete2", d.delete, d, key)
    case(name .. " rpush", d.rpush, d, key, 2)
    case(name .. " lpush2", d.lpush, d, key, "b")
    case(name .. " llen", d.llen, d, key)
    case(name .. " lpop", d.lpop, d, key)
    case(name .. " rpop", d.rpop, d, key)
    case(name .. " llen2", d.llen, d, key)
end
"""

# argument checks and error strings of every method
ARGS = PRELUDE + r"""
local d = ngx.shared.dogs
d:set("k", 1)

-- how the zone table is checked: each call is in a function of this
-- file, so an error's position is this file's
local zones = {
    { "none", nil }, { "str", "x" }, { "empty", {} }, { "num1", { 1 } },
    { "str1", { "x" } },
}
local ffi_methods = { "get", "get_stale", "set", "safe_set", "add",
    "safe_add", "replace", "delete", "incr", "ttl", "expire", "flush_all",
    "capacity", "free_space" }
local c_methods = { "lpush", "rpush", "lpop", "rpop", "llen", "get_keys",
    "flush_expired" }

-- (not tail calls, so that the caller has a position)
for _, z in ipairs(zones) do
    for _, m in ipairs(ffi_methods) do
        case(m .. " zone-" .. z[1], function()
            local a, b, c = d[m](z[2], "k", 1, 1)
            return a, b, c
        end)
        case(m .. " zone-tail-" .. z[1], function()
            return d[m](z[2], "k", 1, 1)
        end)
    end
    for _, m in ipairs(c_methods) do
        case(m .. " zone-" .. z[1], function()
            local a, b = d[m](z[2], "k", 1)
            return a, b
        end)
        case(m .. " zone1-" .. z[1], function()
            local a, b = d[m](z[2])
            return a, b
        end)
        case(m .. " zone2-" .. z[1], function()
            local a, b = d[m](z[2], "k")
            return a, b
        end)
    end
end

-- argument counts of the C methods
case("lpush-1", function() return d:lpush("k") end)
case("lpush-3", function() return d:lpush("k", 1, 2) end)
case("rpush-0", function() return d:rpush() end)
case("lpop-0", function() return d:lpop() end)
case("lpop-2", function() return d:lpop("k", 1) end)
case("rpop-2", function() return d:rpop("k", 1) end)
case("llen-0", function() return d:llen() end)
case("llen-2", function() return d:llen("k", 1) end)
case("get_keys-2", function() return d:get_keys(1, 2) end)
case("flush_expired-2", function() return d:flush_expired(1, 2) end)
case("lpush-boolkey", function() return d:lpush(true, 1) end)
case("lpush-tablekey", function() return d:lpush({}, 1) end)
case("lpop-boolkey", function() return d:lpop(false) end)
case("llen-boolkey", function() return d:llen(true) end)
case("lpush-boolkey-dot", function() return d.lpush(d, true, 1) end)
case("lpush-pcall", d.lpush, d, true, 1)
case("lpush-boolkey-call", function() local r = d:lpush(true, 1) return r end)
case("rpush-tablekey-call", function() local r = d:rpush({}, 1) return r end)
case("rpop-boolkey-call", function() local r = d:rpop(true) return r end)
case("llen-dot-call", function() local r = d.llen(d, false) return r end)
case("get_keys-str-call", function() local r = d:get_keys("x") return r end)
case("flush_expired-call", function() local r = d:flush_expired({}) return r
end)
case("set-exptime-neg-call", function() local r = d:set("k", 1, -1) return r
end)
case("set-exptime-str-call", function() local r = d:set("k", 1, "1") return r
end)
case("expire-none-call", function() local r = d:expire("k") return r end)
case("incr-init-call", function() local r = d:incr("i", 1, "x") return r end)
case("incr-ttl-call", function() local r = d:incr("i", 1, 0, -1) return r end)
case("incr-noinit-call", function() local r = d:incr("i", 1, nil, 1) return r
end)
case("incr-novalue-call", function() local r = d:incr("k") return r end)
case("flags-call", function() local r = d:set("k", 1, 0, "x") return r end)
case("lpush-nilkey-badval", function() return d:lpush(nil, true) end)
case("lpush-bool", function() return d:lpush("l", true) end)
case("lpush-nil", function() return d:lpush("l", nil) end)
case("lpush-table", function() return d:lpush("l", {}) end)
case("lpush-lightud", function() return d:lpush("l", ngx.null) end)
case("l-after", function() return d:llen("l") end)
case("get_keys-str", function() return d:get_keys("x") end)
case("get_keys-numstr", function() return #d:get_keys("1") end)
case("get_keys-nil", function() return d:get_keys(nil) end)
case("get_keys-float", function() return #d:get_keys(1.7) end)
case("flush_expired-str", function() return d:flush_expired("x") end)
case("flush_expired-nil", function() return d:flush_expired(nil) end)
case("flush_expired-table", function() return d:flush_expired({}) end)

-- exptime
case("set-exptime-neg", function() return d:set("k", 1, -1) end)
case("set-exptime-neg-tiny", function() return d:set("k", 1, -1e-9) end)
case("set-exptime-neg-nilkey", function() return d:set(nil, 1, -1) end)
case("set-exptime-neg-badval", function() return d:set("k", {}, -1) end)
case("set-exptime-str", function() return d:set("k", 1, "1") end)
case("set-exptime-table", function() return d:set("k", 1, {}) end)
case("set-exptime-true", function() return d:set("k", 1, true) end)
case("set-exptime-false", function() return d:set("k", 2, false) end)
case("add-exptime-neg", function() return d:add("k", 1, -1) end)
case("safe_add-exptime-neg", function() return d:safe_add("k", 1, -1) end)
case("replace-exptime-neg", function() return d:replace("k", 1, -1) end)
case("safe_set-exptime-neg", function() return d:safe_set("k", 1, -1) end)
case("expire-none", function() return d:expire("k") end)
case("expire-false", function() return d:expire("k", false) end)
case("expire-nilkey-none", function() return d:expire(nil) end)
case("expire-nilkey", function() return d:expire(nil, 1) end)
case("expire-str", function() return d:expire("k", "5"), d:ttl("k") end)
case("expire-badstr", function() return d:expire("k", "x") end)
case("expire-neg", function() return d:expire("k", -1), d:ttl("k") end)
case("expire-table", function() return d:expire("k", {}) end)
case("expire-true", function() return d:expire("k", true) end)

-- incr
case("incr-novalue", function() return d:incr("k") end)
case("incr-numstr", function() return d:incr("k", "2") end)
case("incr-hexstr", function() return d:incr("k", "0x10") end)
case("incr-badstr", function() return d:incr("k", "x") end)
case("incr-table", function() return d:incr("k", {}) end)
case("incr-bool", function() return d:incr("k", true) end)
case("incr-init-numstr", function() return d:incr("i1", 1, "5") end)
case("incr-init-badstr", function() return d:incr("i2", 1, "x") end)
case("incr-init-table", function() return d:incr("i2", 1, {}) end)
case("incr-init-true", function() return d:incr("i2", 1, true) end)
case("incr-init-false", function() return d:incr("i2", 1, false) end)
case("incr-ttl-noinit", function() return d:incr("i3", 1, nil, 1) end)
case("incr-ttl-false-init", function() return d:incr("i3", 1, false, 1) end)
case("incr-ttl-neg", function() return d:incr("i3", 1, 0, -1) end)
case("incr-ttl-numstr", function() return d:incr("i4", 1, 0, "2") end)
case("incr-ttl-numstr-ttl", function() return d:ttl("i4") end)
case("incr-ttl-badstr", function() return d:incr("i5", 1, 0, "x") end)
case("incr-ttl-false", function() return d:incr("i5", 1, 0, false) end)
case("incr-ttl-table", function() return d:incr("i5", 1, 0, {}) end)
case("incr-nilkey-badinit", function() return d:incr(nil, 1, "x") end)
case("incr-emptykey-badttl", function() return d:incr("", 1, 0, -1) end)
case("incr-badinit-badvalue", function() return d:incr("i6", "x", "y") end)

-- the methods and the tables
local mt = getmetatable(d)
local names = {}
for k in pairs(mt) do names[#names + 1] = k end
table.sort(names)
ngx.say("methods: ", table.concat(names, " "))
ngx.say("index: ", mt.__index == mt)
ngx.say("same mt: ", getmetatable(ngx.shared.cats) == mt)
ngx.say("zone: ", type(d), " ", type(d[1]), " ", #d, " ", type(rawget(d, 1)))
local dicts = {}
for k, v in pairs(ngx.shared) do dicts[#dicts + 1] = k .. ":" .. type(v) end
table.sort(dicts)
ngx.say("dicts: ", table.concat(dicts, " "))
ngx.say("missing dict: ", ngx.shared.nope)
ngx.say("same table: ", ngx.shared.dogs == ngx.shared.dogs)
"""

# add, replace, incr, ttl, expire, lists, capacity, get_keys, flush_all
OPS = PRELUDE + r"""
local d = ngx.shared.cats

case("add-new", d.add, d, "a", 1, 0, 4)
case("add-exists", d.add, d, "a", 2)
case("add-nil", d.add, d, "b", nil)
case("add-nil-existing", d.add, d, "a", nil)
case("safe_add-new", d.safe_add, d, "sa", true)
case("safe_add-exists", d.safe_add, d, "a", 2)
case("get-a", d.get, d, "a")
case("replace-missing", d.replace, d, "b", 1)
case("replace-nil", d.replace, d, "a", nil)
case("replace", d.replace, d, "a", "x", 0, 3)
case("get-a2", d.get, d, "a")
case("replace-type", d.replace, d, "a", false)
case("get-a3", d.get, d, "a")
case("delete-a", d.delete, d, "a")
case("delete-missing", d.delete, d, "a")
case("replace-deleted", d.replace, d, "a", 1)

case("incr-missing", d.incr, d, "n", 1)
case("incr-init", d.incr, d, "n", 1, 10)
case("incr", d.incr, d, "n", 2.5)
case("incr-neg", d.incr, d, "n", -100)
case("incr-zero", d.incr, d, "n", 0)
case("incr-init-existing", d.incr, d, "n", 1, 1000)
case("incr-init-float", d.incr, d, "nf", 0.1, 0.2)
case("incr-nan", d.incr, d, "nn", 0/0, 0)
case("incr-nan2", d.incr, d, "nn", 1)
case("incr-inf", d.incr, d, "ni", math.huge, 0)
case("incr-inf-ninf", d.incr, d, "ni", -math.huge)
case("incr-big", d.incr, d, "nb", 2^53, 0)
case("incr-big1", d.incr, d, "nb", 1)
case("incr-str", function() d:set("s", "12") return d:incr("s", 1) end)
case("incr-str-init", function() return d:incr("s", 1, 0) end)
case("incr-bool", function() d:set("b", true) return d:incr("b", 1) end)
case("incr-keeps", function()
    d:set("f", 1, 100, 7)
    local v = d:incr("f", 1)
    return v, d:get("f"), d:ttl("f")
end)
case("incr-on-float-set", function()
    d:set("g", 1.25)
    return d:incr("g", 1), d:get("g")
end)

case("ttl-missing", d.ttl, d, "zz")
case("ttl-never", function() d:set("t", 1) return d:ttl("t") end)
case("ttl-10", function() d:set("t", 1, 10) return d:ttl("t") end)
case("ttl-1.5", function() d:set("t", 1, 1.5) return d:ttl("t") end)
case("ttl-1ms", function() d:set("t", 1, 0.001) return d:ttl("t") end)
case("ttl-sub-ms", function() d:set("t", 1, 0.0005) return d:ttl("t") end)
case("ttl-2.0005", function() d:set("t", 1, 2.0005) return d:ttl("t") end)
case("ttl-huge", function() d:set("t", 1, math.huge) return d:ttl("t") end)
case("ttl-nan", function() d:set("t", 1, 0/0) return d:ttl("t") end)
case("ttl-1e300", function() d:set("t", 1, 1e300) return d:ttl("t") end)
case("ttl-1e9", function() d:set("t", 1, 1e9) return d:ttl("t") end)
case("ttl-reset", function()
    d:set("t", 1, 10)
    d:set("t", 2)
    return d:ttl("t")
end)
case("ttl-add", function()
    d:delete("t")
    d:add("t", 1, 7)
    return d:ttl("t")
end)
case("ttl-replace", function() d:replace("t", 1, 8) return d:ttl("t") end)
case("ttl-replace-none", function() d:replace("t", 1) return d:ttl("t") end)
case("expire-10", function() return d:expire("t", 10), d:ttl("t") end)
case("expire-0", function() return d:expire("t", 0), d:ttl("t") end)
case("expire-neg", function()
    d:expire("t", 10)
    return d:expire("t", -5), d:ttl("t")
end)
case("expire-0.0004", function() return d:expire("t", 0.0004), d:ttl("t") end)
case("expire-float", function() return d:expire("t", 3.25), d:ttl("t") end)
case("expire-missing", d.expire, d, "zz", 1)
case("expire-keeps", function()
    d:set("t", "v", 0, 11)
    d:expire("t", 5)
    return d:get("t")
end)
case("incr-init_ttl", function()
    d:delete("it")
    return d:incr("it", 1, 0, 5), d:ttl("it")
end)
case("incr-init_ttl-0", function()
    d:delete("it")
    return d:incr("it", 1, 0, 0), d:ttl("it")
end)
case("incr-init_ttl-existing", function() return d:incr("it", 1, 0, 9),
    d:ttl("it") end)

-- lists
case("lpush1", d.lpush, d, "L", "a")
case("lpush2", d.lpush, d, "L", "b")
case("rpush3", d.rpush, d, "L", 3)
case("rpush4", d.rpush, d, "L", "")
case("rpush5", d.rpush, d, "L", 0/0)
case("rpush6", d.rpush, d, "L", "x\0y")
case("rpush7", d.rpush, d, "L", -0.0)
case("rpush8", d.rpush, d, "L", string.rep("z", 10000))
case("lpush9", d.lpush, d, "L", 2^60)
case("llen", d.llen, d, "L")
case("get-list", d.get, d, "L")
case("get_stale-list", d.get_stale, d, "L")
case("incr-list", d.incr, d, "L", 1)
case("incr-list-init", d.incr, d, "L", 1, 0)
case("add-list", d.add, d, "L", 1)
case("ttl-list", d.ttl, d, "L")
for i = 1, 4 do
    case("lpop" .. i, d.lpop, d, "L")
    case("rpop" .. i, d.rpop, d, "L")
end
case("llen-end", d.llen, d, "L")
case("lpop-end", d.lpop, d, "L")
case("rpop-end", d.rpop, d, "L")
case("llen-gone", d.llen, d, "L")
case("lpop-gone", d.lpop, d, "L")
case("get-gone", d.get, d, "L")
case("ttl-gone", d.ttl, d, "L")
case("keys-gone", sorted_keys, d, 0)
case("lpush-on-str", function() d:set("S", "x") return d:lpush("S", 1) end)
case("rpush-on-num", function() d:set("S", 1) return d:rpush("S", 1) end)
case("rpop-on-str", d.rpop, d, "S")
case("lpop-on-str", d.lpop, d, "S")
case("llen-on-str", d.llen, d, "S")
case("set-over-list", function()
    d:rpush("L2", 1)
    return d:set("L2", "now a string"), d:get("L2")
end)
case("replace-list", function()
    d:rpush("L3", 1)
    return d:replace("L3", 5), d:get("L3")
end)
case("delete-list", function()
    d:rpush("L4", 1)
    return d:delete("L4"), d:llen("L4")
end)
case("expire-list", function()
    d:rpush("L5", 1)
    return d:expire("L5", 100), d:ttl("L5"), d:llen("L5")
end)
case("list-many", function()
    for i = 1, 1000 do d:rpush("L6", i) end
    local sum = 0
    for i = 1, 500 do sum = sum + d:lpop("L6") + d:rpop("L6") end
    return sum, d:llen("L6")
end)

-- capacity and free_space
case("capacity", d.capacity, d)
case("capacity-small", function() return ngx.shared.small:capacity() end)
case("capacity-tiny", function() return ngx.shared.tiny:capacity() end)
case("free_space-big", function()
    local a = d:free_space()
    d:set("big", string.rep("x", 200000))
    local b = d:free_space()
    d:delete("big")
    return type(a), a <= d:capacity(), a - b >= 200000, b >= 0
end)

-- get_keys
d:flush_all()
d:flush_expired()
case("keys-empty", d.get_keys, d)
case("keys", function()
    for i = 1, 20 do d:set("k" .. i, i) end
    d:lpush("list", 1)
    d:set("never", "n", 0)
    return sorted_keys(d)
end)
case("keys-0", function() return #d:get_keys(0) end)
case("keys-5", function() return #d:get_keys(5) end)
case("keys-neg", function() return #d:get_keys(-1) end)
case("keys-1024", function()
    for i = 1, 1100 do d:set("m" .. i, i) end
    return #d:get_keys(), #d:get_keys(0), #d:get_keys(1030)
end)

-- flush_all: every entry expired, and (nginx) the 3 least recently used
-- freed at once; which 3 those are differs, so counts only
case("flush_all", d.flush_all, d)
case("flush_all-counts", function()
    local stale, gone = 0, 0
    for i = 1, 20 do
        if d:get_stale("k" .. i) ~= nil then stale = stale + 1 end
        if d:ttl("k" .. i) == nil then gone = gone + 1 end
    end
    return #d:get_keys(0), stale + gone
end)
case("flush_expired", function() return d:flush_expired() end)
case("flush_expired-again", function() return d:flush_expired() end)
case("flush-small", function()
    for i = 1, 5 do d:set("f" .. i, i) end
    d:flush_all()
    local stale, gone = 0, 0
    for i = 1, 5 do
        if d:get_stale("f" .. i) ~= nil then stale = stale + 1 end
        if d:ttl("f" .. i) == nil then gone = gone + 1 end
    end
    local keys = #d:get_keys(0)
    local flushed = d:flush_expired()
    return stale, gone, keys, flushed, d:get("f1"), d:get("f5")
end)
case("flush-list", function()
    d:rpush("fl", 1)
    d:flush_all()
    return d:llen("fl"), d:lpop("fl"), d:rpush("fl", 2), d:llen("fl")
end)
case("flush-3", function()
    d:flush_all()
    d:flush_expired()
    for i = 1, 3 do d:set("g" .. i, i) end
    d:flush_all()
    return d:get_stale("g1"), d:get_stale("g2"), d:get_stale("g3"),
           d:flush_expired()
end)
case("flush-empty", function() d:flush_all() return d:flush_expired() end)
"""

# expiry, with ngx.sleep past a ttl
EXPIRY = PRELUDE + r"""
local d = ngx.shared.dogs
local c = ngx.shared.cats

d:set("e1", "v1", 0.2, 5)
d:set("e2", 42, 0.2)
d:set("keep", "k", 10)
d:set("never", "n")
d:rpush("el", "x")
d:expire("el", 0.2)
d:set("en", 1, 0.2, 3)
d:set("ea", "a", 0.2)
d:set("er", "r", 0.2)
d:set("ex", "x", 0.2)
d:set("eb", false, 0.2, 1)
d:incr("ei", 5, 0, 0.2)

for i = 1, 5 do c:set("c" .. i, i, 0.2) end
c:set("cl1", 1)
c:set("cl2", 2, 100)

case("before-e1", d.get, d, "e1")
case("before-ttl", d.ttl, d, "e1")
case("before-ei", d.get, d, "ei")

ngx.sleep(0.35)

-- first what frees nothing in either server
case("stale-e1", d.get_stale, d, "e1")
case("stale-e2", d.get_stale, d, "e2")
case("stale-eb", d.get_stale, d, "eb")
case("stale-ei", d.get_stale, d, "ei")
case("stale-keep", d.get_stale, d, "keep")
case("stale-never", d.get_stale, d, "never")
case("stale-el", d.get_stale, d, "el")
case("ttl-e1-neg", function() return d:ttl("e1") < 0 end)
case("ttl-keep", function()
    local t = d:ttl("keep")
    return t > 9 and t < 10
end)
case("keys", sorted_keys, d, 0)
case("expire-revive", function() return d:expire("ex", 10) end)
case("c-keys", sorted_keys, c, 0)
case("c-flush_expired-2", c.flush_expired, c, 2)
case("c-flush_expired", c.flush_expired, c)
case("c-flush_expired-0", c.flush_expired, c)
case("c-keys-after", sorted_keys, c, 0)
case("c-stale-after", c.get_stale, c, "c1")
case("c-ttl-after", c.ttl, c, "c1")

-- then the rest, whose answers do not depend on what was freed
case("get-ex", d.get, d, "ex")
case("get-e1", d.get, d, "e1")
case("get-e2", d.get, d, "e2")
case("get-eb", d.get, d, "eb")
case("get-keep", d.get, d, "keep")
case("llen-el", d.llen, d, "el")
case("lpop-el", d.lpop, d, "el")
case("rpush-el", d.rpush, d, "el", "y")
case("llen-el2", d.llen, d, "el")
case("ttl-el", d.ttl, d, "el")
case("incr-en", d.incr, d, "en", 1)
case("incr-en-init", d.incr, d, "en", 1, 10)
case("get-en", d.get, d, "en")
case("ttl-en", d.ttl, d, "en")
case("add-ea", d.add, d, "ea", "A")
case("get-ea", d.get, d, "ea")
case("replace-er", d.replace, d, "er", "R")
case("get-er", d.get, d, "er")
case("incr-ei", d.incr, d, "ei", 1)
case("llen-gone", d.llen, d, "e2")

-- short ttls within one request: the cached time stands still
case("short", function()
    d:set("s", 1, 0.05)
    local a = d:get("s")
    ngx.sleep(0.1)
    return a, d:get("s"), d:get_stale("s")
end)
case("init_ttl", function()
    d:incr("it", 1, 0, 0.05)
    ngx.sleep(0.1)
    return d:get("it"), d:incr("it", 1), d:incr("it", 1, 100), d:ttl("it")
end)
case("expire-then-sleep", function()
    d:set("es", "v")
    d:expire("es", 0.05)
    ngx.sleep(0.1)
    return d:get("es"), d:add("es", "w"), d:get("es")
end)
"""

# eviction in a 48k dict (in nginx, a 12k zone has no page left for
# entries of this size at all): what must match whatever the memory accounting
EVICTION = PRELUDE + r"""
local d = ngx.shared.small
local val = string.rep("v", 100)

case("fill", function()
    local first, fails = nil, 0
    for i = 1, 1000 do
        local ok, err, forcible = d:set("key" .. i, val)
        if not ok then fails = fails + 1 end
        if forcible and not first then first = i end
    end
    local n = #d:get_keys(0)
    return fails, first ~= nil and first > 5, n > 5 and n < 1000
end)
case("newest", function()
    return d:get("key1000") == val, d:get("key999") == val,
           d:get("key998") == val
end)
case("oldest", function() return d:get("key1"), d:get("key2") end)

case("lru", function()
    d:flush_all()
    d:flush_expired()
    d:set("hot", "h")
    for i = 1, 1000 do
        d:set("c" .. i, val)
        if d:get("hot") == nil then return "hot evicted", i end
    end
    return d:get("hot"), d:get("c1")
end)

case("safe", function()
    d:flush_all()
    d:flush_expired()
    for i = 1, 1000 do
        local ok, err, forcible = d:safe_set("s" .. i, val)
        if not ok then
            return i > 5, ok, err, forcible, d:get("s1") == val,
                   d:get("s" .. i)
        end
    end
    return "never full"
end)
case("safe_add-full", d.safe_add, d, "another", val)
case("add-full", function()
    local ok, err, forcible = d:add("another", val)
    return ok, err, forcible, d:get("another") == val
end)
case("set-full", function()
    local ok, err, forcible = d:set("yet-another", val)
    return ok, err, forcible, d:get("yet-another") == val
end)
case("incr-full", function()
    local v, err = d:incr("num", 1, 41)
    return v, err, d:get("num")
end)
case("incr-full-existing", function() return d:incr("num", 1) end)
case("too-big", function()
    local ok, err = d:set("huge", string.rep("x", 60000))
    return ok, err, d:get("huge")
end)
case("too-big-safe", function()
    return d:safe_set("huge", string.rep("x", 60000))
end)
case("too-big-list", function()
    return d:lpush("hl", string.rep("x", 60000)), d:llen("hl")
end)
case("tiny-big", function()
    local t = ngx.shared.tiny
    local ok, err = t:set("k", string.rep("x", 16384))
    return ok, err, t:set("k", "small"), t:get("k")
end)
"""

SCRIPTS = {
    "values.lua": VALUES,
    "keys.lua": KEYS,
    "args.lua": ARGS,
    "ops.lua": OPS,
    "expiry.lua": EXPIRY,
    "eviction.lua": EVICTION,
}


_servers = {}


def _pair():
    """golapis and nginx with the same dicts, the scripts in one docroot
    (started once per module run)."""
    if "pair" not in _servers or not _servers["pair"][0].running():
        g = Golapis(docroot=make_docroot(SCRIPTS, copy_scripts=False),
                    conf_extra=GL_CONF, workers=1)
        n = Nginx(g, lua=True, extra_http=NGINX_DICTS)
        _servers["pair"] = (g, n)
    return _servers["pair"]


def _diff(name):
    g, n = _pair()
    return diff_lines(n.port, "/" + name, g)


def test_values():
    lines = _diff("values.lua")
    # a few anchors, so that a change both ways is seen too
    assert 'str get ok "hello"' in lines
    assert "flags1 get ok \"v\" n:1" in lines
    assert "true get ok true" in lines
    assert "false get ok false" in lines
    assert "table ok nil \"bad value type\"" in lines


def test_keys():
    lines = _diff("keys.lua")
    assert 'nil get ok nil "nil key"' in lines
    assert 'over set ok nil "key too long"' in lines
    assert 'empty lpush ok nil "empty key"' in lines


def test_args():
    lines = _diff("args.lua")
    assert any(l.startswith("methods: __index add capacity delete expire")
               for l in lines), lines[-8:]


def test_ops():
    lines = _diff("ops.lua")
    assert "incr-init ok n:11 nil false" in lines


def test_expiry():
    lines = _diff("expiry.lua")
    assert 'stale-e1 ok "v1" n:5 true' in lines


def test_eviction():
    lines = _diff("eviction.lua")
    assert "newest ok true true true" in lines


# ---------------------------------------------------------------------------
# golapis only

COUNTER = r"""
local d = ngx.shared.dogs
local id = ngx.worker.id()
d:set("w" .. id, true)
d:set("req" .. ngx.var.arg_i, id)
d:incr("hits", 1, 0)
ngx.say(id)
"""

READ_ALL = r"""
local d = ngx.shared.dogs
local n = 0
for i = 1, tonumber(ngx.var.arg_n) do
    if d:get("req" .. i) ~= nil then n = n + 1 end
end
ngx.say(d:get("w0"), " ", d:get("w1"), " ", d:get("hits"), " ", n)
"""

# waits until `w` requests are in (so that they run at the same time), then
# increments n times
INCR = r"""
local d = ngx.shared.dogs
d:incr("ready", 1, 0)
local t0 = ngx.now()
while d:get("ready") < tonumber(ngx.var.arg_w) do
    ngx.sleep(0.002)
    if ngx.now() - t0 > 20 then
        ngx.say("timed out")
        return
    end
end
local n = tonumber(ngx.var.arg_n)
local before = d:get("c") or 0
for i = 1, n do
    d:incr("c", 1, 0)
end
-- more than n since before: another worker's increments came in between
ngx.say(ngx.worker.id(), " ", d:get("c") - before > n and "overlap" or "")
"""

GET_C = r"""
ngx.say(ngx.shared.dogs:get("c"))
"""


def test_shared_across_workers():
    g = Golapis(docroot=make_docroot({"counter.lua": COUNTER,
                                      "read.lua": READ_ALL},
                                     copy_scripts=False),
                conf_extra="lua_shared_dict dogs 1m;", workers=2)
    n = Nginx(g)
    ids = set()
    for i in range(1, 41):
        st, _, body = http_get(n.port, "/counter.lua?i=%d" % i)
        assert st == 200, body
        ids.add(body.strip())
    # round robin over the workers: both wrote
    assert ids == {b"0", b"1"}, ids
    for _ in range(4):
        st, _, body = http_get(n.port, "/read.lua?n=40")
        assert body == b"true true 40 40\n", body


def test_concurrent_incr():
    g = Golapis(docroot=make_docroot({"incr.lua": INCR, "get.lua": GET_C},
                                     copy_scripts=False),
                conf_extra="lua_shared_dict dogs 1m;", workers=4)
    n = Nginx(g)
    bodies = []
    errors = []

    def run():
        try:
            st, _, body = http_get(n.port, "/incr.lua?n=100000&w=4",
                                   timeout=60 * SLACK)
            assert st == 200, body
            bodies.append(body.split())
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # 4 requests of 100000 increments, one per worker (round robin), all
    # in flight at once
    assert sorted(b[0] for b in bodies) == [b"0", b"1", b"2", b"3"], bodies
    st, _, body = http_get(n.port, "/get.lua")
    assert body == b"400000\n", body
    # some request saw the others' increments while it ran
    assert any(b[1:] == [b"overlap"] for b in bodies), bodies


V1 = r"""
ngx.say("v1 ", (ngx.shared.dogs:incr("n", 1, 0)))
"""

V2 = r"""
local d = ngx.shared.dogs
ngx.say("v2 ", d:get("n"), " ", golapis.shared.get("g"))
"""

RELOADED_RE = re.compile(r"worker (\d+): Lua code reloaded")


def test_reload_and_sighup():
    www = make_docroot({"v.lua": V1}, copy_scripts=False)
    g = Golapis(docroot=www, workers=2,
                conf_extra="lua_shared_dict dogs 1m;\n"
                           "housekeeping_interval 0.1;")
    n = Nginx(g)
    last = 0
    for _ in range(5):
        st, _, body = http_get(n.port, "/v.lua")
        assert body.startswith(b"v1 "), body
        last = int(body.split()[1])
    assert last == 5
    # golapis.shared on the default dict, from the old generation
    st, _, body = http_get(n.port, "/v.lua")
    last = 6

    tmp = os.path.join(www, ".v.lua.tmp")
    with open(tmp, "w") as f:
        f.write("golapis.shared.set('g', 'kept')\n" + V1)
    os.replace(tmp, os.path.join(www, "v.lua"))

    def seen_g():
        nonlocal last
        st, _, body = http_get(n.port, "/v.lua")
        last = int(body.split()[1])
        return len(RELOADED_RE.findall(g.log())) >= 2

    wait_for(seen_g, 10 * SLACK, what="a reload of both workers")
    for _ in range(2):
        st, _, body = http_get(n.port, "/v.lua")
        last += 1
        assert body == ("v1 %d\n" % last).encode(), (body, last)

    # a new generation: the dict is the same
    with open(tmp, "w") as f:
        f.write(V2)
    os.replace(tmp, os.path.join(www, "v.lua"))

    def v2():
        st, _, body = http_get(n.port, "/v.lua")
        if body.startswith(b"v1 "):
            nonlocal last
            last = int(body.split()[1])
            return None
        return body

    body = wait_for(v2, 10 * SLACK, what="the v2 script")
    assert body == ("v2 %d kept\n" % last).encode(), (body, last)
    # both workers on v2
    for _ in range(4):
        st, _, body = http_get(n.port, "/v.lua")
        assert body == ("v2 %d kept\n" % last).encode(), (body, last)

    # SIGHUP: a config read anew, new generations, the same dicts
    before = len(RELOADED_RE.findall(g.log()))
    g.send_signal(signal.SIGHUP)
    wait_for(lambda: len(RELOADED_RE.findall(g.log())) >= before + 2,
             10 * SLACK, what="the SIGHUP reload of both workers")
    for _ in range(4):
        st, _, body = http_get(n.port, "/v.lua")
        assert body == ("v2 %d kept\n" % last).encode(), (body, last)


test_reload_and_sighup.TIMEOUT = 60 * SLACK

GOLAPIS_SHARED = r"""
local s = golapis.shared
ngx.say(s == ngx.shared, " ", golapis == ngx, " ", type(s.get), " ",
        rawget(s, "get"), " ", rawget(s, "set"), " ", rawget(s, "incr"))
ngx.say(s.set("a", 1))
ngx.say(s.incr("a", 2))
ngx.say(s.get("a"))
ngx.say(ngx.shared[DEFAULT]:get("a"))
ngx.say(s.incr("b", 1))
ngx.say(s.incr("b", 1, 10))
ngx.say(s.incr("b", 1, 10, 100), " ", ngx.shared[DEFAULT]:ttl("b"))
ngx.say(s.set("c", "x", 10, 3))
ngx.say(s.get("c"))
ngx.say(s.get(nil))
ngx.say(s.set("", 1))
ngx.say(s.set("d", {}))
ngx.say(s.get("from_init"), " ", s.get("inits"))
ngx.say(pcall(s.set, "d", 1, -1))
ngx.say(pcall(function() local r = s.set("d", 1, -1) return r end))
ngx.say(pcall(function() local r = s.incr("d", 1, nil, 5) return r end))
local names = {}
for k in pairs(ngx.shared) do names[#names + 1] = k end
table.sort(names)
ngx.say(table.concat(names, ","))
ngx.say(ngx.shared[DEFAULT]:capacity())
"""

INIT = """
init_by_lua_block {
    golapis.shared.set("from_init", "yes")
    golapis.shared.incr("inits", 1, 0)
}
"""


def _golapis_shared(conf_extra, default, workers=2):
    script = GOLAPIS_SHARED.replace("DEFAULT", repr(default))
    g = Golapis(docroot=make_docroot({"s.lua": script}, copy_scripts=False),
                conf_extra=conf_extra + INIT, workers=workers)
    n = Nginx(g)
    st, _, body = http_get(n.port, "/s.lua")
    assert st == 200, (body, g.tail())
    lines = body.decode().splitlines()
    path = os.path.join(g.docroot, "s.lua")
    return lines, path


def test_golapis_shared_default():
    lines, path = _golapis_shared("lua_shared_dict dogs 1m;\n", "golapis")
    assert lines == [
        "true true function nil nil nil",
        "truenilfalse",
        "3",
        "3",
        "3",
        "nilnot found",
        "11nilfalse",
        "12 0",
        "truenilfalse",
        "x3",
        "nilnil key",
        "nilempty key",
        "nilbad value type",
        # init_by_lua runs once in each worker's state
        "yes 2",
        'falsebad "exptime" argument',
        'false%s:19: bad "exptime" argument' % path,
        'false%s:20: must provide "init" when providing "init_ttl"' % path,
        "dogs,golapis",
        "1048576",
    ], lines


def test_golapis_shared_dict_directive():
    lines, _ = _golapis_shared("lua_shared_dict dogs 1m;\n"
                               "golapis_shared_dict mine 64k;\n", "mine")
    assert lines[3:5] == ["3", "3"], lines
    assert lines[-2:] == ["dogs,mine", "65536"], lines

    # golapis.shared on a lua_shared_dict
    lines, _ = _golapis_shared("lua_shared_dict dogs 1m;\n"
                               "lua_shared_dict cats 16k;\n"
                               "golapis_shared_dict cats 1m;\n", "cats")
    assert lines[3:5] == ["3", "3"], lines
    assert lines[-2:] == ["cats,dogs", "16384"], lines


BAD_INIT = """
init_by_lua_block {
    local ok, err = pcall(ngx.shared.dogs.set, ngx.shared.dogs, "k", 1, -1)
    ngx.shared.dogs:set("init_err", err)
    ngx.shared.dogs:set("init_ttl", 5, 7)
    ngx.shared.dogs:rpush("init_list", "a")
}
"""

READ_INIT = r"""
local d = ngx.shared.dogs
ngx.say(d:get("init_err"), " ", d:get("init_ttl"), " ", d:lpop("init_list"),
        " ", d:ttl("init_ttl") > 6)
"""


def test_init_by_lua():
    g = Golapis(docroot=make_docroot({"r.lua": READ_INIT},
                                     copy_scripts=False),
                conf_extra="lua_shared_dict dogs 1m;\n" + BAD_INIT,
                workers=1)
    n = Nginx(g)
    st, _, body = http_get(n.port, "/r.lua")
    assert body == b'bad "exptime" argument 5 a true\n', (body, g.tail())
