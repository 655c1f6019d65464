-- resty.core.socket for golapis: lua-resty-core's module adds the FFI
-- methods (getoption, setoption, sslhandshake) to ngx.socket.tcp objects;
-- golapis's objects have them from the start (src/api/
-- gl_lua_socket_tcp.c, lua/golapis/socket.lua), so there is nothing left
-- to add.

local base = require "resty.core.base"

return {
    version = base.version
}
