ngx.header["Content-Type"] = "text/plain"
ngx.say("a")
ngx.exit(200)
ngx.say("not reached")
