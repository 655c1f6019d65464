-- resty.core.misc for golapis: ngx.status, ngx.ctx, ngx.headers_sent and
-- ngx.req.is_internal are golapis's own, in C; this module leaves them as
-- they are and adds lua-resty-core's exports: register_ngx_magic_key_getter
-- and register_ngx_magic_key_setter, which make ngx.KEY call a function.
--
-- The first registration wraps the metamethods of golapis's ngx table:
-- a registered key goes to its function, any other to golapis's.

local base = require "resty.core.base"

local getmetatable = getmetatable
local rawset = rawset
local setmetatable = setmetatable
local type = type


local _M = base.new_tab(0, 3)

local getters
local setters


local function hook()
    local mt = getmetatable(ngx)

    if not mt then
        mt = {}
        setmetatable(ngx, mt)
    end

    local index = mt.__index
    local newindex = mt.__newindex

    getters = {}
    setters = {}

    mt.__index = function(tb, key)
        local f = getters[key]

        if f then
            return f()
        end

        if type(index) == "function" then
            return index(tb, key)
        end

        if index ~= nil then
            return index[key]
        end
    end

    mt.__newindex = function(tb, key, value)
        local f = setters[key]

        if f then
            return f(value)
        end

        if type(newindex) == "function" then
            return newindex(tb, key, value)
        end

        if newindex ~= nil then
            newindex[key] = value
            return
        end

        rawset(tb, key, value)
    end
end


function _M.register_ngx_magic_key_getter(key, func)
    if not getters then
        hook()
    end

    getters[key] = func
end


function _M.register_ngx_magic_key_setter(key, func)
    if not getters then
        hook()
    end

    setters[key] = func
end


_M._VERSION = base.version


return _M
