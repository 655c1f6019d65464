-- the example page: golapis renders it from a coroutine of its own
local name = "golapis"

ngx.header["Content-Type"] = "text/html; charset=utf-8"

-- a global set here stays in this request: the next one starts clean
visits = (visits or 0) + 1

ngx.say([[<!DOCTYPE html>
<html>
<head><title>]], name, [[ works</title></head>
<body>
<h1>Hello from ]], name, [[!</h1>
<p>This page was rendered by a Lua script, <code>etc/www/index.lua</code>,
running in ]], jit and jit.version or _VERSION, [[ inside golapis, behind
nginx through FastCGI.</p>
<p>Rendered at ]], os.date("!%Y-%m-%d %H:%M:%S UTC"), [[;
globals seen by this request: visits = ]], visits, [[.</p>
</body>
</html>]])
