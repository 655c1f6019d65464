-- resty.core.response for golapis: ngx.header is golapis's own, in C
-- (src/gl_lua_output.c); this module leaves it as it is and adds
-- lua-resty-core's export, set_resp_header(tb, key, value, no_override),
-- on it.

local base = require "resty.core.base"
local core = require "golapis.core"

local error = error
local tostring = tostring
local type = type
local resp_add_header = core.resp_add_header


local _M = {
    version = base.version
}


-- no_override: add value to the header's values; else replace them as
-- ngx.header[key] = value does (tb, ngx.header's table, is not used).
-- Errors are raised at level 3, as lua-resty-core's: it is called by
-- wrappers such as ngx.resp.add_header.
function _M.set_resp_header(tb, key, value, no_override)
    if type(key) ~= "string" then
        key = tostring(key)
    end

    if no_override then
        if value == nil then
            error("invalid header value", 3)
        end

        if type(value) == "table" and #value == 0 then
            return
        end

        return resp_add_header(key, value)
    end

    ngx.header[key] = value
end


return _M
