-- resty.core.request for golapis: ngx.req.* are golapis's own, in C
-- (src/gl_lua_req.c); this module leaves them as they are and adds
-- lua-resty-core's export, set_req_header(name, value, override), on them.

local base = require "resty.core.base"
local core = require "golapis.core"

local error = error
local tostring = tostring
local type = type
local req_add_header = core.req_add_header


local _M = {
    version = base.version
}


-- override: replace the header's values (nil value: remove it); else add
-- value to them.  Errors are raised at level 3, as lua-resty-core's: it is
-- called by wrappers such as ngx.req.add_header.
function _M.set_req_header(name, value, override)
    if name == nil then
        error("bad 'name' argument: string expected, got nil", 3)
    end

    if type(name) ~= "string" then
        name = tostring(name)
    end

    if not override then
        if value == nil then
            error("bad 'value' argument: string or table expected, got nil",
                  3)
        end

        if type(value) == "table" and #value == 0 then
            error("bad 'value' argument: non-empty table expected", 3)
        end
    end

    if override then
        return ngx.req.set_header(name, value)
    end

    return req_add_header(name, value)
end


return _M
