ngx.req.read_body()
ngx.say(#(ngx.req.get_body_data() or ''))
