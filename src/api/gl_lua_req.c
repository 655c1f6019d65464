/*
 * ngx.req: the request as nginx passed it in FastCGI params, and its body
 * as it arrives in STDIN records.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_request.h"
#include "gl_http.h"
#include "gl_module.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define GL_REQ_MAX_ARGS     100
#define GL_REQ_MAX_HEADERS  100

static const struct {
    int          id;
    const char  *name;
} gl_req_methods[] = {
    { 0x0002, "GET" }, { 0x0004, "HEAD" }, { 0x0008, "POST" },
    { 0x0010, "PUT" }, { 0x0020, "DELETE" }, { 0x0040, "MKCOL" },
    { 0x0080, "COPY" }, { 0x0100, "MOVE" }, { 0x0200, "OPTIONS" },
    { 0x0400, "PROPFIND" }, { 0x0800, "PROPPATCH" }, { 0x1000, "LOCK" },
    { 0x2000, "UNLOCK" }, { 0x4000, "PATCH" }, { 0x8000, "TRACE" },
};


/* the request (its FastCGI side: first in its gl_http_t) */
static gl_request_t *
gl_req_get(lua_State *L)
{
    return &gl_http_get(L, 0)->r;
}

#define gl_req_http(r)   ((gl_http_t *) (r))


static int
gl_req_get_method(lua_State *L)
{
    gl_request_t       *r;
    const gl_param_t   *p;

    r = gl_req_get(L);

    if (r->method != NULL) {
        lua_pushstring(L, r->method);
        return 1;
    }

    p = gl_request_param(r, "REQUEST_METHOD", 14);
    if (p == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, p->value, p->value_len);
    }

    return 1;
}


static int
gl_req_set_method(lua_State *L)
{
    size_t         i;
    lua_Integer    id;
    gl_request_t  *r;

    if (lua_type(L, 1) != LUA_TNUMBER) {
        return luaL_error(L, "bad method number");
    }

    id = lua_tointeger(L, 1);
    r = gl_req_get(L);
    (void) gl_lua_check_context(L, GL_CTX_REWRITE | GL_CTX_ACCESS
                               | GL_CTX_CONTENT | GL_CTX_HEADER_FILTER
                               | GL_CTX_BODY_FILTER | GL_CTX_LOG);

    for (i = 0; i < gl_nelems(gl_req_methods); i++) {
        if (gl_req_methods[i].id == id) {
            free(r->method);
            r->method = strdup(gl_req_methods[i].name);
            if (r->method == NULL) {
                return luaL_error(L, "no memory");
            }
            return 0;
        }
    }

    return luaL_error(L, "unsupported HTTP method: %d", (int) id);
}


/* "%41+b" -> "A b", in place; returns the new length */
static size_t
gl_req_unescape(char *s, size_t len)
{
    int     hi, lo;
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        if (s[i] == '+') {
            s[n++] = ' ';

        } else if (s[i] == '%' && i + 2 < len
                   && isxdigit((unsigned char) s[i + 1])
                   && isxdigit((unsigned char) s[i + 2]))
        {
            hi = isdigit((unsigned char) s[i + 1])
                 ? s[i + 1] - '0' : (tolower((unsigned char) s[i + 1]) - 'a'
                                     + 10);
            lo = isdigit((unsigned char) s[i + 2])
                 ? s[i + 2] - '0' : (tolower((unsigned char) s[i + 2]) - 'a'
                                     + 10);
            s[n++] = (char) (hi * 16 + lo);
            i += 2;

        } else {
            s[n++] = s[i];
        }
    }

    return n;
}


/*
 * Parses "a=1&b&a=2" into the table on top: repeated keys give arrays,
 * bare keys true.  Returns the number of args, or -1 when truncated at
 * max (0: no limit).
 */
static int
gl_req_parse_args(lua_State *L, const char *s, size_t len, int max)
{
    int          count;
    char        *buf, *p, *end, *next, *eq;
    size_t       klen, vlen;

    buf = malloc(len + 1);
    if (buf == NULL) {
        luaL_error(L, "no memory");
        return 0;
    }

    if (len) {
        memcpy(buf, s, len);
    }

    p = buf;
    end = buf + len;
    count = 0;

    while (p < end) {
        next = memchr(p, '&', end - p);
        if (next == NULL) {
            next = end;
        }

        if (next == p) {
            p = next + 1;
            continue;
        }

        if (max > 0 && count >= max) {
            free(buf);
            return -1;
        }

        eq = memchr(p, '=', next - p);

        klen = gl_req_unescape(p, (eq ? eq : next) - p);
        lua_pushlstring(L, p, klen);

        if (eq != NULL) {
            vlen = gl_req_unescape(eq + 1, next - eq - 1);
            lua_pushlstring(L, eq + 1, vlen);
        } else {
            lua_pushboolean(L, 1);
        }

        count++;

        if (klen == 0 && eq != NULL) {
            /* "=value": nginx skips an empty key */
            lua_pop(L, 2);
            count--;
            p = next + 1;
            continue;
        }

        /* key value */
        lua_pushvalue(L, -2);
        lua_rawget(L, -4);

        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_rawset(L, -3);

        } else if (lua_istable(L, -1)) {
            lua_insert(L, -2);
            lua_rawseti(L, -2, (int) lua_objlen(L, -2) + 1);
            lua_pop(L, 2);

        } else {
            lua_createtable(L, 4, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 2);
            lua_rawset(L, -3);
        }

        p = next + 1;
    }

    free(buf);

    return count;
}


static int
gl_req_max(lua_State *L, int idx, int def)
{
    if (lua_gettop(L) < idx || lua_isnil(L, idx)) {
        return def;
    }

    return (int) luaL_checkinteger(L, idx);
}


static int
gl_req_get_uri_args(lua_State *L)
{
    int            max;
    size_t         len;
    const char    *args;
    gl_request_t  *r;

    max = gl_req_max(L, 1, GL_REQ_MAX_ARGS);
    r = gl_req_get(L);

    args = gl_http_args(gl_req_http(r), &len);

    if (lua_istable(L, 2)) {
        /* a table to reuse, as lua-resty-core allows: emptied first */
        lua_settop(L, 2);
        lua_pushnil(L);
        while (lua_next(L, 2) != 0) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, 2);
        }
        lua_replace(L, 1);
        lua_settop(L, 1);

    } else {
        lua_settop(L, 0);
        lua_createtable(L, 0, 4);
    }

    if (gl_req_parse_args(L, args, len, max) < 0) {
        lua_pushliteral(L, "truncated");
        return 2;
    }

    return 1;
}


static int
gl_req_set_uri_args(lua_State *L)
{
    size_t         len;
    const char    *s;
    gl_request_t  *r;

    r = gl_req_get(L);

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 argument but seen %d",
                          lua_gettop(L));
    }

    switch (lua_type(L, 1)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
        break;

    case LUA_TTABLE:
        lua_getglobal(L, "ngx");
        lua_getfield(L, -1, "encode_args");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        lua_replace(L, 1);
        break;

    default:
        return luaL_error(L, "Bad args type: %s", luaL_typename(L, 1));
    }

    s = lua_tolstring(L, 1, &len);

    free(r->args);
    r->args = strndup(s, len);
    if (r->args == NULL) {
        return luaL_error(L, "no memory");
    }

    return 0;
}


static int
gl_req_set_uri(lua_State *L)
{
    int            n;
    size_t         len;
    const char    *uri;
    gl_request_t  *r;

    n = lua_gettop(L);

    if (n < 1 || n > 3) {
        return luaL_error(L, "expecting 1, 2 or 3 arguments but seen %d", n);
    }

    r = gl_req_get(L);
    uri = luaL_checklstring(L, 1, &len);

    if (len == 0) {
        return luaL_error(L, "attempt to use zero-length uri");
    }

    if (!(n >= 3 && lua_toboolean(L, 3))) {
        size_t        i, k;
        luaL_Buffer   b;
        char          esc[8];

        for (i = 0; i < len; i++) {
            if ((u_char) uri[i] < 0x20 || uri[i] == 0x7f) {
                break;
            }
        }

        if (i < len) {
            luaL_buffinit(L, &b);
            snprintf(esc, sizeof(esc), "0x%02x", (u_char) uri[i]);
            luaL_addstring(&b, "unsafe byte \"");
            luaL_addstring(&b, esc);
            luaL_addstring(&b, "\" in uri \"");

            for (k = 0; k < len; k++) {
                if ((u_char) uri[k] < 0x20 || uri[k] == 0x7f) {
                    snprintf(esc, sizeof(esc), "\\x%02X", (u_char) uri[k]);
                    luaL_addstring(&b, esc);
                } else {
                    luaL_addchar(&b, uri[k]);
                }
            }

            luaL_addstring(&b, "\" (maybe you want to set the 'binary' "
                           "argument?)");
            luaL_pushresult(&b);
            return lua_error(L);
        }
    }

    if (n >= 2 && lua_toboolean(L, 2)) {
        (void) gl_lua_check_context(L, GL_CTX_REWRITE);

        /* there are no locations to jump to behind FastCGI */
        return luaL_error(L, "ngx.req.set_uri with jump is not supported "
                          "by golapis");
    }

    free(r->uri);
    r->uri = strndup(uri, len);
    if (r->uri == NULL) {
        return luaL_error(L, "no memory");
    }

    return 0;
}


/* "content-type" -> "Content-Type" */
static void
gl_req_title_case(char *dst, const char *src, size_t len)
{
    size_t  i;
    int     up;

    for (i = 0, up = 1; i < len; i++) {
        dst[i] = up ? (char) toupper((unsigned char) src[i])
                    : (char) tolower((unsigned char) src[i]);
        up = (src[i] == '-');
    }
}


static int
gl_req_get_headers(lua_State *L)
{
    int            max, raw, count;
    size_t         i;
    char           name[512];
    gl_header_t   *h;
    gl_request_t  *r;

    max = gl_req_max(L, 1, GL_REQ_MAX_HEADERS);
    raw = lua_gettop(L) >= 2 && lua_toboolean(L, 2);
    r = gl_req_get(L);

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    lua_createtable(L, 0, (int) r->nrh);
    count = 0;

    for (i = 0; i < r->nrh; i++) {
        h = &r->rh[i];

        if (max > 0 && count >= max) {
            if (!raw) {
                luaL_getmetatable(L, "golapis.headers_mt");
                lua_setmetatable(L, -2);
            }
            lua_pushliteral(L, "truncated");
            return 2;
        }

        count++;

        if (raw && h->name_len < sizeof(name)) {
            /* FastCGI does not keep the case: rebuild it */
            gl_req_title_case(name, h->name, h->name_len);
            lua_pushlstring(L, name, h->name_len);
        } else {
            lua_pushlstring(L, h->name, h->name_len);
        }

        gl_http_add_header_value(L, h->value, h->value_len);
    }

    if (!raw) {
        luaL_getmetatable(L, "golapis.headers_mt");
        lua_setmetatable(L, -2);
    }

    return 1;
}


static int
gl_req_add_one(gl_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    size_t        i;
    gl_header_t  *h;

    h = gl_header_push(&r->rh, &r->nrh, &r->rh_cap, name, nlen, value, vlen);
    if (h == NULL) {
        return GL_ERROR;
    }

    for (i = 0; i < nlen; i++) {
        h->name[i] = (char) tolower((unsigned char) h->name[i]);
    }

    return GL_OK;
}


static void
gl_req_remove(gl_request_t *r, const char *name, size_t nlen)
{
    size_t  i, j;

    for (i = 0, j = 0; i < r->nrh; i++) {
        if (r->rh[i].name_len == nlen
            && strncasecmp(r->rh[i].name, name, nlen) == 0)
        {
            free(r->rh[i].name);
            free(r->rh[i].value);
            continue;
        }

        r->rh[j++] = r->rh[i];
    }

    r->nrh = j;
}


/* tostring(value), %-escaped as response header values are; pushes it */
static const char *
gl_req_escape_value(lua_State *L, int idx, size_t *len)
{
    const char  *v;

    lua_getglobal(L, "tostring");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);

    v = gl_http_escape_header(L, -1, len);
    lua_remove(L, -2);

    return v;
}


static int
gl_req_header_impl(lua_State *L, int replace)
{
    int            i, n;
    size_t         nlen, vlen, k;
    char           name[512];
    const char    *v, *s;
    gl_request_t  *r;

    r = gl_req_get(L);

    if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L, "bad 'name' argument: string expected, got %s",
                          luaL_typename(L, 1));
    }

    s = lua_tolstring(L, 1, &nlen);

    if (nlen == 0 || nlen >= sizeof(name)) {
        return luaL_error(L, "bad 'name' argument");
    }

    for (k = 0; k < nlen; k++) {
        name[k] = s[k];
        if (s[k] == '\r' || s[k] == '\n' || s[k] == ':') {
            return luaL_error(L, "bad 'name' argument");
        }
    }

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    if (replace) {
        gl_req_remove(r, name, nlen);
    }

    switch (lua_type(L, 2)) {

    case LUA_TNONE:
    case LUA_TNIL:
        if (!replace) {
            return luaL_error(L, "bad 'value' argument: string or table "
                              "expected, got nil");
        }
        return 0;

    case LUA_TSTRING:
    case LUA_TNUMBER:
    case LUA_TBOOLEAN:
        v = gl_req_escape_value(L, 2, &vlen);
        if (gl_req_add_one(r, name, nlen, v, vlen) != GL_OK) {
            return luaL_error(L, "no memory");
        }
        return 0;

    case LUA_TTABLE:
        n = (int) lua_objlen(L, 2);
        if (n == 0 && !replace) {
            return luaL_error(L, "bad 'value' argument: non-empty table "
                              "expected");
        }

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, i);
            v = gl_req_escape_value(L, lua_gettop(L), &vlen);
            if (gl_req_add_one(r, name, nlen, v, vlen) != GL_OK) {
                return luaL_error(L, "no memory");
            }
            lua_pop(L, 2);
        }
        return 0;

    default:
        return luaL_error(L, "bad 'value' argument: string or table "
                          "expected, got %s", luaL_typename(L, 2));
    }
}


static int
gl_req_set_header(lua_State *L)
{
    lua_settop(L, 2);

    return gl_req_header_impl(L, 1);
}


static int
gl_req_clear_header(lua_State *L)
{
    /* as lua-resty-core: the name goes through tostring() */
    lua_settop(L, 1);

    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        lua_replace(L, 1);
    }

    lua_pushnil(L);

    return gl_req_header_impl(L, 1);
}


static int
gl_req_add_header(lua_State *L)
{
    if (lua_gettop(L) != 2) {
        return luaL_error(L, "expecting two arguments, but got %d",
                          lua_gettop(L));
    }

    return gl_req_header_impl(L, 0);
}


/* the body */

/* the Content-Length request header follows a body set from Lua, as
   nginx's does */
static void
gl_req_set_content_length(lua_State *L, gl_request_t *r, size_t n)
{
    char  buf[32];

    if (gl_request_build_headers(r) != GL_OK) {
        return;
    }

    gl_req_remove(r, "content-length", 14);

    if (gl_req_add_one(r, "content-length", 14, buf,
                       snprintf(buf, sizeof(buf), "%zu", n)) != GL_OK)
    {
        luaL_error(L, "no memory");
    }
}

static int
gl_req_read_body(lua_State *L)
{
    gl_request_t  *r;

    (void) gl_lua_check_context(L, GL_CTX_REWRITE | GL_CTX_ACCESS
                                   | GL_CTX_CONTENT);
    r = gl_req_get(L);

    if (lua_gettop(L) != 0) {
        return luaL_error(L, "expecting 0 arguments but seen %d",
                          lua_gettop(L));
    }

    if (gl_req_http(r)->req_socket) {
        /* ngx.req.socket() took the body: nothing left to read, as
           upstream (get_body_data gives nil) */
        return 0;
    }

    if (r->body_discard || r->body_read || r->stdin_done) {
        r->body_read = !r->body_discard;
        return 0;
    }

    return gl_http_read_body(L, gl_req_http(r));
}


static int
gl_req_discard_body(lua_State *L)
{
    gl_request_t  *r;

    r = gl_req_get(L);

    if (lua_gettop(L) != 0) {
        return luaL_error(L, "expecting 0 arguments but seen %d",
                          lua_gettop(L));
    }

    r->body_discard = 1;
    r->body_read = 0;
    gl_request_body_free(r);

    return 0;
}


static int
gl_req_get_body_data(lua_State *L)
{
    gl_request_t  *r;

    r = gl_req_get(L);

    if (!r->body_read || r->body_in_file || r->body_len == 0) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushlstring(L, (const char *) r->body, r->body_len);
    return 1;
}


static int
gl_req_get_body_file(lua_State *L)
{
    gl_request_t  *r;

    r = gl_req_get(L);

    if (!r->body_read || !r->body_in_file || r->body_path == NULL) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushstring(L, r->body_path);
    return 1;
}


static int
gl_req_get_post_args(lua_State *L)
{
    int            max;
    gl_request_t  *r;

    max = gl_req_max(L, 1, GL_REQ_MAX_ARGS);
    r = gl_req_get(L);

    if (r->body_discard) {
        lua_createtable(L, 0, 0);
        return 1;
    }

    if (!r->body_read) {
        return luaL_error(L, "no request body found; maybe you should turn "
                          "on lua_need_request_body?");
    }

    if (r->body_in_file) {
        lua_pushnil(L);
        lua_pushliteral(L, "request body in temp file not supported");
        return 2;
    }

    lua_settop(L, 0);
    lua_createtable(L, 0, 4);

    if (gl_req_parse_args(L, (const char *) r->body, r->body_len, max) < 0) {
        lua_pushliteral(L, "truncated");
        return 2;
    }

    return 1;
}


static int
gl_req_set_body_data(lua_State *L)
{
    size_t         len;
    const char    *data;
    gl_request_t  *r;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 arguments but seen %d",
                          lua_gettop(L));
    }

    data = luaL_checklstring(L, 1, &len);
    r = gl_req_get(L);

    if (!r->body_read && !r->body_discard) {
        return luaL_error(L, "request body not read yet");
    }

    gl_request_body_free(r);
    r->body_discard = 0;
    r->body_read = 1;
    r->body_buffer_size = (size_t) -1;

    if (len && gl_request_body_append(r, (const u_char *) data, len)
               != GL_OK)
    {
        return luaL_error(L, "no memory");
    }

    gl_req_set_content_length(L, r, len);

    return 0;
}


static int
gl_req_set_body_file(lua_State *L)
{
    int            fd, clean;
    struct stat    st;
    const char    *path;
    gl_request_t  *r;

    if (lua_gettop(L) != 1 && lua_gettop(L) != 2) {
        return luaL_error(L, "expecting 1 or 2 arguments but seen %d",
                          lua_gettop(L));
    }

    path = luaL_checkstring(L, 1);
    clean = lua_gettop(L) == 2 && lua_toboolean(L, 2);
    r = gl_req_get(L);

    if (!r->body_read && !r->body_discard) {
        return luaL_error(L, "request body not read yet");
    }

    if (stat(path, &st) == -1) {
        return luaL_error(L, "stat() \"%s\" failed", path);
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return luaL_error(L, "open() \"%s\" failed", path);
    }

    gl_request_body_free(r);

    r->body_path = strdup(path);
    if (r->body_path == NULL) {
        close(fd);
        return luaL_error(L, "no memory");
    }

    r->body_fd = fd;
    r->body_in_file = 1;
    r->body_clean = clean;
    r->body_discard = 0;
    r->body_read = 1;

    gl_req_set_content_length(L, r, (size_t) st.st_size);

    return 0;
}


static int
gl_req_init_body(lua_State *L)
{
    lua_Integer    size;
    gl_request_t  *r;

    r = gl_req_get(L);

    if (lua_gettop(L) > 1) {
        return luaL_error(L, "expecting 0 or 1 argument but seen %d",
                          lua_gettop(L));
    }

    size = (lua_gettop(L) == 1 && !lua_isnil(L, 1))
           ? luaL_checkinteger(L, 1)
           : (lua_Integer) r->conf->client_body_buffer_size;

    if (size <= 0) {
        return luaL_error(L, "bad buffer size");
    }

    if (!r->body_read && !r->body_discard) {
        return luaL_error(L, "request body not read yet");
    }

    gl_request_body_free(r);
    r->body_discard = 0;
    r->body_read = 1;
    r->body_buffer_size = (size_t) size;
    r->body_initing = 1;

    return 0;
}


static int
gl_req_append_body(lua_State *L)
{
    size_t         len;
    const char    *data;
    gl_request_t  *r;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 arguments but seen %d",
                          lua_gettop(L));
    }

    data = luaL_checklstring(L, 1, &len);
    r = gl_req_get(L);

    if (!r->body_initing) {
        return luaL_error(L, "request_body not initialized");
    }

    if (len && gl_request_body_append(r, (const u_char *) data, len)
               != GL_OK)
    {
        return luaL_error(L, "failed to write file: %s",
                          r->body_path ? r->body_path : "(memory)");
    }

    return 0;
}


static int
gl_req_finish_body(lua_State *L)
{
    gl_request_t  *r;

    if (lua_gettop(L) != 0) {
        return luaL_error(L, "expecting 0 arguments but seen %d",
                          lua_gettop(L));
    }

    r = gl_req_get(L);

    if (!r->body_initing) {
        return luaL_error(L, "request_body not initialized");
    }

    r->body_initing = 0;

    gl_req_set_content_length(L, r, r->body_in_file
                                    ? (size_t) lseek(r->body_fd, 0, SEEK_CUR)
                                    : r->body_len);

    return 0;
}


static int
gl_req_http_version(lua_State *L)
{
    gl_request_t      *r;
    const gl_param_t  *p;

    r = gl_req_get(L);
    p = gl_request_param(r, "SERVER_PROTOCOL", 15);

    if (p == NULL || p->value_len < 8 || memcmp(p->value, "HTTP/", 5) != 0)
    {
        lua_pushnil(L);
        return 1;
    }

    if (strcmp(p->value + 5, "2.0") == 0 || strcmp(p->value + 5, "2") == 0) {
        lua_pushnumber(L, 2.0);
    } else if (strcmp(p->value + 5, "3.0") == 0
               || strcmp(p->value + 5, "3") == 0)
    {
        lua_pushnumber(L, 3.0);
    } else {
        lua_pushnumber(L, strtod(p->value + 5, NULL));
    }

    return 1;
}


static int
gl_req_start_time(lua_State *L)
{
    double      start;
    gl_task_t  *t;

    t = gl_lua_check_context(L, 0);

    if (t->context == GL_PHASE_TIMER) {
        /* upstream's timers have a request of their own, made as they
           start */
        start = t->start;

    } else {
        start = gl_req_get(L)->start_time;
    }

    /* milliseconds, as nginx keeps them */
    lua_pushnumber(L, (double) (long long) (start * 1000) / 1000);

    return 1;
}


static int
gl_req_is_internal(lua_State *L)
{
    (void) gl_req_get(L);

    /* there are no internal redirects behind FastCGI */
    lua_pushboolean(L, 0);

    return 1;
}


/* rebuilt: FastCGI params do not keep the original bytes */
static int
gl_req_raw_header(lua_State *L)
{
    size_t             i;
    char               name[512];
    luaL_Buffer        b;
    gl_header_t       *h;
    gl_request_t      *r;
    const gl_param_t  *p;

    r = gl_req_get(L);

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    luaL_buffinit(L, &b);

    if (!(lua_gettop(L) >= 1 && lua_toboolean(L, 1))) {
        p = gl_request_param(r, "REQUEST_METHOD", 14);
        luaL_addstring(&b, r->method ? r->method : (p ? p->value : "GET"));
        luaL_addchar(&b, ' ');
        p = gl_request_param(r, "REQUEST_URI", 11);
        luaL_addstring(&b, p ? p->value : "/");
        luaL_addchar(&b, ' ');
        p = gl_request_param(r, "SERVER_PROTOCOL", 15);
        luaL_addstring(&b, p ? p->value : "HTTP/1.0");
        luaL_addstring(&b, "\r\n");
    }

    for (i = 0; i < r->nrh; i++) {
        h = &r->rh[i];

        if (h->name_len < sizeof(name)) {
            gl_req_title_case(name, h->name, h->name_len);
            luaL_addlstring(&b, name, h->name_len);
        }

        luaL_addstring(&b, ": ");
        luaL_addlstring(&b, h->value, h->value_len);
        luaL_addstring(&b, "\r\n");
    }

    luaL_addstring(&b, "\r\n");
    luaL_pushresult(&b);

    return 1;
}


static void
gl_lua_req_inject(lua_State *L)
{
    size_t  i;

    static const luaL_Reg  funcs[] = {
        { "get_method", gl_req_get_method },
        { "set_method", gl_req_set_method },
        { "get_headers", gl_req_get_headers },
        { "set_header", gl_req_set_header },
        { "clear_header", gl_req_clear_header },
        { "get_uri_args", gl_req_get_uri_args },
        { "set_uri_args", gl_req_set_uri_args },
        { "set_uri", gl_req_set_uri },
        { "get_post_args", gl_req_get_post_args },
        { "read_body", gl_req_read_body },
        { "discard_body", gl_req_discard_body },
        { "get_body_data", gl_req_get_body_data },
        { "get_body_file", gl_req_get_body_file },
        { "set_body_data", gl_req_set_body_data },
        { "set_body_file", gl_req_set_body_file },
        { "init_body", gl_req_init_body },
        { "append_body", gl_req_append_body },
        { "finish_body", gl_req_finish_body },
        { "http_version", gl_req_http_version },
        { "start_time", gl_req_start_time },
        { "is_internal", gl_req_is_internal },
        { "raw_header", gl_req_raw_header },
        { NULL, NULL }
    };

    lua_createtable(L, 0, gl_nelems(funcs));

    for (i = 0; funcs[i].name; i++) {
        lua_pushcfunction(L, funcs[i].func);
        lua_setfield(L, -2, funcs[i].name);
    }

    lua_setfield(L, -2, "req");

    /* for lua/ngx/req.lua (require "ngx.req") */
    gl_lua_push_core(L);
    lua_pushcfunction(L, gl_req_add_header);
    lua_setfield(L, -2, "req_add_header");
    lua_pop(L, 1);

    for (i = 0; i < gl_nelems(gl_req_methods); i++) {
        lua_pushinteger(L, gl_req_methods[i].id);
        lua_pushfstring(L, "HTTP_%s", gl_req_methods[i].name);
        lua_insert(L, -2);
        lua_rawset(L, -3);
    }
}


gl_module_t  gl_lua_req_module = {
    .name = "req",
    .inject = gl_lua_req_inject,
};
