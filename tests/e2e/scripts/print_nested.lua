ngx.header["Content-Type"] = "text/plain"
ngx.print({"a", {"b", 1}, 2.5})
