-- resty.core.hash for golapis: ngx.md5, ngx.md5_bin, ngx.sha1_bin,
-- ngx.crc32_short and ngx.crc32_long are golapis's own, in C
-- (src/gl_lua_string.c); this module leaves them as they are.

local base = require "resty.core.base"

return {
    version = base.version
}
