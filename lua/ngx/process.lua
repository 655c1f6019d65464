-- ngx.process for golapis: the API of lua-resty-core's module of that name.
--
-- golapis is one process: its workers are threads of it, which run all the
-- Lua code, init_by_lua included (each worker runs it in its own Lua
-- state).  So type() is always "worker", get_master_pid() is the pid of
-- that one process, and there is no privileged agent.

local type = type
local error = error


local _M = { version = "0.1.25" }


function _M.type()
    return "worker"
end


function _M.get_master_pid()
    return ngx.worker.pid()
end


-- fails as lua-resty-core's does for a bad context or argument, then
-- because there is no privileged agent to enable
function _M.enable_privileged_agent(connections)
    if ngx.get_phase() ~= "init" then
        return nil, "API disabled in the current context"
    end

    connections = connections or 512

    if type(connections) ~= "number" or connections < 0 then
        return nil, "bad 'connections' argument: "
                    .. "number expected and greater than 0"
    end

    return nil, "the privileged agent is not supported by golapis"
end


-- nginx replaces a worker process that exits; nothing replaces a golapis
-- worker thread, and stopping the process would stop them all
function _M.signal_graceful_exit()
    error("signal_graceful_exit is not supported by golapis", 2)
end


return _M
