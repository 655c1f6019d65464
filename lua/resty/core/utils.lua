-- resty.core.utils for golapis: str_replace_char, in plain Lua.

local base = require "resty.core.base"

local concat = table.concat
local find = string.find
local sub = string.sub


local _M = {
    version = base.version
}


-- str with every byte equal to find_chr's first made replace_chr's first;
-- str itself when find_chr does not occur in it
function _M.str_replace_char(str, find_chr, replace_chr)
    if not find(str, find_chr, nil, true) then
        return str
    end

    local from = sub(find_chr, 1, 1)
    local parts = {}
    local n = 0
    local pos = 1

    while true do
        local i = find(str, from, pos, true)

        if not i then
            break
        end

        n = n + 1
        parts[n] = sub(str, pos, i - 1)
        pos = i + 1
    end

    parts[n + 1] = sub(str, pos)

    return concat(parts, sub(replace_chr, 1, 1))
end


return _M
