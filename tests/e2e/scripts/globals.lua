-- each request runs with its own globals, so the count never passes 1
ngx.header["Content-Type"] = "text/plain"
counter = (counter or 0) + 1
ngx.say(counter)
