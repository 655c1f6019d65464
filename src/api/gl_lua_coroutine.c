/*
 * coroutine.* inside requests, with lua-nginx-module's semantics: a
 * coroutine a request makes may wait (ngx.sleep, ngx.print on a long
 * queue, ngx.flush(true), ngx.req.read_body) or end the request (ngx.exit)
 * like the request's own coroutine.
 *
 * So no coroutine of a task resumes another one itself: coroutine.resume
 * and coroutine.yield ask the core's resume loop (src/lua/gl_co.c) to do
 * it, and a wait suspends the whole chain up to the task's entry
 * coroutine or light thread.
 *
 * Where lua-nginx-module keeps Lua's own functions (no coroutine of ours
 * runs the code, as in init_by_lua, header_filter_by_lua and
 * body_filter_by_lua), so does golapis: each coroutine.* function is a
 * small Lua function that picks one or the other on every call.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_module.h"

#include <lauxlib.h>


/* the coroutine that calls us, in a context that has them */
static gl_co_t *
gl_lua_co_cur(lua_State *L)
{
    gl_co_t  *co;

    (void) gl_lua_check_context(L, GL_CTX_YIELDABLE);

    co = gl_co_self(L);
    if (co == NULL) {
        luaL_error(L, "no parent co ctx found");
    }

    return co;
}


/* 1 where lua-nginx-module uses its coroutine functions: not in init,
   init_worker, or the filters */
static int
gl_lua_co_ours(lua_State *L)
{
    int  phase;

    phase = gl_lua_get_phase();

    lua_pushboolean(L, phase > GL_PHASE_INIT_WORKER
                       && phase != GL_PHASE_HEADER_FILTER
                       && phase != GL_PHASE_BODY_FILTER);
    return 1;
}


static int
gl_lua_co_create(lua_State *L)
{
    luaL_argcheck(L, lua_isfunction(L, 1) && !lua_iscfunction(L, 1), 1,
                  "Lua function expected");

    (void) gl_co_new(gl_lua_co_cur(L), 1, GL_CO_USER);

    return 1;
}


/* coroutine.resume(co, ...), and a coroutine.wrap function's call */
static int
gl_lua_co_resume(lua_State *L)
{
    gl_co_t  *cur, *u;

    luaL_argcheck(L, lua_tothread(L, 1) != NULL, 1, "coroutine expected");

    cur = gl_lua_co_cur(L);

    u = gl_co_find(L, 1, cur->task);
    if (u == NULL) {
        return luaL_error(L, "no co ctx found");
    }

    if (u->status != GL_CO_SUSPENDED) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot resume %s coroutine",
                        gl_co_status_names[u->status]);
        return 2;
    }

    /* the loop passes the arguments on to u */
    lua_remove(L, 1);

    return gl_co_resume_user(cur, u, lua_gettop(L));
}


static int
gl_lua_co_yield(lua_State *L)
{
    return gl_co_yield_user(gl_lua_co_cur(L), lua_gettop(L));
}


static int
gl_lua_co_wrap_call(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);

    return gl_lua_co_resume(L);
}


static int
gl_lua_co_wrap(lua_State *L)
{
    gl_co_t  *u;

    luaL_argcheck(L, lua_isfunction(L, 1) && !lua_iscfunction(L, 1), 1,
                  "Lua function expected");

    u = gl_co_new(gl_lua_co_cur(L), 1, GL_CO_USER);
    u->wrap = 1;

    lua_pushcclosure(L, gl_lua_co_wrap_call, 1);

    return 1;
}


static int
gl_lua_co_status(lua_State *L)
{
    gl_co_t  *cur, *u;

    luaL_argcheck(L, lua_tothread(L, 1) != NULL, 1, "coroutine expected");

    cur = gl_lua_co_cur(L);
    u = gl_co_find(L, 1, cur->task);

    lua_pushstring(L, gl_co_status_names[u ? u->status : GL_CO_DEAD]);

    return 1;
}


/* the table that replaces the global coroutine: lua/golapis/coroutine.lua
   builds it around these */

static void
gl_lua_co_inject(lua_State *L)
{
    static const luaL_Reg  ours[] = {
        { "__create", gl_lua_co_create },
        { "__wrap", gl_lua_co_wrap },
        { "__resume", gl_lua_co_resume },
        { "__yield", gl_lua_co_yield },
        { "__status", gl_lua_co_status },
        { NULL, NULL }
    };
    const luaL_Reg  *f;

    if (gl_lua_lib_load(L, "golapis.coroutine", NULL) != GL_OK) {
        /* our own chunk: only a lack of memory (or a broken copy in
           GOLAPIS_LUA_LIB's dir) gets here */
        gl_log_error(GL_LOG_ALERT, 0, "coroutine api: %s",
                     lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }

    lua_pushcfunction(L, gl_lua_co_ours);
    lua_getglobal(L, "coroutine");
    lua_createtable(L, 0, 16);

    for (f = ours; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }

    if (lua_pcall(L, 3, 0, 0) != 0) {
        gl_log_error(GL_LOG_ALERT, 0, "coroutine api: %s",
                     lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}


gl_module_t  gl_lua_coroutine_module = {
    .name = "coroutine",
    .inject = gl_lua_co_inject,
};
