"""coroutine.* in requests (src/gl_lua_coroutine.c), differential against
the real lua-nginx-module: resume/yield/wrap/status between coroutines of a
request, and waits (ngx.sleep, ngx.print, ngx.flush(true),
ngx.req.read_body) and ngx.exit inside them, which suspend or end the whole
request as in OpenResty.  Each script prints a line per case; golapis and
nginx must print the same lines.
"""

import re

from harness import diff_lines, diff_setup, http_get

BASIC = r'''
local cc, cr, cy = coroutine.create, coroutine.resume, coroutine.yield

-- yield and resume, values both ways
local c = cc(function(a, b)
    p("in", a, b)
    local x, y = cy(a + b, "y1")
    p("got", x, y)
    local z = cy()
    p("got2", z)
    return "ret", 1, nil, 3
end)
p("r1", cr(c, 1, 2))
p("st", coroutine.status(c))
p("r2", cr(c, "x", "y"))
p("r3", cr(c, 7))
p("st", coroutine.status(c))
p("dead", cr(c))
p("dead args", cr(c, 1, 2, 3))

-- three coroutines taking turns
local ccs = {}
for i = 1, 3 do
    ccs[#ccs + 1] = cc(function()
        local n = 0
        while true do p("cc", i, n); cy(); n = n + 1 end
    end)
end
for _ = 1, 7 do
    local co = table.remove(ccs, 1)
    cr(co)
    ccs[#ccs + 1] = co
end

-- status: running, normal, suspended, dead; running()
local outer
local inner = cc(function()
    p("inner sees outer", coroutine.status(outer))
    p("inner sees itself", coroutine.status(coroutine.running()))
    cy()
end)
outer = cc(function()
    p("outer sees inner", coroutine.status(inner))
    cr(inner)
    p("outer sees inner after", coroutine.status(inner))
end)
p("entry", coroutine.status(coroutine.running()), type(coroutine.running()))
cr(outer)
p("outer", coroutine.status(outer), "inner", coroutine.status(inner))

-- resuming what runs
p("resume entry", cr(coroutine.running()))
local self_co
self_co = cc(function() p("resume self", cr(self_co)) end)
cr(self_co)
local parent
parent = cc(function()
    local child = cc(function() p("resume parent", cr(parent)) end)
    cr(child)
end)
cr(parent)

-- errors inside: false and the message, the coroutine dead
local e = cc(function() error("boom") end)
p("error", cr(e))
p("error status", coroutine.status(e))
local e2 = cc(function() error({ code = 7 }) end)
local ok, err = cr(e2)
p("error table", ok, type(err), err.code)
local e3 = cc(function() local x = nil; return x.y end)
p("runtime error", cr(e3))
p("entry still", coroutine.status(coroutine.running()))

-- arguments checked
p("create C", pcall(cc, print))
p("create number", pcall(cc, 1))
p("resume number", pcall(cr, 1))
p("status number", pcall(coroutine.status, "x"))

-- nested five deep, each yielding to its parent
local function nest(depth)
    return cc(function(v)
        if depth == 0 then
            local w = cy(v .. "!")
            return w .. "?"
        end
        local child = nest(depth - 1)
        local ok1, r1 = cr(child, v .. depth)
        local w = cy(r1)
        local ok2, r2 = cr(child, w .. depth)
        return r2
    end)
end
local top = nest(4)
p("nest", cr(top, "v"))
p("nest", cr(top, "w"))

-- the table
local keys = {}
for k in pairs(coroutine) do keys[#keys + 1] = k end
table.sort(keys)
p("keys", table.concat(keys, " "))
p("require", require("coroutine") == coroutine)
p("isyieldable", type(coroutine.isyieldable))
done()
'''

WRAP = r'''
-- generators
local function gen_primes(n)
    return coroutine.wrap(function()
        local found = {}
        local i = 2
        while #found < n do
            local prime = true
            for _, q in ipairs(found) do
                if i % q == 0 then prime = false break end
            end
            if prime then found[#found + 1] = i; coroutine.yield(i) end
            i = i + 1
        end
    end)
end
local out = {}
for v in gen_primes(10) do out[#out + 1] = v end
p("primes", table.concat(out, " "))

local fib = coroutine.wrap(function()
    local a, b = 0, 1
    while true do coroutine.yield(a); a, b = b, a + b end
end)
local f = {}
for _ = 1, 15 do f[#f + 1] = fib() end
p("fib", table.concat(f, " "))

-- values and arguments, no status boolean
local w = coroutine.wrap(function(a, b)
    p("w in", a, b)
    local c, d = coroutine.yield(a * 2, b * 2)
    p("w got", c, d)
    return "end", c + d
end)
p("w1", w(3, 4))
p("w2", w(5, 6))
p("w3", pcall(w))
p("wrap C", pcall(coroutine.wrap, print))
p("wrap number", pcall(coroutine.wrap, 1))
local w1 = coroutine.wrap(function() end)
local w2 = coroutine.wrap(function() end)
p("refs", w1 ~= w2, type(w1))

-- iterators from a coroutine (github issue 208)
local function iter(t)
    return coroutine.wrap(function()
        for k, v in ipairs(t) do coroutine.yield(k, v) end
    end)
end
for k, v in iter({ "a", "b", "c" }) do p("iter", k, v) end
done()
'''

WAITS = r'''
-- ngx.sleep inside coroutines: the request waits, the coroutine goes on
local t0 = ngx.now()
local c = coroutine.create(function(a)
    ngx.sleep(0.05)
    local b = coroutine.yield(a + 1)
    ngx.sleep(0.01)
    return b * 2
end)
p("sleep1", coroutine.resume(c, 1))
p("sleep2", coroutine.resume(c, 5))
ngx.update_time()
p("slept", ngx.now() - t0 >= 0.059)

-- a wrap generator that sleeps between values
local g = coroutine.wrap(function()
    for i = 1, 3 do ngx.sleep(0.001); coroutine.yield(i) end
end)
p("gen", g(), g(), g())

-- sleeping three levels deep
local deep = coroutine.create(function()
    local mid = coroutine.create(function()
        local low = coroutine.create(function()
            ngx.sleep(0.01)
            coroutine.yield("low")
            ngx.sleep(0.01)
            return "low done"
        end)
        p("mid", coroutine.resume(low))
        ngx.sleep(0.001)
        p("mid", coroutine.resume(low))
        return "mid done"
    end)
    p("deep", coroutine.resume(mid))
    return "deep done"
end)
p("top", coroutine.resume(deep))

-- output from a coroutine, and flush(true)
local o = coroutine.wrap(function()
    ngx.print("printed in a coroutine\n")
    p("flush", ngx.flush(true))
end)
o()

-- a big print from a coroutine (longer than the queue's high mark)
local big = coroutine.wrap(function()
    return ngx.print(string.rep("x", 400000) .. "\n")
end)
p("big", big())

-- an error after a sleep
local e = coroutine.create(function() ngx.sleep(0.001); error("late") end)
p("late error", coroutine.resume(e))
done()
'''

BODY = r'''
local c = coroutine.create(function()
    ngx.req.read_body()
    return ngx.req.get_body_data()
end)
local ok, data = coroutine.resume(c)
ngx.say("read in a coroutine: ", ok, " ", data and #data)
'''

EXIT = r'''
ngx.say("before")
local c = coroutine.create(function()
    ngx.sleep(0.001)
    ngx.say("in coroutine")
    ngx.exit(200)
end)
coroutine.resume(c)
ngx.say("not reached")
'''

EXIT_CODE = r'''
local c = coroutine.wrap(function()
    ngx.exit(ngx.HTTP_FORBIDDEN)
end)
c()
ngx.say("not reached")
'''

REDIRECT = r'''
coroutine.wrap(function()
    ngx.sleep(0.001)
    ngx.redirect("/elsewhere")
end)()
ngx.say("not reached")
'''

STASH = r'''
-- a coroutine kept from the request before: not this request's
local keep = package.loaded.co_stash or {}
package.loaded.co_stash = keep
local r = { pcall(coroutine.resume, keep.co) }
ngx.say(keep.co and "second" or "first", " ", tostring(r[1]), " ",
        tostring(r[2]), " ", tostring(r[3]))
keep.co = coroutine.create(function() coroutine.yield() end)
coroutine.resume(keep.co)
'''

WRAP_ERROR = r'''
local c = coroutine.wrap(function()
    error("wrapped went wrong")
end)
local ok, err = pcall(c)
ngx.say("caught: ", ok, " ", err)
'''

RESUME_ERROR_NO_LOG = r'''
local c = coroutine.create(function() error("quiet error") end)
local ok, err = coroutine.resume(c)
ngx.say(ok, " ", err)
'''


def _files():
    return {
        "basic.lua": BASIC + "",
        "wrap.lua": WRAP,
        "waits.lua": WAITS,
    }


def test_coroutine_basic_and_wrap():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/basic.lua", g)
    assert "r1 true 3 y1" in lines, lines
    assert 'dead false cannot resume dead coroutine' in lines, lines
    assert "inner sees outer normal" in lines, lines
    lines = diff_lines(n.port, "/wrap.lua", g, min_lines=5)
    assert "primes 2 3 5 7 11 13 17 19 23 29" in lines, lines


def test_coroutine_waits():
    g, n, _ = diff_setup(_files(), workers=1)
    lines = diff_lines(n.port, "/waits.lua", g, min_lines=8)
    assert "sleep1 true 2" in lines, lines
    assert "top true deep done" in lines, lines
    assert "slept true" in lines, lines


def _raw(name, text, **kw):
    g, n, _ = diff_setup({name: text}, workers=1)
    ours = http_get(n.port, "/" + name, **kw)
    ref = http_get(n.port, "/ref/" + name, **kw)
    return g, n, ours, ref


def test_coroutine_read_body():
    g, n, ours, ref = _raw("body.lua", BODY, method="POST",
                           body=b"b" * 10000)
    assert ours[0] == ref[0] == 200, (ours, ref)
    assert ours[2] == ref[2] == b"read in a coroutine: true 10000\n", \
        (ours[2], ref[2])


def test_coroutine_exit():
    g, n, ours, ref = _raw("exit.lua", EXIT)
    assert ours[0] == ref[0] == 200, (ours, ref)
    assert ours[2] == ref[2] == b"before\nin coroutine\n", (ours[2], ref[2])
    g, n, ours, ref = _raw("exit403.lua", EXIT_CODE)
    assert ours[0] == ref[0] == 403, (ours[0], ref[0])
    g, n, ours, ref = _raw("redirect.lua", REDIRECT)
    assert ours[0] == ref[0] == 302, (ours[0], ref[0])
    assert ours[1]["Location"] == ref[1]["Location"], (ours[1], ref[1])


def test_coroutine_of_another_request():
    g, n, _ = diff_setup({"stash.lua": STASH}, workers=1)
    for want in (b"first", b"second"):
        ours = http_get(n.port, "/stash.lua")
        ref = http_get(n.port, "/ref/stash.lua")
        assert ours[0] == ref[0] == 200, (ours, ref)
        assert ours[2].startswith(want), ours[2]
        if want == b"first":
            assert ours[2] == ref[2], (ours[2], ref[2])
        else:
            # nginx reads the status from the ended request's memory
            # ("running" here); for golapis that coroutine is dead
            assert ref[2].startswith(b"second true false cannot resume "), \
                ref[2]
            assert ours[2] == (b"second true false cannot resume dead "
                               b"coroutine\n"), ours[2]


def test_coroutine_wrap_error_propagates():
    # as lua-nginx-module: an error in a coroutine.wrap function kills its
    # caller too (pcall around the call does not see it): a 500 and the
    # error in the log
    g, n, ours, ref = _raw("wraperr.lua", WRAP_ERROR)
    assert ours[0] == ref[0], (ours[0], ref[0], ours[2], ref[2])
    if ref[0] == 500:
        assert re.search(r"lua entry thread aborted: runtime error: .*"
                         r"wrapped went wrong", g.log()), g.tail()


def test_coroutine_resume_error_not_logged():
    g, n, ours, ref = _raw("reserr.lua", RESUME_ERROR_NO_LOG)
    assert ours[0] == ref[0] == 200
    assert ours[2] == ref[2], (ours[2], ref[2])
    assert "quiet error" not in g.log(), g.tail()
