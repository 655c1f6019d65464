"""Encoding and hashing (ngx.escape_uri ... ngx.quote_sql_str, ngx.base64,
lua-resty-string through the FFI), differential against the real
lua-nginx-module with lua-resty-core.

Each script runs many cases and prints one canonical line per case (the
pcall status and a printable form of every result), so a whole area is two
requests: the same file through golapis and through nginx's
content_by_lua_file, and the bodies must be equal line for line.
"""

from harness import Golapis, Nginx, diff_lines, http_get, make_docroot

# helpers every script starts with (the same text both ways, so the line
# numbers in error positions agree)
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

local function case(name, f, ...)
    local n, r = pack(pcall(f, ...))
    local out = { name, r[1] and "ok" or "err" }
    for i = 2, n do
        out[#out + 1] = repr(r[i])
    end
    ngx.say(table.concat(out, " "))
end

local function bytes(from, to)
    local t = {}
    for i = from, to do t[#t + 1] = string.char(i) end
    return table.concat(t)
end

-- deterministic pseudo-random bytes
local function prng_bytes(n, seed)
    local t, x = {}, seed or 1
    for i = 1, n do
        x = (x * 1103515245 + 12345) % 2147483648
        t[i] = string.char(math.floor(x / 65536) % 256)
    end
    return table.concat(t)
end
"""

URI = PRELUDE + r"""
local all = bytes(0, 255)
for t = 0, 6 do
    case("esc-all-" .. t, ngx.escape_uri, all, t)
end
case("esc-default", ngx.escape_uri, all)
case("esc-nil-type", ngx.escape_uri, "a b", nil)
case("esc-plain", ngx.escape_uri, "abcXYZ019-._~")
case("esc-js-chars", ngx.escape_uri, "!'()*")
case("esc-utf8", ngx.escape_uri, "caf\195\169 \226\130\172")
case("esc-empty", ngx.escape_uri, "")
case("esc-nil", ngx.escape_uri, nil)
case("esc-none", ngx.escape_uri)
case("esc-false", ngx.escape_uri, false)
case("esc-true", ngx.escape_uri, true)
case("esc-int", ngx.escape_uri, 42)
case("esc-float", ngx.escape_uri, 3.25)
case("esc-big-num", ngx.escape_uri, 1e100)
case("esc-neg", ngx.escape_uri, -0.5)
case("esc-tostring-mt", ngx.escape_uri,
     setmetatable({}, { __tostring = function() return "a b/c" end }))
case("esc-type-float", ngx.escape_uri, "a b/?", 0.5)
case("esc-type-2.9", ngx.escape_uri, "a b/?", 2.9)
case("esc-type-6", ngx.escape_uri, "a b%\127\128", 6)
case("esc-type-str", ngx.escape_uri, "a b", "2")
case("esc-type-true", ngx.escape_uri, "a b", true)
case("esc-type-table", ngx.escape_uri, "a b", {})
case("esc-type-7", ngx.escape_uri, "a b", 7)
case("esc-type-neg", ngx.escape_uri, "a b", -1)
case("esc-type-neg-frac", ngx.escape_uri, "a b", -0.5)
case("esc-type-6.5", ngx.escape_uri, "a b", 6.5)
case("esc-type-inf", ngx.escape_uri, "a b", math.huge)
case("esc-in-fn", function() local r = ngx.escape_uri("x", "y") return r end)
case("esc-tail", function() return ngx.escape_uri("x", 9) end)
case("esc-extra-args", ngx.escape_uri, "a b", 2, "extra")

case("unesc-all", ngx.unescape_uri, ngx.escape_uri(all, 2))
case("unesc-all-0", ngx.unescape_uri, ngx.escape_uri(all, 0))
case("unesc-plus", ngx.unescape_uri, "a+b%2Bc+")
case("unesc-lower", ngx.unescape_uri, "%e4%bd%A0%aF")
case("unesc-bad", ngx.unescape_uri, "%zz%4%%41%g1%1")
case("unesc-trailing", ngx.unescape_uri, "abc%")
case("unesc-trailing2", ngx.unescape_uri, "abc%4")
case("unesc-pct", ngx.unescape_uri, "%")
case("unesc-qmark", ngx.unescape_uri, "a%3Fb?c=d%26e")
case("unesc-nul", ngx.unescape_uri, "a%00b")
case("unesc-binary", ngx.unescape_uri, "\0\255%FF")
case("unesc-empty", ngx.unescape_uri, "")
case("unesc-nil", ngx.unescape_uri, nil)
case("unesc-none", ngx.unescape_uri)
case("unesc-false", ngx.unescape_uri, false)
case("unesc-true", ngx.unescape_uri, true)
case("unesc-num", ngx.unescape_uri, 12.5)

local big = prng_bytes(300000, 7)
case("esc-big", ngx.escape_uri, big)
case("esc-big-0", ngx.escape_uri, big, 0)
case("unesc-big", ngx.unescape_uri, ngx.escape_uri(big))
case("unesc-big-plus", ngx.unescape_uri, string.rep("a+%41%", 50000))
case("roundtrip-big", function()
    return ngx.unescape_uri(ngx.escape_uri(big)) == big
end)
"""

ARGS = PRELUDE + r"""
-- the order of the keys is the table's hash order, so results with more
-- than one key are compared as sets of pairs
local function set(s)
    if type(s) ~= "string" then return s end
    local t = {}
    for p in (s .. "&"):gmatch("([^&]*)&") do t[#t + 1] = p end
    table.sort(t)
    return "set(" .. #t .. "):" .. table.concat(t, "&")
end

local function ea(t)
    return set(ngx.encode_args(t))
end

case("ea-one", ngx.encode_args, { a = "b" })
case("ea-empty", ngx.encode_args, {})
case("ea-escape", ngx.encode_args, { ["a b&c=d"] = "x y+z/&=%" })
case("ea-escape-key-only", ngx.encode_args, { ["a b"] = true })
case("ea-num", ngx.encode_args, { n = 3.5 })
case("ea-int", ngx.encode_args, { n = 42 })
case("ea-true", ngx.encode_args, { flag = true })
case("ea-false", ngx.encode_args, { flag = false })
case("ea-empty-str", ngx.encode_args, { e = "" })
case("ea-empty-key", ngx.encode_args, { [""] = "v" })
case("ea-multi", ngx.encode_args, { m = { "1", 2, true, false, "a b", "" } })
case("ea-multi-escape-key", ngx.encode_args, { ["k y"] = { "1", "2", true } })
case("ea-multi-empty", ngx.encode_args, { m = {} })
case("ea-multi-false", ngx.encode_args, { m = { false, false } })
case("ea-binary", ngx.encode_args, { ["\0\1"] = "\255\128\127" })
case("ea-utf8", ngx.encode_args, { ["cl\195\169"] = "\226\130\172" })
case("ea-set", ea, { a = 1, b = "2", c = true, d = false, e = { "x", "y" },
                     ["f g"] = "h i" })
case("ea-set-many", function()
    local t = {}
    for i = 1, 200 do t["k" .. i] = "v" .. i end
    return ea(t)
end)
case("ea-nonstring-key", ngx.encode_args, { 1, 2 })
case("ea-mixed-key", ngx.encode_args, { [1.5] = "x" })
case("ea-bad-value", ngx.encode_args, { a = function() end })
case("ea-bad-null", ngx.encode_args, { a = ngx.null })
case("ea-bad-multi", ngx.encode_args, { a = { {} } })
case("ea-bad-multi-fn", ngx.encode_args, { a = { "x", print } })
case("ea-nil", ngx.encode_args, nil)
case("ea-str", ngx.encode_args, "a=b")
case("ea-none", ngx.encode_args)
case("ea-two", ngx.encode_args, {}, {})
-- called by name, not through pcall: errors name the function
case("ea-direct", function() local r = ngx.encode_args(nil) return r end)
case("ea-cdata", ngx.encode_args, { a = require("ffi").new("int[1]") })

case("da-basic", ngx.decode_args, "a=1&b=2&c")
case("da-multi", ngx.decode_args, "a=1&a=2&a&a=&b=x")
case("da-multi-start-true", ngx.decode_args, "a&a=1")
case("da-escapes", ngx.decode_args, "a%20b=c+d%2B&%3D=%26&x=%zz%4")
case("da-eq-in-value", ngx.decode_args, "a==b=c&d=e=f")
case("da-empty", ngx.decode_args, "")
case("da-amps", ngx.decode_args, "&&&")
case("da-empty-key", ngx.decode_args, "=v&=&x=1")
case("da-trailing-eq", ngx.decode_args, "a=")
case("da-trailing-amp", ngx.decode_args, "a=1&")
case("da-only-eq", ngx.decode_args, "=")
case("da-binary", ngx.decode_args, "\0=\255&\1")
case("da-num", ngx.decode_args, 123)
case("da-max-1", ngx.decode_args, "a=1&b=2&c=3", 1)
case("da-max-2", ngx.decode_args, "a=1&b=2&c=3", 2)
case("da-max-3", ngx.decode_args, "a=1&b=2&c=3", 3)
case("da-max-exact-amp", ngx.decode_args, "a=1&", 1)
case("da-max-last", ngx.decode_args, "a=1", 1)
case("da-max-empty-counted", ngx.decode_args, "&&&a=1", 2)
case("da-max-0", ngx.decode_args, "a=1&b=2&c=3", 0)
case("da-max-neg", ngx.decode_args, "a=1&b=2&c=3", -1)
case("da-max-frac", ngx.decode_args, "a=1&b=2&c=3", 1.7)
case("da-max-str", ngx.decode_args, "a=1&b=2&c=3", "2")
case("da-max-bad", ngx.decode_args, "a=1", "x")
case("da-max-nil", ngx.decode_args, "a=1", nil)
case("da-nil", ngx.decode_args, nil)
case("da-table", ngx.decode_args, {})
case("da-none", ngx.decode_args)
case("da-three", ngx.decode_args, "a", 1, 2)
case("da-direct", function() local r = ngx.decode_args({}) return r end)
case("da-direct-max", function()
    local r = ngx.decode_args("a", {})
    return r
end)
case("da-local", function()
    local f = ngx.decode_args
    local r = f(nil)
    return r
end)

local function count(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
end

local many = {}
for i = 1, 150 do many[#many + 1] = "k" .. i .. "=v" .. i end
many = table.concat(many, "&")
case("da-default-100", function()
    local t, err = ngx.decode_args(many)
    return count(t), t.k100, t.k101, err
end)
case("da-unlimited", function()
    local t, err = ngx.decode_args(many, 0)
    return count(t), t.k150, err
end)
local huge = {}
for i = 1, 20000 do huge[#huge + 1] = "k" .. (i % 1000) .. "=v%20" .. i end
huge = table.concat(huge, "&")
case("da-huge", function()
    local t, err = ngx.decode_args(huge, 0)
    return count(t), #t.k7, t.k7[20], err
end)
case("ea-da-roundtrip", function()
    local src = { a = "1 2", b = { "x", "y&z" }, ["c=d"] = "e" }
    return ngx.decode_args(ngx.encode_args(src))
end)
"""

B64 = PRELUDE + r"""
local b64 = require "ngx.base64"

local all = bytes(0, 255)
for i = 0, 6 do
    case("enc-" .. i, ngx.encode_base64, ("\251\255\191abc"):sub(1, i))
    case("enc-np-" .. i, ngx.encode_base64, ("\251\255\191abc"):sub(1, i),
         true)
end
case("enc-all", ngx.encode_base64, all)
case("enc-all-np", ngx.encode_base64, all, true)
case("enc-np-false", ngx.encode_base64, "ab", false)
case("enc-np-nil", ngx.encode_base64, "ab", nil)
case("enc-np-num", ngx.encode_base64, "ab", 1)
case("enc-np-zero", ngx.encode_base64, "ab", 0)
case("enc-np-str", ngx.encode_base64, "ab", "yes")
case("enc-np-table", ngx.encode_base64, "ab", {})
case("enc-nil", ngx.encode_base64, nil)
case("enc-none", ngx.encode_base64)
case("enc-false", ngx.encode_base64, false)
case("enc-true", ngx.encode_base64, true)
case("enc-num", ngx.encode_base64, 3.14)
case("enc-empty", ngx.encode_base64, "")

local good = { "", "YQ==", "YQ=", "YQ", "YWI=", "YWI", "YWJj", "YWJjZA==",
               "+/+/", "////", "YQ==garbage!", "YWJj=", "YWJj====",
               "YR==", "YWK=", "=", "==", "=abc" }
for i, s in ipairs(good) do
    case("dec-" .. i, ngx.decode_base64, s)
end
local bad = { "Y", "YWJjZ", "YW Jj", "YWJj\n", "YW-_", "YQ==\0", "\0YQ==",
              "YWJj!", "\255" }
for i, s in ipairs(bad) do
    case("dec-bad-" .. i, ngx.decode_base64, s)
end
case("dec-all", ngx.decode_base64, ngx.encode_base64(all))
case("dec-all-np", ngx.decode_base64, ngx.encode_base64(all, true))
case("dec-nil", ngx.decode_base64, nil)
case("dec-none", ngx.decode_base64)
case("dec-num", ngx.decode_base64, 1234)
case("dec-table", ngx.decode_base64, {})
case("dec-in-fn", function() local r = ngx.decode_base64(true) return r end)
case("dec-tail", function() return ngx.decode_base64(true) end)
case("enc-np-in-fn", function()
    local r = ngx.encode_base64("a", 1)
    return r
end)

local big = prng_bytes(200000, 3)
case("big-enc", ngx.encode_base64, big)
case("big-enc-np", ngx.encode_base64, big, true)
case("big-rt", function()
    return ngx.decode_base64(ngx.encode_base64(big)) == big
end)
case("big-url-rt", function()
    return b64.decode_base64url(b64.encode_base64url(big)) == big
end)

-- ngx.decode_base64mime is newer than lua-nginx-module 0.10.23: the
-- reference side models it (cut at the first "=", drop the bytes outside
-- the alphabet, then strict decoding), golapis runs its own
local mime = ngx.decode_base64mime or function(s)
    if type(s) ~= "string" then
        error("string argument only", 2)
    end
    s = s:gsub("=.*$", "")
    s = s:gsub("[^%w+/]", "")
    return ngx.decode_base64(s)
end
local mimes = { "", "YWJj", "YW\r\nJj", "Y W J j", "!Y@W#J$j%", "YQ==",
                "Y\nQ", "Y", "Y\n\n", "YWJjZ", "zaaLg==", "YQ==YWJj",
                "YW-_Jj", "\255Y\0Q" }
for i, s in ipairs(mimes) do
    case("mime-" .. i, mime, s)
end
case("mime-nil", mime, nil)
case("mime-num", mime, 12)

for i = 0, 6 do
    case("url-enc-" .. i, b64.encode_base64url, ("\251\255\191abc"):sub(1, i))
end
case("url-enc-all", b64.encode_base64url, all)
case("url-enc-num", b64.encode_base64url, 12)
case("url-enc-nil", b64.encode_base64url, nil)
case("url-enc-none", b64.encode_base64url)
local urls = { "", "-_-_", "YQ", "YQ==", "YQ=", "YWJj", "YWJjZ", "+/+/",
               "YW Jj", "Y", "YQ==xx!", "_w", "__8" }
for i, s in ipairs(urls) do
    case("url-dec-" .. i, b64.decode_base64url, s)
end
case("url-dec-all", b64.decode_base64url, b64.encode_base64url(all))
case("url-dec-num", b64.decode_base64url, 12)
case("url-dec-nil", b64.decode_base64url, nil)
case("url-dec-table", b64.decode_base64url, {})
case("url-version", function() return type(b64.version) end)
"""

HASH = PRELUDE + r"""
local all = bytes(0, 255)
local inputs = { "", "a", "abc", "The quick brown fox jumps over the lazy dog",
                 all, string.rep("x", 55), string.rep("x", 56),
                 string.rep("y", 64), string.rep("z", 1000) }
for i, s in ipairs(inputs) do
    case("md5-" .. i, ngx.md5, s)
    case("md5bin-" .. i, ngx.md5_bin, s)
    case("sha1-" .. i, ngx.sha1_bin, s)
    case("crc-s-" .. i, ngx.crc32_short, s)
    case("crc-l-" .. i, ngx.crc32_long, s)
    case("hmac-" .. i, ngx.hmac_sha1, s, "message " .. i)
    case("hmac-k-" .. i, ngx.hmac_sha1, "key", s)
    case("sql-" .. i, ngx.quote_sql_str, s)
end
for _, f in ipairs({ "md5", "md5_bin", "sha1_bin", "crc32_short",
                     "crc32_long" }) do
    case(f .. "-nil", ngx[f], nil)
    case(f .. "-none", ngx[f])
    case(f .. "-false", ngx[f], false)
    case(f .. "-true", ngx[f], true)
    case(f .. "-num", ngx[f], 123)
    case(f .. "-float", ngx[f], -1.5)
end
case("crc-type", function() return type(ngx.crc32_long("abc")) end)
case("crc-high", ngx.crc32_short, "\255\255\255\255")
case("hmac-long-key", ngx.hmac_sha1, string.rep("k", 65), "m")
case("hmac-64-key", ngx.hmac_sha1, string.rep("k", 64), "m")
case("hmac-num", ngx.hmac_sha1, 1, 2.5)
case("hmac-nil-key", ngx.hmac_sha1, nil, "m")
case("hmac-nil-msg", ngx.hmac_sha1, "k", nil)
case("hmac-table", ngx.hmac_sha1, "k", {})
case("hmac-one", ngx.hmac_sha1, "k")
case("hmac-none", ngx.hmac_sha1)
case("hmac-three", ngx.hmac_sha1, "k", "m", "x")
case("sql-special", ngx.quote_sql_str, "a'b\"c\\d\0e\bf\ng\rh\ti\26j")
case("sql-utf8", ngx.quote_sql_str, "caf\195\169 '\226\128\153'")
case("sql-high", ngx.quote_sql_str, "\128'\255\"")
case("sql-num", ngx.quote_sql_str, 12.5)
case("sql-nil", ngx.quote_sql_str, nil)
case("sql-bool", ngx.quote_sql_str, true)
case("sql-none", ngx.quote_sql_str)
case("sql-two", ngx.quote_sql_str, "a", "b")
case("sql-direct", function() local r = ngx.quote_sql_str({}) return r end)
case("hmac-direct", function() local r = ngx.hmac_sha1("k", {}) return r end)
case("hmac-tail", function() return ngx.hmac_sha1(nil, "m") end)

local big = prng_bytes(1000000, 11)
case("big-md5", ngx.md5, big)
case("big-sha1", ngx.sha1_bin, big)
case("big-crc-s", ngx.crc32_short, big)
case("big-crc-l", ngx.crc32_long, big)
case("big-hmac", ngx.hmac_sha1, big, big)
case("big-sql", ngx.quote_sql_str, big)
"""

# lua-resty-string as Debian packages it (lua-nginx-string: nginx.string,
# nginx.md5, ...), unmodified: its FFI declarations must resolve in golapis
RESTY = PRELUDE + r"""
local str = require "nginx.string"
local to_hex = str.to_hex

case("to_hex", to_hex, "\0\1\127\128\255abc")
case("to_hex-empty", to_hex, "")
for _, s in ipairs({ "0", "123", "9223372036854775807",
                     "9223372036854775808", "", "12a", "-1", " 1" }) do
    case("atoi-" .. s, str.atoi, s)
end

local function digest(mod, ...)
    local m = require(mod)
    local o = m:new()
    for _, s in ipairs({ ... }) do
        o:update(s)
    end
    local d1 = to_hex(o:final())
    o:reset()
    o:update("again")
    return d1, to_hex(o:final())
end

for _, mod in ipairs({ "nginx.md5", "nginx.sha1", "nginx.sha224",
                       "nginx.sha256", "nginx.sha384", "nginx.sha512" }) do
    case(mod, digest, mod, "hello", " ", "world")
    case(mod .. "-empty", digest, mod)
    case(mod .. "-big", digest, mod, prng_bytes(100000, 5), "tail")
end

local random = require "nginx.random"
case("random", function()
    local a, b = random.bytes(16), random.bytes(16, true)
    local c = random.bytes(16, true)
    return type(a), #a, type(b), #b, b ~= c
end)

local aes = require "nginx.aes"
local function aes_case(key, salt, cipher, hash, rounds, msg)
    local a, err = aes:new(key, salt, cipher, hash, rounds)
    if not a then
        return nil, err
    end
    local enc = a:encrypt(msg)
    return to_hex(enc), a:decrypt(enc) == msg, a:decrypt("garbage!")
end
case("aes-default", aes_case, "secret", nil, nil, nil, nil, "hello")
case("aes-salt", aes_case, "secret", "12345678", nil, nil, nil,
     prng_bytes(1000, 9))
case("aes-bad-salt", aes_case, "secret", "123", nil, nil, nil, "x")
case("aes-256-cbc-sha512", aes_case, "secret", "saltsalt",
     aes.cipher(256, "cbc"), aes.hash.sha512, 5, "a longer message here")
case("aes-128-ecb", aes_case, "k", "saltsalt", aes.cipher(128, "ecb"),
     aes.hash.sha1, 1, "")
case("aes-192-ofb", aes_case, "k", "saltsalt", aes.cipher(192, "ofb"),
     aes.hash.sha256, 3, "stream mode")
case("aes-iv", aes_case, "0123456789abcdef", nil, aes.cipher(128, "cbc"),
     { iv = "fedcba9876543210" }, nil, "explicit key and iv")
case("aes-iv-method", aes_case, "key material", nil, aes.cipher(128, "cbc"),
     { iv = "fedcba9876543210", method = ngx.md5_bin }, nil, "hashed key")
case("aes-bad-iv", aes_case, "k", nil, nil, { iv = "short" }, nil, "x")
case("aes-no-cipher", function() return aes.cipher(100, "zzz") end)
"""


def run_diff(files):
    """Each file through golapis and through nginx; bodies line by line."""
    docroot = make_docroot(files, copy_scripts=False)
    g = Golapis(docroot=docroot)
    n = Nginx(g, lua=True)
    for name in files:
        diff_lines(n.port, "/" + name, g, min_lines=20)
    return g, n


def test_string_uri():
    run_diff({"uri.lua": URI})


def test_string_args():
    run_diff({"args.lua": ARGS})


def test_string_base64():
    run_diff({"b64.lua": B64})


def test_string_hash():
    run_diff({"hash.lua": HASH})


def test_string_resty_string_ffi():
    run_diff({"resty.lua": RESTY})


# ngx.decode_base64mime came with lua-nginx-module 0.10.28, after the
# reference here: golapis alone, on the inputs of lua-resty-core's
# t/decode-base64.t (newlines every 76 characters, stray characters, a
# malformed input) and the README's description
MIME = r"""
local text = "OpenResty is a full-fledged web platform that integrates the "
    .. "standard Nginx core, LuaJIT, many carefully written Lua libraries, "
    .. "lots of high quality 3rd-party Nginx modules, and most of their "
    .. "external dependencies. It is designed to help developers easily "
    .. "build scalable web applications, web services, and dynamic web "
    .. "gateways."
local enc = ngx.encode_base64(text)
local lines = {}
for i = 1, #enc, 76 do lines[#lines + 1] = enc:sub(i, i + 75) end
ngx.say(type(ngx.decode_base64mime))
ngx.say(ngx.decode_base64mime(table.concat(lines, "\n") .. "\n") == text)
ngx.say(ngx.decode_base64mime(table.concat(lines, "\r\n")) == text)
local noisy = enc:gsub("(....)", "%1!@#\r\n$%%^&*[]-_'")
ngx.say(ngx.decode_base64mime(noisy) == text)
ngx.say(ngx.decode_base64(noisy))
ngx.say(ngx.decode_base64mime("zaaLg=="))
ngx.say(ngx.decode_base64mime(""))
ngx.say(ngx.decode_base64mime("Y\nW\nJ\nj"))
ngx.say(ngx.decode_base64mime("YWI=\nYWJj"))
ngx.say(pcall(ngx.decode_base64mime, nil))
ngx.say(pcall(ngx.decode_base64mime, 1))
"""

MIME_WANT = b"""function
true
true
true
nil
nil

abc
ab
falsestring argument only
falsestring argument only
"""


def test_string_base64mime():
    g = Golapis(docroot=make_docroot({"mime.lua": MIME}, copy_scripts=False))
    n = Nginx(g)
    st, _, body = http_get(n.port, "/mime.lua")
    assert (st, body) == (200, MIME_WANT), (st, body, g.tail())
