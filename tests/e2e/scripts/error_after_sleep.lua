ngx.sleep(0.1)
error("late boom")
