ngx.header["Content-Type"] = "text/plain"
ngx.sleep(3)
ngx.say("slept 3")
