ngx.status = 201
ngx.header["X-Foo"] = "bar"
ngx.header["Content-Type"] = "text/plain"
ngx.say("created")
