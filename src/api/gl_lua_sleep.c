/*
 * ngx.sleep: the coroutine yields and a timer on the worker's loop resumes
 * it, so the worker serves other requests meanwhile.
 */
#include "gl_core.h"
#include "gl_lua.h"
#include "gl_request.h"
#include "gl_worker.h"


static int
gl_lua_sleep(lua_State *L)
{
    double         delay;
    gl_request_t  *r;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "attempt to pass %d arguments, but accepted 1",
                          lua_gettop(L));
    }

    delay = luaL_checknumber(L, 1);
    if (delay < 0) {
        return luaL_error(L, "invalid sleep duration \"%f\"", delay);
    }

    r = gl_lua_request(L);
    gl_lua_check_context(L, r, GL_CTX_REWRITE | GL_CTX_ACCESS
                               | GL_CTX_CONTENT);

    if (L != r->co_cur->co) {
        return luaL_error(L, "ngx.sleep in a coroutine that "
                          "golapis does not run");
    }

    ev_timer_init(&r->timer, gl_lua_timer_resume, delay, 0);
    r->timer.data = r;
    ev_timer_start(r->worker->loop, &r->timer);

    r->co_op = GL_CO_WAIT;
    r->wait = GL_WAIT_SLEEP;

    return lua_yield(L, 0);
}


void
gl_lua_inject_sleep_api(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_sleep);
    lua_setfield(L, -2, "sleep");
}
