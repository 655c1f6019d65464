ngx.header["Content-Type"] = "text/plain"
ngx.sleep(0.5)
ngx.say("slept")
