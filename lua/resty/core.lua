-- resty.core for golapis.  OpenResty code loads lua-resty-core to swap
-- ngx.* functions for FFI versions; golapis implements them in C already,
-- so this loads golapis's own resty.core.* modules (lua/resty/core/),
-- which leave ngx.* alone, and returns what lua-resty-core returns.

require "resty.core.var"
require "resty.core.worker"
require "resty.core.regex"
require "resty.core.shdict"
require "resty.core.time"
require "resty.core.hash"
require "resty.core.uri"
require "resty.core.exit"
require "resty.core.base64"
require "resty.core.request"
require "resty.core.response"
require "resty.core.phase"
require "resty.core.ndk"
require "resty.core.socket"
require "resty.core.coroutine"
require "resty.core.param"
require "resty.core.misc"
require "resty.core.ctx"

local base = require "resty.core.base"

return {
    version = base.version
}
