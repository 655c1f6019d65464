/*
 * A worker's Lua side: its generations of lua_State, each with the API of
 * every module, the code cache, and what the API modules share.
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
#include "gl_house.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_watch.h"
#include "gl_lua_lib.h"
#include "gl_module.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <lualib.h>

_Thread_local gl_vm_t  *gl_vm_self;

static char  gl_lua_code_key;       /* registry: path -> factory */
static char  gl_lua_env_mt_key;     /* registry: metatable of request envs */
static char  gl_lua_ngx_key;        /* registry: the ngx table */
static char  gl_lua_gen_key;        /* registry: the state's gl_lua_gen_t */

/* a Lua file's text, as gl_lua_file_text() found it */
typedef struct {
    char             *text;       /* malloc()ed */
    size_t            len;
    gl_house_stat_t   st;         /* as read from the disk */
    unsigned          vetted:1;   /* the housekeeping thread's copy */
    unsigned          young:1;    /* from the disk, modified within the
                                     last housekeeping_interval */
} gl_lua_file_t;

static void gl_lua_watch_modules(lua_State *L);
static int gl_lua_file_text(lua_State *L, const char *path,
    gl_lua_file_t *file);
static void gl_lua_file_loaded(const char *path, const gl_lua_file_t *file);

/* init_by_lua and init_worker_by_lua run as plain calls of this task */
static void gl_vm_task_nop(gl_task_t *t);
static void gl_vm_task_done(gl_task_t *t, int rc);

static const gl_task_ops_t  gl_vm_init_ops = {
    gl_vm_task_nop, gl_vm_task_nop, gl_vm_task_done, NULL
};

/*
 * init_worker_by_lua runs as a coroutine of a task of its own: at once,
 * until it ends or waits (a cosocket: golapis allows them there, unlike
 * lua-nginx-module); what waits goes on from the worker's loop, holding
 * its generation of code.
 */
typedef struct {
    gl_task_t       task;
    gl_lua_gen_t   *gen;
    unsigned        done:1;
} gl_vm_iw_t;

static void gl_vm_iw_leave(gl_task_t *t);
static void gl_vm_iw_done(gl_task_t *t, int rc);
static int gl_vm_iw_error(gl_task_t *t, gl_co_t *co);

static const gl_task_ops_t  gl_vm_iw_ops = {
    gl_vm_task_nop, gl_vm_iw_leave, gl_vm_iw_done, gl_vm_iw_error
};


/* contexts */

const char *
gl_lua_context_name(int context)
{
    static const char  *names[GL_PHASE_MAX] = {
        "init_by_lua*", "init_worker_by_lua*", "rewrite_by_lua*",
        "access_by_lua*", "content_by_lua*", "header_filter_by_lua*",
        "body_filter_by_lua*", "log_by_lua*", "ngx.timer",
        "exit_worker_by_lua*"
    };

    return (context >= 0 && context < GL_PHASE_MAX) ? names[context] : "?";
}


int
gl_lua_get_phase(void)
{
    gl_task_t  *t;

    t = gl_task_current();

    return t != NULL ? t->context : -1;
}


gl_task_t *
gl_lua_check_context(lua_State *L, unsigned mask)
{
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL || t->context == GL_PHASE_INIT) {
        luaL_error(L, "no request found");
        return NULL;
    }

    if (mask != 0 && !(mask & (1u << t->context))) {
        luaL_error(L, "API disabled in the context of %s",
                   gl_lua_context_name(t->context));
        return NULL;
    }

    return t;
}


void
gl_lua_push_ctx(lua_State *L, gl_task_t *t)
{
    if (t->ctx_ref == LUA_NOREF) {
        lua_newtable(L);
        lua_pushvalue(L, -1);
        t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ctx_ref);
}


void
gl_lua_set_ctx(lua_State *L, gl_task_t *t, int idx)
{
    if (!lua_istable(L, idx)) {
        luaL_error(L, "ctx should be a table while getting a %s",
                   luaL_typename(L, idx));
        return;
    }

    lua_pushvalue(L, idx);
    luaL_unref(L, LUA_REGISTRYINDEX, t->ctx_ref);
    t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}


void
gl_lua_free_ctx(gl_task_t *t)
{
    if (t->L != NULL) {
        luaL_unref(t->L, LUA_REGISTRYINDEX, t->ctx_ref);
    }

    t->ctx_ref = LUA_NOREF;
}


void
gl_lua_push_ngx(lua_State *L)
{
    lua_pushlightuserdata(L, &gl_lua_ngx_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}


void
gl_lua_push_core(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(L, -1, "golapis.core");

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "golapis.core");
    }

    lua_remove(L, -2);
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
 * A new generation: a fresh Lua state with every module's API, running
 * init_by_lua and init_worker_by_lua.  Returns NULL (logged) if
 * init_by_lua fails.  Runs in the worker's thread, or for it before the
 * thread starts.
 */
static gl_lua_gen_t *
gl_lua_gen_new(gl_vm_t *vm, int worker)
{
    lua_State      *L;
    const char     *lib;
    gl_lua_gen_t   *g, *cur;
    gl_module_t   **m;

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

    lua_atpanic(L, gl_lua_panic);
    gl_watch_state(L, vm->conf);

    g->L = L;
    g->conf = gl_conf_ref(vm->conf);
    g->refs = 1;        /* the vm's own, while it is current */
    g->id = ++vm->gen_seq;

    luaL_openlibs(L);
    gl_watch_state_libs(L, vm->conf);
    gl_co_init_state(L, vm->conf->thread_cache_max);

    lua_pushlightuserdata(L, &gl_lua_gen_key);
    lua_pushlightuserdata(L, g);
    lua_rawset(L, LUA_REGISTRYINDEX);

    /* our modules come from the binary (gl_lua_lib.h), or from
       GOLAPIS_LUA_LIB's dir, first on the path, when it is set */
    lib = gl_lua_lib_dir();

    if (lib != NULL) {
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", lib, lib);
    } else {
        lua_pushliteral(L, "");
    }

    gl_lua_set_path(L, "path", vm->conf->lua_package_path,
                    lua_tostring(L, -1));
    lua_pop(L, 1);

    gl_lua_set_path(L, "cpath", vm->conf->lua_package_cpath, "");

    gl_lua_watch_modules(L);
    gl_lua_lib_open(L);

    lua_pushlightuserdata(L, &gl_lua_code_key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_lua_env_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_setfield(L, -2, "__index");
    lua_rawset(L, LUA_REGISTRYINDEX);

    /* the ngx table, also known as golapis; each module adds its part */
    lua_createtable(L, 0, 64);
    gl_lua_inject_constants(L);

    /* ngx.arg is a table as in OpenResty (body_filter_by_lua fills it) */
    lua_newtable(L);
    lua_setfield(L, -2, "arg");

    lua_pushvalue(L, -1);
    lua_setglobal(L, "ngx");
    lua_pushvalue(L, -1);
    lua_setglobal(L, "golapis");
    lua_pushlightuserdata(L, &gl_lua_ngx_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    for (m = vm->conf->modules; *m != NULL; m++) {
        if ((*m)->inject != NULL) {
            (*m)->inject(L);
        }
    }

    lua_pop(L, 1);

    /*
     * OpenResty runs init_by_lua once in the master, and fork() copies its
     * work to every worker; here every worker has a Lua state of its own,
     * so each runs it, then its init_worker_by_lua.  The handlers run in
     * the new state: it is the vm's current one meanwhile.
     */
    cur = vm->gen;
    vm->gen = g;

    if (gl_lua_run_init(vm, GL_PHASE_INIT) != GL_OK) {
        vm->gen = cur;
        gl_watch_state_close(L);
        gl_conf_unref(g->conf);
        free(g);
        return NULL;
    }

    /* as nginx: an init_worker_by_lua error is logged, the worker runs */
    if (worker) {
        (void) gl_lua_run_init(vm, GL_PHASE_INIT_WORKER);
    }

    vm->gen = cur;

    return g;
}


int
gl_vm_init(gl_vm_t *vm, int id, struct ev_loop *loop, gl_conf_t *conf)
{
    int             rc;
    gl_vm_t        *prev;
    gl_lua_gen_t   *g;
    gl_module_t   **m;
    char            buf[PATH_MAX];

    vm->id = id;
    vm->stat = gl_stat_worker(id);
    vm->loop = loop;
    vm->conf = conf;
    gl_sched_init(&vm->sched, loop);
    gl_queue_init(&vm->requests);

    if (conf->document_root != NULL) {
        if (realpath(conf->document_root, buf) == NULL) {
            gl_log_error(GL_LOG_EMERG, errno, "realpath(\"%s\") failed",
                         conf->document_root);
            return GL_ERROR;
        }

        vm->docroot = strdup(buf);
        if (vm->docroot == NULL) {
            return GL_ERROR;
        }
    }

    /* the worker's thread may not run yet: act as if in it */
    prev = gl_vm_self;
    gl_vm_self = vm;

    rc = GL_OK;

    for (m = conf->modules; *m != NULL && rc == GL_OK; m++) {
        if ((*m)->init_worker != NULL) {
            rc = (*m)->init_worker(vm);
        }
    }

    g = (rc == GL_OK) ? gl_lua_gen_new(vm, 1) : NULL;

    gl_vm_self = prev;

    if (g == NULL) {
        return GL_ERROR;
    }

    vm->gen = g;
    gl_stat_gauge_set(&vm->stat->lua_gen, g->id);
    gl_stat_gauge_set(&vm->stat->lua_heap, vm->stat->lua_heap_own);

    return GL_OK;
}


void
gl_vm_close(gl_vm_t *vm)
{
    gl_module_t  **m;

    if (vm->gen != NULL) {
        /* exit_worker_by_lua: the worker's last Lua */
        (void) gl_lua_run_init(vm, GL_PHASE_EXIT_WORKER);

        gl_lua_gen_release(vm->gen);
        vm->gen = NULL;
    }

    for (m = vm->conf->modules; *m != NULL; m++) {
        if ((*m)->exit_worker != NULL) {
            (*m)->exit_worker(vm);
        }
    }

    gl_sched_free(&vm->sched);
    free(vm->docroot);
    vm->docroot = NULL;
}


/*
 * A new generation of the worker's Lua state, for new tasks; tasks in
 * flight finish on the old one, which is closed when the last of them
 * ends.  On failure the current generation and config stay.
 */
int
gl_vm_reload(gl_vm_t *vm, gl_conf_t *conf)
{
    char            buf[PATH_MAX], *root;
    gl_conf_t      *old_conf;
    gl_lua_gen_t   *g, *old;
    gl_module_t   **m;

    old_conf = vm->conf;
    root = NULL;

    /* a new config's document_root is the scripts' from now on (as
       script_extensions are): resolved before anything changes */
    if (conf != NULL && conf->document_root != NULL) {
        if (realpath(conf->document_root, buf) == NULL
            || (root = strdup(buf)) == NULL)
        {
            gl_stat_add(&vm->stat->lua_reloads_failed, 1);
            gl_log_error(GL_LOG_ERR, errno, "worker %d: reload failed: "
                         "realpath(\"%s\"), the old config goes on serving",
                         vm->id, conf->document_root);
            return GL_ERROR;
        }
    }

    if (conf != NULL) {
        vm->conf = conf;
    }

    g = gl_lua_gen_new(vm, 1);

    if (g == NULL) {
        vm->conf = old_conf;
        free(root);
        gl_stat_add(&vm->stat->lua_reloads_failed, 1);
        gl_log_error(GL_LOG_ERR, 0, "worker %d: reload failed, the old code "
                     "goes on serving", vm->id);
        return GL_ERROR;
    }

    if (conf != NULL) {
        free(vm->docroot);
        vm->docroot = root;
    }

    old = vm->gen;
    vm->gen = g;
    gl_stat_gauge_set(&vm->stat->lua_gen, g->id);
    gl_stat_gauge_set(&vm->stat->lua_heap, vm->stat->lua_heap_own);
    gl_stat_add(&vm->stat->lua_reloads, 1);

    gl_log_error(GL_LOG_NOTICE, 0, "worker %d: Lua code reloaded, "
                 "generation %u", vm->id, g->id);

    /* the old code's timers and the like end now (the vm's reference
       keeps the generation meanwhile; a module may take its own) */
    old->retired = 1;

    for (m = vm->conf->modules; *m != NULL; m++) {
        if ((*m)->retire != NULL) {
            (*m)->retire(vm, old);
        }
    }

    gl_lua_gen_release(old);

    return GL_OK;
}


void
gl_vm_stop(gl_vm_t *vm)
{
    gl_module_t  **m;

    vm->exiting = 1;

    for (m = vm->conf->modules; *m != NULL; m++) {
        if ((*m)->stop != NULL) {
            (*m)->stop(vm);
        }
    }
}


void **
gl_vm_module_data(gl_vm_t *vm, gl_module_t *m)
{
    /* gl_conf_load() numbers the modules, the same in every config */
    if (m->index < 0 || m->index >= GL_VM_MODULES_MAX) {
        /* a module not in the list: cannot be */
        return &vm->mdata[GL_VM_MODULES_MAX - 1];
    }

    return &vm->mdata[m->index];
}


gl_lua_gen_t *
gl_lua_gen_of(lua_State *L)
{
    gl_lua_gen_t  *g;

    lua_pushlightuserdata(L, &gl_lua_gen_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    g = lua_touserdata(L, -1);
    lua_pop(L, 1);

    return g;
}


gl_lua_gen_t *
gl_lua_gen_fresh(gl_vm_t *vm)
{
    return gl_lua_gen_new(vm, 0);
}


gl_lua_gen_t *
gl_lua_gen_take(gl_vm_t *vm)
{
    vm->gen->refs++;
    return vm->gen;
}


void
gl_lua_gen_release(gl_lua_gen_t *g)
{
    if (--g->refs > 0) {
        return;
    }

    gl_log_debug("closing Lua generation %u", g->id);

    gl_watch_state_close(g->L);
    gl_conf_unref(g->conf);
    free(g);
}


/*
 * package.searchpath(name, path), but a file is tried with a non-blocking
 * open(), not fopen(): a FIFO on the path must not hold the worker.
 * Pushes the file name and returns it, or pushes the "no file" list and
 * returns NULL.
 */
static const char *
gl_lua_search(lua_State *L, const char *name, const char *path)
{
    int          fd, top;
    const char  *p, *e, *file;

    top = lua_gettop(L);

    name = luaL_gsub(L, name, ".", LUA_DIRSEP);
    lua_pushliteral(L, "");

    for (p = path; *p != '\0'; p = e) {
        if (*p == ';') {
            e = p + 1;
            continue;
        }

        e = strchr(p, ';');
        if (e == NULL) {
            e = p + strlen(p);
        }

        lua_pushlstring(L, p, e - p);
        file = luaL_gsub(L, lua_tostring(L, -1), LUA_PATH_MARK, name);
        lua_remove(L, -2);

        fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd != -1) {
            close(fd);
            lua_replace(L, top + 1);
            lua_settop(L, top + 1);
            return lua_tostring(L, -1);
        }

        lua_pushfstring(L, "\n\tno file '%s'", file);
        lua_remove(L, -2);
        lua_concat(L, 2);
    }

    lua_replace(L, top + 1);
    lua_settop(L, top + 1);

    return NULL;
}


/*
 * The Lua file searcher of package.loaders, replaced: it finds the file
 * as Lua's does (package.path), loads it through gl_lua_file_text()
 * (so that require()d files are watched, and reloads load their vetted
 * text).
 */
static int
gl_lua_file_searcher(lua_State *L)
{
    int             rc;
    const char     *name, *path;
    gl_lua_file_t   file;

    name = luaL_checkstring(L, 1);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");

    if (!lua_isstring(L, -1)) {
        return luaL_error(L, "'package.path' must be a string");
    }

    path = gl_lua_search(L, name, lua_tostring(L, -1));
    if (path == NULL) {
        /* not found: the message lists the places looked at */
        return 1;
    }

    if (gl_lua_file_text(L, path, &file) != GL_OK) {
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, path, lua_tostring(L, -1));
    }

    lua_pushfstring(L, "@%s", path);
    rc = luaL_loadbuffer(L, file.text, file.len, lua_tostring(L, -1));

    if (rc == 0) {
        /* a young module is watched too (unvetted), by the stat it was
           read with: if it was being written, its completion is a
           change, and a reload replaces it (package.loaded keeps what
           require gave) */
        gl_lua_file_loaded(path, &file);
    }

    free(file.text);

    if (rc != 0) {
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, path, lua_tostring(L, -1));
    }

    return 1;
}


static void
gl_lua_watch_modules(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaders");

    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, gl_lua_file_searcher);
        lua_rawseti(L, -2, 2);
    }

    lua_pop(L, 2);
}


/*
 * The text of a Lua file: the housekeeping thread's vetted copy when the
 * file is watched (a new generation then loads exactly what was checked,
 * never a file being rewritten), else the disk, read safely (no FIFO,
 * no directory, at most GL_HOUSE_MAX_FILE, not while it changes).
 * GL_OK, file->text to free; or GL_ERROR with a message pushed.
 */
static int
gl_lua_file_text(lua_State *L, const char *path, gl_lua_file_t *file)
{
    int    rc, cache;
    char   err[128];

    memset(file, 0, sizeof(*file));

    /* lua_code_cache off reads the disk every time, as OpenResty */
    cache = gl_vm_self != NULL && gl_vm_self->conf->code_cache;

    if (cache) {
        file->text = gl_house_text(path, &file->len);
        if (file->text != NULL) {
            file->vetted = 1;
            return GL_OK;
        }
    }

    rc = gl_house_read_file(path, &file->text, &file->len, &file->st, err,
                            sizeof(err));

    if (rc == GL_AGAIN) {
        /* being written: once more, then give up for this time */
        rc = gl_house_read_file(path, &file->text, &file->len, &file->st,
                                err, sizeof(err));
    }

    if (rc != GL_OK) {
        lua_pushfstring(L, "cannot load %s: %s", path, err);
        return GL_ERROR;
    }

    file->young = cache && gl_house_young(&file->st);

    return GL_OK;
}


/* the file's text compiled: watch it from now on (a file that does not
   compile is read from the disk again next time) */
static void
gl_lua_file_loaded(const char *path, const gl_lua_file_t *file)
{
    if (gl_vm_self != NULL && gl_vm_self->conf->code_cache
        && !file->vetted)
    {
        gl_house_watch(path, file->text, file->len, &file->st, file->young);
    }
}


/*
 * Compiles path into a factory on top of the stack; or pushes the error
 * message and returns GL_ERROR.  *cache is 0 when the file was read from
 * the disk while young (modified within the last housekeeping_interval):
 * it may be half-written, so it is not cached, and it is watched as
 * young (not vetted): the next request reads it again, until it held
 * still for an interval -- the first load's hold-still rule.
 */
static int
gl_lua_load(lua_State *L, const char *path, int *cache)
{
    static const char  head[] = "return function(...) ";
    static const char  tail[] = "\nend";

    int             rc;
    char           *text, *buf, *p;
    size_t          n;
    gl_lua_file_t   file;

    *cache = 1;

    if (gl_lua_file_text(L, path, &file) != GL_OK) {
        return GL_ERROR;
    }

    text = file.text;
    n = file.len;

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
        *cache = !file.young;
        gl_lua_file_loaded(path, &file);
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
gl_lua_factory(lua_State *L, gl_conf_t *conf, gl_lua_handler_t *h,
    const char *path)
{
    int          cache;
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

    cache = 1;

    if ((path ? gl_lua_load(L, path, &cache)
              : gl_lua_load_code(L, h->code, h->code_len, h->chunkname))
        != GL_OK)
    {
        lua_remove(L, -2);
        return GL_ERROR;
    }

    /* inline code is compiled once even with lua_code_cache off; a young
       file not yet */
    if ((conf->code_cache || path == NULL) && cache) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, key);
    }

    lua_remove(L, -2);

    return GL_OK;
}


int
gl_lua_push_code(lua_State *L, gl_conf_t *conf, gl_lua_handler_t *h,
    const char *path)
{
    if (gl_lua_factory(L, conf, h, path) != GL_OK) {
        return GL_ERROR;
    }

    if (lua_pcall(L, 0, 1, 0) != 0) {
        return GL_ERROR;
    }

    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "the code did not give a function");
        return GL_ERROR;
    }

    return GL_OK;
}


void
gl_lua_new_env(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, &gl_lua_env_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);
}



/* -t: every handler must at least compile */
int
gl_lua_check_conf(gl_conf_t *conf, char *err, size_t size)
{
    int                i, rc, cache;
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
            rc = gl_lua_load(L, h->file, &cache);
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




static void
gl_vm_task_nop(gl_task_t *t)
{
    (void) t;
}


static void
gl_vm_task_done(gl_task_t *t, int rc)
{
    (void) t;
    (void) rc;
}


static void
gl_vm_iw_leave(gl_task_t *t)
{
    gl_vm_iw_t  *iw;

    iw = (gl_vm_iw_t *) t;

    if (iw->done) {
        gl_lua_gen_release(iw->gen);
        free(iw);
    }
}


static void
gl_vm_iw_done(gl_task_t *t, int rc)
{
    (void) rc;

    ((gl_vm_iw_t *) t)->done = 1;
    gl_task_cleanup(t);
}


/* as nginx: "init_worker_by_lua error: MSG" and the traceback */
static int
gl_vm_iw_error(gl_task_t *t, gl_co_t *co)
{
    const char  *msg;

    msg = lua_tostring(co->L, -1);
    gl_lua_traceback_of(t->L, co->L,
                        msg ? msg : "(error object is not a string)", 0);
    gl_log_error(GL_LOG_ERR, 0, "%s error: %s",
                 gl_conf_phase_directive(GL_PHASE_INIT_WORKER),
                 lua_tostring(t->L, -1));
    lua_pop(t->L, 1);

    return GL_OK;
}


static int
gl_lua_run_init_worker(gl_vm_t *vm, gl_lua_handler_t *h)
{
    int           ref;
    lua_State    *L, *co;
    gl_vm_iw_t   *iw;

    L = vm->gen->L;

    if (gl_lua_push_code(L, vm->conf, h, NULL) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "failed to load %s*: %s",
                     gl_conf_phase_directive(GL_PHASE_INIT_WORKER),
                     lua_tostring(L, -1));
        lua_pop(L, 1);
        return GL_ERROR;
    }

    iw = calloc(1, sizeof(gl_vm_iw_t));
    if (iw == NULL) {
        lua_pop(L, 1);
        gl_log_error(GL_LOG_ALERT, errno, "calloc() failed");
        return GL_ERROR;
    }

    iw->gen = vm->gen;
    iw->gen->refs++;

    gl_task_init(&iw->task, &vm->sched, L, &gl_vm_iw_ops,
                 GL_PHASE_INIT_WORKER);
    iw->task.chunk = 1;

    co = gl_co_new_thread(L, &ref);
    lua_xmove(L, co, 1);

    gl_task_run_thread(&iw->task, co, ref, 0);

    return GL_OK;
}


/*
 * The message handler of the chunks golapis runs as plain calls
 * (init_by_lua, filters, log_by_lua): the message and LuaJIT's traceback,
 * whose bottom frame -- the chunk, which golapis calls as the function its
 * code cache made of it -- reads "in main chunk", as lua-nginx-module's.
 */
int
gl_lua_traceback(lua_State *L)
{
    const char  *msg;

    msg = lua_tostring(L, 1);
    gl_lua_traceback_of(L, L, msg ? msg : "(error object is not a string)",
                        1);

    return 1;
}


static _Thread_local jmp_buf  *gl_lua_panic_jb;


void
gl_lua_catch_panic(jmp_buf *jb)
{
    gl_lua_panic_jb = jb;
}


int
gl_lua_panic(lua_State *L)
{
    jmp_buf     *jb;
    const char  *msg;

    msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a string";

    jb = gl_lua_panic_jb;

    if (jb == NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "PANIC: unprotected error in call to "
                     "Lua API (%s): golapis exits with status 1", msg);

        /* LuaJIT ends the process when this returns */
        return 0;
    }

    gl_log_error(GL_LOG_ALERT, 0, "PANIC: unprotected error in call to Lua "
                 "API (%s): the worker's Lua state is retired", msg);

    /* the state is left as it is, never to be touched again */
    gl_lua_panic_jb = NULL;
    longjmp(*jb, 1);
}


void
gl_lua_traceback_of(lua_State *L, lua_State *co, const char *msg, int level)
{
    size_t       len;
    const char  *tb, *p, *last, *fn;

    luaL_traceback(L, co, msg, level);

    tb = lua_tolstring(L, -1, &len);
    last = NULL;

    for (p = tb; (p = strstr(p, "\n\t")) != NULL; p += 2) {
        last = p;
    }

    if (last == NULL || len == 0 || tb[len - 1] != '>') {
        return;
    }

    fn = strstr(last, " in function <");

    if (fn != NULL) {
        lua_pushlstring(L, tb, fn - tb);
        lua_pushliteral(L, " in main chunk");
        lua_concat(L, 2);
        lua_remove(L, -2);
    }
}


/* init_by_lua / init_worker_by_lua in the vm's current state, with the
   real globals, which every request then reads through */
int
gl_lua_run_init(gl_vm_t *vm, int phase)
{
    int                rc;
    lua_State         *L;
    gl_task_t          t;
    gl_sync_t          save;
    gl_lua_handler_t  *h;

    h = &vm->conf->handlers[phase];

    if (h->file == NULL && h->code == NULL) {
        return GL_OK;
    }

    if (phase == GL_PHASE_INIT_WORKER) {
        return gl_lua_run_init_worker(vm, h);
    }

    L = vm->gen->L;

    lua_pushcfunction(L, gl_lua_traceback);

    if (gl_lua_push_code(L, vm->conf, h, NULL) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "failed to load %s*: %s",
                     gl_conf_phase_directive(phase), lua_tostring(L, -1));
        lua_pop(L, 2);
        return GL_ERROR;
    }

    gl_task_init(&t, &vm->sched, L, &gl_vm_init_ops, phase);
    gl_task_enter_sync(&t, &save);

    rc = lua_pcall(L, 0, 0, -2);

    gl_task_leave_sync(&save);

    if (rc != 0) {
        /* as nginx's: "init_worker_by_lua error: ..." */
        gl_log_error(GL_LOG_ERR, 0, "%s error: %s",
                     gl_conf_phase_directive(phase), lua_tostring(L, -1));
        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    return rc == 0 ? GL_OK : GL_ERROR;
}
