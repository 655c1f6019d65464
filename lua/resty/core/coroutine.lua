-- resty.core.coroutine for golapis: lua-resty-core's module routes coroutine.*
-- to lua-nginx-module's request-aware versions.  golapis's engine handles user
-- coroutines itself (they are plain Lua coroutines; waiting in one, ngx.sleep
-- for instance, is not supported yet), so this one leaves coroutine.* as they
-- are.

local base = require "resty.core.base"

return {
    version = base.version
}
