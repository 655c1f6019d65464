"""ngx.re (match, find, gmatch, sub, gsub) and require "ngx.re" (split,
opt), differential against the real lua-nginx-module with lua-resty-core.

Each script runs many cases and prints one line per case: its name, the
pcall status and a printable form of every value returned (their count
too).  The same file goes through golapis and through nginx's
content_by_lua_file, and the lines must be equal, except:

- error positions are cut off ("regex.lua:624: unknown flag" -> "unknown
  flag"): resty.core raises from inside its own files, golapis from C;
- KNOWN lines, where the PCRE library makes the difference: Debian's lua
  module is built on PCRE1 (8.39), golapis on PCRE2 (10.42), whose
  compile messages differ and whose match error codes are PCRE2's (as
  lua-nginx-module built with PCRE2 returns them).  For those the test
  checks both sides against the strings written here.
"""

import re
import time

from harness import Golapis, Nginx, http_get, make_docroot, ok_pair

PRELUDE = r"""
local repr

repr = function(v)
    local t = type(v)
    if t == "string" then
        -- one line per case: control and high bytes as \ddd
        return (string.format("%q", v):gsub("\\\n", "\\n")
                :gsub("[%z\1-\31\127-\255]", function(c)
                    return "\\" .. c:byte()
                end))
    elseif t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b)
            local ta, tb = type(a), type(b)
            if ta ~= tb then return ta < tb end
            return a < b
        end)
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
    local out = { name, r[1] and "ok" or "err", "#" .. (n - 1) }
    if r[1] then
        for i = 2, n do
            out[#out + 1] = repr(r[i])
        end
    else
        out[#out + 1] = (tostring(r[2]):gsub("^[^\n]-:%d+: ", ""))
    end
    ngx.say(table.concat(out, " "))
end

local function collect(it)
    local t = {}
    while true do
        local m, err = it()
        if err then t[#t + 1] = "err:" .. err break end
        if not m then break end
        t[#t + 1] = m
    end
    return t
end

local named = setmetatable({}, { __tostring = function() return "T!" end })
"""

MATCH = PRELUDE + r"""
local m, f = ngx.re.match, ngx.re.find

-- basics and every option
case("m-basic", m, "hello, 1234", "[0-9]+")
case("m-groups", m, "hello, 1234", "([0-9])([0-9]+)")
case("m-none", m, "hello", "[0-9]+")
case("m-empty-re", m, "abc", "")
case("m-empty-subj", m, "", "^$")
case("m-nil-opts", m, "abc", "b", nil)
case("m-empty-opts", m, "abc", "b", "")
case("m-i", m, "HeLLo", "hello", "i")
case("m-i-off", m, "HeLLo", "hello")
case("m-m", m, "a\nb\nc", "^b$", "m")
case("m-m-off", m, "a\nb\nc", "^b$")
case("m-s", m, "a\nb", "a.b", "s")
case("m-s-off", m, "a\nb", "a.b")
case("m-x", m, "hello", "h e l # comment", "x")
case("m-x-ws", m, "hello", "HEL LO", "ix")
case("m-a", m, "hello", "e", "a")
case("m-a-start", m, "hello", "h.", "a")
case("m-a-ctx", m, "hello", "e", "a", { pos = 2 })
case("m-a-ctx-miss", m, "hello", "l", "a", { pos = 2 })
case("m-j", m, "hello, 1234", "([0-9]+)", "j")
case("m-jo", m, "hello, 1234", "([0-9]+)", "jo")
case("m-o", m, "hello, 1234", "([0-9]+)", "o")
case("m-o-again", m, "bye, 99", "([0-9]+)", "o")
case("m-d", m, "hello", "(h)(e)l+", "d")
case("m-d-longest", m, "abcd", "a|ab|abc", "d")
case("m-d-named", m, "abcd", "(?<x>a)b", "d")
case("m-d-nomatch", m, "abcd", "x", "d")
case("m-d-ws", m, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "(a|aa|aaa|aaaa|aaaaa)*", "d")
case("m-perl-longest-not", m, "abcd", "a|ab|abc")
case("m-J", m, "a", "\\u0061", "J")
case("m-J-empty-class", m, "a", "[]a", "J")
case("m-J-unset-backref", m, "b", "(a)?\\1b", "J")
case("m-all-opts", m, "HeLLo\nWorld", "^ w o r l d $", "ijmsxo")
case("m-u", m, "hello, \228\184\173\230\150\135", "HELLO, (.{2})", "iu")
case("m-no-u-bytes", m, "\228\184\173\230\150\135", "^(.{2})")
case("m-U", m, "\228\184\173\230\150\135", "^(.)", "U")
case("m-u-class", m, "x\228\184\173y", "[\228\184\173]", "u")
case("m-u-hex", m, "x\228\184\173y", "\\x{4e2d}", "u")
case("m-u-caseless", m, "\195\137T\195\137", "\195\169t\195\169", "iu")
case("m-multi-flags-dup", m, "aaa", "a", "iiii")

-- captures: unmatched groups, named, duplicate names
case("m-false", m, "hello, world", "(world)|(hello)|(?<named>howdy)")
case("m-named", m, "hello, 1234", "([0-9])(?<remaining>[0-9]+)")
case("m-named-2", m, "2024-01-02", "(?<y>\\d+)-(?<m>\\d+)-(?<d>\\d+)")
case("m-named-P", m, "ab", "(?P<first>a)(?P<second>b)")
case("m-named-quote", m, "ab", "(?'q'a)b")
case("m-D", m, "hello, world", "(?<n>\\w+), (?<n>\\w+)", "D")
case("m-D-unmatched", m, "hello, ", "(?<n>\\w+), (?<n>\\w+)?", "D")
case("m-D-none-matched", m, "x", "(?<n>a)?(?<n>b)?x", "D")
case("m-D-mixed", m, "ab", "(?<n>a)(?<o>b)", "D")
case("m-D-branch", m, "b", "(?|(?<n>a)|(?<n>b))", "D")
case("m-branch-reset", m, "b", "(?|(a)|(b))")
case("m-nested", m, "abcd", "(a(b(c)))(d)")
case("m-optional-last", m, "a", "(a)(b)?")
case("m-many-groups", m, string.rep("x", 40),
     string.rep("(x)", 40))

-- ctx.pos in and out
case("m-ctx-out", function()
    local ctx = {}
    local r = m("1234, hello", "[0-9]+", "", ctx)
    return r, ctx.pos
end)
case("m-ctx-in", function()
    local ctx = { pos = 2 }
    local r = m("1234, hello", "[0-9]+", "", ctx)
    return r, ctx.pos
end)
case("m-ctx-miss", function()
    local ctx = { pos = 2 }
    local r = m("1234, hello", "z", "", ctx)
    return r, ctx.pos
end)
case("m-ctx-lexer", function()
    local ctx, out = {}, {}
    local s = "12 abc 3"
    while true do
        local r = m(s, "\\s*(\\d+|[a-z]+)", "ajo", ctx)
        if not r then break end
        out[#out + 1] = r[1] .. "@" .. ctx.pos
    end
    return table.concat(out, " ")
end)
case("m-ctx-pos0", m, "abc", "a", "", { pos = 0 })
case("m-ctx-neg", m, "abc", "a", "", { pos = -5 })
case("m-ctx-end", m, "abc", "$", "", { pos = 4 })
case("m-ctx-past", m, "abc", "b", "", { pos = 4 })
case("m-ctx-far", m, "abc", "b", "", { pos = 10 })
case("m-ctx-huge", m, "abc", "b", "", { pos = 2 ^ 40 })
case("m-ctx-frac", m, "abcb", "b", "", { pos = 2.5 })
case("m-ctx-false", m, "abc", "a", "", { pos = false })
case("m-ctx-str", m, "abc", "b", "", { pos = "2" })
case("m-ctx-bool", m, "abc", "b", "", { pos = true })
case("m-ctx-is-str", m, "abc", "b", "", "x")
case("m-ctx-is-str-miss", m, "abc", "z", "", "x")
case("m-ctx-is-num", m, "abc", "b", "", 5)
case("m-ctx-false-arg", m, "abc", "b", "", false)
case("m-ctx-newindex", function()
    local seen = {}
    local ctx = setmetatable({}, { __newindex = function(t, k, v)
        seen[#seen + 1] = k .. "=" .. v
    end })
    local r = m("abc", "b", "", ctx)
    return r, seen
end)

-- the res table
case("m-res", function()
    local res = { 5, 6, 7, 8, x = 1 }
    local r = m("ab", "(a)", "", nil, res)
    return r == res, r
end)
case("m-res-miss", function()
    local res = { 5 }
    local r = m("ab", "(z)", "", nil, res)
    return r, res
end)
case("m-res-dup-append", function()
    local res = { n = { "old" } }
    return m("ab", "(?<n>a)", "D", nil, res)
end)
case("m-res-str", m, "abc", "b", "", nil, "x")
case("m-res-false", m, "abc", "b", "", nil, false)

-- find and nth
case("f-basic", f, "hello, 1234", "([0-9]+)", "jo")
case("f-none", f, "hello", "[0-9]+")
case("f-nth-1", f, "hello, 1234", "([0-9])([0-9]+)", "jo", nil, 1)
case("f-nth-2", f, "hello, 1234", "([0-9])([0-9]+)", "jo", nil, 2)
case("f-nth-0", f, "hello, 1234", "([0-9])([0-9]+)", "", nil, 0)
case("f-nth-big", f, "abc", "(b)", "", nil, 2)
case("f-nth-neg", f, "abc", "(b)", "", nil, -1)
case("f-nth-unmatched", f, "abc", "(x)?b", "", nil, 1)
case("f-nth-beyond-rc", f, "abc", "(b)(x)?", "", nil, 2)
case("f-nth-nomatch", f, "abc", "(x)", "", nil, 1)
case("f-nth-str", f, "abc", "(b)", "", nil, "1")
case("f-nth-str-miss", f, "abc", "(x)", "", nil, "1")
case("f-nth-dfa", f, "abcd", "(b)(c)", "d", nil, 1)
case("f-empty", f, "abc", "")
case("f-end", f, "abc", "$")
case("f-ctx", function()
    local ctx = { pos = 3 }
    local a, b = f("hello", "l+", "", ctx)
    return a, b, ctx.pos
end)
case("f-ctx-empty", function()
    local ctx = { pos = 3 }
    local a, b = f("hello", "x*", "", ctx)
    return a, b, ctx.pos
end)
case("f-ctx-past", f, "abc", "b", "", { pos = 10 })

-- argument types
case("a-subj-nil", m, nil, "ni")
case("a-subj-num", m, 123, "2")
case("a-subj-float", m, 1.5, "\\.")
case("a-subj-bool", m, true, "ru")
case("a-subj-tostring", m, named, "T")
case("a-subj-table", f, {}, "t")
case("a-re-nil", m, "abc", nil)
case("a-re-num", m, "a1c", 1)
case("a-re-table", f, "abc", {})
case("a-opts-num", m, "abc", "b", 1)
case("a-opts-true", m, "abc", "b", true)
case("a-opts-false", m, "abc", "b", false)
case("a-opts-table", m, "abc", "b", {})
case("a-bad-flag", m, "abc", "a", "z")
case("a-bad-flag-2", f, "abc", "a", "jz")
case("a-bad-flag-space", m, "abc", "a", "i ")
case("a-bad-flag-first", m, "abc", nil, "q")
case("a-bad-flag-gmatch", ngx.re.gmatch, "abc", "a", "Q")
case("a-none", m)
case("a-one", m, "abc")

-- bytes and the "o" cache under the same pattern with other options
case("b-nul-subj", m, "a\0b", "a.b")
case("b-nul-class", m, "a\0b", "[\\0]")
case("b-high", m, "\255\254", "\\xff")
case("o-opts-key", function()
    local r = {}
    r[1] = m("ABC", "b", "o")
    r[2] = m("ABC", "b", "io")
    r[3] = m("ABC", "b", "oi")
    r[4] = m("ABC", "b", "o")
    return r
end)
case("o-loop", function()
    local n = 0
    for i = 1, 500 do
        if f("item-" .. i, "-(\\d+)$", "jo") then n = n + 1 end
    end
    return n
end)
case("re-namespace", function()
    local keys = {}
    for k, v in pairs(ngx.re) do keys[#keys + 1] = k .. ":" .. type(v) end
    table.sort(keys)
    return table.concat(keys, " ")
end)
"""

GMATCH_SUB = PRELUDE + r"""
local gm, sub, gsub = ngx.re.gmatch, ngx.re.sub, ngx.re.gsub

-- gmatch
case("g-basic", function()
    return collect(gm("hello, world!", "([a-z]+)", "i"))
end)
case("g-type", function() return type(gm("a", "a")) end)
case("g-for", function()
    local t = {}
    for m in gm("a1b22c333", "\\d+") do t[#t + 1] = m[0] end
    return t
end)
case("g-empty", function() return collect(gm("baaac", "a*")) end)
case("g-empty-all", function() return collect(gm("abc", "")) end)
case("g-empty-subj", function() return collect(gm("", "x*")) end)
case("g-none", function() return collect(gm("abc", "z")) end)
case("g-named", function()
    return collect(gm("a=1, b=2", "(?<k>\\w)=(?<v>\\d)"))
end)
case("g-D", function() return collect(gm("ab ab", "(?<n>a)(?<n>b)", "D")) end)
case("g-jo", function() return collect(gm("x1x2x3", "x(\\d)", "jo")) end)
case("g-d", function() return collect(gm("abab", "a|ab", "d")) end)
case("g-a", function() return collect(gm("aab", "a", "a")) end)
case("g-m", function() return collect(gm("a\nb\nc", "^\\w$", "m")) end)
case("g-after-end", function()
    local it = gm("ab", ".")
    return it(), it(), it(), it()
end)
case("g-bad", gm, "abc", "(")
case("g-bad-o", gm, "abc", "[", "o")
case("g-two-iters", function()
    local a, b = gm("1 2 3", "\\d", "o"), gm("4 5 6", "\\d", "o")
    return a()[0], b()[0], a()[0], b()[0], a()[0], b()[0], a(), b()
end)
case("g-subj-num", function() return collect(gm(12321, "2")) end)
case("g-utf", function()
    return collect(gm("\228\184\173\230\150\135", ".", "u"))
end)
case("g-sleep", function()
    -- the iterator across yields of the request
    local t = {}
    for m in gm("a1b2c3", "[a-z](\\d)", "jo") do
        ngx.sleep(0.001)
        t[#t + 1] = m[1]
    end
    return t
end)

-- sub / gsub with templates
case("s-basic", sub, "hello, 1234", "([0-9])[0-9]", "[$0][$1]")
case("s-braces", sub, "hello, 1234", "[0-9]", "${0}00")
case("s-dollar", sub, "hello, 1234", "[0-9]", "$$")
case("s-none", sub, "abc", "x", "y")
case("s-empty-re", sub, "abc", "", "-")
case("s-empty-repl", sub, "abc", "b", "")
case("s-missing-group", sub, "abc", "b", "<$2>")
case("s-unmatched-group", sub, "abc", "(x)?b", "<$1>")
case("s-digits", sub, "abc", "(b)", "<${1}|$1$1x|$$|$0|$01|${01}|$9|$10>")
case("s-many-dollars", sub, "abc", "b", "$$$$x$$")
case("s-num-repl", sub, "abc", "b", 5)
case("s-nil-repl", sub, "abc", "b", nil)
case("s-bool-repl", sub, "abc", "b", false)
case("s-tostring-repl", sub, "abc", "b", named)
case("s-subj-num", sub, 12321, "2", "x")
case("s-bad-tpl-end", sub, "abc", "b", "$")
case("s-bad-tpl-name", sub, "abc", "b", "$x")
case("s-bad-tpl-named", sub, "abc", "b", "${name}")
case("s-bad-tpl-bracket", sub, "abc", "b", "${x")
case("s-bad-tpl-bracket-num", sub, "abc", "b", "${1x}")
case("s-bad-tpl-empty", sub, "abc", "b", "${}")
case("s-bad-tpl-open", sub, "abc", "b", "${")
case("s-bad-tpl-nomatch", sub, "abc", "z", "$x")
case("s-bad-re", sub, "abc", "(", "x")
case("s-bad-re-and-tpl", sub, "abc", "(", "$x")
case("s-bad-flag", sub, "abc", "b", "x", "z")
case("s-i", sub, "ABC", "b", "x", "i")
case("s-a", sub, "abc", "b", "x", "a")
case("s-d", sub, "abcd", "a|ab|abc", "<$0>", "d")
case("s-u", sub, "\228\184\173\230\150\135", ".", "<$0>", "u")
case("s-jo", sub, "hello", "l", "L", "jo")
case("g-str", gsub, "hello, world", "([a-z])[a-z]+", "[$0,$1]", "i")
case("g-str-none", gsub, "hello", "z", "y")
case("g-str-empty", gsub, "abc", "", "-")
case("g-str-empty-star", gsub, "baaac", "a*", "<$0>")
case("g-str-empty-subj", gsub, "", "", "x")
case("g-str-empty-subj2", gsub, "", "a", "x")
case("g-str-anchored", gsub, "aaab", "a", "x", "a")
case("g-str-m", gsub, "a\nb", "^", ">", "m")
case("g-str-all", gsub, "abc", ".", "$0$0")
case("g-str-long", function()
    local s = string.rep("ab", 5000)
    local r, n = gsub(s, "b", "xyz")
    return #r, n, r:sub(1, 12)
end)
case("g-str-jo-loop", function()
    local out = {}
    for i = 1, 50 do
        out[#out + 1] = gsub("k" .. i .. "v", "(\\d+)", "<$1>", "jo")
    end
    return table.concat(out, ",")
end)
case("g-str-utf-empty", gsub, "\228\184\173\230\150\135", "", "-", "u")
case("g-str-dollar-in-subj", gsub, "a$1b", "\\$", "$$$$")

-- sub / gsub with functions
case("f-sub", sub, "hello, 1234", "( [0-9] ) [0-9]",
     function(m) return "[" .. m[0] .. "][" .. m[1] .. "]" end, "x")
case("f-gsub", gsub, "hello, world", "([a-z])[a-z]+",
     function(m) return "[" .. m[0] .. "," .. m[1] .. "]" end, "i")
case("f-dollar-literal", gsub, "ab", "b", function() return "$0$$" end)
case("f-nil", sub, "abc", "b", function() return nil end)
case("f-num", sub, "abc", "b", function() return 1.5 end)
case("f-bool", sub, "abc", "b", function() return false end)
case("f-tostring", sub, "abc", "b", function() return named end)
case("f-nothing", sub, "abc", "b", function() end)
case("f-error", sub, "abc", "b", function() error("boom") end)
case("f-error-table", function()
    local ok, err = pcall(sub, "abc", "b", function() error({ tag = 1 }) end)
    return ok, err
end)
case("f-named", gsub, "a=1, b=2", "(?<k>\\w)=(?<v>\\d)",
     function(m) return m.v .. "=" .. m.k end)
case("f-false-group", gsub, "ab", "(a)|(b)",
     function(m) return tostring(m[1]) .. "/" .. tostring(m[2]) end)
case("f-empty", gsub, "abc", "", function(m) return "<" .. m[0] .. ">" end)
case("f-empty-star", gsub, "baaac", "a*",
     function(m) return "<" .. m[0] .. ">" end)
case("f-none", gsub, "abc", "z", function() return "x" end)
case("f-bad-re", gsub, "abc", "(", function() return "x" end)
case("f-bad-flag", gsub, "abc", "b", function() return "x" end, "z")
case("f-count", function()
    local calls = 0
    local r, n = gsub("a.b.c.d", "\\.",
                      function() calls = calls + 1 return "-" end, "jo")
    return r, n, calls
end)
case("f-nested", gsub, "a1b2", "\\d", function(m)
    -- the same cached regex inside the callback
    local r = gsub("x" .. m[0] .. "y", "\\d", "<$0>", "jo")
    ngx.re.match("zzz9", "\\d", "jo")
    return r
end, "jo")
case("f-nested-gmatch", gsub, "a1b2", "(\\d)", function(m)
    local t = {}
    for x in gm("123", "\\d", "jo") do t[#t + 1] = x[0] end
    return m[1] .. table.concat(t)
end, "jo")
case("f-sleep", gsub, "a1b2c3", "\\d", function(m)
    ngx.sleep(0.001)
    return "<" .. m[0] .. ">"
end)
case("f-u", gsub, "\228\184\173\230\150\135", ".",
     function(m) return "[" .. m[0] .. "]" end, "u")
case("f-table-repl", function()
    local r, n = sub("abc", "b", {})
    return r:match("^atable: 0x%x+c$") ~= nil, n
end)
"""

SPLIT = PRELUDE + r"""
local ngx_re = require "ngx.re"
local split = ngx_re.split

case("sp-basic", split, "a,b,c", ",")
case("sp-capture", split, "a,b,c", "(,)")
case("sp-capture-unset", split, "xbz", "(a)?(b)")
case("sp-empties", split, "a,b,,c,,", ",")
case("sp-leading", split, ",,a,b", ",")
case("sp-only-seps", split, ",,,", ",")
case("sp-empty-re", split, "abc", "")
case("sp-star", split, "abc", "x*")
case("sp-digits", split, "a1b22c", "\\d*")
case("sp-digits-plus", split, "a1b22c", "\\d+")
case("sp-empty-subj", split, "", ",")
case("sp-no-sep", split, "abc", ",")
case("sp-max-1", split, "a,b,c", ",", nil, nil, 1)
case("sp-max-2", split, "a,b,c,d", ",", nil, nil, 2)
case("sp-max-3-cap", split, "a,b,c,d", "(,)", nil, nil, 3)
case("sp-max-big", split, "a,b", ",", nil, nil, 10)
case("sp-max-0", split, "a,,", ",", nil, nil, 0)
case("sp-max-neg", split, "a,b,c", ",", nil, nil, -1)
case("sp-max-trailing", split, "a,b,", ",", nil, nil, 5)
case("sp-ctx", split, "a,b,c", ",", nil, { pos = 3 })
case("sp-ctx-out", function()
    local ctx = { pos = 2 }
    local r = split("a,b,c", ",", nil, ctx)
    return r, ctx.pos
end)
case("sp-ctx-empty", function()
    local ctx = {}
    local r = split("a,b", ",", nil, ctx)
    return r, ctx.pos
end)
case("sp-ctx-past", split, "a,b", ",", nil, { pos = 10 })
case("sp-res", function()
    local res = { 1, 2, 3, 4, 5, x = "y" }
    local r = split("a,b", ",", nil, nil, nil, res)
    return r == res, r
end)
case("sp-res-str", split, "a,b", ",", nil, nil, nil, "x")
case("sp-opts", split, "aXbxc", "x", "i")
case("sp-jo", split, "a1b2c", "\\d", "jo")
case("sp-u", split, "\228\184\173,\230\150\135", ",", "u")
case("sp-u-empty", split, "\228\184\173\230\150\135", "", "u")
case("sp-d", split, "a--b---c", "-+", "d")
case("sp-bad-re", split, "a,b", "(")
case("sp-bad-flag", split, "a,b", ",", "z")
case("sp-num", split, 12321, "2")
case("sp-re-nil", split, "a,b", nil)
case("sp-shared-ctx", function()
    -- the default ctx is reset on every call
    return split("a,b", ","), split("c,d", ",")
end)
case("opt-unknown", ngx_re.opt, "foo", 1)
case("opt-nil", ngx_re.opt)
case("re-mod-keys", function()
    local keys = {}
    for k, v in pairs(ngx_re) do keys[#keys + 1] = k .. ":" .. type(v) end
    table.sort(keys)
    return table.concat(keys, " ")
end)
"""

# PCRE1 (nginx's lua module here) vs PCRE2 (golapis): name -> (nginx
# line, golapis line), after the name
KNOWN = {
    "m-ctx-far": (
        'ok #2 nil "pcre_exec() failed: -24"',
        'ok #2 nil "pcre_exec() failed: -33"'),
    "m-ctx-huge": (
        'ok #2 nil "pcre_exec() failed: -24"',
        'ok #2 nil "pcre_exec() failed: -33"'),
    # the DFA workspace (100 ints, as upstream) is too small
    "m-d-ws": (
        'ok #2 nil "pcre_exec() failed: -19"',
        'ok #2 nil "pcre_exec() failed: -43"'),
    "f-ctx-past": (
        'ok #3 nil nil "pcre_exec() failed: -24"',
        'ok #3 nil nil "pcre_exec() failed: -33"'),
    "g-bad": (
        'ok #2 nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #2 nil "pcre2_compile() failed: missing closing parenthesis '
        'in \\"(\\""'),
    "g-bad-o": (
        'ok #2 nil "pcre_compile() failed: missing terminating ] for '
        'character class in \\"[\\""',
        'ok #2 nil "pcre2_compile() failed: missing terminating ] for '
        'character class in \\"[\\""'),
    "s-bad-re": (
        'ok #3 nil nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #3 nil nil "pcre2_compile() failed: missing closing '
        'parenthesis in \\"(\\""'),
    "s-bad-re-and-tpl": (
        'ok #3 nil nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #3 nil nil "pcre2_compile() failed: missing closing '
        'parenthesis in \\"(\\""'),
    "f-bad-re": (
        'ok #3 nil nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #3 nil nil "pcre2_compile() failed: missing closing '
        'parenthesis in \\"(\\""'),
    "sp-bad-re": (
        'ok #2 nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #2 nil "pcre2_compile() failed: missing closing parenthesis '
        'in \\"(\\""'),
    # an empty match moves on by one byte, into the middle of a character
    "g-str-utf-empty": (
        'ok #3 nil nil "pcre_exec() failed: -11"',
        'ok #3 nil nil "pcre_exec() failed: -36"'),
    "sp-u-empty": (
        'ok #2 nil "pcre_exec() failed: -11"',
        'ok #2 nil "pcre_exec() failed: -36"'),
}

# compile errors: the message is PCRE's (and, for golapis, its format is
# lua-nginx-module's with PCRE2: "pcre2_compile() failed: ...")
ERRORS = PRELUDE + r"""
local m, f = ngx.re.match, ngx.re.find
case("e-paren", m, "abc", "(")
case("e-paren-find", f, "abc", "(")
case("e-paren-named", m, "abc", "a(?<x>b", "o")
case("e-unmatched", m, "a", "a)b")
case("e-class", m, "a", "a[b")
case("e-name-digit", m, "a", "(?<1a>x)")
case("e-quant-order", m, "a", "x{2,1}")
case("e-backslash", m, "a", "\\")
case("e-repeat", m, "a", "*")
case("e-dupname", m, "hello, world", "(?<n>\\w+), (?<n>\\w+)")
case("e-long", m, "abc", string.rep("x", 200) .. "(")
case("e-bad-utf8-pattern", m, "a", "\255", "u")
case("e-bad-utf8-subject", m, "\255", ".", "u")
case("e-bad-utf8-gmatch", function()
    return collect(ngx.re.gmatch("a\255", ".", "u"))
end)
case("e-bad-utf8-gsub", ngx.re.gsub, "\255", ".", "x", "u")
case("e-bad-utf8-split", require("ngx.re").split, "a,\255", ",", "u")
case("e-gmatch-utf-offset", function()
    local it = ngx.re.gmatch("\228\184\173\230\150\135", "", "u")
    local a, b = it()
    local c, d = it()
    local e = it()
    return a, b, c, d, e
end)
"""

ERRORS_WANT = {
    "e-paren": (
        'ok #2 nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #2 nil "pcre2_compile() failed: missing closing parenthesis '
        'in \\"(\\""'),
    "e-paren-find": (
        'ok #3 nil nil "pcre_compile() failed: missing ) in \\"(\\""',
        'ok #3 nil nil "pcre2_compile() failed: missing closing '
        'parenthesis in \\"(\\""'),
    "e-paren-named": (
        'ok #2 nil "pcre_compile() failed: missing ) in \\"a(?<x>b\\""',
        'ok #2 nil "pcre2_compile() failed: missing closing parenthesis '
        'in \\"a(?<x>b\\""'),
    "e-unmatched": (
        'ok #2 nil "pcre_compile() failed: unmatched parentheses in '
        '\\"a)b\\" at \\")b\\""',
        'ok #2 nil "pcre2_compile() failed: unmatched closing '
        'parenthesis in \\"a)b\\" at \\")b\\""'),
    "e-class": (
        'ok #2 nil "pcre_compile() failed: missing terminating ] for '
        'character class in \\"a[b\\""',
        'ok #2 nil "pcre2_compile() failed: missing terminating ] for '
        'character class in \\"a[b\\""'),
    "e-name-digit": (
        'ok #2 nil "pcre_compile() failed: group name must start with a '
        'non-digit in \\"(?<1a>x)\\" at \\"1a>x)\\""',
        'ok #2 nil "pcre2_compile() failed: subpattern name must start '
        'with a non-digit in \\"(?<1a>x)\\" at \\"1a>x)\\""'),
    "e-quant-order": (
        'ok #2 nil "pcre_compile() failed: numbers out of order in {} '
        'quantifier in \\"x{2,1}\\" at \\"}\\""',
        'ok #2 nil "pcre2_compile() failed: numbers out of order in {} '
        'quantifier in \\"x{2,1}\\" at \\"}\\""'),
    "e-backslash": (
        'ok #2 nil "pcre_compile() failed: \\\\ at end of pattern in '
        '\\"\\\\\\""',
        'ok #2 nil "pcre2_compile() failed: \\\\ at end of pattern in '
        '\\"\\\\\\""'),
    "e-repeat": (
        'ok #2 nil "pcre_compile() failed: nothing to repeat in \\"*\\" '
        'at \\"*\\""',
        'ok #2 nil "pcre2_compile() failed: quantifier does not follow a '
        'repeatable item in \\"*\\" at \\"*\\""'),
    "e-dupname": (
        'ok #2 nil "pcre_compile() failed: two named subpatterns have the '
        'same name in \\"(?<n>\\\\w+), (?<n>\\\\w+)\\" at \\">\\\\w+)\\""',
        'ok #2 nil "pcre2_compile() failed: two named subpatterns have the '
        'same name (PCRE2_DUPNAMES not set) in \\"(?<n>\\\\w+), '
        '(?<n>\\\\w+)\\" at \\"\\\\w+)\\""'),
    # both cut at 127 bytes, as upstream's error buffer
    "e-long": (
        'ok #2 nil "pcre_compile() failed: missing ) in \\"' + "x" * 90
        + '"',
        'ok #2 nil "pcre2_compile() failed: missing closing parenthesis '
        'in \\"' + "x" * 71 + '"'),
    "e-bad-utf8-pattern": (
        'ok #2 nil "pcre_compile() failed: invalid UTF-8 string in '
        '\\"\\255\\" at \\"\\255\\""',
        'ok #2 nil "pcre2_compile() failed: UTF-8 error: illegal byte '
        '(0xfe or 0xff) in \\"\\255\\" at \\"\\255\\""'),
    "e-bad-utf8-subject": (
        'ok #2 nil "pcre_exec() failed: -10"',
        'ok #2 nil "pcre_exec() failed: -23"'),
    "e-bad-utf8-gmatch": (
        'ok #1 {[1]="err:pcre_exec() failed: -10"}',
        'ok #1 {[1]="err:pcre_exec() failed: -23"}'),
    "e-bad-utf8-gsub": (
        'ok #3 nil nil "pcre_exec() failed: -10"',
        'ok #3 nil nil "pcre_exec() failed: -23"'),
    "e-bad-utf8-split": (
        'ok #2 nil "pcre_exec() failed: -10"',
        'ok #2 nil "pcre_exec() failed: -23"'),
    "e-gmatch-utf-offset": (
        'ok #5 {[0]=""} nil nil "pcre_exec() failed: -11" nil',
        'ok #5 {[0]=""} nil nil "pcre_exec() failed: -36" nil'),
}


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


def run_cases(files, known=None, golapis_conf="", nginx_http="",
              at_least=20):
    """Each file through golapis and through nginx; the cases must agree,
    those in known must be the (nginx, golapis) lines given there."""
    known = known or {}
    docroot = make_docroot(files, copy_scripts=False)
    g = Golapis(docroot=docroot, conf_extra=golapis_conf, workers=1)
    n = Nginx(g, lua=True, extra_http=nginx_http)
    seen = set()
    for name in files:
        ours, ref = ok_pair(n.port, "/" + name, g)
        ol, oorder = _lines(ours)
        rl, rorder = _lines(ref)
        assert oorder == rorder, "%s: cases differ: %s" % (
            name, sorted(set(oorder) ^ set(rorder)))
        assert len(rorder) >= at_least, (name, ref[:500])
        diffs = []
        for case in rorder:
            want = known.get(case)
            if want is not None:
                seen.add(case)
                if rl[case] != want[0] or ol[case] != want[1]:
                    diffs.append("  %s (known difference)\n    nginx:   %s"
                                 "\n    golapis: %s\n    want:    %s\n"
                                 "             %s"
                                 % (case, rl[case], ol[case], want[0],
                                    want[1]))
            elif ol[case] != rl[case]:
                diffs.append("  %s\n    nginx:   %s\n    golapis: %s"
                             % (case, rl[case][:400], ol[case][:400]))
        assert not diffs, "%s: %d of %d cases differ:\n%s" % (
            name, len(diffs), len(rorder), "\n".join(diffs[:30]))
    return g, n, seen


def test_re_match_find():
    _, _, seen = run_cases({"match.lua": MATCH}, KNOWN, at_least=100)
    assert {"m-ctx-far", "f-ctx-past", "m-d-ws"} <= seen


def test_re_gmatch_sub_gsub():
    g, n, seen = run_cases({"gsub.lua": GMATCH_SUB}, KNOWN, at_least=80)
    assert {"g-bad", "s-bad-re", "g-str-utf-empty"} <= seen
    # upstream logs why a template did not compile; so do we
    for line in (
            'attempt to use named capturing variable "x" (named captures '
            'not supported yet)',
            'attempt to use named capturing variable "name" (named '
            'captures not supported yet)',
            'the closing bracket in "x" variable is missing',
            'the closing bracket in "1" variable is missing',
            'lua script: invalid capturing variable name found in "$"',
            'lua script: invalid capturing variable name found in "${}"',
            'lua script: invalid capturing variable name found in "${"'):
        assert "[error]" in _log_line(n.log(), line), (line, n.tail())
        assert "[error]" in _log_line(g.log(), line), (line, g.tail())


def _log_line(log, text):
    for line in log.splitlines():
        if line.endswith(text):
            return line
    return ""


def test_re_split_opt():
    run_cases({"split.lua": SPLIT}, KNOWN, at_least=35)


def test_re_errors():
    _, _, seen = run_cases({"errors.lua": ERRORS}, ERRORS_WANT,
                           at_least=15)
    assert seen == set(ERRORS_WANT), set(ERRORS_WANT) - seen


# the cache: with room for 2 regexes, more "o" regexes than that still give
# the same results; golapis logs once that the cache is full, as the C API
# of lua-nginx-module did (resty.core's LRU logs nothing) and keeps the
# most recently used
CACHE = PRELUDE + r"""
local pats = { "a(\\d)", "b(\\d)", "c(\\d)", "d(\\d)", "e(\\d)" }
local out = {}
for round = 1, 3 do
    for i, p in ipairs(pats) do
        local s = "a1b2c3d4e5"
        local r = ngx.re.match(s, p, "jo")
        local a, b = ngx.re.find(s, p, "o", nil, 1)
        local n = 0
        for x in ngx.re.gmatch(s, p, "o") do n = n + 1 end
        local g = ngx.re.gsub(s, p, "<$1>", "o")
        local g2 = ngx.re.gsub(s, p, function(m) return m[1] end, "jo")
        local sp = require("ngx.re").split(s, p, "jo")
        out[#out + 1] = table.concat({ r[1], a, b, n, g, g2,
                                       table.concat(sp, "|") }, " ")
    end
end
-- an iterator keeps its regex after the cache dropped it
local it = ngx.re.gmatch("x1x2", "x(\\d)", "o")
local first = it()[1]
for i = 1, 10 do ngx.re.find("y", "z" .. i, "o") end
collectgarbage()
local second = it()[1]
case("cache", function() return table.concat(out, " / "), first, second,
                              it() end)
-- allowed only while nothing went into the cache ("o" with a size of 0)
case("cache-opt", require("ngx.re").opt, "jit_stack_size", 65536)
"""

CACHE_WARN = "lua exceeding regex cache max entries (2)"


def test_re_cache_limit():
    g, n, _ = run_cases({"cache.lua": CACHE},
                        golapis_conf="lua_regex_cache_max_entries 2;",
                        nginx_http="lua_regex_cache_max_entries 2;",
                        at_least=1)
    for _ in range(2):
        st, _, body = http_get(n.port, "/cache.lua")
        assert st == 200 and b"cache ok" in body, (st, body, g.tail())
    log = g.log()
    assert log.count(CACHE_WARN) == 1, (log.count(CACHE_WARN), g.tail())
    assert "[warn]" in _log_line(log, CACHE_WARN), g.tail()


def test_re_cache_off():
    # 0: nothing is cached, nothing is logged, "o" still works
    g, n, _ = run_cases({"cache.lua": CACHE},
                        golapis_conf="lua_regex_cache_max_entries 0;",
                        nginx_http="lua_regex_cache_max_entries 0;",
                        at_least=1)
    assert "regex cache" not in g.log(), g.tail()


# lua_regex_match_limit: the error codes are the libraries' (PCRE1's
# PCRE_ERROR_MATCHLIMIT is -8, PCRE2's -47)
LIMIT = PRELUDE + r"""
local s = string.rep("a", 24) .. "!"
local p = "^(\\w+\\s?)*$"
case("limit-match", ngx.re.match, s, p)
case("limit-match-j", ngx.re.match, s, p, "jo")
case("limit-find", ngx.re.find, s, p, "o")
case("limit-gmatch", function() return collect(ngx.re.gmatch(s, p)) end)
case("limit-gsub", ngx.re.gsub, s, p, "x")
case("limit-gsub-f", ngx.re.gsub, s, p, function() return "x" end)
case("limit-split", require("ngx.re").split, s, p)
case("limit-ok", ngx.re.match, "aaa", "a+")
"""

LIMIT_WANT = {}
for _name, _head in (("limit-match", "ok #2 nil"),
                     ("limit-match-j", "ok #2 nil"),
                     ("limit-find", "ok #3 nil nil"),
                     ("limit-gsub", "ok #3 nil nil"),
                     ("limit-gsub-f", "ok #3 nil nil"),
                     ("limit-split", "ok #2 nil")):
    LIMIT_WANT[_name] = ('%s "pcre_exec() failed: -8"' % _head,
                         '%s "pcre_exec() failed: -47"' % _head)
LIMIT_WANT["limit-gmatch"] = ('ok #1 {[1]="err:pcre_exec() failed: -8"}',
                              'ok #1 {[1]="err:pcre_exec() failed: -47"}')


def test_re_match_limit():
    _, _, seen = run_cases({"limit.lua": LIMIT}, LIMIT_WANT,
                           golapis_conf="lua_regex_match_limit 1000;",
                           nginx_http="lua_regex_match_limit 1000;",
                           at_least=8)
    assert seen == set(LIMIT_WANT)


# opt("jit_stack_size"): allowed until a regex went into the cache
JIT = PRELUDE + r"""
local ngx_re = require "ngx.re"
local s = string.rep("ab", 20000)
local p = "^(a|b)*$"
-- the default JIT stack (32k) is too small for this one
case("jit-default", ngx.re.find, s, p, "j")
case("jit-first", ngx_re.opt, "jit_stack_size", 1024 * 1024)
case("jit-small-ok", ngx_re.opt, "jit_stack_size", 100)
case("jit-big", function()
    ngx_re.opt("jit_stack_size", 4 * 1024 * 1024)
    local from, to = ngx.re.find(s, p, "j")
    return from, to
end)
case("jit-bad-value", ngx_re.opt, "jit_stack_size", "x")
case("jit-cache", function()
    ngx.re.find("a", "a", "jo")
    return ngx_re.opt("jit_stack_size", 1024 * 1024)
end)
case("jit-cache-sub-only-irrelevant", ngx.re.gsub, "a", "a", "b", "o")
"""

JIT_WANT = {
    "jit-default": ('ok #3 nil nil "pcre_exec() failed: -27"',
                    'ok #3 nil nil "pcre_exec() failed: -46"'),
    # the FFI's conversion error names resty.core's C function
    "jit-bad-value": (
        "err #1 bad argument #1 to 'ngx_lua_ffi_set_jit_stack_size' "
        "(cannot convert 'string' to 'int')",
        "err #1 bad argument #1 to 'ngx_lua_ffi_set_jit_stack_size' "
        "(cannot convert 'string' to 'int')"),
}


def test_re_jit_stack_size():
    # a fresh worker each way (the cache must be empty), hence one worker
    # and the script's first request
    _, _, seen = run_cases({"jit.lua": JIT}, JIT_WANT, at_least=7)
    assert seen == set(JIT_WANT)


# many requests at once, each interleaving gmatch iterators and gsub
# callbacks with ngx.sleep over the same cached regexes (and the one
# buffer of offsets the worker's matches share): every one must get the
# result a single request gets
YIELD = r"""
local subj = "k1=v1;k22=v22;k333=v333;k4444=v4444"
local out = {}
local a = ngx.re.gmatch(subj, "(?<k>\\w+)=(?<v>\\w+)", "jo")
local b = ngx.re.gmatch(subj, "(\\d+);", "o")
while true do
    local m = a()
    if not m then break end
    ngx.sleep(0.001)
    local n = b()
    out[#out + 1] = m.k .. ":" .. m.v .. ":" .. (n and n[1] or "-")
end
local g, cnt = ngx.re.gsub(subj, "(\\w+)=", function(m)
    ngx.sleep(0)
    local x = ngx.re.match(m[1], "\\d+", "jo")
    return x[0] .. "="
end, "jo")
ngx.say(table.concat(out, ","), " ", g, " ", cnt)
"""

YIELD_WANT = (b"k1:v1:1,k22:v22:22,k333:v333:333,k4444:v4444:- "
              b"1=v1;22=v22;333=v333;4444=v4444 4\n")


def test_re_yields_concurrent():
    from harness import parallel_http
    g = Golapis(docroot=make_docroot({"y.lua": YIELD}, copy_scripts=False),
                workers=2)
    n = Nginx(g, lua=True)
    st, _, ref = http_get(n.port, "/ref/y.lua")
    assert (st, ref) == (200, YIELD_WANT), (st, ref)
    results, _ = parallel_http(n.port, ["/y.lua"] * 100)
    bad = [r for r in results if r != (200, YIELD_WANT)]
    assert not bad, (len(bad), bad[:3], g.tail())
