-- resty.core.base for golapis: what lua-resty-core's base module gives the
-- other OpenResty libraries (table helpers, scratch buffers for the FFI,
-- the FFI return codes, get_request), without lua-nginx-module's
-- ngx_http_lua_ffi_* symbols, which golapis does not have.
--
-- Unlike lua-resty-core's, it neither checks ngx.config.ngx_lua_version
-- nor replaces the global require with a faster one.

local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ceil = math.ceil
local error = error
local pcall = pcall
local select = select
local subsystem = ngx.config.subsystem


local new_tab, clear_tab
do
    local ok

    ok, new_tab = pcall(require, "table.new")
    if not ok then
        new_tab = function(narr, nrec) return {} end
    end

    ok, clear_tab = pcall(require, "table.clear")
    if not ok then
        local pairs = pairs

        clear_tab = function(tab)
            for k in pairs(tab) do
                tab[k] = nil
            end
        end
    end
end


-- the types lua-resty-core declares here: other libraries' cdefs name them
if not pcall(ffi.typeof, "ngx_str_t") then
    ffi.cdef[[
        typedef struct {
            size_t                 len;
            const unsigned char   *data;
        } ngx_str_t;
    ]]
end

if not pcall(ffi.typeof, "ngx_http_request_t") then
    ffi.cdef[[
        typedef struct ngx_http_request_s  ngx_http_request_t;
    ]]
end

if not pcall(ffi.typeof, "ngx_http_lua_ffi_str_t") then
    ffi.cdef[[
        typedef struct {
            int                       len;
            const unsigned char      *data;
        } ngx_http_lua_ffi_str_t;
    ]]
end

-- golapis's own: the request running now, or NULL (src/gl_lua.c)
ffi.cdef[[
    void *gl_ffi_get_request(void);
]]


local _M = new_tab(0, 24)

_M.version = "0.1.25"
_M.new_tab = new_tab
_M.clear_tab = clear_tab

_M.FFI_OK = 0
_M.FFI_NO_REQ_CTX = -100
_M.FFI_BAD_CONTEXT = -101
_M.FFI_ERROR = -1
_M.FFI_AGAIN = -2
_M.FFI_BUSY = -3
_M.FFI_DONE = -4
_M.FFI_DECLINED = -5


-- the request of the running code as an opaque pointer (a golapis
-- gl_request_t, not an nginx request), or nil outside a request: in
-- init_by_lua, init_worker_by_lua and at the top level of code they run
function _M.get_request()
    local r = C.gl_ffi_get_request()

    if r ~= nil then
        return r
    end
end


-- scratch memory for FFI calls, one set per Lua state (per worker)

local c_buf_type = ffi.typeof("char[?]")
local str_buf_size = 4096
local str_buf
local size_ptr
local errmsg


function _M.get_errmsg_ptr()
    if not errmsg then
        errmsg = ffi_new("char *[1]")
    end

    return errmsg
end


function _M.get_size_ptr()
    if not size_ptr then
        size_ptr = ffi_new("size_t[1]")
    end

    return size_ptr
end


-- a buffer of at least size bytes: the shared one, or a new one when it is
-- too small or the caller must own it
function _M.get_string_buf(size, must_alloc)
    if size > str_buf_size or must_alloc then
        return ffi_new(c_buf_type, size)
    end

    if not str_buf then
        str_buf = ffi_new(c_buf_type, str_buf_size)
    end

    return str_buf
end


function _M.set_string_buf_size(size)
    if size <= 0 then
        return
    end

    str_buf = nil
    str_buf_size = ceil(size)
end


function _M.get_string_buf_size()
    return str_buf_size
end


-- stores key in tb under a free integer slot and returns it; tb[0] heads
-- the list of the slots freed by the caller (it links them through tb)
function _M.ref_in_table(tb, key)
    if key == nil then
        return -1
    end

    local ref = tb[0]

    if ref and ref ~= 0 then
        tb[0] = tb[ref]

    else
        ref = #tb + 1
    end

    tb[ref] = key

    return ref
end


function _M.allows_subsystem(...)
    for i = 1, select("#", ...) do
        if select(i, ...) == subsystem then
            return
        end
    end

    error("unsupported subsystem: " .. subsystem, 2)
end


return _M
