-- the "threads" bench: 10 light threads that each sleep 10 ms, waited for
-- one by one; the same file runs under golapis and under nginx's
-- content_by_lua_file
local spawn, wait, sleep = ngx.thread.spawn, ngx.thread.wait, ngx.sleep

local function work()
    sleep(0.01)
    return true
end

local threads = {}
for i = 1, 10 do
    local co, err = spawn(work)
    if not co then
        ngx.say("spawn failed: ", err)
        return
    end
    threads[i] = co
end

for i = 1, 10 do
    local ok, res = wait(threads[i])
    if not ok or res ~= true then
        ngx.say("thread ", i, " failed: ", tostring(res))
        return
    end
end

ngx.say("ok")
