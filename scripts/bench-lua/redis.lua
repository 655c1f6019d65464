-- the "redis" and "redis1k" benches: one GET of a key from Redis through
-- nginx.redis (Debian's lua-resty-redis, unmodified), the connection put
-- back in the pool; the same file runs under golapis and under nginx's
-- content_by_lua_file.  scripts/bench fills in @REDIS_PORT@ and @POOL@
-- (the pool size) and stores "bench value" at bench:key first.  any
-- failure answers 200 with the error (the wrk script counts every answer
-- that is not "ok")
local redis = require "nginx.redis"

local red = redis:new()
red:set_timeout(5000)
local ok, err = red:connect("127.0.0.1", @REDIS_PORT@)
if not ok then
    ngx.say("connect: ", err)
    return
end
local v, err = red:get("bench:key")
if v ~= "bench value" then
    ngx.say("get: ", tostring(v), " ", tostring(err))
    return
end
ok, err = red:set_keepalive(60000, @POOL@)
if not ok then
    ngx.say("set_keepalive: ", err)
    return
end
ngx.say("ok")
