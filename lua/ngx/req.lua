-- require "ngx.req": request helpers, as lua-resty-core's ngx.req
local core = require "golapis.core"

local _M = { version = "0.1.25" }

-- adds a request header value, keeping the values already there
_M.add_header = core.req_add_header

return _M
