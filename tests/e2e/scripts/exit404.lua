ngx.exit(404)
ngx.say("not reached")
