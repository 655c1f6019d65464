-- resty.core.var for golapis: ngx.var is golapis's own, in C
-- (src/gl_lua_var.c). lua-resty-core's module swaps it for an FFI version;
-- this one leaves it as it is.

local base = require "resty.core.base"

return {
    version = base.version
}
