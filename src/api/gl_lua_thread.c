/*
 * ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill: light threads, as
 * lua-nginx-module's.  The semantics live in the coroutine core
 * (src/lua/gl_co.c: a thread runs at once, its parent goes on when it
 * stops; zombies; the task waits for its threads); here are the argument
 * checks and the values and error strings of the API.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_lua.h"
#include "gl_module.h"


/* the coroutine that calls us, in a context that has threads */
static gl_co_t *
gl_lua_thread_self(lua_State *L)
{
    gl_co_t  *co;

    (void) gl_lua_check_context(L, GL_CTX_YIELDABLE);

    co = gl_co_self(L);
    if (co == NULL) {
        luaL_error(L, "no co ctx found");
    }

    return co;
}


/* the thread at idx, a coroutine of cur's task; raises if unknown */
static gl_co_t *
gl_lua_thread_arg(lua_State *L, gl_co_t *cur, int idx)
{
    gl_co_t  *co;

    luaL_argcheck(L, lua_tothread(L, idx) != NULL, idx,
                  "lua thread expected");

    co = gl_co_find(L, idx, cur->task);
    if (co == NULL || co == &gl_co_gone) {
        luaL_error(L, "no co ctx found");
    }

    return co;
}


static int
gl_lua_thread_spawn(lua_State *L)
{
    int       n;
    gl_co_t  *cur, *th;

    if (gl_lua_get_phase() <= GL_PHASE_INIT) {
        return luaL_error(L, "no request found");
    }

    n = lua_gettop(L);

    luaL_argcheck(L, lua_isfunction(L, 1) && !lua_iscfunction(L, 1), 1,
                  "Lua function expected");

    cur = gl_lua_thread_self(L);

    th = gl_co_new(cur, 1, GL_CO_THREAD);

    /* the thread object in the function's place; the arguments to it */
    lua_replace(L, 1);
    lua_xmove(L, th->L, n - 1);

    return gl_co_spawn(cur, th, n - 1);
}


static int
gl_lua_thread_wait(lua_State *L)
{
    int       i, n;
    gl_co_t  *cur, *th;

    cur = gl_lua_thread_self(L);

    n = lua_gettop(L);
    if (n == 0) {
        return luaL_error(L, "at least one coroutine should be specified");
    }

    for (i = 1; i <= n; i++) {
        th = gl_lua_thread_arg(L, cur, i);

        if (th->kind != GL_CO_THREAD) {
            return luaL_error(L, "attempt to wait on a coroutine that is "
                              "not a user thread");
        }

        if (th->parent != cur) {
            return luaL_error(L, "only the parent coroutine can wait on the "
                              "thread");
        }

        if (th->status == GL_CO_ZOMBIE) {
            return gl_co_thread_take(cur, th);
        }

        if (th->status == GL_CO_DEAD) {
            if (i < n) {
                /* skipped, unless it is the last one */
                continue;
            }

            lua_pushnil(L);
            lua_pushliteral(L, "already waited or killed");
            return 2;
        }

        th->waited = 1;
    }

    return gl_co_thread_wait(cur);
}


static int
gl_lua_thread_kill(lua_State *L)
{
    gl_co_t  *cur, *th;

    cur = gl_lua_thread_self(L);
    th = gl_lua_thread_arg(L, cur, 1);

    if (th->kind != GL_CO_THREAD) {
        lua_pushnil(L);
        lua_pushliteral(L, "not user thread");
        return 2;
    }

    if (th->parent != cur) {
        lua_pushnil(L);
        lua_pushliteral(L, "killer not parent");
        return 2;
    }

    switch (th->status) {

    case GL_CO_ZOMBIE:
        gl_co_reap(th);
        lua_pushnil(L);
        lua_pushliteral(L, "already terminated");
        return 2;

    case GL_CO_DEAD:
        lua_pushnil(L);
        lua_pushliteral(L, "already waited or killed");
        return 2;

    default:
        gl_co_thread_kill(th);
        lua_pushinteger(L, 1);
        return 1;
    }
}


static void
gl_lua_thread_inject(lua_State *L)
{
    lua_createtable(L, 0, 3);

    lua_pushcfunction(L, gl_lua_thread_spawn);
    lua_setfield(L, -2, "spawn");
    lua_pushcfunction(L, gl_lua_thread_wait);
    lua_setfield(L, -2, "wait");
    lua_pushcfunction(L, gl_lua_thread_kill);
    lua_setfield(L, -2, "kill");

    lua_setfield(L, -2, "thread");
}


gl_module_t  gl_lua_thread_module = {
    .name = "thread",
    .inject = gl_lua_thread_inject,
};
