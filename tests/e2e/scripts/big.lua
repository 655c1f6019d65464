-- 10 MB in 160 chunks of 64 KB; every chunk starts with its number so a
-- lost or repeated chunk shows
ngx.header["Content-Type"] = "application/octet-stream"
local size = 64 * 1024
for i = 1, 160 do
    local tag = string.format("%08d", i)
    ngx.print(tag, string.rep("x", size - #tag))
end
