-- resty.core.coroutine for golapis: lua-resty-core's module routes coroutine.*
-- to lua-nginx-module's request-aware versions.  golapis's coroutine.* are
-- request-aware already (src/api/gl_lua_coroutine.c, lua/golapis/
-- coroutine.lua: waiting inside a user coroutine works), so this one leaves
-- them as they are.

local base = require "resty.core.base"

return {
    version = base.version
}
