-- resty.core.base64 for golapis: ngx.encode_base64 and ngx.decode_base64 are
-- golapis's own, in C (src/gl_lua_string.c); this module leaves them as they
-- are.

local base = require "resty.core.base"

return {
    version = base.version
}
