-- resty.core.worker for golapis: ngx.worker.* are golapis's own, in C
-- (src/gl_lua_misc.c); this module leaves them as they are.

local base = require "resty.core.base"

return {
    _VERSION = base.version
}
