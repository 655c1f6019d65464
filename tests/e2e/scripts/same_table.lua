ngx.header["Content-Type"] = "text/plain"
ngx.say(golapis == ngx)
