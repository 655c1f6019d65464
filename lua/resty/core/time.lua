-- resty.core.time for golapis: ngx.now, ngx.time, ngx.update_time and the
-- date functions are golapis's own, in C (src/gl_lua_time.c); this module
-- leaves them as they are and adds lua-resty-core's two exports,
-- monotonic_msec() and monotonic_time().
--
-- nginx's monotonic time is cached once per event-loop iteration; these
-- read the system's monotonic clock on every call.

local ffi = require "ffi"
local base = require "resty.core.base"

local C = ffi.C
local floor = math.floor
local tonumber = tonumber


if not pcall(ffi.typeof, "struct timespec") then
    ffi.cdef[[
        struct timespec {
            long    tv_sec;
            long    tv_nsec;
        };
    ]]
end

ffi.cdef[[
    int clock_gettime(int clock_id, struct timespec *tp);
]]


-- CLOCK_MONOTONIC's number differs between systems
local CLOCK_MONOTONIC = ({ Linux = 1, BSD = 4, OSX = 6 })[ffi.os] or 1

local ts = ffi.new("struct timespec")


-- milliseconds since an arbitrary point (the boot, on Linux), an integer
local function monotonic_msec()
    C.clock_gettime(CLOCK_MONOTONIC, ts)

    return tonumber(ts.tv_sec) * 1000 + floor(tonumber(ts.tv_nsec) / 1e6)
end


-- the same in seconds, with milliseconds
local function monotonic_time()
    return monotonic_msec() / 1000
end


return {
    version = base.version,
    monotonic_msec = monotonic_msec,
    monotonic_time = monotonic_time
}
