local function inner()
    error("boom")
end
inner()
ngx.say("not reached")
