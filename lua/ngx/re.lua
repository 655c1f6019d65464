-- ngx.re for golapis: split() and opt() with the API, results and errors
-- of lua-resty-core's module of that name, on the regex primitives of
-- src/gl_lua_re.c (no FFI of our own here).

local C = package.loaded["golapis.re"]

local get = C.get
local split_next = C.split_next
local release = C.release
local cache_empty = C.cache_empty
local jit_stack_size = C.jit_stack_size

local error = error
local type = type
local tostring = tostring
local sub = string.sub
local max = math.max

local _M = { version = "0.1.25" }

-- the ctx of the calls that pass none
local own_ctx = {}


-- the next separator from ctx.pos (0-based here): its 1-based from and
-- to (one past its end: where the next piece starts), and group 1 if
-- any; nil when there is none; nil, nil, nil, err on an error
local function next_sep(rec, subj, ctx)
    local from, to, first = split_next(rec, subj, max(ctx.pos, 0))

    if from == nil then
        return nil
    end

    if from == false then
        if rec[5] then
            release(rec)
        end
        return nil, nil, nil, to
    end

    -- an empty separator moves on by one byte
    ctx.pos = from == to and to + 1 or to

    return from + 1, to + 1, first
end


function _M.split(subj, regex, opts, ctx, limit, res)
    subj = tostring(subj)

    if not ctx then
        ctx = own_ctx
        ctx.pos = 1

    elseif not ctx.pos then
        ctx.pos = 1
    end

    limit = limit or 0

    if not res then
        res = {}

    elseif type(res) ~= "table" then
        error("res is not a table", 2)
    end

    local len = #subj

    if ctx.pos > len then
        res[1] = nil
        return res
    end

    local rec, err = get(regex, opts, true)
    if not rec then
        return nil, err
    end

    local start = ctx.pos      -- where the current piece starts (1-based)
    local n = 0                -- the pieces in res
    local pieces = 1
    local empty_at             -- where the last empty separator was

    ctx.pos = start - 1

    while not (limit > 0) or pieces < limit do
        local from, to, first, e = next_sep(rec, subj, ctx)

        if e then
            return nil, e
        end

        if not from then
            break
        end

        if empty_at then
            start = empty_at
        end

        if from == to then
            empty_at = from
        end

        -- an empty separator right where a piece starts splits nothing
        if from > start or not empty_at then
            pieces = pieces + 1

            n = n + 1
            res[n] = sub(subj, start, from - 1)

            if first then
                n = n + 1
                res[n] = first
            end

            start = to

            if start > len then
                break
            end
        end
    end

    if rec[5] then
        release(rec)
    end

    if limit <= 0 and start > len then
        -- without a limit, empty pieces at the end are dropped
        for i = n, 1, -1 do
            if res[i] ~= "" then
                n = i
                break
            end

            res[i] = nil
        end

    else
        n = n + 1
        res[n] = sub(subj, start)
    end

    res[n + 1] = nil

    return res
end


function _M.opt(option, value)
    if option == "jit_stack_size" then
        if not cache_empty() then
            error("changing jit stack size is not allowed when some " ..
                  "regexs have already been compiled and cached", 2)
        end

        local ok, err = jit_stack_size(value)
        if not ok then
            error(err, 2)
        end

        return
    end

    error("unrecognized option name", 2)
end


return _M
