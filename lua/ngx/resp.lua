-- require "ngx.resp": response helpers, as lua-resty-core's ngx.resp
local core = require "golapis.core"

local _M = { version = "0.1.25" }

-- adds a response header value, keeping the values already set
_M.add_header = core.resp_add_header

return _M
