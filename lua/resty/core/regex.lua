-- resty.core.regex for golapis: ngx.re.* are golapis's own, in C
-- (src/gl_lua_re.c); this module leaves them as they are.  Of what
-- lua-resty-core's exports, it has what code outside lua-resty-core uses:
-- is_regex_cache_empty() and set_buf_grow_ratio(); its compile and
-- capture internals have no use on golapis.

local base = require "resty.core.base"
local re = require "golapis.re"

local cache_empty = re.cache_empty


local _M = {
    version = base.version
}


-- true until a regex compiled with the "o" option went into this worker's
-- cache
function _M.is_regex_cache_empty()
    return cache_empty()
end


-- lua-resty-core's growth factor for its FFI substitution buffers; golapis
-- builds ngx.re.sub's and gsub's results in C, so there is nothing to tune
function _M.set_buf_grow_ratio(ratio)
end


return _M
