-- resty.core.uri for golapis: ngx.escape_uri and ngx.unescape_uri are
-- golapis's own, in C (src/gl_lua_string.c); this module leaves them as they
-- are.

local base = require "resty.core.base"

return {
    version = base.version
}
