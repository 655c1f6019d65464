ngx.print("no content type set")
