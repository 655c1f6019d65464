-- golapis.coroutine: the table that replaces the global coroutine.
-- Lua's own functions under _create, _wrap, _resume, _yield and _status,
-- golapis's (src/api/gl_lua_coroutine.c, which runs this chunk once per
-- Lua state) under __create, ...; create, wrap, resume, yield and status
-- pick one of the two on each call, as lua-nginx-module does (a tail
-- call, so that a yield crosses no C function); running is Lua's.  The
-- same keys as lua-nginx-module's table.  Not a module to require.

local ours, std, co = ...
co.running = std.running
for _, k in ipairs({ 'create', 'wrap', 'resume', 'yield', 'status' }) do
    local s, o = std[k], co['__' .. k]
    co['_' .. k] = s
    co[k] = function(...)
        if ours() then
            return o(...)
        end
        return s(...)
    end
end
coroutine = co
package.loaded.coroutine = co
