/*
 * ngx.sleep: the coroutine waits on a timer of the worker's loop, so the
 * worker serves other requests meanwhile.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_lua.h"
#include "gl_module.h"


static const gl_wait_ops_t  gl_lua_sleep_ops = { "ngx.sleep", NULL, NULL };


static int
gl_lua_sleep(lua_State *L)
{
    double    delay;
    gl_co_t  *co;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "attempt to pass %d arguments, but accepted 1",
                          lua_gettop(L));
    }

    delay = luaL_checknumber(L, 1);
    if (delay < 0) {
        return luaL_error(L, "invalid sleep duration \"%d\"",
                          (int) (delay * 1000));
    }

    (void) gl_lua_check_context(L, GL_CTX_YIELDABLE);

    co = gl_co_self(L);
    if (co == NULL) {
        return luaL_error(L, "ngx.sleep in a coroutine that golapis does "
                          "not run");
    }

    /* as nginx's timers: whole milliseconds; 0 waits for the next turn
       of the loop */
    gl_co_wait(co, &gl_lua_sleep_ops, (double) (long) (delay * 1000) / 1000);

    return gl_co_yield(co);
}


static void
gl_lua_sleep_inject(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_sleep);
    lua_setfield(L, -2, "sleep");
}


gl_module_t  gl_lua_sleep_module = {
    .name = "sleep",
    .inject = gl_lua_sleep_inject,
};
