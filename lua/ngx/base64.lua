-- ngx.base64 for golapis: encode_base64url and decode_base64url with the
-- results of lua-resty-core's module of the same name (RFC 4648 base64url,
-- no padding on output; decoding stops at the first "=").  The codec is
-- golapis's own C, exported from the binary for LuaJIT's FFI.

local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local floor = math.floor
local type = type


ffi.cdef[[
size_t gl_ffi_encode_base64url(unsigned char *dst, const unsigned char *src,
                               size_t len);
int gl_ffi_decode_base64url(unsigned char *dst, size_t *dlen,
                            const unsigned char *src, size_t len);
]]


local _M = { version = "0.1.25" }


-- a buffer shared by the calls of this Lua state for small strings; a
-- bigger one is made for each call and left to the GC
local BUF_SIZE = 4096
local buf = ffi_new("unsigned char[?]", BUF_SIZE)
local dlen = ffi_new("size_t[1]")


local function get_buf(size)
    if size <= BUF_SIZE then
        return buf
    end

    return ffi_new("unsigned char[?]", size)
end


function _M.encode_base64url(s)
    if type(s) ~= "string" then
        return nil, "must provide a string"
    end

    local len = #s
    local dst = get_buf(floor((len + 2) / 3) * 4)
    local n = C.gl_ffi_encode_base64url(dst, s, len)

    return ffi_str(dst, n)
end


function _M.decode_base64url(s)
    if type(s) ~= "string" then
        return nil, "must provide a string"
    end

    local len = #s
    local dst = get_buf(floor((len + 3) / 4) * 3)

    if C.gl_ffi_decode_base64url(dst, dlen, s, len) == 0 then
        return nil, "invalid input"
    end

    return ffi_str(dst, dlen[0])
end


return _M
