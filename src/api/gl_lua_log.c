/*
 * ngx.log, the global print and the level constants, as lua-nginx-module
 * has them; and the C side of lua/ngx/errlog.lua.
 *
 * A line reads "[lua] FILE:LINE: FUNC(): message", then what the running
 * task's log context adds (gl_log.h): inside a request ", client: ...,
 * server: ..., request: "...", host: "..."" as nginx's request log
 * handler adds it, in a timer ", context: ngx.timer" (not at debug level,
 * as in nginx).  The line
 * is built in a buffer on the stack and cut at GL_LOG_LINE_MAX bytes, as
 * nginx cuts its lines at NGX_MAX_ERROR_STR (2048).
 */
#include "gl_core.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"

#include <stdio.h>

typedef struct {
    char    *pos;
    char    *end;
} gl_lua_log_buf_t;


static void
gl_lua_log_add(gl_lua_log_buf_t *b, const char *s, size_t len)
{
    len = gl_min(len, (size_t) (b->end - b->pos));
    memcpy(b->pos, s, len);
    b->pos += len;
}


#define gl_lua_log_add_lit(b, s)  gl_lua_log_add(b, s, sizeof(s) - 1)


/* the line from start to b->pos, with the context's tail (the request's
   ", client: ...", a timer's ", context: ...") but at debug level */
static void
gl_lua_log_write(int level, char *start, gl_lua_log_buf_t *b)
{
    if (level != GL_LOG_DEBUG) {
        b->pos += gl_log_ctx_text(b->pos, b->end - b->pos);
    }

    gl_log_write(level, start, b->pos - start);
}


static void
gl_lua_log_add_number(gl_lua_log_buf_t *b, lua_Number n)
{
    int   len;
    char  buf[64];

    /* as lua-nginx-module: int32 values as integers, else 14 digits */
    if (n >= INT32_MIN && n <= INT32_MAX && n == (lua_Number) (int32_t) n) {
        len = snprintf(buf, sizeof(buf), "%d", (int) (int32_t) n);

    } else {
        len = snprintf(buf, sizeof(buf), "%.14g", (double) n);
    }

    if (len > 0) {
        gl_lua_log_add(b, buf, gl_min((size_t) len, sizeof(buf) - 1));
    }
}


/*
 * Logs the values on the stack (all of it) at level, with the caller's
 * position.  Checks the arguments as lua-nginx-module does, after the
 * level filter as it does.
 */
static int
gl_lua_log_values(lua_State *L, int level)
{
    int             i, n, type;
    char            line[GL_LOG_LINE_MAX], num[32];
    size_t          len;
    lua_Debug       ar;
    const char     *s, *name;
    gl_lua_log_buf_t  b;

    if (level > gl_log_level) {
        return 0;
    }

    n = lua_gettop(L);

    /* the checks first: a bad argument logs nothing */
    for (i = 1; i <= n; i++) {
        type = lua_type(L, i);

        switch (type) {

        case LUA_TNUMBER:
        case LUA_TSTRING:
        case LUA_TNIL:
        case LUA_TBOOLEAN:
        case LUA_TLIGHTUSERDATA:
            break;

        case LUA_TTABLE:
            if (!luaL_callmeta(L, i, "__tostring")) {
                return luaL_argerror(L, i, "expected table to have "
                                     "__tostring metamethod");
            }

            /* lua_tolstring gives NULL for a result of another type,
               which logs as nothing, as in lua-nginx-module */
            if (lua_type(L, -1) != LUA_TSTRING
                && lua_type(L, -1) != LUA_TNUMBER)
            {
                lua_pop(L, 1);
                lua_pushliteral(L, "");
            }

            lua_replace(L, i);
            break;

        default:
            return luaL_argerror(L, i,
                                 lua_pushfstring(L, "string, number, boolean, "
                                                 "or nil expected, got %s",
                                                 lua_typename(L, type)));
        }
    }

    b.pos = line;
    b.end = line + sizeof(line);

    gl_lua_log_add_lit(&b, "[lua] ");

    /* the caller: the basename of its file, its line, its name */
    memset(&ar, 0, sizeof(ar));

    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Snl", &ar)) {
        name = ar.short_src;
        for (s = ar.short_src; *s != '\0'; s++) {
            if (*s == '/' || *s == '\\') {
                name = s + 1;
            }
        }

        gl_lua_log_add(&b, name, strlen(name));
        len = snprintf(num, sizeof(num), ":%d: ",
                       ar.currentline > 0 ? ar.currentline : ar.linedefined);
        gl_lua_log_add(&b, num, gl_min(len, sizeof(num) - 1));

        if (ar.namewhat != NULL && *ar.namewhat != '\0'
            && ar.what != NULL && *ar.what == 'L' && ar.name != NULL)
        {
            gl_lua_log_add(&b, ar.name, strlen(ar.name));
            gl_lua_log_add_lit(&b, "(): ");
        }

    } else {
        gl_lua_log_add_lit(&b, ":0: ");
    }

    for (i = 1; i <= n; i++) {

        switch (lua_type(L, i)) {

        case LUA_TNUMBER:
            gl_lua_log_add_number(&b, lua_tonumber(L, i));
            break;

        case LUA_TSTRING:
            s = lua_tolstring(L, i, &len);
            gl_lua_log_add(&b, s, len);
            break;

        case LUA_TNIL:
            gl_lua_log_add_lit(&b, "nil");
            break;

        case LUA_TBOOLEAN:
            if (lua_toboolean(L, i)) {
                gl_lua_log_add_lit(&b, "true");
            } else {
                gl_lua_log_add_lit(&b, "false");
            }
            break;

        default:
            /* ngx.null (and any light userdata) */
            gl_lua_log_add_lit(&b, "null");
            break;
        }
    }

    gl_lua_log_write(level, line, &b);

    return 0;
}


static int
gl_lua_ngx_log(lua_State *L)
{
    int  level;

    level = luaL_checkint(L, 1);

    if (level < GL_LOG_STDERR || level > GL_LOG_DEBUG) {
        return luaL_argerror(L, 1, lua_pushfstring(L, "bad log level: %d",
                                                   level));
    }

    /* the values only: their argument numbers in errors are one lower, as
       in lua-nginx-module */
    lua_remove(L, 1);

    return gl_lua_log_values(L, level);
}


static int
gl_lua_print(lua_State *L)
{
    return gl_lua_log_values(L, GL_LOG_NOTICE);
}


/* for lua/ngx/errlog.lua */

static int
gl_lua_errlog_sys_filter_level(lua_State *L)
{
    lua_pushinteger(L, gl_log_level);
    return 1;
}


/* raw_log(level, msg): false for a bad level; errlog.lua checks types */
static int
gl_lua_errlog_raw_log(lua_State *L)
{
    int              level;
    char             line[GL_LOG_LINE_MAX];
    size_t           len;
    const char      *msg;
    gl_lua_log_buf_t  b;

    level = (int) lua_tointeger(L, 1);
    msg = lua_tolstring(L, 2, &len);

    if (level < GL_LOG_STDERR || level > GL_LOG_DEBUG || msg == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }

    lua_pushboolean(L, 1);

    if (level > gl_log_level) {
        return 1;
    }

    b.pos = line;
    b.end = line + sizeof(line);

    gl_lua_log_add(&b, msg, len);

    gl_lua_log_write(level, line, &b);

    return 1;
}


static void
gl_lua_log_inject(lua_State *L)
{
    static const char  *levels[] = {
        "STDERR", "EMERG", "ALERT", "CRIT", "ERR", "WARN", "NOTICE", "INFO",
        "DEBUG"
    };

    int  i;

    for (i = 0; i < (int) gl_nelems(levels); i++) {
        lua_pushinteger(L, i);
        lua_setfield(L, -2, levels[i]);
    }

    lua_pushcfunction(L, gl_lua_ngx_log);
    lua_setfield(L, -2, "log");

    lua_pushcfunction(L, gl_lua_print);
    lua_setglobal(L, "print");

    /* the C half of ngx.errlog, for lua/ngx/errlog.lua only */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, gl_lua_errlog_sys_filter_level);
    lua_setfield(L, -2, "get_sys_filter_level");
    lua_pushcfunction(L, gl_lua_errlog_raw_log);
    lua_setfield(L, -2, "raw_log");
    lua_setfield(L, -2, "golapis.errlog");
    lua_pop(L, 2);
}


gl_module_t  gl_lua_log_module = {
    .name = "log",
    .inject = gl_lua_log_inject,
};
