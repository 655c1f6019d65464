/*
 * ngx.config, ngx.worker and os.exit.
 *
 * ngx.config says which lua-nginx-module we behave as (0.10.23, so
 * ngx_lua_version is 10023) and which nginx we compare with (Debian 12's
 * 1.22.1).  ngx.worker describes golapis's worker threads: ids 0..count-1,
 * all in one process, so they share one pid.
 *
 * os.exit() would end that one process, every worker and every request
 * with it (in nginx it ends one worker process, which the master
 * replaces): every Lua state gets one that ends the request instead.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_http.h"
#include "gl_request.h"
#include "gl_module.h"

#include <unistd.h>

#define GL_NGX_LUA_VERSION  10023
#define GL_NGINX_VERSION    1022001


/* the worker's Lua side that runs this; NULL outside the workers */
static gl_vm_t *
gl_lua_misc_worker(void)
{
    return gl_vm_self;
}


static int
gl_lua_config_prefix(lua_State *L)
{
    size_t        len;
    const char   *dir;
    gl_vm_t      *w;

    w = gl_lua_misc_worker();
    dir = (w != NULL) ? w->conf->dir : GL_PREFIX;
    len = strlen(dir);

    /* nginx's prefix ends with a slash */
    lua_pushstring(L, dir);

    if (len == 0 || dir[len - 1] != '/') {
        lua_pushliteral(L, "/");
        lua_concat(L, 2);
    }

    return 1;
}


/* nginx's string starts with a space before each argument; so does ours */
static int
gl_lua_config_configure(lua_State *L)
{
    lua_pushstring(L, GL_CONFIGURE_ARGS[0] != '\0' ? " " GL_CONFIGURE_ARGS
                                                   : "");
    return 1;
}


static int
gl_lua_worker_id(lua_State *L)
{
    gl_vm_t      *w;

    w = gl_lua_misc_worker();

    if (w == NULL) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushinteger(L, w->id);
    return 1;
}


static int
gl_lua_worker_count(lua_State *L)
{
    gl_vm_t      *w;

    w = gl_lua_misc_worker();

    lua_pushinteger(L, (w != NULL) ? w->conf->workers : 1);
    return 1;
}


static int
gl_lua_worker_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer) getpid());
    return 1;
}


/* every worker is a thread of this one process */
static int
gl_lua_worker_pids(lua_State *L)
{
    lua_createtable(L, 1, 0);
    lua_pushinteger(L, (lua_Integer) getpid());
    lua_rawseti(L, -2, 1);
    return 1;
}


/*
 * The worker stops; or the code that asks belongs to a generation of the
 * Lua state that a reload retired (its timers then end: an every loop of
 * old code stops, and the old generation can close).
 */
static int
gl_lua_worker_exiting(lua_State *L)
{
    gl_vm_t       *w;
    gl_lua_gen_t  *g;

    w = gl_lua_misc_worker();
    g = gl_lua_gen_of(L);

    lua_pushboolean(L, (w != NULL && w->exiting) || (g != NULL && g->retired));
    return 1;
}


/* pushes "file:line" of the Lua code that calls us (through pcall and
   other C functions), or "?" */
static const char *
gl_lua_misc_where(lua_State *L)
{
    int         level;
    lua_Debug   ar;

    for (level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            /* a file's whole path, which short_src may cut */
            return lua_pushfstring(L, "%s:%d", ar.source[0] == '@'
                                               ? ar.source + 1
                                               : ar.short_src,
                                   ar.currentline);
        }
    }

    lua_pushliteral(L, "?");

    return lua_tostring(L, -1);
}


/*
 * os.exit([code [, close]]): logs where it was called; in a rewrite,
 * access or content handler it ends the request as ngx.exit(ngx.ERROR)
 * does (a 500 if nothing was sent, else the answer cut short), in a timer
 * it ends the handler; elsewhere (init_by_lua, init_worker_by_lua, the
 * filters, log_by_lua, code golapis does not run as a coroutine) it
 * raises an error.  golapis goes on in every case.
 */
static int
gl_lua_os_exit(lua_State *L)
{
    gl_co_t     *co;
    gl_task_t   *t;
    gl_http_t   *h;
    const char  *where, *call;

    switch (lua_type(L, 1)) {

    case LUA_TNONE:
        lua_pushliteral(L, "os.exit()");
        break;

    case LUA_TNUMBER:
        lua_pushfstring(L, "os.exit(%s)", lua_tostring(L, 1));
        break;

    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, 1) ? "os.exit(true)"
                                              : "os.exit(false)");
        break;

    default:
        lua_pushfstring(L, "os.exit(%s)", luaL_typename(L, 1));
        break;
    }

    call = lua_tostring(L, -1);
    where = gl_lua_misc_where(L);

    t = gl_task_current();
    co = gl_co_self(L);
    h = gl_http_current();

    if (t != NULL && co != NULL
        && (t->context == GL_PHASE_REWRITE || t->context == GL_PHASE_ACCESS
            || t->context == GL_PHASE_CONTENT || t->context == GL_PHASE_TIMER))
    {
        gl_log_error(GL_LOG_ERR, 0, "%s called at %s: golapis does not "
                     "exit, the %s ends", call, where,
                     h != NULL ? "request" : "timer");

        if (h == NULL) {
            return gl_co_exit(co);
        }

        /* ngx.ERROR; after ngx.eof() the script just ends */
        h->exit_status = h->r.finished ? 0 : -1;

        return gl_http_exit(L, h);
    }

    gl_log_error(GL_LOG_ERR, 0, "%s called at %s: golapis does not exit, "
                 "an error is raised", call, where);

    return luaL_error(L, "%s called: golapis does not exit", call);
}


static void
gl_lua_misc_inject(lua_State *L)
{
    /* ngx.config */
    lua_createtable(L, 0, 6);

    lua_pushboolean(L, GL_DEBUG);
    lua_setfield(L, -2, "debug");
    lua_pushcfunction(L, gl_lua_config_prefix);
    lua_setfield(L, -2, "prefix");
    lua_pushinteger(L, GL_NGINX_VERSION);
    lua_setfield(L, -2, "nginx_version");
    lua_pushinteger(L, GL_NGX_LUA_VERSION);
    lua_setfield(L, -2, "ngx_lua_version");
    lua_pushcfunction(L, gl_lua_config_configure);
    lua_setfield(L, -2, "nginx_configure");
    lua_pushliteral(L, "http");
    lua_setfield(L, -2, "subsystem");

    lua_setfield(L, -2, "config");

    /* ngx.worker */
    lua_createtable(L, 0, 5);

    lua_pushcfunction(L, gl_lua_worker_id);
    lua_setfield(L, -2, "id");
    lua_pushcfunction(L, gl_lua_worker_count);
    lua_setfield(L, -2, "count");
    lua_pushcfunction(L, gl_lua_worker_pid);
    lua_setfield(L, -2, "pid");
    lua_pushcfunction(L, gl_lua_worker_pids);
    lua_setfield(L, -2, "pids");
    lua_pushcfunction(L, gl_lua_worker_exiting);
    lua_setfield(L, -2, "exiting");

    lua_setfield(L, -2, "worker");

    /* os is package.loaded.os too: require "os" gets it as well */
    lua_getglobal(L, "os");

    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, gl_lua_os_exit);
        lua_setfield(L, -2, "exit");
    }

    lua_pop(L, 1);
}


gl_module_t  gl_lua_misc_module = {
    .name = "misc",
    .inject = gl_lua_misc_inject,
};
