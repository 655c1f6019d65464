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
#include "gl_http.h"
#include "gl_module.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#define GL_LUA_HEADER_MAX  256


/*
 * A number as lua-nginx-module prints it: an int32 as an integer, anything
 * else with "%.14g".  Writes into dst if not NULL; returns the length.
 */
static size_t
gl_lua_num(lua_Number n, u_char *dst)
{
    int   len;
    char  buf[64];

    if (n == (lua_Number) (int32_t) n) {
        len = snprintf(buf, sizeof(buf), "%d", (int) (int32_t) n);
    } else {
        len = snprintf(buf, sizeof(buf), "%.14g", (double) n);
    }

    if (dst != NULL) {
        memcpy(dst, buf, len);
    }

    return len;
}


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
        return gl_lua_num(lua_tonumber(L, idx), NULL);

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
            return luaL_argerror(L, arg, "table nested too deep");
        }

        /* only arrays: every key a positive integer; holes print "nil" */
        n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TNUMBER
                || lua_tonumber(L, -1) != (lua_Number) lua_tointeger(L, -1)
                || lua_tointeger(L, -1) < 1)
            {
                return luaL_argerror(L, arg, "non-array table found");
            }

            n = gl_max(n, (int) lua_tointeger(L, -1));
        }

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

    (void) fname;

    if (depth > 0) {
        return luaL_argerror(L, arg, lua_pushfstring(L, "bad data type %s "
                             "found", luaL_typename(L, idx)));
    }

    return luaL_argerror(L, arg, lua_pushfstring(L, "string, number, "
                         "boolean, nil, ngx.null, or array table expected, "
                         "but got %s", luaL_typename(L, idx)));
}


static u_char *
gl_lua_arg_copy(lua_State *L, int idx, u_char *dst)
{
    int          i, n;
    size_t       len;
    const char  *s;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        memcpy(dst, s, len);
        return dst + len;

    case LUA_TNUMBER:
        return dst + gl_lua_num(lua_tonumber(L, idx), dst);

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
        n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            n = gl_max(n, (int) lua_tointeger(L, -1));
        }

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
    gl_http_t     *h;

    if (gl_lua_get_phase() <= GL_PHASE_INIT) {
        return luaL_error(L, "no request object found");
    }

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);
    nargs = lua_gettop(L);

    if (h->r.finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "seen eof");
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

    return gl_http_print(L, h, buf, size);
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
    int         wait;
    gl_http_t  *h;

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);

    wait = lua_gettop(L) > 0 && lua_toboolean(L, 1);

    if (h->r.finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "seen eof");
        return 2;
    }

    if (!h->r.header_sent) {
        /* nothing printed yet: nginx flushes nothing either */
        lua_pushinteger(L, 1);
        return 1;
    }

    /* nginx's flush passes an empty buffer through the filters */
    gl_http_body_filter(h, (const u_char *) "", 0, 0);
    gl_request_write(&h->r);

    if (wait) {
        return gl_http_flush_wait(L, h);
    }

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_lua_eof(lua_State *L)
{
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);
    r = &h->r;

    if (lua_gettop(L) != 0) {
        return luaL_error(L, "no argument is expected");
    }

    if (r->finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "seen eof");
        return 2;
    }

    gl_request_eof(r);

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_lua_send_headers(lua_State *L)
{
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);
    r = &h->r;

    if (!r->header_sent && !r->finished) {
        if (gl_request_send_header_now(r) != GL_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "nginx output filter error");
            return 2;
        }

        gl_request_write(r);
    }

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_lua_redirect(lua_State *L)
{
    int            n;
    size_t         len;
    lua_Integer    status;
    const char    *uri;
    gl_http_t     *h;
    gl_request_t  *r;

    n = lua_gettop(L);

    if (n != 1 && n != 2) {
        return luaL_error(L, "expecting one or two arguments");
    }

    uri = luaL_checklstring(L, 1, &len);

    if (n == 2) {
        status = luaL_checkinteger(L, 2);

        if (status != 301 && status != 302 && status != 303
            && status != 307 && status != 308)
        {
            return luaL_error(L, "only ngx.HTTP_MOVED_TEMPORARILY, "
                              "ngx.HTTP_MOVED_PERMANENTLY, "
                              "ngx.HTTP_PERMANENT_REDIRECT, "
                              "ngx.HTTP_SEE_OTHER, and "
                              "ngx.HTTP_TEMPORARY_REDIRECT are allowed");
        }

    } else {
        status = 302;
    }

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);
    r = &h->r;

    if (r->header_sent) {
        return luaL_error(L, "attempt to call ngx.redirect after sending out "
                          "the headers");
    }

    if (memchr(uri, '\r', len) || memchr(uri, '\n', len)) {
        return luaL_error(L, "bad redirect uri");
    }

    if (gl_request_set_header(r, "Location", 8, uri, len, 1) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    h->exit_status = (int) status;

    return gl_http_exit(L, h);
}




/* ngx.resp.get_headers(max, raw) */
static int
gl_lua_resp_get_headers(lua_State *L)
{
    int            max, raw, n, count;
    size_t         i, j;
    char           name[GL_LUA_HEADER_MAX];
    gl_header_t   *hd;
    gl_http_t     *h;
    gl_request_t  *r;

    n = lua_gettop(L);
    max = (n >= 1 && !lua_isnil(L, 1)) ? (int) luaL_checkinteger(L, 1) : 100;
    raw = n >= 2 && lua_toboolean(L, 2);

    h = gl_http_get(L, 0);
        r = &h->r;

    lua_createtable(L, 0, (int) r->nheaders);
    count = 0;

    for (i = 0; i < r->nheaders; i++) {
        hd = &r->headers[i];

        if (max > 0 && count >= max) {
            lua_pushliteral(L, "truncated");
            return 2;
        }

        count++;

        for (j = 0; j < hd->name_len && j < sizeof(name) - 1; j++) {
            name[j] = raw ? hd->name[j] : (char) tolower((unsigned char)
                                                        hd->name[j]);
        }

        lua_pushlstring(L, name, j);
        gl_http_add_header_value(L, hd->value, hd->value_len);
    }

    if (!raw) {
        /* lookups in any case, "_" for "-", as ngx.req.get_headers */
        luaL_getmetatable(L, "golapis.headers_mt");
        lua_setmetatable(L, -2);
    }

    return 1;
}


static int
gl_lua_ngx_get_phase(lua_State *L)
{
    int  phase;

    static const char  *names[GL_PHASE_MAX] = {
        "init", "init_worker", "rewrite", "access", "content",
        "header_filter", "body_filter", "log", "timer"
    };

    phase = gl_lua_get_phase();

    if (phase < 0) {
        return luaL_error(L, "no request found");
    }

    lua_pushstring(L, names[phase]);
    return 1;
}


static int
gl_lua_exit(lua_State *L)
{
    int            status;
    gl_co_t       *co;
    gl_task_t     *t;
    gl_http_t     *h;
    gl_request_t  *r;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting one argument");
    }

    t = gl_lua_check_context(L, GL_CTX_REWRITE | GL_CTX_ACCESS
                                | GL_CTX_CONTENT | GL_CTX_HEADER_FILTER
                                | GL_CTX_TIMER);
    status = (int) luaL_checkinteger(L, 1);

    if (t->context == GL_PHASE_TIMER) {
        /* a timer's handler just ends */
        co = gl_co_self(L);
        if (co == NULL) {
            return luaL_error(L, "attempt to exit in a coroutine that "
                              "golapis does not run");
        }

        return gl_co_exit(co);
    }

    h = gl_http_get(L, 0);
    r = &h->r;
    h->exit_status = status;

    if (t->context == GL_PHASE_HEADER_FILTER) {
        /*
         * as lua-nginx-module: ngx.exit(ngx.OK) does not even stop the
         * filter; a status >= 300 ends it, and that status's error page
         * goes out instead of the answer
         */
        if (h->exit_status < 300) {
            return 0;
        }

        return gl_http_exit(L, h);
    }

    if (r->header_sent && h->exit_status >= 300 && h->exit_status != 408
        && h->exit_status != 499 && h->exit_status != 444)
    {
        if (h->exit_status != r->status) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to set status %d via "
                         "ngx.exit after sending out the response status %d",
                         h->exit_status, r->status);
        }

        h->exit_status = 200;
    }

    if (r->finished && h->exit_status >= 0) {
        /* after ngx.eof(): just end the script */
        h->exit_status = 0;
    }

    return gl_http_exit(L, h);
}


/* ngx.status, through the ngx table's metatable */

static int
gl_lua_ngx_index(lua_State *L)
{
    size_t         len;
    const char    *key;
    gl_http_t     *h;
    gl_request_t  *r;

    key = lua_tolstring(L, 2, &len);

    if (key != NULL && len == 6 && memcmp(key, "status", 6) == 0) {
        h = gl_http_get(L, 0);
        r = &h->r;
        lua_pushinteger(L, r->status);
        return 1;
    }

    if (key != NULL && len == 3 && memcmp(key, "ctx", 3) == 0) {
        h = gl_http_get(L, 0);
        r = &h->r;
        gl_http_push_ctx(L, h);
        return 1;
    }

    if (key != NULL && len == 12 && memcmp(key, "headers_sent", 12) == 0) {
        h = gl_http_get(L, 0);
        r = &h->r;
        lua_pushboolean(L, r->header_sent);
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
    gl_http_t     *h;
    gl_request_t  *r;

    key = lua_tolstring(L, 2, &len);

    if (key != NULL && len == 6 && memcmp(key, "status", 6) == 0) {
        h = gl_http_get(L, 0);
        r = &h->r;

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

    if (key != NULL && len == 3 && memcmp(key, "ctx", 3) == 0) {
        h = gl_http_get(L, 0);
        r = &h->r;
        gl_http_set_ctx(L, h, 3);
        return 0;
    }

    lua_rawset(L, 1);
    return 0;
}


/* ngx.header */

/* __index of header tables: lower-cased, "_" as "-" */
static int
gl_lua_headers_index(lua_State *L)
{
    size_t       len, i;
    char         buf[GL_LUA_HEADER_MAX];
    const char  *key;

    key = lua_tolstring(L, 2, &len);

    if (key == NULL || len >= sizeof(buf)) {
        lua_pushnil(L);
        return 1;
    }

    for (i = 0; i < len; i++) {
        buf[i] = (key[i] == '_') ? '-' : (char) tolower((unsigned char)
                                                        key[i]);
    }

    lua_pushlstring(L, buf, len);
    lua_rawget(L, 1);

    return 1;
}


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
    gl_header_t   *hd;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
        r = &h->r;
    len = gl_lua_header_name(L, 2, name);

    n = 0;
    for (i = 0; i < r->nheaders; i++) {
        hd = &r->headers[i];
        if (hd->name_len == len && strncasecmp(hd->name, name, len) == 0) {
            n++;
        }
    }

    if (n == 0) {
        if (len == 12 && strcasecmp(name, "Content-Type") == 0
            && r->header_sent)
        {
            lua_pushstring(L, r->conf->default_type);
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
        hd = &r->headers[i];
        if (hd->name_len == len && strncasecmp(hd->name, name, len) == 0) {
            lua_pushlstring(L, hd->value, hd->value_len);
            if (lua_istable(L, -2)) {
                lua_rawseti(L, -2, ++n);
            }
        }
    }

    return 1;
}




static int
gl_lua_header_set(lua_State *L)
{
    int            i, n;
    char           name[GL_LUA_HEADER_MAX];
    size_t         len, vlen;
    const char    *v;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
        r = &h->r;
    len = gl_lua_header_name(L, 2, name);

    if (r->header_sent) {
        /* "HEADER" literally, as lua-nginx-module says it */
        gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.header.HEADER after "
                     "sending out response headers");
        return 0;
    }

    if (len == 12 && strcasecmp(name, "Content-Type") == 0) {
        r->mime_set = 1;
    }

    switch (lua_type(L, 3)) {

    case LUA_TNIL:
        gl_request_set_header(r, name, len, NULL, 0, 1);
        return 0;

    case LUA_TSTRING:
    case LUA_TNUMBER:
    case LUA_TBOOLEAN:
        v = gl_http_escape_header(L, 3, &vlen);
        if (gl_request_set_header(r, name, len, v, vlen, 1) != GL_OK) {
            return luaL_error(L, "no memory");
        }
        return 0;

    case LUA_TTABLE:
        gl_request_set_header(r, name, len, NULL, 0, 1);
        n = (int) lua_objlen(L, 3);

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i);
            v = gl_http_escape_header(L, -1, &vlen);
            if (v == NULL) {
                return luaL_error(L, "attempt to set bad value of type %s "
                                  "in a table for header \"%s\"",
                                  luaL_typename(L, -1), name);
            }
            if (gl_request_set_header(r, name, len, v, vlen, 0) != GL_OK) {
                return luaL_error(L, "no memory");
            }
            lua_pop(L, 2);
        }
        return 0;

    default:
        return luaL_error(L, "attempt to set bad value of type %s for "
                          "header \"%s\"", luaL_typename(L, 3), name);
    }
}


/* require("ngx.resp").add_header(key, value): adds, never replaces */
/*
 * require("ngx.resp").set_status(status, reason): the status, with a
 * reason phrase of our choice in the status line
 */
static int
gl_lua_resp_set_status(lua_State *L)
{
    size_t         len;
    lua_Integer    status;
    const char    *reason;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
        r = &h->r;
    status = luaL_checkinteger(L, 1);
    reason = luaL_optlstring(L, 2, NULL, &len);

    if (r->header_sent) {
        gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.status after "
                     "sending out response headers");
        return 0;
    }

    if (status < 100 || status > 999) {
        return luaL_error(L, "invalid HTTP status code %d", (int) status);
    }

    if (reason != NULL && (memchr(reason, '\r', len) != NULL
                           || memchr(reason, '\n', len) != NULL))
    {
        return luaL_error(L, "bad reason");
    }

    r->status = (int) status;

    free(r->reason);
    r->reason = reason ? strndup(reason, len) : NULL;

    return 0;
}


/* tostring(v) */
static const char *
luaL_tolstring_compat(lua_State *L, int idx)
{
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);

    return lua_tostring(L, -1);
}


static int
gl_lua_resp_add_header(lua_State *L)
{
    int            i, n;
    char           name[GL_LUA_HEADER_MAX];
    size_t         len, vlen;
    const char    *v;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
        r = &h->r;

    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushstring(L, luaL_tolstring_compat(L, 1));
        lua_replace(L, 1);
    }

    len = gl_lua_header_name(L, 1, name);

    if (lua_isnoneornil(L, 2)) {
        luaL_where(L, 1);
        lua_pushliteral(L, "invalid header value");
        lua_concat(L, 2);
        return lua_error(L);
    }

    if (r->header_sent) {
        gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.header.HEADER after "
                     "sending out response headers");
        return 0;
    }

    if (!lua_istable(L, 2)) {
        v = gl_http_escape_header(L, 2, &vlen);
        if (v == NULL) {
            lua_getglobal(L, "tostring");
            lua_pushvalue(L, 2);
            lua_call(L, 1, 1);
            v = lua_tolstring(L, -1, &vlen);
        }

        if (gl_request_set_header(r, name, len, v, vlen, 0) != GL_OK) {
            return luaL_error(L, "no memory");
        }

        return 0;
    }

    n = (int) lua_objlen(L, 2);

    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        v = gl_http_escape_header(L, -1, &vlen);
        if (v == NULL) {
            lua_getglobal(L, "tostring");
            lua_pushvalue(L, -3);
            lua_call(L, 1, 1);
            v = lua_tolstring(L, -1, &vlen);
        }
        if (gl_request_set_header(r, name, len, v, vlen, 0) != GL_OK) {
            return luaL_error(L, "no memory");
        }
        lua_settop(L, 2);
    }

    return 0;
}


static void
gl_lua_output_inject(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_say);
    lua_setfield(L, -2, "say");
    lua_pushcfunction(L, gl_lua_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, gl_lua_flush);
    lua_setfield(L, -2, "flush");
    lua_pushcfunction(L, gl_lua_exit);
    lua_setfield(L, -2, "exit");
    lua_pushcfunction(L, gl_lua_eof);
    lua_setfield(L, -2, "eof");
    lua_pushcfunction(L, gl_lua_send_headers);
    lua_setfield(L, -2, "send_headers");
    lua_pushcfunction(L, gl_lua_redirect);
    lua_setfield(L, -2, "redirect");
    lua_pushcfunction(L, gl_lua_ngx_get_phase);
    lua_setfield(L, -2, "get_phase");

    /* ngx.resp */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_lua_resp_get_headers);
    lua_setfield(L, -2, "get_headers");
    lua_setfield(L, -2, "resp");

    /* for lua/ngx/resp.lua (require "ngx.resp") */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_getfield(L, -1, "golapis.core");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "golapis.core");
    }
    lua_pushcfunction(L, gl_lua_resp_add_header);
    lua_setfield(L, -2, "resp_add_header");
    lua_pushcfunction(L, gl_lua_resp_set_status);
    lua_setfield(L, -2, "resp_set_status");
    lua_pop(L, 3);

    /* header tables: lookups in any case, "_" for "-" */
    luaL_newmetatable(L, "golapis.headers_mt");
    lua_pushcfunction(L, gl_lua_headers_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

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


gl_module_t  gl_lua_output_module = {
    .name = "output",
    .inject = gl_lua_output_inject,
};
