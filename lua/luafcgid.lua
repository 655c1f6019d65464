-- require "luafcgid": the helper module luafcgid installs for its scripts
-- (serialize, urlencode, urldecode, parse), so that luafcgid scripts run
-- unmodified on golapis.  Written for golapis from the module's documented
-- behaviour; where luafcgid's own module fails (a pair without "=", a
-- number key in serialize) this one does the sensible thing instead, see
-- docs/api-luafcgid.md.

local byte, char, find, format, gsub, sub =
    string.byte, string.char, string.find, string.format, string.gsub,
    string.sub
local concat, sort, tonumber, tostring, type, pairs =
    table.concat, table.sort, tonumber, tostring, type, pairs

local _M = {}


local function hex_byte(c)
    return format("%%%02X", byte(c))
end


-- "a b&c" -> "a+b%26c": every byte but letters, digits and spaces goes
-- out as %XX, then spaces become "+"; nil and "" come back as they are
function _M.urlencode(s)
    if s == nil or s == "" then
        return s
    end
    s = gsub(s, "[^%w ]", hex_byte)
    return (gsub(s, " ", "+"))
end


local function hex_char(h)
    return char(tonumber(h, 16))
end


-- the reverse: "+" is a space, %XX a byte; nil and "" as they are
function _M.urldecode(s)
    if s == nil or s == "" then
        return s
    end
    s = gsub(s, "+", " ")
    return (gsub(s, "%%(%x%x)", hex_char))
end


-- an application/x-www-form-urlencoded string -> {name = value}; a name
-- seen more than once gets an array of its values, in order; a pair
-- without "=" has the value ""
function _M.parse(s)
    local t = {}
    if s == nil then
        return t
    end
    local urldecode = _M.urldecode
    local pos, len = 1, #s
    while pos <= len do
        local amp = find(s, "&", pos, true) or len + 1
        if amp > pos then
            local pair = sub(s, pos, amp - 1)
            local eq = find(pair, "=", 1, true)
            local name, value
            if eq then
                name, value = sub(pair, 1, eq - 1), sub(pair, eq + 1)
            else
                name, value = pair, ""
            end
            name, value = urldecode(name), urldecode(value)
            local old = t[name]
            if old == nil then
                t[name] = value
            elseif type(old) == "table" then
                old[#old + 1] = value
            else
                t[name] = { old, value }
            end
        end
        pos = amp + 1
    end
    return t
end


-- a number, string, boolean or table of them as Lua source text, to read
-- back with loadstring("return " .. s)(); other values give ""
local function serialize(v)
    local tv = type(v)
    if tv == "number" then
        return tostring(v)
    elseif tv == "string" then
        return format("%q", v)
    elseif tv == "boolean" then
        return v and "true" or "false"
    elseif tv ~= "table" then
        return ""
    end
    local keys = {}
    for k in pairs(v) do
        local tk = type(k)
        if tk == "number" or tk == "string" then
            keys[#keys + 1] = k
        end
    end
    -- a stable text for the same table: numbers first, then strings
    sort(keys, function(a, b)
        if type(a) ~= type(b) then
            return type(a) == "number"
        end
        return a < b
    end)
    local out = {}
    for i = 1, #keys do
        local k = keys[i]
        out[i] = "[" .. serialize(k) .. "] = " .. serialize(v[k])
    end
    return "{" .. concat(out, ",") .. "}"
end

_M.serialize = serialize

return _M
