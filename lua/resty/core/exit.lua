-- resty.core.exit for golapis: ngx.exit is golapis's own, in C
-- (src/gl_lua_output.c); this module leaves it as it is.

local base = require "resty.core.base"

return {
    version = base.version
}
