/*
 * ngx.var: nginx's variables, read back from the FastCGI params nginx
 * sent (docs/api-request.md has the mapping) and from what the request
 * did so far (its headers, its status).
 *
 * nginx's core variables are rows of a table, sorted by name, each with
 * its function (or the param it is), as nginx's ngx_http_core_variables;
 * then come the prefixed ones (http_, sent_http_, cookie_, arg_, ...).
 * Any other name is a param (a fastcgi_param of the user's).  Writes stay
 * in the request; the variables nginx refuses to change are refused.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_http.h"
#include "gl_lua.h"
#include "gl_lua_var.h"
#include "gl_module.h"
#include "gl_request.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define GL_VAR_NAME_LEN   256

/* what nginx's ngx.config.nginx_version says we compare with */
#define GL_VAR_NGINX_VERSION  "1.22.1"

typedef struct gl_lua_var_s  gl_lua_var_t;

/* what a row's function gets: the request, its row, the lower-cased
   name asked for */
typedef struct {
    gl_http_t           *h;
    const gl_lua_var_t  *v;
    const char          *name;
    size_t               len;
} gl_lua_var_ctx_t;

/* pushes the value, or nil */
typedef int (*gl_lua_var_get_pt)(lua_State *L, const gl_lua_var_ctx_t *c);

struct gl_lua_var_s {
    const char          *name;
    gl_lua_var_get_pt    get;
    const char          *data;      /* a param or a header, for get */
    unsigned             flags;
};

/* an empty param is a value ("" as nginx's variable), not nil */
#define GL_VAR_EMPTY       0x01
/* nginx lets ngx.var change it */
#define GL_VAR_CHANGEABLE  0x02


static int
gl_lua_push_param(lua_State *L, gl_request_t *r, const char *name,
    size_t len, int empty)
{
    const gl_param_t  *p;

    p = gl_request_param(r, name, len);

    if (p == NULL || (p->value_len == 0 && !empty)) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, p->value, p->value_len);
    }

    return 1;
}


static void
gl_lua_push_header(lua_State *L, const gl_header_t *hd)
{
    if (hd == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, hd->value, hd->value_len);
    }
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


/*
 * The values of every header named as the variable (after its prefix of
 * plen bytes), joined with sep and a space, as nginx's
 * ngx_http_variable_headers_internal(); nil if none.  hs: the request's
 * or the response's headers.
 */
static int
gl_lua_push_joined(lua_State *L, const gl_header_t *hs, size_t n,
    const char *name, size_t len, size_t plen, char sep)
{
    int          found;
    size_t       i, j;
    luaL_Buffer  b;

    luaL_buffinit(L, &b);
    found = 0;

    for (i = 0; i < n; i++) {
        if (hs[i].name_len != len - plen) {
            continue;
        }

        for (j = 0; j < len - plen; j++) {
            u_char  c = (u_char) tolower((u_char) hs[i].name[j]);

            if ((c == '-' ? '_' : c) != (u_char) name[plen + j]) {
                break;
            }
        }

        if (j < len - plen) {
            continue;
        }

        if (found++) {
            luaL_addchar(&b, sep);
            luaL_addchar(&b, ' ');
        }

        luaL_addlstring(&b, hs[i].value, hs[i].value_len);
    }

    luaL_pushresult(&b);

    if (!found) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }

    return 1;
}


/* the rows' functions */

static int
gl_lua_var_param(lua_State *L, const gl_lua_var_ctx_t *c)
{
    return gl_lua_push_param(L, &c->h->r, c->v->data, strlen(c->v->data),
                             c->v->flags & GL_VAR_EMPTY);
}


/*
 * What an upstream cannot know (nginx's client connection, its output,
 * its other processes): nil, unless the user passes it, as
 * "fastcgi_param CONNECTION $connection;", under the name upper-cased
 */
static int
gl_lua_var_passed(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t  i;
    char    up[GL_VAR_NAME_LEN];

    for (i = 0; i < c->len; i++) {
        up[i] = (char) toupper((u_char) c->name[i]);
    }

    return gl_lua_push_param(L, &c->h->r, up, c->len, 1);
}


static int
gl_lua_var_nil(lua_State *L, const gl_lua_var_ctx_t *c)
{
    (void) c;

    lua_pushnil(L);
    return 1;
}


/* a request header as nginx holds it (ngx.req.set_header changes it),
   else the param nginx sent for it */
static int
gl_lua_var_header_in(lua_State *L, const gl_lua_var_ctx_t *c)
{
    const char         *param;
    const gl_header_t  *hd;

    hd = gl_request_header(&c->h->r, c->v->data, strlen(c->v->data));

    if (hd != NULL) {
        gl_lua_push_header(L, hd);
        return 1;
    }

    param = c->v->data + strlen(c->v->data) + 1;

    if (*param == '\0') {
        lua_pushnil(L);
        return 1;
    }

    return gl_lua_push_param(L, &c->h->r, param, strlen(param), 0);
}


/* http_NAME: the first header of that name ("_" for "-", any case) */
static int
gl_lua_var_http(lua_State *L, const gl_lua_var_ctx_t *c)
{
    gl_request_t  *r;

    r = &c->h->r;

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    gl_lua_push_header(L, gl_request_header(r, c->name + 5, c->len - 5));

    return 1;
}


/* http_cookie, http_x_forwarded_for: every header of the name, joined */
static int
gl_lua_var_http_joined(lua_State *L, const gl_lua_var_ctx_t *c)
{
    gl_request_t  *r;

    r = &c->h->r;

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    return gl_lua_push_joined(L, r->rh, r->nrh, c->name, c->len, 5,
                              c->v->data[0]);
}


static int
gl_lua_var_cookie(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t         i, n;
    const char    *val;
    gl_header_t   *hd;
    gl_request_t  *r;

    r = &c->h->r;

    if (gl_request_build_headers(r) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    for (i = 0; i < r->nrh; i++) {
        hd = &r->rh[i];

        if (hd->name_len != 6 || strcasecmp(hd->name, "cookie") != 0) {
            continue;
        }

        val = gl_lua_find_pair(hd->value, hd->value_len, c->name + 7,
                               c->len - 7, ';', &n);
        if (val != NULL) {
            lua_pushlstring(L, val, n);
            return 1;
        }
    }

    lua_pushnil(L);
    return 1;
}


static int
gl_lua_var_arg(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t       alen, n;
    const char  *args, *val;

    args = gl_http_args(c->h, &alen);
    val = gl_lua_find_pair(args, alen, c->name + 4, c->len - 4, '&', &n);

    if (val == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, val, n);
    }

    return 1;
}


/* sent_http_NAME: the first response header of that name */
static int
gl_lua_var_sent_http(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t        i, j, n;
    gl_header_t  *hd;

    n = c->len - 10;

    for (i = 0; i < c->h->r.nheaders; i++) {
        hd = &c->h->r.headers[i];

        if (hd->name_len != n) {
            continue;
        }

        for (j = 0; j < n; j++) {
            u_char  ch = (u_char) tolower((u_char) hd->name[j]);

            if ((ch == '-' ? '_' : ch) != (u_char) c->name[10 + j]) {
                break;
            }
        }

        if (j == n) {
            gl_lua_push_header(L, hd);
            return 1;
        }
    }

    lua_pushnil(L);
    return 1;
}


/* sent_http_cache_control, sent_http_link: every value, joined */
static int
gl_lua_var_sent_joined(lua_State *L, const gl_lua_var_ctx_t *c)
{
    return gl_lua_push_joined(L, c->h->r.headers, c->h->r.nheaders, c->name,
                              c->len, 10, ',');
}


static int
gl_lua_var_sent_content_type(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t       n;
    const char  *type;

    type = gl_http_resp_content_type(&c->h->r, &n);

    if (type == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, type, n);
    }

    return 1;
}


static int
gl_lua_var_sent_connection(lua_State *L, const gl_lua_var_ctx_t *c)
{
    lua_pushstring(L, gl_http_resp_connection(&c->h->r));
    return 1;
}


static int
gl_lua_var_sent_transfer_encoding(lua_State *L, const gl_lua_var_ctx_t *c)
{
    if (gl_http_resp_chunked(&c->h->r)) {
        lua_pushliteral(L, "chunked");
    } else {
        lua_pushnil(L);
    }

    return 1;
}


static int
gl_lua_var_uri(lua_State *L, const gl_lua_var_ctx_t *c)
{
    if (c->h->r.uri != NULL) {
        lua_pushstring(L, c->h->r.uri);
        return 1;
    }

    return gl_lua_push_param(L, &c->h->r, "DOCUMENT_URI", 12, 1);
}


static int
gl_lua_var_args(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t       n;
    const char  *args;

    args = gl_http_args(c->h, &n);

    /* empty args from the request, or set to nil: not found */
    if (n == 0 && (c->h->r.args == NULL || c->h->r.args_unset)) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushlstring(L, args, n);
    return 1;
}


static int
gl_lua_var_is_args(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t  n;

    (void) gl_http_args(c->h, &n);
    lua_pushstring(L, n ? "?" : "");

    return 1;
}


static int
gl_lua_var_request_method(lua_State *L, const gl_lua_var_ctx_t *c)
{
    if (c->h->r.method != NULL) {
        lua_pushstring(L, c->h->r.method);
        return 1;
    }

    return gl_lua_push_param(L, &c->h->r, "REQUEST_METHOD", 14, 0);
}


/* the request line (gl_request_line) */
static int
gl_lua_var_request(lua_State *L, const gl_lua_var_ctx_t *c)
{
    int                 i, n;
    gl_request_piece_t  pieces[5];

    n = gl_request_line(&c->h->r, pieces);

    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }

    for (i = 0; i < n; i++) {
        lua_pushlstring(L, pieces[i].data, pieces[i].len);
    }

    lua_concat(L, n);

    return 1;
}


static int
gl_lua_var_scheme(lua_State *L, const gl_lua_var_ctx_t *c)
{
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "REQUEST_SCHEME", 14);

    if (p != NULL && p->value_len) {
        lua_pushlstring(L, p->value, p->value_len);
        return 1;
    }

    p = gl_request_param(&c->h->r, "HTTPS", 5);
    lua_pushstring(L, p && p->value_len ? "https" : "http");

    return 1;
}


static int
gl_lua_var_https(lua_State *L, const gl_lua_var_ctx_t *c)
{
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "HTTPS", 5);
    lua_pushstring(L, p ? p->value : "");

    return 1;
}


/* the Host header without its port, lower-cased; else the server name */
static int
gl_lua_var_host(lua_State *L, const gl_lua_var_ctx_t *c)
{
    size_t              i, n;
    char                buf[256];
    const char         *colon;
    const gl_header_t  *hd;

    hd = gl_request_header(&c->h->r, "host", 4);

    if (hd == NULL || hd->value_len == 0) {
        return gl_lua_push_param(L, &c->h->r, "SERVER_NAME", 11, 1);
    }

    colon = memchr(hd->value, ':', hd->value_len);
    n = colon ? (size_t) (colon - hd->value) : hd->value_len;

    if (n >= sizeof(buf)) {
        lua_pushlstring(L, hd->value, n);
        return 1;
    }

    for (i = 0; i < n; i++) {
        buf[i] = (char) tolower((u_char) hd->value[i]);
    }

    lua_pushlstring(L, buf, n);
    return 1;
}


/* the client's address in 4 or 16 bytes (a unix one as text) */
static int
gl_lua_var_binary_remote_addr(lua_State *L, const gl_lua_var_ctx_t *c)
{
    u_char             addr[16];
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "REMOTE_ADDR", 11);

    if (p == NULL) {
        lua_pushnil(L);
        return 1;
    }

    if (inet_pton(AF_INET, p->value, addr) == 1) {
        lua_pushlstring(L, (char *) addr, 4);

    } else if (inet_pton(AF_INET6, p->value, addr) == 1) {
        lua_pushlstring(L, (char *) addr, 16);

    } else {
        lua_pushlstring(L, p->value, p->value_len);
    }

    return 1;
}


static int
gl_lua_var_realpath_root(lua_State *L, const gl_lua_var_ctx_t *c)
{
    char               buf[PATH_MAX];
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "DOCUMENT_ROOT", 13);

    if (p == NULL) {
        lua_pushnil(L);
        return 1;
    }

    if (realpath(p->value, buf) == NULL) {
        gl_log_error(GL_LOG_CRIT, errno, "realpath() \"%s\" failed",
                     p->value);
        lua_pushnil(L);
        return 1;
    }

    lua_pushstring(L, buf);
    return 1;
}


static int
gl_lua_var_hostname(lua_State *L, const gl_lua_var_ctx_t *c)
{
    char  buf[256];

    (void) c;

    if (gethostname(buf, sizeof(buf)) == -1) {
        lua_pushnil(L);
        return 1;
    }

    buf[sizeof(buf) - 1] = '\0';
    lua_pushstring(L, buf);

    return 1;
}


/* nginx/1.22.1 says so in SERVER_SOFTWARE */
static int
gl_lua_var_nginx_version(lua_State *L, const gl_lua_var_ctx_t *c)
{
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "SERVER_SOFTWARE", 15);

    if (p != NULL && p->value_len > 6 && memcmp(p->value, "nginx/", 6) == 0)
    {
        lua_pushlstring(L, p->value + 6, p->value_len - 6);
        return 1;
    }

    lua_pushliteral(L, GL_VAR_NGINX_VERSION);
    return 1;
}


static int
gl_lua_var_request_body(lua_State *L, const gl_lua_var_ctx_t *c)
{
    gl_request_t  *r;

    r = &c->h->r;

    if (!r->body_read || r->body_in_file || r->body_len == 0) {
        lua_pushnil(L);
    } else {
        lua_pushlstring(L, (char *) r->body, r->body_len);
    }

    return 1;
}


static int
gl_lua_var_request_body_file(lua_State *L, const gl_lua_var_ctx_t *c)
{
    if (c->h->r.body_in_file && c->h->r.body_path) {
        lua_pushstring(L, c->h->r.body_path);
    } else {
        lua_pushnil(L);
    }

    return 1;
}


/* "OK" once the answer went out whole: in the log phase */
static int
gl_lua_var_request_completion(lua_State *L, const gl_lua_var_ctx_t *c)
{
    if (c->h->r.finished && !c->h->r.aborted && !c->h->r.cancelled
        && gl_lua_get_phase() == GL_PHASE_LOG)
    {
        lua_pushliteral(L, "OK");
    } else {
        lua_pushliteral(L, "");
    }

    return 1;
}


/*
 * $request_id: nginx's, when it is passed ("fastcgi_param REQUEST_ID
 * $request_id;", the same id as in nginx's logs); else 16 random bytes in
 * hex as nginx makes it, kept in the request's variables so that it does
 * not change
 */
static int
gl_lua_var_request_id(lua_State *L, const gl_lua_var_ctx_t *c)
{
    int                i;
    u_char             rnd[16];
    char               hex[32];
    const gl_param_t  *p;

    static const char  digits[] = "0123456789abcdef";

    p = gl_request_param(&c->h->r, "REQUEST_ID", 10);

    if (p != NULL && p->value_len) {
        lua_pushlstring(L, p->value, p->value_len);
        return 1;
    }

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
    {
        for (i = 0; i < 16; i++) {
            rnd[i] = (u_char) random();
        }
    }

    for (i = 0; i < 16; i++) {
        hex[2 * i] = digits[rnd[i] >> 4];
        hex[2 * i + 1] = digits[rnd[i] & 0xf];
    }

    if (c->h->var_ref == LUA_NOREF) {
        lua_newtable(L);
        c->h->var_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, c->h->var_ref);
    lua_pushlstring(L, c->name, c->len);
    lua_pushlstring(L, hex, sizeof(hex));
    lua_rawset(L, -3);
    lua_pop(L, 1);

    lua_pushlstring(L, hex, sizeof(hex));
    return 1;
}


/* $limit_rate: nginx's default, 0, unless passed or set */
static int
gl_lua_var_limit_rate(lua_State *L, const gl_lua_var_ctx_t *c)
{
    const gl_param_t  *p;

    p = gl_request_param(&c->h->r, "LIMIT_RATE", 10);

    if (p != NULL) {
        lua_pushlstring(L, p->value, p->value_len);
    } else {
        lua_pushliteral(L, "0");
    }

    return 1;
}


/* as nginx: three digits, "000" before any status is set */
static int
gl_lua_var_status(lua_State *L, const gl_lua_var_ctx_t *c)
{
    char  buf[16];

    lua_pushlstring(L, buf, snprintf(buf, sizeof(buf), "%03d",
                                     c->h->r.status));

    return 1;
}


static int
gl_lua_var_request_time(lua_State *L, const gl_lua_var_ctx_t *c)
{
    char    buf[64];
    double  t;

    t = ev_now(c->h->vm->loop) - c->h->r.start_time;

    lua_pushlstring(L, buf, snprintf(buf, sizeof(buf), "%.3f",
                                     t < 0 ? 0.0 : t));
    return 1;
}


static int
gl_lua_var_msec(lua_State *L, const gl_lua_var_ctx_t *c)
{
    char  buf[64];

    lua_pushlstring(L, buf, snprintf(buf, sizeof(buf), "%.3f",
                                     ev_now(c->h->vm->loop)));
    return 1;
}


static int
gl_lua_var_pid(lua_State *L, const gl_lua_var_ctx_t *c)
{
    (void) c;

    lua_pushfstring(L, "%d", (int) getpid());
    return 1;
}


/* time_local (data "l") and time_iso8601 (data "i"), as nginx's log
   times: local time with its offset */
static int
gl_lua_var_time(lua_State *L, const gl_lua_var_ctx_t *c)
{
    int          n;
    char         buf[64];
    long         off;
    time_t       t;
    struct tm    tm;

    static const char  *months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };

    t = (time_t) ev_now(c->h->vm->loop);
    localtime_r(&t, &tm);

    off = tm.tm_gmtoff / 60;

    if (c->v->data[0] == 'l') {
        n = snprintf(buf, sizeof(buf),
                     "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                     labs(off / 60), labs(off % 60));
    } else {
        n = snprintf(buf, sizeof(buf),
                     "%4d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                     labs(off / 60), labs(off % 60));
    }

    lua_pushlstring(L, buf, n);
    return 1;
}


/*
 * nginx 1.22's core variables (ngx_http_core_variables) and the fastcgi
 * module's script name, sorted by name for bsearch.  A header_in row's
 * data is "header\0PARAM\0".
 */
static const gl_lua_var_t  gl_lua_vars[] = {
    { "args", gl_lua_var_args, NULL, GL_VAR_CHANGEABLE },
    { "binary_remote_addr", gl_lua_var_binary_remote_addr, NULL, 0 },
    { "body_bytes_sent", gl_lua_var_passed, NULL, 0 },
    { "bytes_sent", gl_lua_var_passed, NULL, 0 },
    { "connection", gl_lua_var_passed, NULL, 0 },
    { "connection_requests", gl_lua_var_passed, NULL, 0 },
    { "connection_time", gl_lua_var_passed, NULL, 0 },
    { "content_length", gl_lua_var_header_in,
      "content-length\0CONTENT_LENGTH", 0 },
    { "content_type", gl_lua_var_header_in,
      "content-type\0CONTENT_TYPE", 0 },
    { "document_root", gl_lua_var_param, "DOCUMENT_ROOT", GL_VAR_EMPTY },
    { "document_uri", gl_lua_var_uri, NULL, 0 },
    { "fastcgi_script_name", gl_lua_var_param, "SCRIPT_NAME",
      GL_VAR_EMPTY },
    { "host", gl_lua_var_host, NULL, 0 },
    { "hostname", gl_lua_var_hostname, NULL, 0 },
    { "http_cookie", gl_lua_var_http_joined, ";", 0 },
    { "http_host", gl_lua_var_http, NULL, 0 },
    { "http_referer", gl_lua_var_http, NULL, 0 },
    { "http_user_agent", gl_lua_var_http, NULL, 0 },
    { "http_via", gl_lua_var_http, NULL, 0 },
    { "http_x_forwarded_for", gl_lua_var_http_joined, ",", 0 },
    { "https", gl_lua_var_https, NULL, 0 },
    { "is_args", gl_lua_var_is_args, NULL, 0 },
    { "limit_rate", gl_lua_var_limit_rate, NULL, GL_VAR_CHANGEABLE },
    { "msec", gl_lua_var_msec, NULL, 0 },
    { "nginx_version", gl_lua_var_nginx_version, NULL, 0 },
    { "pid", gl_lua_var_pid, NULL, 0 },
    { "pipe", gl_lua_var_passed, NULL, 0 },
    { "proxy_protocol_addr", gl_lua_var_passed, NULL, 0 },
    { "proxy_protocol_port", gl_lua_var_passed, NULL, 0 },
    { "proxy_protocol_server_addr", gl_lua_var_passed, NULL, 0 },
    { "proxy_protocol_server_port", gl_lua_var_passed, NULL, 0 },
    { "query_string", gl_lua_var_args, NULL, 0 },
    { "realpath_root", gl_lua_var_realpath_root, NULL, 0 },
    { "remote_addr", gl_lua_var_param, "REMOTE_ADDR", GL_VAR_EMPTY },
    { "remote_port", gl_lua_var_param, "REMOTE_PORT", GL_VAR_EMPTY },
    { "remote_user", gl_lua_var_param, "REMOTE_USER", 0 },
    { "request", gl_lua_var_request, NULL, 0 },
    { "request_body", gl_lua_var_request_body, NULL, 0 },
    { "request_body_file", gl_lua_var_request_body_file, NULL, 0 },
    { "request_completion", gl_lua_var_request_completion, NULL, 0 },
    { "request_filename", gl_lua_var_param, "SCRIPT_FILENAME",
      GL_VAR_EMPTY },
    { "request_id", gl_lua_var_request_id, NULL, 0 },
    { "request_length", gl_lua_var_passed, NULL, 0 },
    { "request_method", gl_lua_var_request_method, NULL, 0 },
    { "request_time", gl_lua_var_request_time, NULL, 0 },
    { "request_uri", gl_lua_var_param, "REQUEST_URI", GL_VAR_EMPTY },
    { "scheme", gl_lua_var_scheme, NULL, 0 },
    { "sent_http_cache_control", gl_lua_var_sent_joined, NULL, 0 },
    { "sent_http_connection", gl_lua_var_sent_connection, NULL, 0 },
    { "sent_http_content_length", gl_lua_var_sent_http, NULL, 0 },
    { "sent_http_content_type", gl_lua_var_sent_content_type, NULL, 0 },
    { "sent_http_keep_alive", gl_lua_var_nil, NULL, 0 },
    { "sent_http_last_modified", gl_lua_var_sent_http, NULL, 0 },
    { "sent_http_link", gl_lua_var_sent_joined, NULL, 0 },
    { "sent_http_location", gl_lua_var_sent_http, NULL, 0 },
    { "sent_http_transfer_encoding", gl_lua_var_sent_transfer_encoding,
      NULL, 0 },
    { "server_addr", gl_lua_var_param, "SERVER_ADDR", GL_VAR_EMPTY },
    { "server_name", gl_lua_var_param, "SERVER_NAME", GL_VAR_EMPTY },
    { "server_port", gl_lua_var_param, "SERVER_PORT", GL_VAR_EMPTY },
    { "server_protocol", gl_lua_var_param, "SERVER_PROTOCOL",
      GL_VAR_EMPTY },
    { "status", gl_lua_var_status, NULL, 0 },
    { "tcpinfo_rcv_space", gl_lua_var_passed, NULL, 0 },
    { "tcpinfo_rtt", gl_lua_var_passed, NULL, 0 },
    { "tcpinfo_rttvar", gl_lua_var_passed, NULL, 0 },
    { "tcpinfo_snd_cwnd", gl_lua_var_passed, NULL, 0 },
    { "time_iso8601", gl_lua_var_time, "i", 0 },
    { "time_local", gl_lua_var_time, "l", 0 },
    { "uri", gl_lua_var_uri, NULL, 0 },
};

/* after the names above, as nginx tries them: in this order */
static const gl_lua_var_t  gl_lua_var_prefixes[] = {
    { "http_", gl_lua_var_http, NULL, 0 },
    { "sent_http_", gl_lua_var_sent_http, NULL, 0 },
    { "sent_trailer_", gl_lua_var_nil, NULL, 0 },
    { "cookie_", gl_lua_var_cookie, NULL, 0 },
    { "arg_", gl_lua_var_arg, NULL, 0 },
};


static int
gl_lua_var_cmp(const void *key, const void *elt)
{
    return strcmp(key, ((const gl_lua_var_t *) elt)->name);
}


/* the row of a lower-cased name: a core variable, or a prefix; NULL */
static const gl_lua_var_t *
gl_lua_var_find(const char *name, size_t len, int *prefix)
{
    size_t               i, n;
    const gl_lua_var_t  *v;

    v = bsearch(name, gl_lua_vars, gl_nelems(gl_lua_vars),
                sizeof(gl_lua_var_t), gl_lua_var_cmp);

    if (v != NULL) {
        *prefix = 0;
        return v;
    }

    for (i = 0; i < gl_nelems(gl_lua_var_prefixes); i++) {
        v = &gl_lua_var_prefixes[i];
        n = strlen(v->name);

        if (len > n && memcmp(name, v->name, n) == 0) {
            *prefix = 1;
            return v;
        }
    }

    return NULL;
}


/* the name lower-cased, in buf if it fits, else in a userdata pushed */
static char *
gl_lua_var_lower(lua_State *L, const char *name, size_t len, char *buf,
    int *pushed)
{
    size_t  i;
    char   *p;

    *pushed = (len >= GL_VAR_NAME_LEN);
    p = *pushed ? lua_newuserdata(L, len + 1) : buf;

    for (i = 0; i < len; i++) {
        p[i] = (char) tolower((u_char) name[i]);
    }

    p[len] = '\0';

    return p;
}


/* ngx.var[name] for h: pushes its value, or nil (and maybe the name
   lower-cased under it) */
static int
gl_lua_var_get(lua_State *L, gl_http_t *h, const char *name, size_t len)
{
    int                  prefix, pushed;
    size_t               i;
    char                 buf[GL_VAR_NAME_LEN];
    char                *lname;
    gl_request_t        *r;
    gl_lua_var_ctx_t     c;
    const gl_lua_var_t  *v;

    r = &h->r;
    lname = gl_lua_var_lower(L, name, len, buf, &pushed);

    if (h->var_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->var_ref);
        lua_pushlstring(L, lname, len);
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1)) {
            return 1;
        }
        lua_pop(L, 2);
    }

    v = gl_lua_var_find(lname, len, &prefix);

    if (v != NULL) {
        c.h = h;
        c.v = v;
        c.name = lname;
        c.len = len;

        return v->get(L, &c);
    }

    /* a custom fastcgi_param: as written, or upper-cased */
    if (gl_request_param(r, name, len) != NULL) {
        return gl_lua_push_param(L, r, name, len, 1);
    }

    for (i = 0; i < len; i++) {
        lname[i] = (char) toupper((u_char) name[i]);
    }

    return gl_lua_push_param(L, r, lname, len, 1);
}


static int
gl_lua_var_index(lua_State *L)
{
    size_t       len;
    const char  *name;
    gl_http_t   *h;

    h = gl_http_get(L, 0);

    if (lua_type(L, 2) == LUA_TNUMBER) {
        /* $1..$9, the captures of nginx's regexes: none here */
        lua_pushnil(L);
        return 1;
    }

    if (lua_type(L, 2) != LUA_TSTRING) {
        return luaL_error(L, "bad variable name");
    }

    name = lua_tolstring(L, 2, &len);

    return gl_lua_var_get(L, h, name, len);
}


int
gl_lua_var_ref(const char *name, size_t len, gl_lua_var_ref_t *ref)
{
    int                  prefix;
    const gl_lua_var_t  *v;

    if (len == 0 || len >= GL_VAR_NAME_LEN) {
        return GL_DECLINED;
    }

    v = gl_lua_var_find(name, len, &prefix);

    if (v == NULL) {
        return GL_DECLINED;
    }

    memset(ref, 0, sizeof(gl_lua_var_ref_t));

    /* the rows C code can read as well without Lua: a param (ngx.var
       refuses to change them), a request header (as ngx.req.set_header
       left it) */
    if (v->get == gl_lua_var_param) {
        ref->param = v->data;
        ref->empty = (v->flags & GL_VAR_EMPTY) ? 1 : 0;

    } else if (v->get == gl_lua_var_http) {
        ref->header = 1;
    }

    return GL_OK;
}


int
gl_lua_var_push(lua_State *L, gl_http_t *h, const char *name, size_t len)
{
    int  top;

    top = lua_gettop(L);

    (void) gl_lua_var_get(L, h, name, len);

    if (lua_gettop(L) > top + 1) {
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
    }

    return 1;
}


static int
gl_lua_var_newindex(lua_State *L)
{
    int                  prefix, pushed;
    size_t               len, vlen;
    char                 buf[GL_VAR_NAME_LEN];
    char                *lname;
    const char          *name, *val;
    gl_http_t           *h;
    gl_request_t        *r;
    const gl_lua_var_t  *v;

    h = gl_http_get(L, 0);
    r = &h->r;

    if (lua_type(L, 2) != LUA_TSTRING) {
        return luaL_error(L, "bad variable name");
    }

    name = lua_tolstring(L, 2, &len);

    /* as lua-resty-core: any value but nil goes through tostring() */
    if (!lua_isnil(L, 3) && lua_type(L, 3) != LUA_TSTRING) {
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, 3);
        lua_call(L, 1, 1);
        lua_replace(L, 3);
    }

    lname = gl_lua_var_lower(L, name, len, buf, &pushed);
    v = gl_lua_var_find(lname, len, &prefix);

    if (v != NULL && !prefix && !(v->flags & GL_VAR_CHANGEABLE)) {
        return luaL_error(L, "variable \"%s\" not changeable", lname);
    }

    if (v != NULL && prefix) {
        /* nginx has no such variable to write; golapis lets any other
           name be written, having no "set $name" to declare it */
        return luaL_error(L, "variable \"%s\" not found for writing; maybe "
                          "it is a built-in variable that is not changeable "
                          "or you forgot to use \"set $%s '';\" in the "
                          "config file to define it first", lname, lname);
    }

    if (v != NULL && strcmp(lname, "args") == 0) {
        val = lua_tolstring(L, 3, &vlen);
        free(r->args);
        r->args = strndup(val ? val : "", val ? vlen : 0);
        if (r->args == NULL) {
            return luaL_error(L, "no memory");
        }
        r->args_unset = (val == NULL);
        return 0;
    }

    if (h->var_ref == LUA_NOREF) {
        lua_newtable(L);
        h->var_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, h->var_ref);
    lua_pushlstring(L, lname, len);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);

    return 0;
}


static void
gl_lua_var_inject(lua_State *L)
{
#if (GL_DEBUG)
    size_t  i;

    for (i = 1; i < gl_nelems(gl_lua_vars); i++) {
        gl_assert(strcmp(gl_lua_vars[i - 1].name, gl_lua_vars[i].name) < 0);
    }
#endif

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
