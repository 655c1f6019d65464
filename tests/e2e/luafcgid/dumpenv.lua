-- A luafcgid script as luafcgid's own example (examples/dumpenv.lua in
-- its repository) is one: it shows the request's environment, then the
-- GET params or the POST body.  Written for golapis's tests to do what
-- that example does, the same way (require "luafcgid", lf.parse, global
-- variables inside main, string sets joined before r:puts); the test
-- runs it as it is, as luafcgid would.

local lf = require("luafcgid")

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    return keys
end

function main(env, r)
    r:header("X-Powered-By", "Lua")

    r:puts("<h1>Environment</h1><pre>\n")
    for _, name in ipairs(sorted_keys(env)) do
        r:puts(string.format("%s = %s\n", name, env[name]))
    end
    r:puts("</pre>\n")

    if env.REQUEST_METHOD == "GET" then
        -- one r:puts for the whole list, as the example does it
        lines = { "<h1>GET Params</h1><pre>\n" }
        args = lf.parse(env.QUERY_STRING)
        for _, name in ipairs(sorted_keys(args)) do
            local v = args[name]
            if type(v) == "table" then
                v = table.concat(v, ",")
            end
            lines[#lines + 1] = string.format("%s = %s\n", name, v)
        end
        lines[#lines + 1] = "</pre>\n"
        r:puts(table.concat(lines))
    end

    if env.REQUEST_METHOD == "POST" then
        r:puts("<h1>POST</h1>\n")
        r:puts(string.format("<textarea>%s</textarea>", r:gets()))
    end
end
