-- the "sleep" bench: each request waits 0.1 s, then answers; the same file
-- runs under golapis and under nginx's content_by_lua_file.  with C
-- connections the most a server can do is C / 0.1 requests per second.
ngx.sleep(0.1)
ngx.say("ok")
