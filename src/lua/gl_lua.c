/*
 * The worker's Lua state, the code cache and the request coroutines.
 *
 * A script is compiled once per state into a factory: the file's text
 * wrapped as "return function(...) <text> end".  Each request calls the
 * factory for a fresh closure (the bytecode is shared), gives it its own
 * global table, whose reads fall through to _G, and runs it in a new
 * coroutine.  A closure per request is what lets two requests of the same
 * script wait at the same time without sharing globals.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_house.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_request.h"
#include "gl_worker.h"

#include <stdio.h>
#include <lualib.h>

static _Thread_local gl_request_t  *gl_lua_current;
/* the phase outside any request: init, init_worker */
static _Thread_local int            gl_lua_phase = -1;

static char  gl_lua_code_key;       /* registry: path -> factory */
static char  gl_lua_env_mt_key;     /* registry: metatable of request envs */
static char  gl_lua_ngx_key;        /* registry: the ngx table */
static char  gl_lua_modules_key;    /* registry: modules loaded from files */

static int gl_lua_drain_done(gl_request_t *r);
static void gl_lua_watch_modules(lua_State *L, gl_worker_t *w);
static void gl_lua_forget_modules(lua_State *L);
static char *gl_lua_file_text(lua_State *L, const char *path, size_t *len);
static void gl_lua_file_loaded(const char *path, const char *text,
    size_t len);

/* the error object of ngx.exit() in a handler that cannot yield */
static char  gl_lua_exit_key;


int
gl_lua_get_phase(gl_request_t *r)
{
    return r != NULL ? (int) r->phase : gl_lua_phase;
}


void
gl_lua_check_context(lua_State *L, gl_request_t *r, unsigned mask)
{
    int  phase;

    phase = gl_lua_get_phase(r);

    if (phase >= 0 && !(mask & (1u << phase))) {
        luaL_error(L, "API disabled in the context of %s*",
                   gl_conf_phase_directive(phase));
    }
}


gl_request_t *
gl_lua_current_request(void)
{
    return gl_lua_current;
}


/*
 * For Lua modules through LuaJIT's FFI (resty.core.base's get_request):
 * the request running now, as an opaque pointer, or NULL.
 */
void *
gl_ffi_get_request(void)
{
    return gl_lua_current;
}


gl_request_t *
gl_lua_request(lua_State *L)
{
    if (gl_lua_current == NULL) {
        luaL_error(L, "no request found");
    }

    return gl_lua_current;
}


static int
gl_lua_set_path(lua_State *L, const char *field, const char *conf,
    const char *ours)
{
    const char  *def;

    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    def = lua_tostring(L, -1);

    /* ours ("" or ending in ";"), then the configured path with ";;"
       meaning the default */
    lua_pushstring(L, ours);

    if (conf != NULL) {
        const char  *p = strstr(conf, ";;");

        if (p != NULL) {
            lua_pushlstring(L, conf, p - conf);
            lua_pushstring(L, ";");
            lua_pushstring(L, def);
            lua_pushstring(L, ";");
            lua_pushstring(L, p + 2);
            lua_concat(L, 6);

        } else {
            lua_pushstring(L, conf);
            lua_concat(L, 2);
        }

    } else {
        lua_pushstring(L, def);
        lua_concat(L, 2);
    }

    lua_setfield(L, -3, field);
    lua_pop(L, 2);

    return GL_OK;
}


static void
gl_lua_inject_constants(lua_State *L)
{
    static const struct {
        const char  *name;
        int          value;
    } consts[] = {
        { "OK", 0 }, { "ERROR", -1 }, { "AGAIN", -2 }, { "DONE", -4 },
        { "DECLINED", -5 },
        { "HTTP_CONTINUE", 100 }, { "HTTP_SWITCHING_PROTOCOLS", 101 },
        { "HTTP_OK", 200 }, { "HTTP_CREATED", 201 },
        { "HTTP_ACCEPTED", 202 }, { "HTTP_NO_CONTENT", 204 },
        { "HTTP_PARTIAL_CONTENT", 206 },
        { "HTTP_SPECIAL_RESPONSE", 300 },
        { "HTTP_MOVED_PERMANENTLY", 301 },
        { "HTTP_MOVED_TEMPORARILY", 302 }, { "HTTP_SEE_OTHER", 303 },
        { "HTTP_NOT_MODIFIED", 304 }, { "HTTP_TEMPORARY_REDIRECT", 307 },
        { "HTTP_PERMANENT_REDIRECT", 308 },
        { "HTTP_BAD_REQUEST", 400 }, { "HTTP_UNAUTHORIZED", 401 },
        { "HTTP_PAYMENT_REQUIRED", 402 }, { "HTTP_FORBIDDEN", 403 },
        { "HTTP_NOT_FOUND", 404 }, { "HTTP_NOT_ALLOWED", 405 },
        { "HTTP_NOT_ACCEPTABLE", 406 }, { "HTTP_REQUEST_TIMEOUT", 408 },
        { "HTTP_CONFLICT", 409 }, { "HTTP_GONE", 410 },
        { "HTTP_UPGRADE_REQUIRED", 426 },
        { "HTTP_TOO_MANY_REQUESTS", 429 }, { "HTTP_CLOSE", 444 },
        { "HTTP_ILLEGAL", 451 },
        { "HTTP_INTERNAL_SERVER_ERROR", 500 },
        { "HTTP_METHOD_NOT_IMPLEMENTED", 501 },
        { "HTTP_BAD_GATEWAY", 502 }, { "HTTP_SERVICE_UNAVAILABLE", 503 },
        { "HTTP_GATEWAY_TIMEOUT", 504 },
        { "HTTP_VERSION_NOT_SUPPORTED", 505 },
        { "HTTP_INSUFFICIENT_STORAGE", 507 },
    };

    size_t  i;

    for (i = 0; i < gl_nelems(consts); i++) {
        lua_pushinteger(L, consts[i].value);
        lua_setfield(L, -2, consts[i].name);
    }
}


/*
 * A new generation: a fresh Lua state with the API, running init_by_lua
 * and init_worker_by_lua.  Returns NULL (logged) if init_by_lua fails.
 * Runs in the worker's thread, or for it before the thread starts.
 */
static gl_lua_gen_t *
gl_lua_gen_new(gl_worker_t *w)
{
    lua_State     *L;
    const char    *lib;
    gl_lua_gen_t  *g, *cur;

    g = calloc(1, sizeof(gl_lua_gen_t));
    if (g == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "cannot allocate a Lua generation");
        return NULL;
    }

    L = luaL_newstate();
    if (L == NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "cannot create a Lua state");
        free(g);
        return NULL;
    }

    g->L = L;
    g->refs = 1;        /* the worker's own, while it is current */
    g->id = ++w->gen_seq;

    luaL_openlibs(L);

    /* our modules come from the binary (gl_lua_lib.h), or from
       GOLAPIS_LUA_LIB's dir, first on the path, when it is set */
    lib = gl_lua_lib_dir();

    if (lib != NULL) {
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", lib, lib);
    } else {
        lua_pushliteral(L, "");
    }

    gl_lua_set_path(L, "path", w->conf->lua_package_path,
                    lua_tostring(L, -1));
    lua_pop(L, 1);

    gl_lua_set_path(L, "cpath", w->conf->lua_package_cpath, "");

    gl_lua_watch_modules(L, w);
    gl_lua_lib_open(L);

    /* the ngx table, also known as golapis */
    lua_createtable(L, 0, 64);
    gl_lua_inject_constants(L);

    /* no subrequests behind FastCGI; ngx.arg is a table as in OpenResty
       (body_filter_by_lua fills it) */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "is_subrequest");
    lua_newtable(L);
    lua_setfield(L, -2, "arg");
    gl_lua_inject_output_api(L);
    gl_lua_inject_sleep_api(L);
    gl_lua_inject_re_api(L);
    gl_lua_inject_var_api(L);
    gl_lua_inject_req_api(L);
    gl_lua_inject_string_api(L);
    gl_lua_inject_time_api(L);
    gl_lua_inject_log_api(L);
    gl_lua_inject_misc_api(L);
    gl_lua_inject_shdict_api(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "golapis");
    lua_pushlightuserdata(L, &gl_lua_ngx_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_setglobal(L, "ngx");

    gl_lua_inject_coroutine_api(L);

    lua_pushlightuserdata(L, &gl_lua_code_key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_lua_env_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_setfield(L, -2, "__index");
    lua_rawset(L, LUA_REGISTRYINDEX);

    /*
     * OpenResty runs init_by_lua once in the master, and fork() copies its
     * work to every worker; here every worker has a Lua state of its own,
     * so each runs it, then its init_worker_by_lua.  The handlers run in
     * the new state: it is the worker's current one meanwhile.
     */
    cur = w->gen;
    w->gen = g;
    w->L = L;

    if (gl_lua_run_init(w, GL_PHASE_INIT) != GL_OK) {
        w->gen = cur;
        w->L = cur ? cur->L : NULL;
        lua_close(L);
        free(g);
        return NULL;
    }

    /* as nginx: an init_worker_by_lua error is logged, the worker runs */
    (void) gl_lua_run_init(w, GL_PHASE_INIT_WORKER);

    w->gen = cur;
    w->L = cur ? cur->L : NULL;

    return g;
}


int
gl_lua_init(gl_worker_t *w)
{
    gl_lua_gen_t  *g;

    /* the worker's thread is not running yet: act as if in it */
    gl_worker_self = w;
    g = gl_lua_gen_new(w);
    gl_worker_self = NULL;

    if (g == NULL) {
        return GL_ERROR;
    }

    w->gen = g;
    w->L = g->L;

    return GL_OK;
}


/*
 * A new generation of the worker's Lua state, for new requests; requests
 * in flight finish on the old one, which is closed when the last of them
 * ends.  On failure the current generation stays.
 */
int
gl_lua_reload(gl_worker_t *w)
{
    gl_lua_gen_t  *g, *old;

    g = gl_lua_gen_new(w);

    if (g == NULL) {
        atomic_fetch_add(&w->stat_failed_reloads, 1);
        gl_log_error(GL_LOG_ERR, 0, "worker %d: reload failed, the old code "
                     "goes on serving", w->id);
        return GL_ERROR;
    }

    old = w->gen;
    w->gen = g;
    w->L = g->L;
    atomic_store(&w->stat_gen, g->id);
    atomic_fetch_add(&w->stat_reloads, 1);

    gl_log_error(GL_LOG_NOTICE, 0, "worker %d: Lua code reloaded, "
                 "generation %u", w->id, g->id);

    gl_lua_gen_release(w, old);

    return GL_OK;
}


/* the state of the request: the generation current when it started */
lua_State *
gl_lua_state(gl_worker_t *w, gl_request_t *r)
{
    if (r == NULL) {
        return w->L;
    }

    if (r->gen == NULL) {
        r->gen = w->gen;
        r->gen->refs++;

        if (!r->conf->code_cache) {
            gl_lua_forget_modules(r->gen->L);
        }
    }

    return r->gen->L;
}


void
gl_lua_gen_release(gl_worker_t *w, gl_lua_gen_t *g)
{
    (void) w;

    if (--g->refs > 0) {
        return;
    }

    gl_log_debug("closing Lua generation %u", g->id);

    lua_close(g->L);
    free(g);
}


void
gl_lua_close(gl_worker_t *w)
{
    if (w->gen != NULL) {
        gl_lua_gen_release(w, w->gen);
        w->gen = NULL;
        w->L = NULL;
    }
}


/*
 * The Lua file searcher of package.loaders, replaced: it finds the file
 * as Lua's does (package.searchpath), loads it through gl_lua_file_text()
 * (so that require()d files are watched, and reloads load their vetted
 * text), and remembers the module's name for lua_code_cache off.
 */
static int
gl_lua_file_searcher(lua_State *L)
{
    int          rc;
    char        *text;
    size_t       len;
    const char  *name, *path;

    name = luaL_checkstring(L, 1);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);

    path = lua_tostring(L, -2);
    if (path == NULL) {
        /* not found: the message lists the places looked at */
        return 1;
    }

    text = gl_lua_file_text(L, path, &len);
    if (text == NULL) {
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, path, lua_tostring(L, -1));
    }

    lua_pushfstring(L, "@%s", path);
    rc = luaL_loadbuffer(L, text, len, lua_tostring(L, -1));

    if (rc == 0) {
        gl_lua_file_loaded(path, text, len);
    }

    free(text);

    if (rc != 0) {
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, path, lua_tostring(L, -1));
    }

    /* the module names loaded from files, for lua_code_cache off */
    lua_pushlightuserdata(L, &gl_lua_modules_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);

    lua_pushvalue(L, -2);
    lua_remove(L, -3);
    lua_pop(L, 1);

    return 1;
}


static void
gl_lua_watch_modules(lua_State *L, gl_worker_t *w)
{
    (void) w;

    lua_pushlightuserdata(L, &gl_lua_modules_key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaders");

    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, gl_lua_file_searcher);
        lua_rawseti(L, -2, 2);
    }

    lua_pop(L, 2);
}


/*
 * lua_code_cache off: as OpenResty, which gives each request a fresh VM,
 * every request requires the modules loaded from files anew
 */
static void
gl_lua_forget_modules(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushlightuserdata(L, &gl_lua_modules_key);
    lua_rawget(L, LUA_REGISTRYINDEX);

    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_settable(L, -5);
    }

    lua_pop(L, 3);
}


/*
 * The text of a Lua file: the housekeeping thread's vetted copy when the
 * file is watched (a new generation then loads exactly what was checked,
 * never a file being rewritten), else the disk.  Caller frees; NULL with
 * a message pushed on error.
 */
static char *
gl_lua_file_text(lua_State *L, const char *path, size_t *len)
{
    FILE    *f;
    long     size;
    char    *text;
    int      watch;

    /* lua_code_cache off reads the disk every time, as OpenResty */
    watch = gl_worker_self != NULL && gl_worker_self->conf->code_cache;

    if (watch) {
        text = gl_house_text(path, len);
        if (text != NULL) {
            return text;
        }
    }

    f = fopen(path, "r");
    if (f == NULL) {
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) == -1 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) == -1)
    {
        lua_pushfstring(L, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }

    text = malloc(size + 1);
    if (text == NULL) {
        fclose(f);
        lua_pushfstring(L, "no memory to load %s", path);
        return NULL;
    }

    if (fread(text, 1, size, f) != (size_t) size) {
        free(text);
        fclose(f);
        lua_pushfstring(L, "cannot read %s", path);
        return NULL;
    }

    fclose(f);
    *len = size;

    return text;
}


/* the file's text compiled: watch it from now on (a file that does not
   compile is read from the disk again next time) */
static void
gl_lua_file_loaded(const char *path, const char *text, size_t len)
{
    if (gl_worker_self != NULL && gl_worker_self->conf->code_cache) {
        gl_house_watch(path, text, len);
    }
}


/* compiles path into a factory on top of the stack; or pushes the error
   message and returns GL_ERROR */
static int
gl_lua_load(lua_State *L, const char *path)
{
    static const char  head[] = "return function(...) ";
    static const char  tail[] = "\nend";

    int      rc;
    char    *text, *buf, *p;
    size_t   n;

    text = gl_lua_file_text(L, path, &n);
    if (text == NULL) {
        return GL_ERROR;
    }

    buf = malloc(sizeof(head) + 2 + n + sizeof(tail));
    if (buf == NULL) {
        free(text);
        lua_pushfstring(L, "no memory to load %s", path);
        return GL_ERROR;
    }

    p = memcpy(buf, head, sizeof(head) - 1);
    p += sizeof(head) - 1;

    if (n > 0 && text[0] == '#') {
        /* a "#!" first line: keep it as a comment, as lua(1) skips it */
        *p++ = '-';
        *p++ = '-';
    }

    memcpy(p, text, n);
    p += n;

    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;

    lua_pushfstring(L, "@%s", path);
    rc = luaL_loadbuffer(L, buf, p - buf, lua_tostring(L, -1));
    lua_remove(L, -2);
    free(buf);

    if (rc == 0) {
        gl_lua_file_loaded(path, text, n);
    }

    free(text);

    return rc == 0 ? GL_OK : GL_ERROR;
}


/* compiles a *_by_lua_block into a factory on top of the stack */
static int
gl_lua_load_code(lua_State *L, const char *code, size_t len,
    const char *chunkname)
{
    int     rc;
    char   *buf, *p;
    static const char  head[] = "return function(...) ";
    static const char  tail[] = "\nend";

    buf = malloc(sizeof(head) + len + sizeof(tail));
    if (buf == NULL) {
        lua_pushliteral(L, "no memory");
        return GL_ERROR;
    }

    p = buf;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    memcpy(p, code, len);
    p += len;
    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;

    rc = luaL_loadbuffer(L, buf, p - buf, chunkname);
    free(buf);

    return rc == 0 ? GL_OK : GL_ERROR;
}


/*
 * Pushes the factory of a handler (h) or a script (path), from the code
 * cache or freshly compiled; or pushes an error message and returns
 * GL_ERROR.
 */
static int
gl_lua_factory(lua_State *L, gl_worker_t *w, gl_lua_handler_t *h,
    const char *path)
{
    const char  *key;

    if (h != NULL) {
        path = h->file;
    }

    key = path ? path : h->chunkname;

    lua_pushlightuserdata(L, &gl_lua_code_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, key);

    if (!lua_isnil(L, -1)) {
        lua_remove(L, -2);
        return GL_OK;
    }

    lua_pop(L, 1);

    if ((path ? gl_lua_load(L, path)
              : gl_lua_load_code(L, h->code, h->code_len, h->chunkname))
        != GL_OK)
    {
        lua_remove(L, -2);
        return GL_ERROR;
    }

    /* inline code is compiled once even with lua_code_cache off */
    if (w->conf->code_cache || path == NULL) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, key);
    }

    lua_remove(L, -2);

    return GL_OK;
}


/* pushes the globals of the request, made on first use; outside a
   request (init_by_lua, init_worker_by_lua) the real globals, which every
   request then reads through */
static void
gl_lua_push_env(lua_State *L, gl_request_t *r)
{
    if (r == NULL) {
        lua_pushvalue(L, LUA_GLOBALSINDEX);
        return;
    }

    if (r->env_ref != -1) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->env_ref);
        return;
    }

    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, &gl_lua_env_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);

    if (r != NULL) {
        lua_pushvalue(L, -1);
        r->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}


/*
 * Pushes the handler's function, ready to call: the factory's fresh
 * closure with the request's globals.  GL_ERROR with a log line if the
 * code does not compile.
 */
static int
gl_lua_push_handler(gl_worker_t *w, gl_request_t *r, gl_lua_handler_t *h,
    const char *path)
{
    lua_State  *L;

    L = gl_lua_state(w, r);

    if (gl_lua_factory(L, w, h, path) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "failed to load %s: %s",
                     h ? (h->file ? "Lua file" : "inline Lua code")
                       : "Lua script", lua_tostring(L, -1));
        lua_pop(L, 1);
        return GL_ERROR;
    }

    if (lua_pcall(L, 0, 1, 0) != 0 || !lua_isfunction(L, -1)) {
        gl_log_error(GL_LOG_ERR, 0, "failed to run Lua code: %s",
                     lua_tostring(L, -1));
        lua_pop(L, 1);
        return GL_ERROR;
    }

    gl_lua_push_env(L, r);
    lua_setfenv(L, -2);

    return GL_OK;
}


static int
gl_lua_traceback(lua_State *L)
{
    const char  *msg;

    if (lua_touserdata(L, 1) == &gl_lua_exit_key) {
        return 1;
    }

    msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);

    return 1;
}


/* runs a handler that may not yield: filters, log, init */
static int
gl_lua_call_sync(gl_worker_t *w, gl_request_t *r, int phase,
    gl_lua_handler_t *h, int nargs)
{
    int            rc, base, saved_phase;
    lua_State     *L;
    gl_request_t  *prev;

    L = gl_lua_state(w, r);

    if (gl_lua_push_handler(w, r, h, NULL) != GL_OK) {
        lua_pop(L, nargs);
        return GL_ERROR;
    }

    lua_insert(L, -1 - nargs);
    base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, gl_lua_traceback);
    lua_insert(L, base);

    prev = gl_lua_current;
    gl_lua_current = r;

    if (r != NULL) {
        saved_phase = r->phase;
        r->phase = phase;
    } else {
        saved_phase = gl_lua_phase;
        gl_lua_phase = phase;
    }

    rc = lua_pcall(L, nargs, 0, base);

    if (rc != 0 && lua_touserdata(L, -1) == &gl_lua_exit_key) {
        /* ngx.exit() in a filter or log handler: it just ends there */
        lua_pop(L, 1);
        rc = 0;
    }

    if (r != NULL) {
        r->phase = saved_phase;
    } else {
        gl_lua_phase = saved_phase;
    }

    gl_lua_current = prev;

    if (rc != 0) {
        gl_log_error(GL_LOG_ERR, 0, "failed to run %s*: %s",
                     gl_conf_phase_directive(phase), lua_tostring(L, -1));
        lua_pop(L, 1);
    }

    lua_remove(L, base);

    return rc == 0 ? GL_OK : GL_ERROR;
}


/* -t: every handler must at least compile */
int
gl_lua_check_conf(gl_conf_t *conf, char *err, size_t size)
{
    int                i, rc;
    lua_State         *L;
    gl_lua_handler_t  *h;

    L = luaL_newstate();
    if (L == NULL) {
        snprintf(err, size, "cannot create a Lua state");
        return GL_ERROR;
    }

    rc = GL_OK;

    for (i = 0; i < GL_PHASE_MAX && rc == GL_OK; i++) {
        h = &conf->handlers[i];

        if (h->file != NULL) {
            rc = gl_lua_load(L, h->file);
        } else if (h->code != NULL) {
            rc = gl_lua_load_code(L, h->code, h->code_len, h->chunkname);
        } else {
            continue;
        }

        if (rc != GL_OK) {
            snprintf(err, size, "%s: %s*: %s", conf->file,
                     gl_conf_phase_directive(i), lua_tostring(L, -1));
        }

        lua_settop(L, 0);
    }

    lua_close(L);

    return rc;
}


int
gl_lua_run_init(gl_worker_t *w, int phase)
{
    gl_lua_handler_t  *h;

    h = &w->conf->handlers[phase];

    if (h->file == NULL && h->code == NULL) {
        return GL_OK;
    }

    return gl_lua_call_sync(w, NULL, phase, h, 0);
}


int
gl_lua_has_handler(gl_request_t *r, int phase)
{
    gl_lua_handler_t  *h;

    h = &r->conf->handlers[phase];

    return h->file != NULL || h->code != NULL;
}


void
gl_lua_run_header_filter(gl_request_t *r)
{
    if (gl_lua_call_sync(r->worker, r, GL_PHASE_HEADER_FILTER,
                         &r->conf->handlers[GL_PHASE_HEADER_FILTER],
                         0)
        != GL_OK)
    {
        r->status = 500;
    }
}


void
gl_lua_run_log(gl_request_t *r)
{
    if (gl_lua_has_handler(r, GL_PHASE_LOG)) {
        gl_lua_call_sync(r->worker, r, GL_PHASE_LOG,
                         &r->conf->handlers[GL_PHASE_LOG], 0);
    }
}


/*
 * body_filter_by_lua: the chunk goes in ngx.arg[1] and the eof flag in
 * ngx.arg[2]; what the filter leaves there goes out.
 */
int
gl_lua_run_body_filter(gl_request_t *r, const u_char *data, size_t len,
    int eof)
{
    int          rc;
    size_t       n;
    lua_State   *L;
    const char  *out;

    if (!gl_lua_has_handler(r, GL_PHASE_BODY_FILTER)) {
        return len ? gl_request_output_raw(r, data, len) : GL_OK;
    }

    if (r->body_filter_eof || r->in_filter) {
        /* the filter ended the body already: the rest is dropped */
        return r->in_filter && !eof ? gl_request_output_raw(r, data, len)
                                    : GL_OK;
    }

    L = gl_lua_state(r->worker, r);

    lua_createtable(L, 2, 0);
    lua_pushlstring(L, (const char *) (data ? data : (const u_char *) ""),
                    len);
    lua_rawseti(L, -2, 1);
    lua_pushboolean(L, eof);
    lua_rawseti(L, -2, 2);

    lua_pushlightuserdata(L, &gl_lua_ngx_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "arg");
    lua_pop(L, 1);

    r->in_filter = 1;
    rc = gl_lua_call_sync(r->worker, r, GL_PHASE_BODY_FILTER,
                          &r->conf->handlers[GL_PHASE_BODY_FILTER],
                          0);
    r->in_filter = 0;

    if (eof) {
        r->body_filter_done = 1;
    }

    if (rc == GL_OK) {
        lua_rawgeti(L, -1, 1);

        if (lua_istable(L, -1)) {
            /* a table of strings: their concatenation */
            int  i, len = (int) lua_objlen(L, -1);

            for (i = 1; i <= len && rc == GL_OK; i++) {
                lua_rawgeti(L, -1, i);
                out = lua_tolstring(L, -1, &n);
                if (out != NULL && n) {
                    rc = gl_request_output_raw(r, (const u_char *) out, n);
                }
                lua_pop(L, 1);
            }

        } else {
            out = lua_tolstring(L, -1, &n);

            if (out != NULL && n) {
                rc = gl_request_output_raw(r, (const u_char *) out, n);
            }
        }

        lua_pop(L, 1);
        lua_rawgeti(L, -1, 2);

        if (lua_toboolean(L, -1) && !eof) {
            r->body_filter_eof = 1;
        }

        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    return rc;
}


/*
 * Runs a rewrite, access or content handler (h), or a content script
 * (path), in a new coroutine of the request.
 */
void
gl_lua_run(gl_request_t *r, gl_lua_handler_t *h, const char *path)
{
    lua_State    *L, *co;
    gl_worker_t  *w;

    w = r->worker;
    L = gl_lua_state(w, r);

    if (gl_lua_push_handler(w, r, h, path) != GL_OK) {
        gl_request_fail(r, 500);
        return;
    }

    if (r->co_ref != -1) {
        /* the coroutine of the previous phase */
        luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
    }

    co = lua_newthread(L);
    r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->co = co;
    gl_lua_co_start(r, co);

    lua_xmove(L, co, 1);

    gl_lua_resume(r, 0);
}


void
gl_lua_timer_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
    gl_conn_t     *c;
    gl_request_t  *r;

    (void) loop;
    (void) revents;

    r = t->data;
    c = r->conn;

    if (c == NULL) {
        /* after ngx.eof() */
        gl_lua_resume(r, 0);
        return;
    }

    gl_conn_hold(c);
    gl_lua_resume(r, 0);
    gl_conn_write(c);
    gl_conn_release(c);
}


static void
gl_lua_exit(gl_request_t *r)
{
    int  status;

    status = r->exit_status;

    if (status == -1 && r->header_sent && r->conn != NULL) {
        /*
         * ngx.ERROR after output: nginx drops the client connection.  We
         * drop the FastCGI connection, so that nginx sees the answer cut
         * short and does the same (nginx never multiplexes requests on a
         * connection, so no other request is hit); closing it cancels
         * this request.
         */
        gl_log_error(GL_LOG_INFO, 0, "ngx.exit(ngx.ERROR) after output: "
                     "closing the connection");
        r->conn->error = 1;
        return;
    }

    if (status == -1 || status == -2) {
        /* ngx.ERROR, ngx.AGAIN */
        status = 500;
    }

    if (status == 0 && (r->phase == GL_PHASE_REWRITE
                        || r->phase == GL_PHASE_ACCESS))
    {
        /* ngx.exit(ngx.OK) in rewrite or access: on to the next phase */
        gl_request_phase_done(r);
        return;
    }

    if (status >= 200 && !r->header_sent) {
        if (status >= 300 && status != 304) {
            gl_request_error_page(r, status);
        } else {
            r->status = status;
        }
    }

    gl_request_finalize(r);
}


void
gl_lua_resume(gl_request_t *r, int nargs)
{
    int            rc;
    lua_State     *co;
    gl_uco_t      *u;
    gl_conn_t     *c;
    const char    *msg;
    gl_request_t  *prev;

    for ( ;; ) {
        u = r->co_cur;
        co = u->co;
        r->co_op = GL_CO_NONE;
        r->wait = GL_WAIT_NONE;

        prev = gl_lua_current;
        gl_lua_current = r;
        rc = lua_resume(co, nargs);
        gl_lua_current = prev;
        nargs = 0;

        if (rc == 0 && u != &r->co_entry) {
            /* a coroutine of the script ended: back to its parent */
            u->status = GL_UCO_DEAD;
            nargs = gl_lua_co_back(r, u);
            continue;
        }

        if (rc == 0) {
            if (gl_lua_luafcgid(r) == GL_OK) {
                /* the script defined main(env, r): it runs now */
                nargs = 2;
                continue;
            }

            gl_request_phase_done(r);
            return;
        }

        if (rc != LUA_YIELD) {
            nargs = gl_lua_co_fail(r, u);
            if (nargs >= 0) {
                /* coroutine.resume returns false and the error */
                continue;
            }

            /* the request's coroutine died (of u's error, maybe) */
            co = r->co_cur->co;
            msg = lua_tostring(co, -1);
            luaL_traceback(r->gen->L, u->co, msg ? msg : "(error object is "
                           "not a string)", 0);
            gl_log_error(GL_LOG_ERR, 0, "lua entry thread aborted: runtime "
                         "error: %s", lua_tostring(r->gen->L, -1));
            lua_pop(r->gen->L, 1);

            gl_request_fail(r, 500);
            return;
        }

        /* yielded */

        if (r->co_op == GL_CO_RESUME) {
            /* coroutine.resume(): its arguments go to the coroutine */
            nargs = lua_gettop(co);
            lua_xmove(co, r->co_cur->co, nargs);
            continue;
        }

        if (u != &r->co_entry
            && (r->co_op == GL_CO_YIELD || r->co_op == GL_CO_NONE))
        {
            /* coroutine.yield() in a coroutine of the script */
            u->status = GL_UCO_SUSPENDED;
            nargs = gl_lua_co_back(r, u);
            continue;
        }

        if (r->co_op == GL_CO_EXIT) {
            gl_lua_exit(r);
            return;
        }

        /* what was produced so far goes out while the script waits */
        c = r->conn;

        if (c != NULL) {
            gl_request_flush(r);
            gl_conn_write(c);
        }

        if (r->co_op == GL_CO_NONE || r->co_op == GL_CO_YIELD) {
            /* coroutine.yield() in the request's own coroutine: go on at
               the next loop turn */
            lua_settop(co, 0);
            r->wait = GL_WAIT_YIELD;
            ev_timer_init(&r->timer, gl_lua_timer_resume, 0, 0);
            r->timer.data = r;
            ev_timer_start(r->worker->loop, &r->timer);
            return;
        }

        if (r->wait != GL_WAIT_DRAIN && r->wait != GL_WAIT_FLUSH) {
            return;
        }

        if (c == NULL || c->error) {
            /* the connection is gone: it cancels the request */
            return;
        }

        if (!gl_lua_drain_done(r)) {
            r->next_waiter = c->drain_waiters;
            c->drain_waiters = r;
            return;
        }

        r->wait = GL_WAIT_NONE;
        lua_pushinteger(co, 1);
        nargs = 1;
    }
}


/*
 * ngx.print waiting for the queue to fall under GL_OUT_LOW, or
 * ngx.flush(true) waiting for it to empty: 1 when the wait is over.
 */
static int
gl_lua_drain_done(gl_request_t *r)
{
    gl_conn_t  *c;

    c = r->conn;

    if (r->wait == GL_WAIT_FLUSH) {
        return c->out == NULL;
    }

    while (!c->error && c->out_bytes < GL_OUT_LOW) {
        if (gl_lua_write_pending(r) == GL_OK) {
            return 1;
        }
        gl_request_flush(r);
        gl_conn_write(c);
    }

    return 0;
}


void
gl_lua_drained(gl_request_t *r)
{
    if (!gl_lua_drain_done(r)) {
        if (!r->conn->error) {
            gl_request_flush(r);
            r->next_waiter = r->conn->drain_waiters;
            r->conn->drain_waiters = r;
        }
        return;
    }

    r->wait = GL_WAIT_NONE;
    lua_pushinteger(r->co_cur->co, 1);
    gl_lua_resume(r, 1);
}


int
gl_lua_write_pending(gl_request_t *r)
{
    size_t  n;

    while (r->pending_len) {
        n = gl_min(r->pending_len, 16384);

        if (gl_request_output(r, r->pending, n) != GL_OK) {
            r->pending_len = 0;
            break;
        }

        r->pending += n;
        r->pending_len -= n;

        if (r->pending_len && r->conn->out_bytes > GL_OUT_HIGH) {
            return GL_AGAIN;
        }
    }

    if (r->pending_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->pending_ref);
        r->pending_ref = -1;
    }

    return GL_OK;
}


int
gl_lua_yield_exit(lua_State *L, gl_request_t *r)
{
    if (r->phase == GL_PHASE_HEADER_FILTER || r->phase == GL_PHASE_BODY_FILTER
        || r->phase == GL_PHASE_LOG)
    {
        /* no coroutine to yield: unwind to gl_lua_call_sync */
        r->filter_exit = 1;
        lua_pushlightuserdata(L, &gl_lua_exit_key);
        return lua_error(L);
    }

    r->co_op = GL_CO_EXIT;

    return lua_yield(L, 0);
}


void
gl_lua_release(gl_request_t *r)
{
    if (ev_is_active(&r->timer)) {
        ev_timer_stop(r->worker->loop, &r->timer);
    }

    if (r->gen == NULL) {
        /* no Lua ran for it */
        return;
    }

    if (r->pending_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->pending_ref);
        r->pending_ref = -1;
    }

    if (r->ctx_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->ctx_ref);
        r->ctx_ref = -1;
    }

    if (r->var_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->var_ref);
        r->var_ref = -1;
    }

    if (r->env_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->env_ref);
        r->env_ref = -1;
    }

    gl_lua_luafcgid_release(r);

    if (r->co_ref != -1) {
        luaL_unref(r->gen->L, LUA_REGISTRYINDEX, r->co_ref);
        r->co_ref = -1;
        r->co = NULL;
    }

    gl_lua_gen_release(r->worker, r->gen);
    r->gen = NULL;
}
