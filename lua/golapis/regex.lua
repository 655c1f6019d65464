-- golapis.regex: the Lua side of ngx.re (match, find, gmatch, sub, gsub)
-- and of package.loaded["golapis.re"], around the C matcher of
-- src/api/gl_lua_re.c, which it calls through LuaJIT's FFI.
--
-- Not a module to require: gl_lua_re_inject() runs this chunk once per
-- Lua state with its C functions and its regex cache (below) and builds
-- ngx.re from what it returns.  Its chunk name is "=ngx.re": an
-- error raised here says "ngx.re:LINE:", LINE in this file.

local compile, release, sub_str, cache = ...

local ffi = require "ffi"
local new_tab = require "table.new"

local type = type
local tostring = tostring
local setmetatable = setmetatable
local sub = string.sub
local concat = table.concat

ffi.cdef [[
int gl_re_ffi_exec(void *re, const char *s, size_t len, int pos,
    int *caps, int size);
]]

local exec_c = ffi.C.gl_re_ffi_exec
local caps_t = ffi.typeof("int[?]")

-- the offsets of the last match, in pairs; unset groups are -1
local caps_size = 16
local caps = caps_t(2 * caps_size)

-- a compiled regex is a record: [1] the C object, [2] its number of
-- groups, [3] true with "D", [4] false or { group, name, ... },
-- [5] true if compiled without "o" (to be released when done)

local function get(regex, opts, match_family)
    local t = cache[opts]
    local rec = t and t[regex]
    if rec then
        return rec
    end
    return compile(regex, opts, match_family)
end

local function exec(rec, subj, pos)
    local n = rec[2] + 1
    if n > caps_size then
        caps_size = n
        caps = caps_t(2 * n)
    end
    return exec_c(rec[1], subj, #subj, pos, caps, caps_size)
end

local function collect(rec, subj, rc, res)
    local ncap = rec[2]
    local names = rec[4]

    if not res then
        res = new_tab(ncap, names and #names / 2 or 0)
    end

    for i = 0, ncap do
        local from = i < rc and caps[2 * i] or -1
        if from >= 0 then
            res[i] = sub(subj, from + 1, caps[2 * i + 1])
        else
            res[i] = false
        end
    end

    if names then
        if rec[3] then
            -- "D": the groups of a name that matched, in an array
            for j = 1, #names, 2 do
                local cap = res[names[j]]
                if cap then
                    local name = names[j + 1]
                    local old = res[name]
                    if old then
                        old[#old + 1] = cap
                    else
                        res[name] = { cap }
                    end
                end
            end

        else
            for j = 1, #names, 2 do
                res[names[j + 1]] = res[names[j]]
            end
        end
    end

    return res
end

local function start(ctx)
    if not ctx then
        return 0
    end
    local pos = ctx.pos
    if not pos or pos <= 0 then
        return 0
    end
    return pos - 1
end

local function re_match(subj, regex, opts, ctx, res)
    subj = tostring(subj)

    local rec, err = get(regex, opts, true)
    if not rec then
        return nil, err
    end

    local rc = exec(rec, subj, start(ctx))

    if rc < 0 then
        if rec[5] then
            release(rec)
        end
        if rc == -1 then
            return nil
        end
        return nil, "pcre_exec() failed: " .. rc
    end

    -- the captures first: ctx may run Lua code that matches again
    local to = caps[1]
    res = collect(rec, subj, rc, res)

    if rec[5] then
        release(rec)
    end

    if ctx then
        ctx.pos = to + 1
    end

    return res
end

local function re_find(subj, regex, opts, ctx, nth)
    subj = tostring(subj)

    local rec, err = get(regex, opts, true)
    if not rec then
        return nil, nil, err
    end

    local rc = exec(rec, subj, start(ctx))

    if rec[5] then
        release(rec)
    end

    if rc < 0 then
        if rc == -1 then
            return nil
        end
        return nil, nil, "pcre_exec() failed: " .. rc
    end

    if ctx then
        ctx.pos = caps[1] + 1
    end

    if not nth or nth < 0 then
        nth = 0
    end

    if nth > rec[2] then
        return nil, nil, "nth out of bound"
    end

    if nth >= rc then
        return nil, nil
    end

    local from = caps[nth * 2]
    if from < 0 then
        return nil, nil
    end

    return from + 1, caps[nth * 2 + 1]
end

-- gmatch: the iterator keeps all its state in its table, so it may be
-- called across yields of the request

local function gmatch_done(it)
    local rec = it._rec
    it._rec = nil
    it._subj = nil
    it._pos = nil
    if rec[5] then
        release(rec)
    end
end

local function gmatch_next(it)
    local pos = it._pos
    if not pos then
        return nil
    end

    local rec = it._rec
    local subj = it._subj
    local rc = exec(rec, subj, pos)

    if rc < 0 then
        gmatch_done(it)
        if rc == -1 then
            return nil
        end
        return nil, "pcre_exec() failed: " .. rc
    end

    local to = caps[1]

    if to == caps[0] then
        -- an empty match: go on from the next byte
        to = to + 1
        if to > #subj then
            local res = collect(rec, subj, rc)
            gmatch_done(it)
            return res
        end
    end

    it._pos = to

    return collect(rec, subj, rc)
end

local gmatch_mt = { __call = gmatch_next }

local function re_gmatch(subj, regex, opts)
    subj = tostring(subj)

    local rec, err = get(regex, opts, true)
    if not rec then
        return nil, err
    end

    local it = { _rec = rec, _subj = subj, _pos = 0 }
    return setmetatable(it, gmatch_mt)
end

-- sub and gsub: a replacement function is called from here, so it
-- may yield; a template is expanded by C in one call

local function sub_func(subj, regex, replace, opts, global)
    local rec, err = get(regex, opts, false)
    if not rec then
        return nil, nil, err
    end

    subj = tostring(subj)

    local len = #subj
    local out, n = {}, 0
    local count, pos, last = 0, 0, 0

    while true do
        local rc = exec(rec, subj, pos)

        if rc < 0 then
            if rc == -1 then
                break
            end
            if rec[5] then
                release(rec)
            end
            return nil, nil, "pcre_exec() failed: " .. rc
        end

        count = count + 1

        local from, to = caps[0], caps[1]
        local m = collect(rec, subj, rc)

        if from > last then
            n = n + 1
            out[n] = sub(subj, last + 1, from)
        end

        n = n + 1
        out[n] = tostring(replace(m))

        last = to
        pos = to

        if to == from then
            pos = pos + 1
            if pos > len then
                break
            end
        end

        if not global then
            break
        end
    end

    if rec[5] then
        release(rec)
    end

    if count == 0 then
        return subj, 0
    end

    if last < len then
        n = n + 1
        out[n] = sub(subj, last + 1)
    end

    return concat(out, "", 1, n), count
end

local function re_sub(subj, regex, replace, opts)
    if type(replace) == "function" then
        return sub_func(subj, regex, replace, opts, false)
    end
    return sub_str(subj, regex, replace, opts, false)
end

local function re_gsub(subj, regex, replace, opts)
    if type(replace) == "function" then
        return sub_func(subj, regex, replace, opts, true)
    end
    return sub_str(subj, regex, replace, opts, true)
end

-- for lua/ngx/re.lua's split: from and to (0-based, to exclusive) of
-- the next match and its group 1 as resty.core takes it (string.sub
-- with the offsets: an unset group gives the whole subject); nil if
-- none; false and the message on an error
local function split_next(rec, subj, pos)
    local rc = exec(rec, subj, pos)

    if rc < 0 then
        if rc == -1 then
            return nil
        end
        return false, "pcre_exec() failed: " .. rc
    end

    if rec[2] > 0 and rc > 1 then
        return caps[0], caps[1], sub(subj, caps[2] + 1, caps[3])
    end

    return caps[0], caps[1]
end

return {
    match = re_match,
    find = re_find,
    gmatch = re_gmatch,
    sub = re_sub,
    gsub = re_gsub,
    get = get,
    split_next = split_next,
}
