-- golapis.luafcgid: the methods of a luafcgid request object that may
-- wait (r:flush, r:gets: they call ngx.print and ngx.req.read_body, which
-- yield), and the call of main(env, r), which sends what main left
-- buffered.  Not a module to require: src/api/gl_lua_luafcgid.c runs
-- this chunk once per Lua state with its C helpers and the golapis
-- functions it needs (taken once, so that a script replacing ngx.print
-- does not change them), and keeps what it returns.

local check, take, print, send_headers, flush, read_body,
      body_data, body_file, open = ...

local function r_flush(self)
    local s = take(self, 'flush')
    if s ~= '' then
        print(s)
    else
        send_headers()
    end
    flush()
end

local function r_gets(self)
    check(self, 'gets')
    read_body()
    local data = body_data()
    if data == nil then
        local path = body_file()
        if path ~= nil then
            local f, err = open(path, 'rb')
            if f == nil then
                error('cannot read the request body: ' .. err, 2)
            end
            data = f:read('*a')
            f:close()
            if data == '' then
                data = nil
            end
        end
    end
    return data
end

local function run(main)
    return function(env, r)
        main(env, r)
        local s = take(r, 'main')
        if s ~= '' then
            print(s)
        end
    end
end

return r_flush, r_gets, run
