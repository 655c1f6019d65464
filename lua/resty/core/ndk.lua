-- resty.core.ndk for golapis: golapis has no nginx development kit, hence no
-- ndk.set_var: lua-resty-core's module fills ndk.set_var only where the ndk
-- table exists, and golapis has none.

local base = require "resty.core.base"

return {
    version = base.version
}
