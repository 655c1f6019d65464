-- the "httpclient" bench: an HTTP/1.1 GET of a small body from a local
-- nginx over a raw cosocket, the connection kept alive in the pool; the
-- same file runs under golapis and under nginx's content_by_lua_file.
-- scripts/bench fills in @HTTP_PORT@ (the backend nginx, which answers
-- "hello" at /small) and @POOL@ (the pool size).  any failure answers
-- 200 with the error (the wrk script counts every answer that is not
-- "ok")
local REQ = "GET /small HTTP/1.1\r\nHost: backend\r\n\r\n"

local function fail(what, err)
    ngx.say(what, ": ", tostring(err))
end

local sock = ngx.socket.tcp()
sock:settimeout(5000)
local ok, err = sock:connect("127.0.0.1", @HTTP_PORT@)
if not ok then
    return fail("connect", err)
end
local bytes, err = sock:send(REQ)
if not bytes then
    return fail("send", err)
end
local line, err = sock:receive()
if line ~= "HTTP/1.1 200 OK" then
    return fail("status", line or err)
end
local len
while true do
    local h, err = sock:receive()
    if not h then
        return fail("header", err)
    end
    if h == "" then
        break
    end
    local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)$")
    if n then
        len = tonumber(n)
    end
end
if not len then
    return fail("no content-length", "")
end
local body, err = sock:receive(len)
if body ~= "hello\n" then
    return fail("body", body or err)
end
ok, err = sock:setkeepalive(60000, @POOL@)
if not ok then
    return fail("setkeepalive", err)
end
ngx.say("ok")
