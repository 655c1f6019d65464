-- resty.core.ctx for golapis: ngx.ctx is golapis's own, in C; this module
-- leaves it as it is and adds lua-resty-core's export, get_ctx_table().
--
-- get_ctx_table(ctx), which makes ctx the request's ngx.ctx if it has none
-- yet, is not supported: nothing in golapis's API tells whether a request
-- has its ngx.ctx yet (asking ngx.ctx makes one).

local base = require "resty.core.base"

local error = error


local _M = {
    _VERSION = base.version
}


-- the request's ngx.ctx
function _M.get_ctx_table(ctx)
    if ctx ~= nil then
        error("get_ctx_table(ctx) is not supported by golapis yet", 2)
    end

    return ngx.ctx
end


return _M
