ngx.header["Content-Type"] = "text/plain"
ngx.say("hello, world")
