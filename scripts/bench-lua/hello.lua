-- the "hello" bench: the same file runs under golapis and under nginx's
-- content_by_lua_file
ngx.say("hello, world")
