"""golapis's Lua library carried by the binary (src/lua/gl_lua_lib.h):
our resty.core, ngx.* and golapis.* win over Debian's lua-resty-core in
/usr/share/lua/5.1 whatever lua_package_path says, with no copy of lua/
on disk; GOLAPIS_LUA_LIB=dir loads the library from dir instead.

The harness sets GOLAPIS_LUA_LIB for every other test; these start golapis
without it, or with a copy of lua/ of their own."""

import contextlib
import os
import shutil

from harness import REPO, Golapis, fcgi_get, make_docroot, mktemp

# Debian's lua-resty-core first: without our searcher, require "ngx.base64"
# fails with "undefined symbol: ngx_encode_base64url"
HOSTILE = 'lua_package_path "/usr/share/lua/5.1/?.lua;%s/?.lua;;";\n'

SCRIPT = r"""
ngx.header["Content-Type"] = "text/plain"

-- the file a module's Lua functions come from
local function src(m)
    for _, v in pairs(m) do
        if type(v) == "function" then
            local i = debug.getinfo(v, "S")
            if i.what == "Lua" then return i.source end
        end
    end
    return "no Lua function"
end

local function case(name, f, ...)
    local ok, a, b = pcall(f, ...)
    ngx.say(name, " ", tostring(ok), " ", tostring(a), " ", tostring(b))
end

case("base64", function()
    local b64 = require "ngx.base64"
    return b64.encode_base64url("\255\254hi?"), src(b64)
end)
case("core", function() return require("resty.core").version end)
case("core-base", function() return src(require "resty.core.base") end)
case("core-regex", function() return src(require "resty.core.regex") end)
case("ngx-re", function()
    local re = require "ngx.re"
    local t = re.split("a,b,,c", ",")
    return table.concat(t, "|"), src(re)
end)
case("ngx-process", function()
    return require("ngx.process").type(), src(require "ngx.process")
end)
case("luafcgid", function() return src(require "luafcgid") end)
-- ngx.re and ngx.shared run golapis.regex and golapis.shdict
case("re-match", function()
    local m = ngx.re.match("hello 42", [[(\d+)]], "jo")
    return m[1], (ngx.re.gsub("a-b-c", "-", "+"))
end)
case("shdict", function()
    local d = ngx.shared.dogs
    assert(d:set("k", 41))
    return d:incr("k", 1), d:get("nope")
end)
-- everything else still comes from package.path
case("path", function()
    local m = require "glmod"
    return m.hi(), src(m):match("[^/]*$")
end)
-- our searcher adds no line to require's message
case("not-found", function()
    local ok, err = pcall(require, "no.such.mod")
    local lines = {}
    for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
    return lines[2], lines[3]:match("^\tno file '") ~= nil
end)
case("dev", function() return GL_LUALIB_DEV end)
"""

GLMOD = 'return { hi = function() return "hi" end }\n'

EMBEDDED = [
    "base64 true __5oaT8 @lua/ngx/base64.lua",
    "core true 0.1.25 nil",
    "core-base true @lua/resty/core/base.lua nil",
    "core-regex true @lua/resty/core/regex.lua nil",
    "ngx-re true a|b||c @lua/ngx/re.lua",
    "ngx-process true worker @lua/ngx/process.lua",
    "luafcgid true @lua/luafcgid.lua nil",
    "re-match true 42 a+b+c",
    "shdict true 42 nil",
    "path true hi glmod.lua",
    "not-found true \tno field package.preload['no.such.mod'] true",
    "dev true nil nil",
]


@contextlib.contextmanager
def _lua_lib(value):
    """GOLAPIS_LUA_LIB as value (None: unset) for the golapis started
    inside; the harness's value afterwards."""
    old = os.environ.get("GOLAPIS_LUA_LIB")
    if value is None:
        os.environ.pop("GOLAPIS_LUA_LIB", None)
    else:
        os.environ["GOLAPIS_LUA_LIB"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GOLAPIS_LUA_LIB", None)
        else:
            os.environ["GOLAPIS_LUA_LIB"] = old


def _run(conf_extra, lib):
    """lib.lua twice (the same answer) with a hostile lua_package_path
    (the docroot after Debian's copy) and GOLAPIS_LUA_LIB as lib"""
    www = make_docroot({"lib.lua": SCRIPT, "glmod.lua": GLMOD},
                       copy_scripts=False)
    with _lua_lib(lib):
        g = Golapis(conf_extra=(HOSTILE % www + conf_extra
                                + "lua_shared_dict dogs 1m;\n"),
                    docroot=www, workers=1)
    out = []
    for _ in range(2):
        status, headers, body = fcgi_get(g.sock, os.path.join(www, "lib.lua"))
        assert status == 200, (status, body, g.tail())
        out.append(body.decode().splitlines())
    assert out[0] == out[1], out
    return out[0], g


def _diff(got, want):
    return "\n".join("  got  %r\n  want %r" % (a, b)
                     for a, b in zip(got, want) if a != b) or (got, want)


def test_embedded_hostile_path():
    # no lua/ anywhere golapis looks: the binary's copy, ahead of Debian's
    got, g = _run("", None)
    assert got == EMBEDDED, _diff(got, EMBEDDED)
    assert "undefined symbol" not in g.log(), g.tail()


def test_embedded_code_cache_off():
    # lua_code_cache off forgets the modules from files, not ours
    got, g = _run("lua_code_cache off;\n", None)
    assert got == EMBEDDED, _diff(got, EMBEDDED)


def test_lua_lib_override():
    # GOLAPIS_LUA_LIB: the library from that folder, edits without a
    # rebuild; still ahead of a hostile lua_package_path
    lib = os.path.join(mktemp("lualib-"), "lua")
    shutil.copytree(os.path.join(REPO, "lua"), lib)
    path = os.path.join(lib, "golapis", "regex.lua")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write("GL_LUALIB_DEV = 'from the folder'\n" + text)
    got, g = _run("", lib)
    want = [line.replace("@lua/", "@" + lib + "/") for line in EMBEDDED]
    want[-1] = "dev true from the folder nil"
    assert got == want, _diff(got, want)
