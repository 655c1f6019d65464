-- resty.core.socket for golapis: lua-resty-core's module adds the FFI methods
-- (getoption, setoption, setclientcert, sslhandshake) of ngx.socket.tcp
-- objects.  golapis has no cosockets yet, so there is nothing to add to.

local base = require "resty.core.base"

return {
    version = base.version
}
