ngx.say("this never runs"
local = = 1
