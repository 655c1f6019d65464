/*
 * ngx.config and ngx.worker.
 *
 * ngx.config says which lua-nginx-module we behave as (0.10.23, so
 * ngx_lua_version is 10023) and which nginx we compare with (Debian 12's
 * 1.22.1).  ngx.worker describes golapis's worker threads: ids 0..count-1,
 * all in one process, so they share one pid.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_lua.h"
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


static int
gl_lua_worker_exiting(lua_State *L)
{
    gl_vm_t      *w;

    w = gl_lua_misc_worker();

    lua_pushboolean(L, w != NULL && w->exiting);
    return 1;
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
}


gl_module_t  gl_lua_misc_module = {
    .name = "misc",
    .inject = gl_lua_misc_inject,
};
