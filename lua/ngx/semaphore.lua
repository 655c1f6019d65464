-- ngx.semaphore for golapis: lua-resty-core's API (new, post, wait,
-- count, version), its values and error strings, on golapis's semaphores
-- (src/api/gl_lua_semaphore.c), reached through LuaJIT's FFI.
--
-- A semaphore belongs to the worker that made it; its waiters may be
-- coroutines of any request or timer of that worker.  wait(timeout)
-- returns true, or nil, "timeout" at once (a timeout of 0, or under a
-- millisecond), or false, "timeout" after waiting; post(n) wakes the
-- waiters in order once the poster yields.

local base = require "resty.core.base"
local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local ffi_gc = ffi.gc
local type = type
local error = error
local tonumber = tonumber
local setmetatable = setmetatable
local get_string_buf = base.get_string_buf
local get_size_ptr = base.get_size_ptr
local co_yield = coroutine._yield

local FFI_OK = base.FFI_OK
local FFI_ERROR = base.FFI_ERROR
local FFI_DECLINED = base.FFI_DECLINED
local FFI_NO_REQ_CTX = base.FFI_NO_REQ_CTX
local ERR_BUF_SIZE = 128

ffi.cdef[[
    typedef struct gl_sema_s gl_sema_t;

    int gl_ffi_sema_new(gl_sema_t **psem, int n, char **errmsg);
    int gl_ffi_sema_post(gl_sema_t *sem, int n);
    int gl_ffi_sema_count(gl_sema_t *sem);
    int gl_ffi_sema_wait(gl_sema_t *sem, int wait_ms, unsigned char *err,
                         size_t *errlen);
    void gl_ffi_sema_gc(gl_sema_t *sem);
]]

local psem = ffi_new("gl_sema_t *[1]")
local errmsg = base.get_errmsg_ptr()

local _M = { version = base.version }
local mt = { __index = _M }


function _M.new(n)
    n = tonumber(n) or 0
    if n < 0 then
        error("no negative number", 2)
    end

    if C.gl_ffi_sema_new(psem, n, errmsg) == FFI_ERROR then
        return nil, ffi_str(errmsg[0])
    end

    local sem = psem[0]
    ffi_gc(sem, C.gl_ffi_sema_gc)

    return setmetatable({ sem = sem }, mt)
end


local function check(self)
    if type(self) ~= "table" or type(self.sem) ~= "cdata" then
        error("not a semaphore instance", 3)
    end
end


function _M.wait(self, seconds)
    check(self)

    local ms = tonumber(seconds) * 1000
    if ms < 0 then
        error("no negative number", 2)
    end

    local err = get_string_buf(ERR_BUF_SIZE)
    local errlen = get_size_ptr()
    errlen[0] = ERR_BUF_SIZE

    local rc = C.gl_ffi_sema_wait(self.sem, ms, err, errlen)

    if rc == FFI_OK then
        return true
    end

    if rc == FFI_DECLINED then
        return nil, "timeout"
    end

    if rc == FFI_NO_REQ_CTX then
        error("no request found")
    end

    if rc == FFI_ERROR then
        return nil, ffi_str(err, errlen[0])
    end

    -- FFI_AGAIN: the coroutine waits; the wake-up or the timeout gives
    -- true, nil or false, "timeout".  Not a tail call: this frame holds
    -- self, so the semaphore is not collected while it is waited on.
    local ok, e = co_yield()
    return ok, e
end


function _M.post(self, n)
    check(self)

    local num = n and tonumber(n) or 1
    if num < 1 then
        error("positive number required", 2)
    end

    C.gl_ffi_sema_post(self.sem, num)

    return true
end


function _M.count(self)
    check(self)

    return C.gl_ffi_sema_count(self.sem)
end


return _M
