-- resty.core.phase for golapis: ngx.get_phase is golapis's own, in C
-- (src/gl_lua_output.c); this module leaves it as it is.  lua-resty-core's
-- also adds ngx.get_raw_phase(r), an internal of its resty.core.coroutine,
-- which golapis does not need.

local base = require "resty.core.base"

return {
    version = base.version
}
