/*
 * The output API: ngx.say, ngx.print, ngx.flush, ngx.exit, ngx.status,
 * ngx.header and ngx.resp.
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

#define GL_LUA_MAX_HEADERS  100


/* nginx's header filter drops the body: a HEAD request, a 204, a 304 */
static int
gl_lua_header_only(gl_request_t *r)
{
    if (!r->header_sent) {
        return 0;
    }

    if (gl_request_is_head(r)) {
        return 1;
    }

    /* ngx.resp.set_status's reason makes nginx skip its status checks */
    return r->reason == NULL && (r->status == 204 || r->status == 304);
}


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


/*
 * The header goes out now if it has not yet (ngx.send_headers, and
 * ngx.print with nothing to print): ngx.flush() then has no body data to
 * send.  Pushes what the API function returns.
 */
static int
gl_lua_send_header(lua_State *L, gl_http_t *h)
{
    gl_request_t  *r;

    r = &h->r;

    if (!r->header_sent && !r->finished) {
        if (gl_request_send_header_now(r) != GL_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "nginx output filter error");
            return 2;
        }

        if (r->header_sent) {
            /* out, with no body data yet */
            h->bare = 1;
        }

        gl_request_write(r);
    }

    lua_pushinteger(L, 1);
    return 1;
}


/* a body that can take no more (a HEAD, or after ngx.eof): ngx.print and
   ngx.flush return nil and why (pushed, 1); else 0 */
static int
gl_lua_output_closed(lua_State *L, gl_request_t *r)
{
    if (gl_lua_header_only(r)) {
        lua_pushnil(L);
        lua_pushliteral(L, "header only");
        return 1;
    }

    if (r->finished) {
        lua_pushnil(L);
        lua_pushliteral(L, "seen eof");
        return 1;
    }

    return 0;
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

    if (gl_lua_output_closed(L, &h->r)) {
        return 2;
    }

    size = newline ? 1 : 0;

    for (i = 1; i <= nargs; i++) {
        size += gl_lua_arg_size(L, i, i, fname, 0);
    }

    if (size == 0) {
        /* as lua-nginx-module: nothing to print still sends the header */
        return gl_lua_send_header(L, h);
    }

    h->bare = 0;

    if (nargs == 1 && !newline && lua_type(L, 1) == LUA_TSTRING) {
        /* the common case needs no copy */
        buf = (u_char *) lua_tostring(L, 1);
        lua_pushvalue(L, 1);

    } else {
        buf = lua_newuserdata(L, size);
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
    int         n, wait;
    gl_http_t  *h;

    n = lua_gettop(L);

    if (n > 1) {
        return luaL_error(L, "attempt to pass %d arguments, but accepted 0 "
                          "or 1", n);
    }

    wait = 0;

    if (n == 1) {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        wait = lua_toboolean(L, 1);
    }

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);

    if (gl_lua_output_closed(L, &h->r)) {
        return 2;
    }

    /* as lua-nginx-module: no header out yet, or (for a flush that does
       not wait) no body data yet */
    if (!h->r.header_sent || (!wait && h->bare)) {
        lua_pushnil(L);
        lua_pushliteral(L, "nothing to flush");
        return 2;
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
    gl_http_t  *h;

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);

    return gl_lua_send_header(L, h);
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


/*
 * ngx.resp.get_headers(max, raw), as lua-nginx-module's: besides the
 * headers the script set, the ones nginx holds elsewhere (Content-Type,
 * Connection and, once the header is out, Transfer-Encoding); they count
 * against max first, and past max the rest is cut and "truncated" is the
 * second value.  Like lua-nginx-module, the cut still lets one header of
 * the script's in when the implicit ones take max or more.
 */
static int
gl_lua_resp_get_headers(lua_State *L)
{
    int            max, raw, n, count, extra;
    char          *buf;
    size_t         i, j, tlen;
    gl_http_t     *h;
    const char    *type;
    gl_header_t   *hd;
    luaL_Buffer    b;
    gl_request_t  *r;

    n = lua_gettop(L);
    max = (n >= 1 && !lua_isnil(L, 1)) ? (int) luaL_checkinteger(L, 1)
                                       : GL_LUA_MAX_HEADERS;
    raw = n >= 2 && lua_toboolean(L, 2);

    h = gl_http_get(L, 0);
    r = &h->r;

    count = 0;

    for (i = 0; i < r->nheaders; i++) {
        hd = &r->headers[i];

        /* nginx keeps Content-Type out of its list */
        if (!(hd->name_len == 12
              && strncasecmp(hd->name, "Content-Type", 12) == 0))
        {
            count++;
        }
    }

    lua_settop(L, 0);
    lua_createtable(L, 0, count + 2);

    if (!raw) {
        /* lookups in any case, "_" for "-", as ngx.req.get_headers */
        luaL_getmetatable(L, "golapis.headers_mt");
        lua_setmetatable(L, -2);
    }

    extra = 0;

    type = gl_http_resp_content_type(r, &tlen);

    if (type != NULL) {
        extra++;
        lua_pushlstring(L, type, tlen);
        lua_setfield(L, -2, "content-type");
    }

    extra++;
    lua_pushstring(L, gl_http_resp_connection(r));
    lua_setfield(L, -2, "connection");

    if (gl_http_resp_chunked(r)) {
        extra++;
        lua_pushliteral(L, "chunked");
        lua_setfield(L, -2, "transfer-encoding");
    }

    n = (max > 0 && count + extra > max);

    if (n) {
        count = max - extra;
    }

    for (i = 0; i < r->nheaders; i++) {
        hd = &r->headers[i];

        if (hd->name_len == 12
            && strncasecmp(hd->name, "Content-Type", 12) == 0)
        {
            continue;
        }

        if (raw) {
            lua_pushlstring(L, hd->name, hd->name_len);

        } else {
            luaL_buffinit(L, &b);

            for (j = 0; j < hd->name_len; j++) {
                buf = luaL_prepbuffer(&b);
                buf[0] = (char) tolower((unsigned char) hd->name[j]);
                luaL_addsize(&b, 1);
            }

            luaL_pushresult(&b);
        }

        gl_http_add_header_value(L, hd->value, hd->value_len);

        if (--count <= 0) {
            break;
        }
    }

    if (n) {
        lua_pushliteral(L, "truncated");
        return 2;
    }

    return 1;
}


static int
gl_lua_ngx_get_phase(lua_State *L)
{
    int  phase;

    static const char  *names[GL_PHASE_MAX] = {
        "init", "init_worker", "rewrite", "access", "content",
        "header_filter", "body_filter", "log", "timer", "exit_worker"
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


/* ngx.ctx: a request's or a timer's (upstream's fake request has one) */
static gl_task_t *
gl_lua_ctx_task(lua_State *L)
{
    gl_task_t  *t;

    t = gl_lua_check_context(L, 0);

    if (t->context == GL_PHASE_INIT_WORKER) {
        luaL_error(L, "no request found");
    }

    return t;
}


/*
 * ngx.exec: an internal redirect to another location of nginx, which
 * golapis, behind FastCGI, has none of; where lua-nginx-module allows it
 * the error says so, elsewhere it is upstream's context error
 */
static int
gl_lua_exec(lua_State *L)
{
    (void) gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);

    return luaL_error(L, "ngx.exec is not supported by golapis: there are "
                      "no nginx locations behind FastCGI (use a script, or "
                      "nginx's own rewrite)");
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
        gl_lua_push_ctx(L, gl_lua_ctx_task(L));
        return 1;
    }

    if (key != NULL && len == 13 && memcmp(key, "is_subrequest", 13) == 0)
    {
        /* no subrequests behind FastCGI */
        (void) gl_http_get(L, 0);
        lua_pushboolean(L, 0);
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
        gl_lua_set_ctx(L, gl_lua_ctx_task(L), 3);
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
    size_t        len, i;
    char         *buf;
    const char   *key;
    luaL_Buffer   b;

    key = lua_tolstring(L, 2, &len);

    if (key == NULL) {
        lua_pushnil(L);
        return 1;
    }

    luaL_buffinit(L, &b);

    for (i = 0; i < len; i++) {
        buf = luaL_prepbuffer(&b);
        buf[0] = (key[i] == '_') ? '-' : (char) tolower((unsigned char)
                                                        key[i]);
        luaL_addsize(&b, 1);
    }

    luaL_pushresult(&b);
    lua_rawget(L, 1);

    return 1;
}


/* tostring(v), through the global tostring as lua-resty-core calls it;
   pushes it */
static const char *
gl_lua_tostring(lua_State *L, int idx, size_t *len)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_pushvalue(L, idx);
        return lua_tolstring(L, -1, len);
    }

    if (idx < 0) {
        idx = lua_gettop(L) + idx + 1;
    }

    lua_getglobal(L, "tostring");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);

    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "'tostring' must return a string");
    }

    return lua_tolstring(L, -1, len);
}


/*
 * The bytes nginx escapes in a header name (lua-nginx-module's
 * ngx_http_lua_escape_uri() with NGX_HTTP_LUA_ESCAPE_HEADER_NAME): the
 * controls, space, "(),/:;<=>?@[\]{} and DEL, and every byte over 0x7f.
 */
static const uint32_t  gl_lua_header_name_escape[] = {
    0xffffffff,     /* 0x00-0x1f */
    0xfc009305,     /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x38000001,     /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0xa8000000,     /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff
};


/*
 * A response header name as lua-nginx-module makes it: tostring(), "_"
 * as "-" (lua_transform_underscores_in_response_headers is on), unsafe
 * bytes %XX.  Pushes it.
 */
static const char *
gl_lua_header_name(lua_State *L, int idx, size_t *len, int transform)
{
    u_char        c;
    size_t        i, n;
    char          esc[4];
    const char   *name;
    luaL_Buffer   b;

    name = gl_lua_tostring(L, idx, &n);

    luaL_buffinit(L, &b);

    for (i = 0; i < n; i++) {
        c = (u_char) name[i];

        if (c == '_' && transform) {
            c = '-';
        }

        if (gl_lua_header_name_escape[c >> 5] & (1U << (c & 0x1f))) {
            snprintf(esc, sizeof(esc), "%%%02X", c);
            luaL_addlstring(&b, esc, 3);
        } else {
            luaL_addchar(&b, (char) c);
        }
    }

    luaL_pushresult(&b);
    lua_remove(L, -2);

    return lua_tolstring(L, -1, len);
}


/*
 * The headers nginx keeps one value of (lua-nginx-module's built-in
 * headers but Cache-Control and Link): setting a table keeps its last
 * value, adding one replaces the value.
 */
static int
gl_lua_header_single(const char *name, size_t len)
{
    size_t  i;

    static const char  *singles[] = {
        "Server", "Date", "Content-Encoding", "Location", "Refresh",
        "Last-Modified", "Content-Range", "Accept-Ranges",
        "WWW-Authenticate", "Expires", "E-Tag", "ETag", "Content-Length",
        "Content-Type"
    };

    for (i = 0; i < gl_nelems(singles); i++) {
        if (strlen(singles[i]) == len && strncasecmp(singles[i], name, len)
                                         == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* nginx's ngx_atoof(): decimal digits only, and no overflow */
static int
gl_lua_content_length_ok(const char *v, size_t len)
{
    size_t    i;
    uint64_t  n;

    if (len == 0) {
        return 0;
    }

    for (i = 0, n = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }

        if (n > ((uint64_t) INT64_MAX - (uint64_t) (v[i] - '0')) / 10) {
            return 0;
        }

        n = n * 10 + (uint64_t) (v[i] - '0');
    }

    return 1;
}


/*
 * One value of a response header, as ngx_http_lua_set_output_header():
 * override replaces the values set before, else it is added (or, for a
 * header that holds one value, replaces it); an empty value clears the
 * header when it overrides and does nothing when added.  GL_DECLINED for
 * a Content-Length nginx refuses, GL_ERROR on no memory.
 */
static int
gl_lua_header_set_one(gl_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen, int override)
{
    int  single;

    single = gl_lua_header_single(name, nlen);

    if (single && nlen == 14 && strncasecmp(name, "Content-Length", 14) == 0
        && vlen != 0 && !gl_lua_content_length_ok(value, vlen))
    {
        return GL_DECLINED;
    }

    if (single && nlen == 12 && strncasecmp(name, "Content-Type", 12) == 0) {
        r->mime_set = 1;
    }

    if (vlen == 0) {
        return override ? gl_request_set_header(r, name, nlen, NULL, 0, 1)
                        : GL_OK;
    }

    return gl_request_set_header(r, name, nlen, value, vlen,
                                 override || single);
}


/*
 * ngx.header[key] = value (override) and ngx.resp.add_header(key, value)
 * as lua-resty-core's set_resp_header with lua-nginx-module's C side: a
 * nil value clears, a table sets its values in turn (tostring() on each),
 * any other value goes through tostring(); names and values are escaped,
 * never refused, but for a Content-Length that is not a number.
 */
static int
gl_lua_header_set_impl(lua_State *L, int kidx, int vidx, int override)
{
    int            i, n, rc;
    size_t         nlen, vlen;
    gl_http_t     *h;
    const char    *name, *v;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
    r = &h->r;

    if (r->header_sent) {
        /* "HEADER" literally, as lua-nginx-module says it */
        gl_log_error(GL_LOG_ERR, 0, "attempt to set ngx.header.HEADER after "
                     "sending out response headers");
        return 0;
    }

    name = gl_lua_header_name(L, kidx, &nlen,
                              r->conf->transform_underscores);

    if (nlen == 0) {
        /* nginx keeps it with a hash of 0: never sent, never found */
        return 0;
    }

    rc = GL_OK;

    if (lua_isnil(L, vidx)) {
        rc = gl_lua_header_set_one(r, name, nlen, NULL, 0, 1);

    } else if (lua_istable(L, vidx)) {
        n = (int) lua_objlen(L, vidx);

        if (n == 0) {
            rc = gl_lua_header_set_one(r, name, nlen, NULL, 0, override);
        }

        for (i = 1; i <= n && rc == GL_OK; i++) {
            lua_rawgeti(L, vidx, i);
            (void) gl_lua_tostring(L, -1, &vlen);
            v = gl_http_escape_header(L, -1, &vlen);
            rc = gl_lua_header_set_one(r, name, nlen, v, vlen,
                                       override && i == 1);
            lua_pop(L, 3);
        }

    } else {
        (void) gl_lua_tostring(L, vidx, &vlen);
        v = gl_http_escape_header(L, -1, &vlen);
        rc = gl_lua_header_set_one(r, name, nlen, v, vlen, override);
        lua_pop(L, 2);
    }

    if (rc == GL_DECLINED) {
        return luaL_error(L, "failed to set header");
    }

    if (rc != GL_OK) {
        return luaL_error(L, "no memory");
    }

    return 0;
}


static int
gl_lua_header_set(lua_State *L)
{
    return gl_lua_header_set_impl(L, 2, 3, 1);
}


/* require("ngx.resp").add_header(key, value): adds, as lua-resty-core's */
static int
gl_lua_resp_add_header(lua_State *L)
{
    (void) gl_http_get(L, 0);

    lua_settop(L, 2);

    if (lua_isnil(L, 2)) {
        luaL_where(L, 1);
        lua_pushliteral(L, "invalid header value");
        lua_concat(L, 2);
        return lua_error(L);
    }

    if (lua_istable(L, 2) && lua_objlen(L, 2) == 0) {
        return 0;
    }

    return gl_lua_header_set_impl(L, 1, 2, 0);
}


/*
 * ngx.header[key]: the values set, one as a string, more as a table (at
 * most 100, as lua-resty-core reads them); Content-Type also as nginx
 * holds it once the header is out
 */
static int
gl_lua_header_get(lua_State *L)
{
    int            n;
    char          *buf;
    size_t         len, i, tlen;
    gl_http_t     *h;
    const char    *key, *type;
    luaL_Buffer    b;
    gl_header_t   *hd;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
    r = &h->r;

    key = gl_lua_tostring(L, 2, &len);

    if (r->conf->transform_underscores && memchr(key, '_', len) != NULL) {
        luaL_buffinit(L, &b);

        for (i = 0; i < len; i++) {
            buf = luaL_prepbuffer(&b);
            buf[0] = (key[i] == '_') ? '-' : key[i];
            luaL_addsize(&b, 1);
        }

        luaL_pushresult(&b);
        key = lua_tolstring(L, -1, &len);
    }

    if (len == 12 && strncasecmp(key, "Content-Type", 12) == 0) {
        type = gl_http_resp_content_type(r, &tlen);

        if (type == NULL) {
            lua_pushnil(L);
        } else {
            lua_pushlstring(L, type, tlen);
        }

        return 1;
    }

    n = 0;

    for (i = 0; i < r->nheaders && n < GL_LUA_MAX_HEADERS; i++) {
        hd = &r->headers[i];

        if (hd->name_len != len || strncasecmp(hd->name, key, len) != 0) {
            continue;
        }

        lua_pushlstring(L, hd->value, hd->value_len);

        if (++n == 2) {
            /* the first two values become a table */
            lua_createtable(L, 4, 0);
            lua_insert(L, -3);
            lua_rawseti(L, -3, 2);
            lua_rawseti(L, -2, 1);

        } else if (n > 2) {
            lua_rawseti(L, -2, n);
        }
    }

    if (n == 0) {
        lua_pushnil(L);
    }

    return 1;
}


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
    lua_pushcfunction(L, gl_lua_exec);
    lua_setfield(L, -2, "exec");
    lua_pushcfunction(L, gl_lua_ngx_get_phase);
    lua_setfield(L, -2, "get_phase");

    /* ngx.resp */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_lua_resp_get_headers);
    lua_setfield(L, -2, "get_headers");
    lua_setfield(L, -2, "resp");

    /* for lua/ngx/resp.lua (require "ngx.resp") */
    gl_lua_push_core(L);
    lua_pushcfunction(L, gl_lua_resp_add_header);
    lua_setfield(L, -2, "resp_add_header");
    lua_pushcfunction(L, gl_lua_resp_set_status);
    lua_setfield(L, -2, "resp_set_status");
    lua_pop(L, 1);

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
