-- resty.core.shdict for golapis: lua-resty-core's module gives the
-- ngx.shared.DICT objects their FFI methods.  golapis's dicts have theirs
-- from the start (src/gl_lua_shdict.c), so there is nothing to add.

local base = require "resty.core.base"

return {
    version = base.version
}
