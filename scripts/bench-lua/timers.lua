-- the "timers" bench: one request creates n ngx.timer.at(0, f) (?n=, default
-- 100000), each f counting itself in an upvalue, then sleeps in 1 ms steps
-- until all have run (at most 60 s).  it answers "TOTAL CREATE": the seconds
-- from the first ngx.timer.at until the last handler ran, and the seconds
-- the n ngx.timer.at calls took.  the same file runs under golapis and
-- under nginx's content_by_lua_file (lua_max_pending_timers > n on both).
local n = tonumber(ngx.var.arg_n) or 100000
local timer_at, sleep, now, update = ngx.timer.at, ngx.sleep, ngx.now,
    ngx.update_time

local ran = 0
local function f(premature)
    ran = ran + 1
end

update()
local t0 = now()
for i = 1, n do
    local ok, err = timer_at(0, f)
    if not ok then
        ngx.say("timer ", i, " of ", n, " failed: ", err)
        return
    end
end
update()
local t1 = now()

while ran < n do
    sleep(0.001)
    update()
    if now() - t0 > 60 then
        ngx.say("timeout: ", ran, " of ", n, " timers ran in 60 s")
        return
    end
end
update()
local t2 = now()

ngx.say(string.format("%.6f %.6f", t2 - t0, t1 - t0))
