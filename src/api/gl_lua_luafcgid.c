/*
 * luafcgid scripts: a script that defines a global main(env, r) and prints
 * nothing while its chunk runs is a luafcgid script; once the chunk is
 * over, the module's content_done hook starts main(env, r) as the
 * content phase's next entry coroutine, where it may wait (r:gets() waits
 * for the body) as any script does.
 *
 * env is a table of the FastCGI params; r is a userdata whose methods
 * (r:header, r:puts, r:gets, r:flush, r:reset, r:config, r:log) work while
 * its request runs and raise once it is over: the request_end hook cuts
 * the link when the request goes away.  r:puts output is buffered in
 * the userdata, as luafcgid buffers it, and goes out through ngx.print at
 * r:flush() and when main returns, so a slow client holds the script
 * (ngx.print's wait) rather than the output piling up.
 *
 * See docs/api-luafcgid.md for what differs from luafcgid and why.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_request.h"
#include "gl_http.h"
#include "gl_module.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#define GL_LF_MT          "golapis.luafcgid.request"
#define GL_LF_NAME_MAX    256

typedef struct {
    gl_request_t  *r;       /* NULL once the request is over */
    u_char        *buf;     /* r:puts output not sent yet */
    size_t         len;
    size_t         cap;
} gl_lf_t;

static char  gl_lf_run_key;      /* registry: run(main) -> the call */
static char  gl_lf_config_key;   /* registry: the worker's r:config table */


/*
 * The methods that may wait (they call ngx.print and ngx.req.read_body,
 * which yield) are in Lua; so is the call of main, which sends what main
 * left buffered.  Arguments: C helpers, then the golapis functions, taken
 * once so that a script replacing ngx.print does not change them.
 */


/* raises "MESSAGE" at the position of the function `level` up */
static int
gl_lf_error(lua_State *L, int level, const char *fmt, const char *arg)
{
    luaL_where(L, level);
    lua_pushfstring(L, fmt, arg);
    lua_concat(L, 2);

    return lua_error(L);
}


/*
 * The r of the call (argument 1), usable now; raises otherwise, at the
 * position `level` up: 1 from a method in C, 2 from a helper that a Lua
 * method calls.
 */
static gl_lf_t *
gl_lf_self(lua_State *L, int level, const char *fname)
{
    int            ok;
    gl_lf_t       *lf;
    gl_http_t     *h;

    lf = lua_touserdata(L, 1);
    ok = 0;

    if (lf != NULL && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, GL_LF_MT);
        ok = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }

    if (!ok) {
        lua_pushfstring(L, "bad argument #1 to '%s' (luafcgid request "
                        "expected, got %s)", fname, luaL_typename(L, 1));
        gl_lf_error(L, level, "%s", lua_tostring(L, -1));
    }

    if (lf->r == NULL) {
        gl_lf_error(L, level, "luafcgid r:%s(): request is over", fname);
    }

    h = gl_http_current();

    if (h == NULL || lf->r != &h->r) {
        /* a request still running, but not the one calling */
        gl_lf_error(L, level, "luafcgid r:%s(): the request object of "
                    "another request", fname);
    }

    if (h->task.context != GL_PHASE_CONTENT) {
        gl_lf_error(L, level, "API disabled in the context of %s",
                    gl_lua_context_name(h->task.context));
    }

    return lf;
}


/* a header name: printable ASCII, no ":" */
static int
gl_lf_header_name_ok(const char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len >= GL_LF_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((u_char) name[i] <= 0x20 || (u_char) name[i] >= 0x7f
            || name[i] == ':')
        {
            return 0;
        }
    }

    return 1;
}


static int
gl_lf_is_space(char c)
{
    return c == ' ' || c == '\t';
}


/* r:header(name, value), r:header("Name: value") */
static int
gl_lf_header(lua_State *L)
{
    int            status;
    size_t         nlen, vlen, i;
    gl_lf_t       *lf;
    const char    *name, *value, *colon;
    gl_request_t  *r;

    lf = gl_lf_self(L, 1, "header");
    r = lf->r;

    if (lua_gettop(L) < 2) {
        /* luafcgid ignores a call without arguments */
        return 0;
    }

    name = luaL_checklstring(L, 2, &nlen);

    if (!lua_isnoneornil(L, 3)) {
        value = luaL_checklstring(L, 3, &vlen);

    } else {
        /* the line form: "Name: value" */
        colon = memchr(name, ':', nlen);
        if (colon == NULL) {
            return luaL_error(L, "luafcgid r:header(): bad header line "
                              "\"%s\" (no \":\")", name);
        }

        value = colon + 1;
        vlen = nlen - (value - name);
        nlen = colon - name;
    }

    while (nlen && gl_lf_is_space(name[0])) {
        name++;
        nlen--;
    }

    while (nlen && gl_lf_is_space(name[nlen - 1])) {
        nlen--;
    }

    while (vlen && gl_lf_is_space(value[0])) {
        value++;
        vlen--;
    }

    while (vlen && gl_lf_is_space(value[vlen - 1])) {
        vlen--;
    }

    if (!gl_lf_header_name_ok(name, nlen)) {
        lua_pushlstring(L, name, nlen);
        return luaL_error(L, "luafcgid r:header(): bad header name \"%s\"",
                          lua_tostring(L, -1));
    }

    /* the value goes into the FastCGI header block: no line breaks */
    for (i = 0; i < vlen; i++) {
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') {
            lua_pushlstring(L, name, nlen);
            return luaL_error(L, "luafcgid r:header(): bad value for header "
                              "\"%s\" (line break or NUL)",
                              lua_tostring(L, -1));
        }
    }

    if (nlen == 6 && strncasecmp(name, "Status", 6) == 0) {
        /* "Status: 404 Not Found", as a CGI script says it */
        status = 0;

        if (vlen >= 3 && isdigit((u_char) value[0])
            && isdigit((u_char) value[1]) && isdigit((u_char) value[2])
            && (vlen == 3 || gl_lf_is_space(value[3])))
        {
            status = (value[0] - '0') * 100 + (value[1] - '0') * 10
                     + (value[2] - '0');
        }

        if (status < 100) {
            lua_pushlstring(L, value, vlen);
            return luaL_error(L, "luafcgid r:header(): bad status \"%s\"",
                              lua_tostring(L, -1));
        }

        if (!r->header_sent) {
            r->status = status;
        }

        return 0;
    }

    if (r->header_sent) {
        /* after r:flush(): luafcgid drops it too */
        return 0;
    }

    if (nlen == 12 && strncasecmp(name, "Content-Type", 12) == 0) {
        /* it replaces the default text/html */
        r->mime_set = 1;

        if (gl_request_set_header(r, name, nlen, value, vlen, 1) != GL_OK) {
            return luaL_error(L, "no memory");
        }

        return 0;
    }

    if (vlen == 0) {
        /* gl_request_set_header() would take it as a removal */
        return 0;
    }

    if (gl_request_set_header(r, name, nlen, value, vlen, 0) != GL_OK) {
        return luaL_error(L, "no memory");
    }

    return 0;
}


/* r:puts(s): into the buffer */
static int
gl_lf_puts(lua_State *L)
{
    size_t       len, cap;
    u_char      *p;
    gl_lf_t     *lf;
    const char  *s;

    lf = gl_lf_self(L, 1, "puts");

    if (lua_gettop(L) < 2) {
        return 0;
    }

    s = luaL_checklstring(L, 2, &len);

    if (len == 0) {
        return 0;
    }

    if (len > lf->cap - lf->len) {
        cap = gl_max(lf->cap * 2, 4096);

        while (cap - lf->len < len) {
            if (cap > ((size_t) -1) / 2) {
                return luaL_error(L, "no memory");
            }
            cap *= 2;
        }

        p = realloc(lf->buf, cap);
        if (p == NULL) {
            return luaL_error(L, "no memory");
        }

        lf->buf = p;
        lf->cap = cap;
    }

    memcpy(lf->buf + lf->len, s, len);
    lf->len += len;

    return 0;
}


/* r:reset(): drops the buffered output (the headers stay, as luafcgid's) */
static int
gl_lf_reset(lua_State *L)
{
    gl_lf_t  *lf;

    lf = gl_lf_self(L, 1, "reset");
    lf->len = 0;

    return 0;
}


/* r:config(name): the value, or nil; r:config(name, value): sets it (nil
   removes it) */
static int
gl_lf_config(lua_State *L)
{
    int  set;

    gl_lf_self(L, 1, "config");

    if (lua_gettop(L) < 2) {
        return 0;
    }

    luaL_checkstring(L, 2);
    set = lua_gettop(L) >= 3;

    if (set && !lua_isnil(L, 3)) {
        /* strings, as luafcgid takes them (a number becomes one) */
        luaL_checkstring(L, 3);
    }

    lua_pushlightuserdata(L, &gl_lf_config_key);
    lua_rawget(L, LUA_REGISTRYINDEX);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushlightuserdata(L, &gl_lf_config_key);
        lua_pushvalue(L, -2);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }

    lua_pushvalue(L, 2);

    if (set) {
        lua_pushvalue(L, 3);
        lua_rawset(L, -3);
        return 0;
    }

    lua_rawget(L, -2);

    return 1;
}


/*
 * r:log(s): a line "luafcgid: FILE:LINE: s" at level error, so that it
 * shows with the default error_log level, as luafcgid's log lines always
 * did.  s is the message as it is: luafcgid gave it to printf as the
 * format, so a "%" in it printed garbage or crashed.
 */
static int
gl_lf_log(lua_State *L)
{
    int          n;
    char         line[GL_LOG_LINE_MAX];
    size_t       len;
    lua_Debug    ar;
    const char  *s, *src, *p;

    gl_lf_self(L, 1, "log");

    if (lua_gettop(L) < 2) {
        return 0;
    }

    s = luaL_checklstring(L, 2, &len);

    if (GL_LOG_ERR > gl_log_level) {
        return 0;
    }

    memset(&ar, 0, sizeof(ar));

    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
        src = ar.short_src;
        for (p = ar.short_src; *p != '\0'; p++) {
            if (*p == '/') {
                src = p + 1;
            }
        }

        n = snprintf(line, sizeof(line), "luafcgid: %s:%d: ", src,
                     ar.currentline);

    } else {
        n = snprintf(line, sizeof(line), "luafcgid: ");
    }

    if (n < 0) {
        n = 0;
    }

    n = gl_min((size_t) n, sizeof(line) - 1);
    len = gl_min(len, sizeof(line) - n);
    memcpy(line + n, s, len);

    gl_log_write(GL_LOG_ERR, line, n + len);

    return 0;
}


/* check(r, name), for the Lua methods */
static int
gl_lf_check(lua_State *L)
{
    gl_lf_self(L, 2, luaL_checkstring(L, 2));

    return 0;
}


/* take(r, name): the buffered output, now sent by the caller */
static int
gl_lf_take(lua_State *L)
{
    gl_lf_t  *lf;

    lf = gl_lf_self(L, 2, luaL_checkstring(L, 2));

    lua_pushlstring(L, (const char *) (lf->buf ? lf->buf : (u_char *) ""),
                    lf->len);
    lf->len = 0;

    if (lf->cap > 65536) {
        /* a big page once: do not keep its buffer for the next puts */
        free(lf->buf);
        lf->buf = NULL;
        lf->cap = 0;
    }

    return 1;
}


static int
gl_lf_gc(lua_State *L)
{
    gl_lf_t  *lf;

    lf = lua_touserdata(L, 1);
    free(lf->buf);
    lf->buf = NULL;

    return 0;
}


static int
gl_lf_tostring(lua_State *L)
{
    gl_lf_t  *lf;

    lf = lua_touserdata(L, 1);
    lua_pushfstring(L, "luafcgid request%s: %p",
                    lf->r ? "" : " (over)", (void *) lf);

    return 1;
}


/* pushes the golapis function `name` */
static void
gl_lf_push_api(lua_State *L, int golapis, const char *tab, const char *name)
{
    lua_pushvalue(L, golapis);

    if (tab != NULL) {
        lua_pushstring(L, tab);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }

    if (!lua_istable(L, -1)) {
        luaL_error(L, "no golapis.%s", tab ? tab : "");
    }

    lua_pushstring(L, name);
    lua_rawget(L, -2);
    lua_remove(L, -2);

    if (!lua_isfunction(L, -1)) {
        luaL_error(L, "no golapis.%s%s%s", tab ? tab : "", tab ? "." : "",
                   name);
    }
}


/* the metatable of r and run(), once per Lua state */
static void
gl_lf_init_state(lua_State *L)
{
    int  golapis;

    static const luaL_Reg  methods[] = {
        { "header", gl_lf_header },
        { "puts", gl_lf_puts },
        { "reset", gl_lf_reset },
        { "config", gl_lf_config },
        { "log", gl_lf_log },
        { NULL, NULL }
    };

    luaL_newmetatable(L, GL_LF_MT);

    lua_createtable(L, 0, 8);
    luaL_register(L, NULL, methods);

    if (gl_lua_lib_load(L, "golapis.luafcgid", NULL) != GL_OK) {
        lua_error(L);
    }

    lua_pushcfunction(L, gl_lf_check);
    lua_pushcfunction(L, gl_lf_take);

    lua_getglobal(L, "golapis");
    golapis = lua_gettop(L);

    if (!lua_istable(L, golapis)) {
        luaL_error(L, "no golapis table");
    }

    gl_lf_push_api(L, golapis, NULL, "print");
    gl_lf_push_api(L, golapis, NULL, "send_headers");
    gl_lf_push_api(L, golapis, NULL, "flush");
    gl_lf_push_api(L, golapis, "req", "read_body");
    gl_lf_push_api(L, golapis, "req", "get_body_data");
    gl_lf_push_api(L, golapis, "req", "get_body_file");
    lua_remove(L, golapis);

    lua_getglobal(L, "io");
    lua_getfield(L, -1, "open");
    lua_remove(L, -2);

    /* the chunk and its 9 arguments; its 3 results: flush, gets, run */
    lua_call(L, 9, 3);

    lua_pushlightuserdata(L, &gl_lf_run_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_setfield(L, -3, "gets");
    lua_setfield(L, -2, "flush");

    lua_setfield(L, -2, "__index");

    lua_pushcfunction(L, gl_lf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gl_lf_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "luafcgid request");
    lua_setfield(L, -2, "__metatable");

    lua_pop(L, 1);
}


/*
 * The handler's name: golapis.luafcgid_handler when a script or
 * init_by_lua set it (false: no luafcgid scripts), else the
 * luafcgid_handler directive's.  Pushes nothing; NULL for none.
 */
static const char *
gl_lf_handler_name(lua_State *L, gl_request_t *r)
{
    const char  *name;

    name = r->conf->luafcgid_handler;

    lua_getglobal(L, "golapis");

    if (lua_istable(L, -1)) {
        lua_pushliteral(L, "luafcgid_handler");
        lua_rawget(L, -2);

        if (lua_type(L, -1) == LUA_TSTRING) {
            /* the string stays alive in the golapis table */
            name = lua_tostring(L, -1);

        } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        {
            name = NULL;
        }

        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    return (name != NULL && name[0] != '\0') ? name : NULL;
}


/*
 * In a protected call: pushes run(main), env and r when the chunk defined
 * the handler, nothing otherwise.
 */
static int
gl_lf_prepare(lua_State *L)
{
    size_t         i;
    gl_lf_t       *lf;
    gl_http_t     *h;
    const char    *name;
    gl_request_t  *r;

    h = lua_touserdata(L, 1);
    r = &h->r;
    lua_settop(L, 0);

    name = gl_lf_handler_name(L, r);
    if (name == NULL) {
        return 0;
    }

    /* the chunk's own globals: a main in _G (a module's) is not it */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->env_ref);
    lua_pushstring(L, name);
    lua_rawget(L, -2);
    lua_remove(L, -2);

    if (!lua_isfunction(L, -1)) {
        return 0;
    }

    lua_pushlightuserdata(L, &gl_lf_run_key);
    lua_rawget(L, LUA_REGISTRYINDEX);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        gl_lf_init_state(L);
        lua_pushlightuserdata(L, &gl_lf_run_key);
        lua_rawget(L, LUA_REGISTRYINDEX);
    }

    lua_insert(L, 1);
    lua_call(L, 1, 1);

    /* env: the params as they came */
    lua_createtable(L, 0, (int) r->nparams);

    for (i = 0; i < r->nparams; i++) {
        lua_pushlstring(L, r->params[i].name, r->params[i].name_len);
        lua_pushlstring(L, r->params[i].value, r->params[i].value_len);
        lua_rawset(L, -3);
    }

    lf = lua_newuserdata(L, sizeof(gl_lf_t));
    memset(lf, 0, sizeof(gl_lf_t));
    luaL_getmetatable(L, GL_LF_MT);
    lua_setmetatable(L, -2);

    lua_pushvalue(L, -1);
    h->lf_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lf->r = r;

    return 3;
}


/* the chunk returned: if it defined main(env, r), main runs now */
static int
gl_lf_content_done(gl_http_t *h)
{
    int            top, n;
    lua_State     *L;
    gl_request_t  *r;

    r = &h->r;

    /*
     * main runs once, in the content phase, after a chunk that sent
     * nothing (a script that printed is an OpenResty script, even with a
     * function named main)
     */
    if (h->luafcgid || r->header_sent || r->finished
        || h->env_ref == LUA_NOREF)
    {
        return GL_DECLINED;
    }

    L = h->gen->L;
    top = lua_gettop(L);

    lua_pushcfunction(L, gl_lf_prepare);
    lua_pushlightuserdata(L, h);

    if (lua_pcall(L, 1, LUA_MULTRET, 0) != 0) {
        gl_log_error(GL_LOG_ERR, 0, "cannot run the luafcgid handler: %s",
                     lua_tostring(L, -1));
        lua_settop(L, top);
        h->luafcgid = 1;
        gl_request_error_page(r, 500);
        return GL_DECLINED;
    }

    n = lua_gettop(L) - top;

    if (n != 3) {
        lua_settop(L, top);
        return GL_DECLINED;
    }

    h->luafcgid = 1;

    if (!r->mime_set) {
        /* luafcgid's default type */
        if (gl_request_set_header(r, "Content-Type", 12, "text/html", 9, 1)
            != GL_OK)
        {
            gl_log_error(GL_LOG_ALERT, 0, "no memory for a header");
            lua_settop(L, top);
            gl_request_error_page(r, 500);
            return GL_DECLINED;
        }

        r->mime_set = 1;
    }

    /* main(env, r) is the content phase's entry coroutine now */
    if (gl_task_start(&h->task, 2) != GL_OK) {
        gl_request_error_page(r, 500);
        return GL_DECLINED;
    }

    return GL_OK;
}


static void
gl_lf_request_end(gl_http_t *h)
{
    lua_State  *L;
    gl_lf_t    *lf;

    if (h->lf_ref == LUA_NOREF) {
        return;
    }

    L = h->gen->L;

    lua_rawgeti(L, LUA_REGISTRYINDEX, h->lf_ref);
    lf = lua_touserdata(L, -1);

    if (lf != NULL) {
        lf->r = NULL;
        free(lf->buf);
        lf->buf = NULL;
        lf->len = 0;
        lf->cap = 0;
    }

    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, h->lf_ref);
    h->lf_ref = LUA_NOREF;
}


gl_module_t  gl_lua_luafcgid_module = {
    .name = "luafcgid",
    .content_done = gl_lf_content_done,
    .request_end = gl_lf_request_end,
};
