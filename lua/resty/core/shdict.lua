-- resty.core.shdict for golapis: lua-resty-core's module gives the
-- ngx.shared.DICT objects their FFI methods.  golapis has no shared dicts yet
-- (no lua_shared_dict), so there is nothing to add to.

local base = require "resty.core.base"

return {
    version = base.version
}
