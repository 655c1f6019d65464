ngx.header["Content-Type"] = "text/plain"
ngx.sleep(1)
ngx.say("slept 1")
