-- require "ngx.resp": response helpers, as lua-resty-core's ngx.resp
local core = require "golapis.core"

local _M = { version = "0.1.25" }

-- adds a response header value, keeping the values already set
_M.add_header = core.resp_add_header

-- sets the status, and the reason phrase of the status line
_M.set_status = core.resp_set_status

return _M
