-- ngx.ssl for golapis: lua-resty-core's module, with what has a use behind
-- fastcgi_pass: parse_pem_cert and parse_pem_priv_key (the cdata that
-- tcpsock:setclientcert takes, for client certificates on cosockets),
-- cert_pem_to_der, priv_key_pem_to_der and the version constants, through
-- LuaJIT's FFI (src/api/gl_lua_ssl.c).  The rest serves nginx's own TLS
-- handshakes (ssl_certificate_by_lua and the like), which golapis never
-- sees: those functions raise "ngx.ssl.NAME is not available in golapis
-- (TLS ends at nginx)".

local base = require "resty.core.base"
local ffi = require "ffi"

local C = ffi.C
local ffi_str = ffi.string
local ffi_gc = ffi.gc
local error = error
local get_string_buf = base.get_string_buf
local errmsg = base.get_errmsg_ptr()

ffi.cdef[[
    void *gl_ffi_ssl_parse_pem_cert(const unsigned char *pem, size_t len,
        char **err);
    void gl_ffi_ssl_free_cert(void *chain);
    void *gl_ffi_ssl_parse_pem_priv_key(const unsigned char *pem,
        size_t len, char **err);
    void gl_ffi_ssl_free_priv_key(void *pkey);
    int gl_ffi_ssl_cert_pem_to_der(const unsigned char *pem, size_t len,
        unsigned char *der, char **err);
    int gl_ffi_ssl_priv_key_pem_to_der(const unsigned char *pem, size_t len,
        const char *passphrase, unsigned char *der, char **err);
]]

local _M = { version = base.version }

_M.SSL3_VERSION = 0x0300
_M.TLS1_VERSION = 0x0301
_M.TLS1_1_VERSION = 0x0302
_M.TLS1_2_VERSION = 0x0303
_M.TLS1_3_VERSION = 0x0304


function _M.parse_pem_cert(pem)
    local chain = C.gl_ffi_ssl_parse_pem_cert(pem, #pem, errmsg)
    if chain ~= nil then
        return ffi_gc(chain, C.gl_ffi_ssl_free_cert)
    end
    return nil, ffi_str(errmsg[0])
end


function _M.parse_pem_priv_key(pem)
    local pkey = C.gl_ffi_ssl_parse_pem_priv_key(pem, #pem, errmsg)
    if pkey ~= nil then
        return ffi_gc(pkey, C.gl_ffi_ssl_free_priv_key)
    end
    return nil, ffi_str(errmsg[0])
end


function _M.cert_pem_to_der(pem)
    local out = get_string_buf(#pem)
    local n = C.gl_ffi_ssl_cert_pem_to_der(pem, #pem, out, errmsg)
    if n > 0 then
        return ffi_str(out, n)
    end
    return nil, ffi_str(errmsg[0])
end


function _M.priv_key_pem_to_der(pem, passphrase)
    local out = get_string_buf(#pem)
    local n = C.gl_ffi_ssl_priv_key_pem_to_der(pem, #pem, passphrase, out,
                                               errmsg)
    if n > 0 then
        return ffi_str(out, n)
    end
    return nil, ffi_str(errmsg[0])
end


for _, name in ipairs({ "clear_certs", "set_der_cert", "set_der_priv_key",
                        "raw_server_addr", "server_port", "server_name",
                        "raw_client_addr", "get_tls1_version",
                        "get_tls1_version_str", "set_cert", "set_priv_key",
                        "verify_client" }) do
    _M[name] = function()
        error("ngx.ssl." .. name .. " is not available in golapis (TLS "
              .. "ends at nginx)", 2)
    end
end


return _M
