-- resty.core.param for golapis: ngx.arg is golapis's own, in C; this module
-- leaves it as it is.

local base = require "resty.core.base"

return {
    version = base.version
}
