/*
 * ngx.var and ngx.ctx.
 *
 * ngx.var reads nginx's variables back from the FastCGI params nginx sent
 * (docs/api-request.md has the mapping); any other name is looked up as a
 * param (a custom fastcgi_param).  Writes stay in the request.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_http.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_request.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#define GL_VAR_MAX  256


static int
gl_lua_push_param(lua_State *L, gl_request_t *r, const char *name, int empty)
{
    const gl_param_t  *p;

    p = gl_request_param(r, name, strlen(name));

    if (p == NULL || (p->value_len == 0 && !empty)) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, p->value, p->value_len);
    }

    return 1;
}


/* the value of key in a "k=v<sep>k=v" list, or NULL */
static const char *
gl_lua_find_pair(const char *s, size_t slen, const char *key, size_t klen,
    char sep, size_t *vlen)
{
    const char  *p, *end, *next, *eq;

    p = s;
    end = s + slen;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == sep)) {
            p++;
        }

        next = memchr(p, sep, end - p);
        if (next == NULL) {
            next = end;
        }

        eq = memchr(p, '=', next - p);

        if (eq != NULL && (size_t) (eq - p) == klen
            && strncasecmp(p, key, klen) == 0)
        {
            *vlen = next - eq - 1;
            return eq + 1;
        }

        p = next;
    }

    return NULL;
}




static int
gl_lua_var_builtin(lua_State *L, gl_http_t *h, const char *name,
    size_t len)
{
    gl_request_t      *r = &h->r;
    char               buf[64];
    size_t             n;
    const char        *v, *colon;
    const gl_header_t *hd;

    if (strcmp(name, "http_cookie") == 0) {
        /* several Cookie headers: joined with "; ", as nginx does */
        size_t       i;
        int          found;
        luaL_Buffer  b;

        if (gl_request_build_headers(r) != GL_OK) {
            return luaL_error(L, "no memory");
        }

        luaL_buffinit(L, &b);
        found = 0;

        for (i = 0; i < r->nrh; i++) {
            hd = &r->rh[i];

            if (hd->name_len == 6 && strcasecmp(hd->name, "cookie") == 0) {
                if (found++) {
                    luaL_addstring(&b, "; ");
                }
                luaL_addlstring(&b, hd->value, hd->value_len);
            }
        }

        luaL_pushresult(&b);

        if (!found) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }

        return 1;
    }

    if (len > 5 && memcmp(name, "http_", 5) == 0) {
        char  hname[GL_VAR_MAX];

        for (n = 0; n < len - 5; n++) {
            hname[n] = (name[5 + n] == '_') ? '-' : name[5 + n];
        }

        hd = gl_request_header(r, hname, len - 5);
        if (hd == NULL) {
            lua_pushnil(L);
        } else {
            lua_pushlstring(L, hd->value, hd->value_len);
        }
        return 1;
    }

    if (len > 7 && memcmp(name, "cookie_", 7) == 0) {
        size_t  i;

        if (gl_request_build_headers(r) != GL_OK) {
            return luaL_error(L, "no memory");
        }

        for (i = 0; i < r->nrh; i++) {
            hd = &r->rh[i];

            if (hd->name_len != 6 || strcasecmp(hd->name, "cookie") != 0) {
                continue;
            }

            v = gl_lua_find_pair(hd->value, hd->value_len, name + 7, len - 7,
                                 ';', &n);
            if (v != NULL) {
                lua_pushlstring(L, v, n);
                return 1;
            }
        }

        lua_pushnil(L);
        return 1;
    }

    if (len > 4 && memcmp(name, "arg_", 4) == 0) {
        size_t       alen;
        const char  *args = gl_http_args(h, &alen);

        v = gl_lua_find_pair(args, alen, name + 4, len - 4, '&', &n);
        if (v == NULL) {
            lua_pushnil(L);
        } else {
            lua_pushlstring(L, v, n);
        }
        return 1;
    }

    if (strcmp(name, "uri") == 0 || strcmp(name, "document_uri") == 0) {
        if (r->uri != NULL) {
            lua_pushstring(L, r->uri);
            return 1;
        }
        return gl_lua_push_param(L, r, "DOCUMENT_URI", 1);
    }

    if (strcmp(name, "args") == 0 || strcmp(name, "query_string") == 0) {
        v = gl_http_args(h, &n);

        /* empty args from the request, or set to nil: not found */
        if (n == 0 && (r->args == NULL || r->args_unset)) {
            lua_pushnil(L);
            return 1;
        }
        v = gl_http_args(h, &n);
        lua_pushlstring(L, v, n);
        return 1;
    }

    if (strcmp(name, "is_args") == 0) {
        gl_http_args(h, &n);
        lua_pushstring(L, n ? "?" : "");
        return 1;
    }

    if (strcmp(name, "request_method") == 0) {
        if (r->method != NULL) {
            lua_pushstring(L, r->method);
            return 1;
        }
        return gl_lua_push_param(L, r, "REQUEST_METHOD", 0);
    }

    if (strcmp(name, "scheme") == 0) {
        const gl_param_t  *p = gl_request_param(r, "REQUEST_SCHEME", 14);

        if (p != NULL && p->value_len) {
            lua_pushlstring(L, p->value, p->value_len);
            return 1;
        }

        p = gl_request_param(r, "HTTPS", 5);
        lua_pushstring(L, p && p->value_len ? "https" : "http");
        return 1;
    }

    if (strcmp(name, "https") == 0) {
        const gl_param_t  *p = gl_request_param(r, "HTTPS", 5);

        lua_pushstring(L, p ? p->value : "");
        return 1;
    }

    if (strcmp(name, "host") == 0) {
        hd = gl_request_header(r, "host", 4);

        if (hd == NULL || hd->value_len == 0) {
            return gl_lua_push_param(L, r, "SERVER_NAME", 1);
        }

        colon = memchr(hd->value, ':', hd->value_len);
        n = colon ? (size_t) (colon - hd->value) : hd->value_len;

        if (n >= sizeof(buf)) {
            lua_pushlstring(L, hd->value, n);
            return 1;
        }

        for (size_t i = 0; i < n; i++) {
            buf[i] = (char) tolower((unsigned char) hd->value[i]);
        }
        lua_pushlstring(L, buf, n);
        return 1;
    }

    if (strcmp(name, "hostname") == 0) {
        if (gethostname(buf, sizeof(buf)) == -1) {
            lua_pushnil(L);
        } else {
            buf[sizeof(buf) - 1] = '\0';
            lua_pushstring(L, buf);
        }
        return 1;
    }

    if (strcmp(name, "request_body") == 0) {
        if (!r->body_read || r->body_in_file || r->body_len == 0) {
            lua_pushnil(L);
        } else {
            lua_pushlstring(L, (char *) r->body, r->body_len);
        }
        return 1;
    }

    if (strcmp(name, "request_body_file") == 0) {
        if (r->body_in_file && r->body_path) {
            lua_pushstring(L, r->body_path);
        } else {
            lua_pushnil(L);
        }
        return 1;
    }

    if (strcmp(name, "status") == 0) {
        lua_pushfstring(L, "%d", r->status);
        return 1;
    }

    if (strcmp(name, "request_time") == 0) {
        snprintf(buf, sizeof(buf), "%.3f",
                 ev_now(h->vm->loop) - r->start_time);
        lua_pushstring(L, buf);
        return 1;
    }

    if (strcmp(name, "msec") == 0) {
        snprintf(buf, sizeof(buf), "%.3f", ev_now(h->vm->loop));
        lua_pushstring(L, buf);
        return 1;
    }

    if (strcmp(name, "pid") == 0) {
        lua_pushfstring(L, "%d", (int) getpid());
        return 1;
    }

    static const struct {
        const char  *var;
        const char  *param;
        int          empty;     /* an empty value is a value, not nil */
    } map[] = {
        { "request_uri", "REQUEST_URI", 1 },
        { "document_root", "DOCUMENT_ROOT", 1 },
        { "server_name", "SERVER_NAME", 1 },
        { "server_addr", "SERVER_ADDR", 1 },
        { "server_port", "SERVER_PORT", 1 },
        { "server_protocol", "SERVER_PROTOCOL", 1 },
        { "remote_addr", "REMOTE_ADDR", 1 },
        { "remote_port", "REMOTE_PORT", 1 },
        { "remote_user", "REMOTE_USER", 0 },
        { "content_type", "CONTENT_TYPE", 0 },
        { "content_length", "CONTENT_LENGTH", 0 },
        { "request_id", "REQUEST_ID", 0 },
        { "request_filename", "SCRIPT_FILENAME", 1 },
        { "fastcgi_script_name", "SCRIPT_NAME", 1 },
        { "gateway_interface", "GATEWAY_INTERFACE", 1 },
    };

    for (n = 0; n < gl_nelems(map); n++) {
        if (strcmp(name, map[n].var) == 0) {
            return gl_lua_push_param(L, r, map[n].param, map[n].empty);
        }
    }

    return 0;
}


static int
gl_lua_var_index(lua_State *L)
{
    size_t         len, i;
    char           lname[GL_VAR_MAX];
    const char    *name;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
    r = &h->r;
    name = luaL_checklstring(L, 2, &len);

    if (len == 0 || len >= GL_VAR_MAX) {
        lua_pushnil(L);
        return 1;
    }

    /* nginx's variable names are case-insensitive */
    for (i = 0; i < len; i++) {
        lname[i] = (char) tolower((unsigned char) name[i]);
    }
    lname[len] = '\0';

    if (h->var_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->var_ref);
        lua_getfield(L, -1, lname);
        if (!lua_isnil(L, -1)) {
            return 1;
        }
        lua_pop(L, 2);
    }

    if (gl_lua_var_builtin(L, h, lname, len)) {
        return 1;
    }

    /* a custom fastcgi_param: as written, or upper-cased */
    if (gl_request_param(r, name, len) != NULL) {
        return gl_lua_push_param(L, r, name, 1);
    }

    for (i = 0; i < len; i++) {
        lname[i] = (char) toupper((unsigned char) name[i]);
    }

    return gl_lua_push_param(L, r, lname, 1);
}


static int
gl_lua_var_newindex(lua_State *L)
{
    size_t         len, i, vlen;
    char           lname[GL_VAR_MAX];
    const char    *name, *v;
    gl_http_t     *h;
    gl_request_t  *r;

    h = gl_http_get(L, 0);
    r = &h->r;
    name = luaL_checklstring(L, 2, &len);

    if (len == 0 || len >= GL_VAR_MAX) {
        return luaL_error(L, "variable \"%s\" not found for writing", name);
    }

    switch (lua_type(L, 3)) {
    case LUA_TNIL:
    case LUA_TSTRING:
    case LUA_TNUMBER:
        break;
    default:
        return luaL_error(L, "bad variable value");
    }

    for (i = 0; i < len; i++) {
        lname[i] = (char) tolower((unsigned char) name[i]);
    }
    lname[len] = '\0';

    if (strcmp(lname, "args") == 0 || strcmp(lname, "query_string") == 0) {
        v = lua_tolstring(L, 3, &vlen);
        free(r->args);
        r->args = strndup(v ? v : "", v ? vlen : 0);
        if (r->args == NULL) {
            return luaL_error(L, "no memory");
        }
        r->args_unset = (v == NULL);
        return 0;
    }

    if (h->var_ref == LUA_NOREF) {
        lua_newtable(L);
        h->var_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, h->var_ref);
    lua_pushvalue(L, 3);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        lua_tostring(L, -1);
    }
    lua_setfield(L, -2, lname);

    return 0;
}






static void
gl_lua_var_inject(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, gl_lua_var_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gl_lua_var_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "var");
}


gl_module_t  gl_lua_var_module = {
    .name = "var",
    .inject = gl_lua_var_inject,
};
