/*
 * The output API: ngx.say, ngx.print, ngx.flush, ngx.exit, ngx.status and
 * ngx.header.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_request.h"
#include "gl_worker.h"

#include <strings.h>

#define GL_LUA_HEADER_MAX  256


/*
 * Like lua-nginx-module: a first pass checks the arguments and sums their
 * sizes, a second copies them into one buffer.
 */
static size_t
gl_lua_arg_size(lua_State *L, int idx, int arg, const char *fname,
    int depth)
{
    int     i, n;
    size_t  len, size;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        lua_tolstring(L, idx, &len);
        return len;

    case LUA_TNUMBER:
        lua_pushvalue(L, idx);
        lua_tolstring(L, -1, &len);
        lua_pop(L, 1);
        return len;

    case LUA_TNIL:
        return 3;

    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? 4 : 5;

    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            return 4;
        }
        break;

    case LUA_TTABLE:
        if (depth > 100) {
            return luaL_error(L, "bad argument #%d to '%s' (table nested too "
                              "deep)", arg, fname);
        }

        /* only arrays: every key a positive integer */
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TNUMBER
                || lua_tonumber(L, -1) != (lua_Number) lua_tointeger(L, -1)
                || lua_tointeger(L, -1) < 1)
            {
                return luaL_error(L, "bad argument #%d to '%s' (non-array "
                                  "table found)", arg, fname);
            }
        }

        n = (int) lua_objlen(L, idx);
        size = 0;

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            size += gl_lua_arg_size(L, lua_gettop(L), arg, fname, depth + 1);
            lua_pop(L, 1);
        }

        return size;

    default:
        break;
    }

    return luaL_error(L, "bad argument #%d to '%s' (string, number, boolean, "
                      "nil, ngx.null, or array table expected, got %s)", arg,
                      fname, luaL_typename(L, idx));
}


static u_char *
gl_lua_arg_copy(lua_State *L, int idx, u_char *dst)
{
    int          i, n;
    size_t       len;
    const char  *s;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
    case LUA_TNUMBER:
        lua_pushvalue(L, idx);
        s = lua_tolstring(L, -1, &len);
        memcpy(dst, s, len);
        lua_pop(L, 1);
        return dst + len;

    case LUA_TNIL:
        return (u_char *) memcpy(dst, "nil", 3) + 3;

    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) {
            return (u_char *) memcpy(dst, "true", 4) + 4;
        }
        return (u_char *) memcpy(dst, "false", 5) + 5;

    case LUA_TLIGHTUSERDATA:
        return (u_char *) memcpy(dst, "null", 4) + 4;

    case LUA_TTABLE:
        n = (int) lua_objlen(L, idx);

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            dst = gl_lua_arg_copy(L, lua_gettop(L), dst);
            lua_pop(L, 1);
        }

        return dst;

    default:
        return dst;
    }
}


static int
gl_lua_print_impl(lua_State *L, int newline, const char *fname)
{
    int            i, nargs;
    size_t         size;
    u_char        *buf, *p;
    gl_request_t  *r;

    r = gl_lua_request(L);
    nargs = lua_gettop(L);

    if (r->finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "response already finished");
        return 2;
    }

    size = newline ? 1 : 0;

    for (i = 1; i <= nargs; i++) {
        size += gl_lua_arg_size(L, i, i, fname, 0);
    }

    if (nargs == 1 && !newline && lua_type(L, 1) == LUA_TSTRING) {
        /* the common case needs no copy */
        buf = (u_char *) lua_tostring(L, 1);
        lua_pushvalue(L, 1);

    } else {
        buf = lua_newuserdata(L, size ? size : 1);
        p = buf;

        for (i = 1; i <= nargs; i++) {
            p = gl_lua_arg_copy(L, i, p);
        }

        if (newline) {
            *p = '\n';
        }
    }

    if (L != r->co) {
        /* a user coroutine cannot wait for the queue yet */
        if (gl_request_output(r, buf, size) != GL_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "no memory");
            return 2;
        }

        lua_pushinteger(L, 1);
        return 1;
    }

    r->pending = buf;
    r->pending_len = size;

    if (gl_lua_write_pending(r) == GL_OK) {
        lua_pushinteger(L, 1);
        return 1;
    }

    /* the queue is long: wait for it to drain, keeping the data alive */
    r->pending_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->co_op = GL_CO_WAIT;
    r->wait = GL_WAIT_DRAIN;

    return lua_yield(L, 0);
}


static int
gl_lua_say(lua_State *L)
{
    return gl_lua_print_impl(L, 1, "say");
}


static int
gl_lua_print(lua_State *L)
{
    return gl_lua_print_impl(L, 0, "print");
}


static int
gl_lua_flush(lua_State *L)
{
    gl_request_t  *r;

    r = gl_lua_request(L);

    if (r->finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "response already finished");
        return 2;
    }

    if (!r->header_sent) {
        gl_request_output(r, (const u_char *) "", 0);
    }

    gl_request_flush(r);
    gl_conn_write(r->conn);

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_lua_exit(lua_State *L)
{
    gl_request_t  *r;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting one argument");
    }

    r = gl_lua_request(L);
    r->exit_status = (int) luaL_checkinteger(L, 1);

    if (L != r->co) {
        return luaL_error(L, "ngx.exit in a user coroutine is not "
                          "supported yet");
    }

    return gl_lua_yield_exit(L, r);
}


/* ngx.status, through the ngx table's metatable */

static int
gl_lua_ngx_index(lua_State *L)
{
    size_t         len;
    const char    *key;
    gl_request_t  *r;

    key = lua_tolstring(L, 2, &len);

    if (key != NULL && len == 6 && memcmp(key, "status", 6) == 0) {
        r = gl_lua_request(L);
        lua_pushinteger(L, r->status);
        return 1;
    }

    lua_pushnil(L);
    return 1;
}


static int
gl_lua_ngx_newindex(lua_State *L)
{
    size_t         len;
    lua_Integer    status;
    const char    *key;
    gl_request_t  *r;

    key = lua_tolstring(L, 2, &len);

    if (key != NULL && len == 6 && memcmp(key, "status", 6) == 0) {
        r = gl_lua_request(L);

        if (r->header_sent) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.status after "
                         "sending out response headers");
            return 0;
        }

        status = luaL_checkinteger(L, 3);
        if (status < 100 || status > 999) {
            return luaL_error(L, "invalid HTTP status code %d",
                              (int) status);
        }

        r->status = (int) status;
        return 0;
    }

    lua_rawset(L, 1);
    return 0;
}


/* ngx.header */

static size_t
gl_lua_header_name(lua_State *L, int idx, char *buf)
{
    size_t       len, i;
    const char  *name;

    name = luaL_checklstring(L, idx, &len);

    if (len == 0 || len >= GL_LUA_HEADER_MAX) {
        luaL_error(L, "bad header name");
    }

    for (i = 0; i < len; i++) {
        buf[i] = (name[i] == '_') ? '-' : name[i];

        if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == ':') {
            luaL_error(L, "bad header name");
        }
    }

    buf[len] = '\0';

    return len;
}


static int
gl_lua_header_get(lua_State *L)
{
    int            n;
    char           name[GL_LUA_HEADER_MAX];
    size_t         len, i;
    gl_header_t   *h;
    gl_request_t  *r;

    r = gl_lua_request(L);
    len = gl_lua_header_name(L, 2, name);

    n = 0;
    for (i = 0; i < r->nheaders; i++) {
        h = &r->headers[i];
        if (h->name_len == len && strncasecmp(h->name, name, len) == 0) {
            n++;
        }
    }

    if (n == 0) {
        if (len == 12 && strcasecmp(name, "Content-Type") == 0
            && r->header_sent)
        {
            lua_pushstring(L, r->worker->conf->default_type);
            return 1;
        }

        lua_pushnil(L);
        return 1;
    }

    if (n > 1) {
        lua_createtable(L, n, 0);
    }

    n = 0;
    for (i = 0; i < r->nheaders; i++) {
        h = &r->headers[i];
        if (h->name_len == len && strncasecmp(h->name, name, len) == 0) {
            lua_pushlstring(L, h->value, h->value_len);
            if (lua_istable(L, -2)) {
                lua_rawseti(L, -2, ++n);
            }
        }
    }

    return 1;
}


static void
gl_lua_header_check_value(lua_State *L, const char *v, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (v[i] == '\r' || v[i] == '\n') {
            luaL_error(L, "header value contains a CR or LF");
        }
    }
}


static int
gl_lua_header_set(lua_State *L)
{
    int            i, n;
    char           name[GL_LUA_HEADER_MAX];
    size_t         len, vlen;
    const char    *v;
    gl_request_t  *r;

    r = gl_lua_request(L);
    len = gl_lua_header_name(L, 2, name);

    if (r->header_sent) {
        gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.header.%s after "
                     "sending out response headers", name);
        return 0;
    }

    switch (lua_type(L, 3)) {

    case LUA_TNIL:
        gl_request_set_header(r, name, len, NULL, 0, 1);
        return 0;

    case LUA_TSTRING:
    case LUA_TNUMBER:
        v = lua_tolstring(L, 3, &vlen);
        gl_lua_header_check_value(L, v, vlen);
        if (gl_request_set_header(r, name, len, v, vlen, 1) != GL_OK) {
            return luaL_error(L, "no memory");
        }
        return 0;

    case LUA_TTABLE:
        gl_request_set_header(r, name, len, NULL, 0, 1);
        n = (int) lua_objlen(L, 3);

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i);
            v = lua_tolstring(L, -1, &vlen);
            if (v == NULL) {
                return luaL_error(L, "bad value in the table for header "
                                  "\"%s\"", name);
            }
            gl_lua_header_check_value(L, v, vlen);
            if (gl_request_set_header(r, name, len, v, vlen, 0) != GL_OK) {
                return luaL_error(L, "no memory");
            }
            lua_pop(L, 1);
        }
        return 0;

    default:
        return luaL_error(L, "attempt to set bad value of type %s for "
                          "header \"%s\"", luaL_typename(L, 3), name);
    }
}


void
gl_lua_inject_output_api(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_say);
    lua_setfield(L, -2, "say");
    lua_pushcfunction(L, gl_lua_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, gl_lua_flush);
    lua_setfield(L, -2, "flush");
    lua_pushcfunction(L, gl_lua_exit);
    lua_setfield(L, -2, "exit");

    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");

    /* ngx.header */
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, gl_lua_header_get);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gl_lua_header_set);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "header");

    /* ngx.status */
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, gl_lua_ngx_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gl_lua_ngx_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
}
