/*
 * coroutine.* inside requests, with lua-nginx-module's semantics: a
 * coroutine a request makes may wait (ngx.sleep, ngx.print on a long
 * queue, ngx.flush(true), ngx.req.read_body) or end the request (ngx.exit)
 * like the request's own coroutine.
 *
 * So no coroutine of a request resumes another one itself: every one is
 * resumed by the request's resume loop (gl_lua_resume).
 * coroutine.resume(co, ...) records co as the request's current coroutine
 * and yields its caller to the loop (GL_CO_RESUME), which resumes co with
 * the arguments; coroutine.yield(...) yields to the loop (GL_CO_YIELD),
 * which resumes the parent with true and the values; a wait yields to the
 * loop, which goes back to libev, and the event resumes the coroutine that
 * waited.  A coroutine's status and parent live in a gl_uco_t, a userdata
 * found through a weak-keyed registry table; the request's own coroutine
 * has one in the request.
 *
 * Where lua-nginx-module keeps Lua's own functions (no request, as in
 * init_by_lua; header_filter_by_lua and body_filter_by_lua), so does
 * golapis: each coroutine.* function is a small Lua function that picks
 * one or the other on every call.
 */
#include "gl_core.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_request.h"

#include <lauxlib.h>


static char  gl_lua_co_map_key;     /* thread -> its gl_uco_t userdata */

static const char  *gl_lua_co_status_names[] = {
    "running", "suspended", "normal", "dead"
};

#define GL_LUA_CO_CTX  (GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT)


/* the request whose coroutine calls us, and its context checked */
static gl_request_t *
gl_lua_co_request(lua_State *L)
{
    gl_request_t  *r;

    r = gl_lua_request(L);
    gl_lua_check_context(L, r, GL_LUA_CO_CTX);

    return r;
}


/*
 * The gl_uco_t of the thread at idx, if it is one of r's coroutines.  One
 * made by a request that has ended is dead to r: gl_lua_co_gone.
 */
static gl_uco_t  gl_lua_co_gone = { NULL, NULL, 0, GL_UCO_DEAD, 0 };

static gl_uco_t *
gl_lua_co_find(lua_State *L, int idx, gl_request_t *r)
{
    gl_uco_t  *u;

    if (lua_tothread(L, idx) == r->co_entry.co) {
        return &r->co_entry;
    }

    lua_pushlightuserdata(L, &gl_lua_co_map_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    u = lua_touserdata(L, -1);
    lua_pop(L, 2);

    if (u != NULL && u->req != r->serial) {
        /* made by another request */
        return &gl_lua_co_gone;
    }

    return u;
}


/* 1 where lua-nginx-module uses its coroutine functions */
static int
gl_lua_co_ours(lua_State *L)
{
    gl_request_t  *r;

    r = gl_lua_current_request();

    lua_pushboolean(L, r != NULL && !r->in_filter
                       && r->phase != GL_PHASE_HEADER_FILTER
                       && r->phase != GL_PHASE_BODY_FILTER);

    return 1;
}


static gl_uco_t *
gl_lua_co_new(lua_State *L, gl_request_t *r)
{
    lua_State  *co;
    gl_uco_t   *u;

    luaL_argcheck(L, lua_isfunction(L, 1) && !lua_iscfunction(L, 1), 1,
                  "Lua function expected");

    co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);

    u = lua_newuserdata(L, sizeof(gl_uco_t));
    u->co = co;
    u->parent = NULL;
    u->req = r->serial;
    u->status = GL_UCO_SUSPENDED;
    u->wrap = 0;

    /* map[co] = u; the thread stays on the stack */
    lua_pushlightuserdata(L, &gl_lua_co_map_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);

    return u;
}


static int
gl_lua_co_create(lua_State *L)
{
    gl_request_t  *r;

    r = gl_lua_co_request(L);
    (void) gl_lua_co_new(L, r);

    return 1;
}


/* coroutine.resume(co, ...), and a coroutine.wrap function's call */
static int
gl_lua_co_resume(lua_State *L)
{
    gl_request_t  *r;
    gl_uco_t      *u, *p;

    luaL_argcheck(L, lua_tothread(L, 1) != NULL, 1, "coroutine expected");

    r = gl_lua_co_request(L);

    p = r->co_cur;
    if (p == NULL || p->co != L) {
        return luaL_error(L, "no parent co ctx found");
    }

    u = gl_lua_co_find(L, 1, r);
    if (u == NULL) {
        return luaL_error(L, "no co ctx found");
    }

    if (u->status != GL_UCO_SUSPENDED) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot resume %s coroutine",
                        gl_lua_co_status_names[u->status]);
        return 2;
    }

    p->status = GL_UCO_NORMAL;
    u->parent = p;
    u->status = GL_UCO_RUNNING;
    r->co_cur = u;
    r->co_op = GL_CO_RESUME;

    /* the loop passes the arguments on to u */
    return lua_yield(L, lua_gettop(L) - 1);
}


static int
gl_lua_co_yield(lua_State *L)
{
    gl_request_t  *r;
    gl_uco_t      *u;

    r = gl_lua_co_request(L);

    u = r->co_cur;
    if (u == NULL || u->co != L) {
        return luaL_error(L, "no co ctx found");
    }

    u->status = GL_UCO_SUSPENDED;

    if (u->parent != NULL) {
        u->parent->status = GL_UCO_RUNNING;
    }

    r->co_op = GL_CO_YIELD;

    return lua_yield(L, lua_gettop(L));
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
    gl_request_t  *r;
    gl_uco_t      *u;

    r = gl_lua_co_request(L);
    u = gl_lua_co_new(L, r);
    u->wrap = 1;

    lua_pushcclosure(L, gl_lua_co_wrap_call, 1);

    return 1;
}


static int
gl_lua_co_status(lua_State *L)
{
    gl_request_t  *r;
    gl_uco_t      *u;

    luaL_argcheck(L, lua_tothread(L, 1) != NULL, 1, "coroutine expected");

    r = gl_lua_co_request(L);
    u = gl_lua_co_find(L, 1, r);

    lua_pushstring(L, gl_lua_co_status_names[u ? u->status : GL_UCO_DEAD]);

    return 1;
}


/*
 * The table that replaces the global coroutine: Lua's own functions under
 * _create, _wrap, _resume, _yield and _status, ours under __create, ...,
 * and create, wrap, resume, yield and status picking one of the two on each
 * call (a tail call, so that a yield crosses no C function); running as
 * Lua's.  The same keys as lua-nginx-module's table.
 */
static const char  gl_lua_co_setup[] =
    "local ours, std, co = ...\n"
    "co.running = std.running\n"
    "for _, k in ipairs({ 'create', 'wrap', 'resume', 'yield', 'status' }) "
    "do\n"
    "    local s, o = std[k], co['__' .. k]\n"
    "    co['_' .. k] = s\n"
    "    co[k] = function(...)\n"
    "        if ours() then\n"
    "            return o(...)\n"
    "        end\n"
    "        return s(...)\n"
    "    end\n"
    "end\n"
    "coroutine = co\n"
    "package.loaded.coroutine = co\n";


void
gl_lua_inject_coroutine_api(lua_State *L)
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

    lua_pushlightuserdata(L, &gl_lua_co_map_key);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    if (luaL_loadbuffer(L, gl_lua_co_setup, sizeof(gl_lua_co_setup) - 1,
                        "=coroutine_api")
        != 0)
    {
        /* our own text: cannot happen */
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


/* the request's own coroutine, as a phase starts it */
void
gl_lua_co_start(gl_request_t *r, lua_State *co)
{
    static _Thread_local uint64_t  serial;

    if (r->serial == 0) {
        r->serial = ++serial;
    }

    r->co_entry.co = co;
    r->co_entry.parent = NULL;
    r->co_entry.req = r->serial;
    r->co_entry.status = GL_UCO_RUNNING;
    r->co_entry.wrap = 0;
    r->co_cur = &r->co_entry;
}


/*
 * u yielded or ended: its parent goes on, with the values at the top of
 * u's stack as what its coroutine.resume returns (after true), or a
 * coroutine.wrap function.  Returns how many values the parent gets.
 */
int
gl_lua_co_back(gl_request_t *r, gl_uco_t *u)
{
    lua_State  *co, *pco;
    gl_uco_t   *p;
    int         n;

    p = u->parent;
    co = u->co;
    pco = p->co;
    n = lua_gettop(co);

    lua_xmove(co, pco, n);

    if (!u->wrap) {
        lua_pushboolean(pco, 1);
        lua_insert(pco, -(n + 1));
        n++;
    }

    u->parent = NULL;
    p->status = GL_UCO_RUNNING;
    r->co_cur = p;

    return n;
}


/*
 * u died of the error at the top of its stack: its parent's
 * coroutine.resume returns false and the error.  A coroutine.wrap
 * function's error is its caller's, as in lua-nginx-module: the caller
 * dies of it too (pcall does not catch it), and so on up.  Returns the
 * number of values for the coroutine that goes on (now r->co_cur), or -1
 * when the error reached the request's own coroutine (r->co_cur then;
 * the error at the top of its stack).
 */
int
gl_lua_co_fail(gl_request_t *r, gl_uco_t *u)
{
    gl_uco_t  *p;

    for ( ;; ) {
        u->status = GL_UCO_DEAD;

        if (u->parent == NULL) {
            r->co_cur = u;
            return -1;
        }

        p = u->parent;
        u->parent = NULL;

        if (!u->wrap) {
            lua_pushboolean(p->co, 0);
            lua_xmove(u->co, p->co, 1);
            p->status = GL_UCO_RUNNING;
            r->co_cur = p;
            return 2;
        }

        lua_settop(p->co, 0);
        lua_xmove(u->co, p->co, 1);
        u = p;
    }
}
