-- golapis.socket: the Lua side of the TCP cosocket (src/api/
-- gl_lua_socket_tcp.c runs this chunk once per Lua state with ngx.socket
-- and the objects' metatable): sslhandshake and setclientcert over
-- the gl_ffi_tcp_* functions, with lua-resty-core's arguments, values and
-- errors (the session is a cdata freed by the GC).  Not a module to
-- require.

local socket, mt = ...

local ffi = require "ffi"
local base = require "resty.core.base"

local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local ffi_gc = ffi.gc
local type = type
local error = error
local select = select
local co_yield = coroutine._yield

local FFI_OK = base.FFI_OK
local FFI_ERROR = base.FFI_ERROR
local FFI_AGAIN = base.FFI_AGAIN
local FFI_DONE = base.FFI_DONE
local FFI_NO_REQ_CTX = base.FFI_NO_REQ_CTX

ffi.cdef[[
    typedef struct gl_tcp_s gl_tcp_t;

    int gl_ffi_tcp_sslhandshake(gl_tcp_t *u, void *sess, int reuse,
        const char *name, size_t len, int verify, int status_req,
        void *chain, void *pkey, const char **errmsg);
    int gl_ffi_tcp_sslhandshake_result(gl_tcp_t *u, void **sess,
        const char **errmsg, int *code);
    void gl_ffi_ssl_free_session(void *sess);
]]

local errmsg = ffi_new("const char *[1]")
local session_ptr = ffi_new("void *[1]")
local code = ffi_new("int[1]")


-- the client certificate of the next handshakes (ngx.ssl.parse_pem_cert
-- and parse_pem_priv_key's cdata), kept in the object's slots 6 and 7 as
-- lua-resty-core does
local CERT, PKEY = 6, 7

local function setclientcert(cosocket, cert, pkey)
    if cert == nil and pkey == nil then
        cosocket[CERT] = nil
        cosocket[PKEY] = nil
        return true
    end

    if not cert or not pkey then
        return nil, "client certificate must be supplied with " ..
                    "corresponding private key"
    end

    if type(cert) ~= "cdata" then
        return nil, "bad cert arg: cdata expected, got " .. type(cert)
    end

    if type(pkey) ~= "cdata" then
        return nil, "bad pkey arg: cdata expected, got " .. type(pkey)
    end

    cosocket[CERT] = cert
    cosocket[PKEY] = pkey
    return true
end


local function sslhandshake(cosocket, reused_session, server_name,
                            ssl_verify, send_status_req, ...)
    local n = select("#", ...)
    if not cosocket or n > 0 then
        error("ngx.socket sslhandshake: expecting 1 ~ 5 arguments " ..
              "(including the object), but seen " ..
              (cosocket and 5 + n or 0))
    end

    local u = cosocket[1]
    if not u then
        error("socket is never created nor connected")
    end

    local sess = type(reused_session) == "cdata" and reused_session or nil
    local name = server_name and tostring(server_name) or nil

    local rc = C.gl_ffi_tcp_sslhandshake(u, sess, reused_session ~= false,
                                        name, name and #name or 0,
                                        ssl_verify and 1 or 0,
                                        send_status_req and 1 or 0,
                                        cosocket[CERT], cosocket[PKEY],
                                        errmsg)

    if rc == FFI_NO_REQ_CTX then
        error("no request ctx found", 2)
    end

    if rc == FFI_ERROR then
        return nil, ffi_str(errmsg[0])
    end

    if rc == FFI_DONE then
        return reused_session
    end

    if rc == FFI_AGAIN then
        co_yield()
    end

    rc = C.gl_ffi_tcp_sslhandshake_result(u, session_ptr, errmsg, code)

    if rc == FFI_ERROR then
        if code[0] ~= 0 then
            return nil, code[0] .. ": " .. ffi_str(errmsg[0])
        end
        return nil, ffi_str(errmsg[0])
    end

    if reused_session == false then
        return true
    end

    if session_ptr[0] == nil then
        return nil
    end

    return ffi_gc(session_ptr[0], C.gl_ffi_ssl_free_session)
end


mt.sslhandshake = sslhandshake
mt.setclientcert = setclientcert
