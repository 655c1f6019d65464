-- ngx.errlog for golapis: the API of lua-resty-core's module of that
-- name, on top of golapis's C functions (no FFI).
--
-- golapis has no lua_capture_error_log (it has no init_by_lua master to
-- capture for), so set_filter_level and get_logs always fail, with the
-- error lua-nginx-module gives when that directive is not set.

local C = package.loaded["golapis.errlog"]

local error = error
local type = type

local NOT_SET = 'directive "lua_capture_error_log" is not set'

local _M = { version = "0.1.25" }


function _M.set_filter_level(level)
    if not level then
        return nil, [[missing "level" argument]]
    end

    return nil, NOT_SET
end


function _M.get_logs(max, logs)
    return nil, NOT_SET
end


function _M.get_sys_filter_level()
    return C.get_sys_filter_level()
end


function _M.raw_log(level, msg)
    if type(level) ~= "number" then
        error("bad argument #1 to 'raw_log' (must be a number)", 2)
    end

    if type(msg) ~= "string" then
        error("bad argument #2 to 'raw_log' (must be a string)", 2)
    end

    if not C.raw_log(level, msg) then
        error("bad log level", 2)
    end
end


return _M
