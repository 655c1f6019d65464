/*
 * ngx.shared: the dicts of lua_shared_dict (gl_shdict.c) for Lua, with the
 * methods lua-nginx-module 0.10.23 and lua-resty-core 0.1.25 give them, and
 * golapis.shared.get/set/incr on the golapis_shared_dict.
 *
 * ngx.shared.NAME is a table holding a full userdata (the gl_shdict_t
 * pointer) at [1], whose metatable is the methods table, as in
 * lua-nginx-module.  The methods lua-resty-core implements through the FFI
 * (get, set, incr, ttl, ...) are here too: their Lua layer
 * (lua/golapis/shdict.lua) calls the gl_ffi_shdict_* wrappers, so that a
 * loop of d:incr() stays JIT-compiled.
 * The ones lua-nginx-module implements in C (lpush ... llen, get_keys,
 * flush_expired) are lua_CFunctions, with the same argument checks.
 *
 * The dicts are process-wide and outlive every Lua state: a new generation
 * (hot reload) finds the same dicts.  Times are the worker's cached clock.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_shdict.h"
#include "gl_module.h"

#include <ctype.h>
#include <pthread.h>


/* the value of a get through the FFI: plain C, as declared in the Lua
   layer's ffi.cdef */
typedef struct {
    int            type;
    int            flags;
    double         num;        /* a number; a boolean: 0 or 1 */
    const char    *str;        /* a string: in the thread's buffer */
    size_t         len;
    int            stale;
} gl_ffi_shdict_val_t;

/* lua_shared_dict NAME SIZE */
typedef struct {
    char               *name;
    size_t              size;
} gl_lua_shdict_zone_t;

#define GL_LUA_SHDICT_MAX_ZONES  64

/* the shdict module's directives */
typedef struct {
    gl_lua_shdict_zone_t    zones[GL_LUA_SHDICT_MAX_ZONES];
    int                     nzones;
    char                   *golapis_dict;      /* golapis.shared's:
                                                  "golapis" */
    size_t                  golapis_dict_size; /* 1m */
} gl_lua_shdict_conf_t;

gl_module_t  gl_lua_shdict_module;

/* for LuaJIT's FFI (exported with -Wl,-E) */
int gl_ffi_shdict_get(gl_shdict_t *d, const char *key, size_t key_len,
    int stale_ok, gl_ffi_shdict_val_t *out);
int gl_ffi_shdict_store(gl_shdict_t *d, int op, const char *key,
    size_t key_len, int type, const char *str, size_t len, double num,
    long exptime, int flags, int *forcible);
int gl_ffi_shdict_incr(gl_shdict_t *d, const char *key, size_t key_len,
    double *value, int has_init, double init, long init_ttl, int *forcible);
void gl_ffi_shdict_flush_all(gl_shdict_t *d);
int gl_ffi_shdict_ttl(gl_shdict_t *d, const char *key, size_t key_len,
    double *ttl);
int gl_ffi_shdict_expire(gl_shdict_t *d, const char *key, size_t key_len,
    long exptime);
size_t gl_ffi_shdict_capacity(gl_shdict_t *d);
size_t gl_ffi_shdict_free_space(gl_shdict_t *d);

void gl_lua_shdict_thread_exit(void);


/*
 * The thread's buffer for the strings a get, a pop or get_keys copies out
 * of a dict (gl_shdict.h): grown by the dict, never shrunk, freed when the
 * thread exits (a pthread key's destructor; gl_lua_shdict_thread_exit()
 * does it at once).
 */
typedef struct {
    char          *buf;
    size_t         size;
    int            registered;
} gl_lua_shdict_tbuf_t;

static _Thread_local gl_lua_shdict_tbuf_t  gl_lua_shdict_tbuf;

static pthread_key_t   gl_lua_shdict_key;
static pthread_once_t  gl_lua_shdict_once = PTHREAD_ONCE_INIT;
static int             gl_lua_shdict_key_ok;


static void
gl_lua_shdict_tbuf_free(void *p)
{
    gl_lua_shdict_tbuf_t  *tb = p;

    free(tb->buf);
    tb->buf = NULL;
    tb->size = 0;
}


static void
gl_lua_shdict_key_init(void)
{
    gl_lua_shdict_key_ok = (pthread_key_create(&gl_lua_shdict_key,
                                               gl_lua_shdict_tbuf_free)
                            == 0);
}


static gl_lua_shdict_tbuf_t *
gl_lua_shdict_buf(void)
{
    gl_lua_shdict_tbuf_t  *tb = &gl_lua_shdict_tbuf;

    if (!tb->registered) {
        tb->registered = 1;
        (void) pthread_once(&gl_lua_shdict_once, gl_lua_shdict_key_init);

        if (gl_lua_shdict_key_ok) {
            (void) pthread_setspecific(gl_lua_shdict_key, tb);
        }
    }

    return tb;
}


void
gl_lua_shdict_thread_exit(void)
{
    gl_lua_shdict_tbuf_free(&gl_lua_shdict_tbuf);
}


/* the worker's cached clock, as ngx.now(); outside a worker, the clock */
static double
gl_lua_shdict_now(void)
{
    gl_vm_t  *vm = gl_vm_self;

    if (vm != NULL && vm->loop != NULL) {
        return ev_now(vm->loop);
    }

    return ev_time();
}


/*
 * lua-resty-core passes times as milliseconds in a C long (exptime * 1000,
 * truncated by the FFI); the dict takes seconds and truncates to ms again:
 * the half ms keeps that exact
 */
static double
gl_lua_shdict_secs(long ms)
{
    return ms > 0 ? ((double) ms + 0.5) / 1000 : 0;
}


/* the FFI side */

int
gl_ffi_shdict_get(gl_shdict_t *d, const char *key, size_t key_len,
    int stale_ok, gl_ffi_shdict_val_t *out)
{
    gl_shdict_value_t      v;
    gl_lua_shdict_tbuf_t  *tb;
    int                    rc, stale;

    tb = gl_lua_shdict_buf();

    rc = gl_shdict_get(d, key, key_len, gl_lua_shdict_now(), stale_ok, &v,
                       &stale, &tb->buf, &tb->size);

    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    out->type = v.type;
    out->flags = (int) v.flags;
    out->stale = stale;

    switch (v.type) {
    case GL_SHDICT_TNUMBER:
        out->num = v.num;
        break;
    case GL_SHDICT_TBOOLEAN:
        out->num = v.boolean ? 1 : 0;
        break;
    case GL_SHDICT_TSTRING:
        out->str = v.str;
        out->len = v.len;
        break;
    default:
        break;
    }

    return GL_SHDICT_OK;
}


int
gl_ffi_shdict_store(gl_shdict_t *d, int op, const char *key, size_t key_len,
    int type, const char *str, size_t len, double num, long exptime,
    int flags, int *forcible)
{
    gl_shdict_value_t  v;

    v.type = type;
    v.boolean = (num != 0);
    v.num = num;
    v.str = str;
    v.len = len;
    v.flags = (uint32_t) flags;

    *forcible = 0;

    return gl_shdict_store(d, op, key, key_len, &v,
                           gl_lua_shdict_secs(exptime), gl_lua_shdict_now(),
                           forcible);
}


int
gl_ffi_shdict_incr(gl_shdict_t *d, const char *key, size_t key_len,
    double *value, int has_init, double init, long init_ttl, int *forcible)
{
    *forcible = 0;

    return gl_shdict_incr(d, key, key_len, *value, has_init, init,
                          gl_lua_shdict_secs(init_ttl), gl_lua_shdict_now(),
                          value, forcible);
}


/*
 * nginx's flush_all marks every entry expired, then frees the three least
 * recently used ones (its forced expiry); the three freed here are the
 * oldest of one shard, so the counts of a later flush_expired agree
 */
void
gl_ffi_shdict_flush_all(gl_shdict_t *d)
{
    gl_shdict_flush_all(d);
    (void) gl_shdict_flush_expired(d, gl_lua_shdict_now(), 3);
}


int
gl_ffi_shdict_ttl(gl_shdict_t *d, const char *key, size_t key_len,
    double *ttl)
{
    return gl_shdict_ttl(d, key, key_len, gl_lua_shdict_now(), ttl);
}


int
gl_ffi_shdict_expire(gl_shdict_t *d, const char *key, size_t key_len,
    long exptime)
{
    return gl_shdict_set_expire(d, key, key_len, gl_lua_shdict_secs(exptime),
                                gl_lua_shdict_now());
}


size_t
gl_ffi_shdict_capacity(gl_shdict_t *d)
{
    return gl_shdict_capacity(d);
}


size_t
gl_ffi_shdict_free_space(gl_shdict_t *d)
{
    return gl_shdict_free_space(d);
}


/* the C methods, with lua-nginx-module's checks and messages */

/* the dict of the zone table at index 1, or NULL */
static gl_shdict_t *
gl_lua_shdict_zone(lua_State *L)
{
    gl_shdict_t  **p;

    lua_rawgeti(L, 1, 1);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);

    return p != NULL ? *p : NULL;
}


/* the key at index 2 for the list methods; 0 with nil, err pushed */
static int
gl_lua_shdict_list_key(lua_State *L, const char **key, size_t *len)
{
    if (lua_isnil(L, 2)) {
        lua_pushnil(L);
        lua_pushliteral(L, "nil key");
        return 0;
    }

    *key = luaL_checklstring(L, 2, len);

    if (*len == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "empty key");
        return 0;
    }

    if (*len > GL_SHDICT_MAX_KEY_LEN) {
        lua_pushnil(L);
        lua_pushliteral(L, "key too long");
        return 0;
    }

    return 1;
}


/* the zone and the key of lpush ... llen: 0 with nil, err pushed */
static gl_shdict_t *
gl_lua_shdict_list_args(lua_State *L, int nargs, const char **key,
    size_t *len)
{
    gl_shdict_t  *d;
    int           n;

    n = lua_gettop(L);

    if (n != nargs) {
        luaL_error(L, "expecting %d arguments, but only seen %d", nargs, n);
        return NULL;
    }

    if (lua_type(L, 1) != LUA_TTABLE) {
        luaL_error(L, "bad \"zone\" argument");
        return NULL;
    }

    d = gl_lua_shdict_zone(L);
    if (d == NULL) {
        luaL_error(L, "bad \"zone\" argument");
        return NULL;
    }

    if (!gl_lua_shdict_list_key(L, key, len)) {
        return NULL;
    }

    return d;
}


static int
gl_lua_shdict_push(lua_State *L, int left)
{
    gl_shdict_t        *d;
    gl_shdict_value_t   v;
    const char         *key;
    size_t              key_len, len;
    int                 rc;

    d = gl_lua_shdict_list_args(L, 3, &key, &key_len);
    if (d == NULL) {
        return 2;
    }

    memset(&v, 0, sizeof(v));

    switch (lua_type(L, 3)) {
    case LUA_TSTRING:
        v.type = GL_SHDICT_TSTRING;
        v.str = lua_tolstring(L, 3, &v.len);
        break;
    case LUA_TNUMBER:
        v.type = GL_SHDICT_TNUMBER;
        v.num = lua_tonumber(L, 3);
        break;
    default:
        lua_pushnil(L);
        lua_pushliteral(L, "bad value type");
        return 2;
    }

    rc = gl_shdict_push(d, key, key_len, left, &v, gl_lua_shdict_now(),
                        &len);

    if (rc != GL_SHDICT_OK) {
        lua_pushnil(L);
        lua_pushstring(L, gl_shdict_strerror(rc));
        return 2;
    }

    lua_pushnumber(L, (lua_Number) len);
    return 1;
}


static int
gl_lua_shdict_lpush(lua_State *L)
{
    return gl_lua_shdict_push(L, 1);
}


static int
gl_lua_shdict_rpush(lua_State *L)
{
    return gl_lua_shdict_push(L, 0);
}


static int
gl_lua_shdict_pop(lua_State *L, int left)
{
    gl_shdict_t           *d;
    gl_shdict_value_t      v;
    gl_lua_shdict_tbuf_t  *tb;
    const char            *key;
    size_t                 key_len;
    int                    rc;

    d = gl_lua_shdict_list_args(L, 2, &key, &key_len);
    if (d == NULL) {
        return 2;
    }

    tb = gl_lua_shdict_buf();

    rc = gl_shdict_pop(d, key, key_len, left, gl_lua_shdict_now(), &v,
                       &tb->buf, &tb->size);

    if (rc != GL_SHDICT_OK) {
        lua_pushnil(L);
        lua_pushstring(L, gl_shdict_strerror(rc));
        return 2;
    }

    switch (v.type) {
    case GL_SHDICT_TNUMBER:
        lua_pushnumber(L, v.num);
        break;
    case GL_SHDICT_TSTRING:
        lua_pushlstring(L, v.str, v.len);
        break;
    default:
        lua_pushnil(L);
        break;
    }

    return 1;
}


static int
gl_lua_shdict_lpop(lua_State *L)
{
    return gl_lua_shdict_pop(L, 1);
}


static int
gl_lua_shdict_rpop(lua_State *L)
{
    return gl_lua_shdict_pop(L, 0);
}


static int
gl_lua_shdict_llen(lua_State *L)
{
    gl_shdict_t  *d;
    const char   *key;
    size_t        key_len, len;
    int           rc;

    d = gl_lua_shdict_list_args(L, 2, &key, &key_len);
    if (d == NULL) {
        return 2;
    }

    rc = gl_shdict_llen(d, key, key_len, gl_lua_shdict_now(), &len);

    if (rc != GL_SHDICT_OK) {
        lua_pushnil(L);
        lua_pushstring(L, gl_shdict_strerror(rc));
        return 2;
    }

    lua_pushnumber(L, (lua_Number) len);
    return 1;
}


/* the zone and the optional count of flush_expired and get_keys */
static gl_shdict_t *
gl_lua_shdict_count_args(lua_State *L, int *count)
{
    gl_shdict_t  *d;
    int           n;

    n = lua_gettop(L);

    if (n != 1 && n != 2) {
        luaL_error(L, "expecting 1 or 2 argument(s), but saw %d", n);
        return NULL;
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    d = gl_lua_shdict_zone(L);
    if (d == NULL) {
        luaL_error(L, "bad user data for the ngx_shm_zone_t pointer");
        return NULL;
    }

    if (n == 2) {
        *count = luaL_checkint(L, 2);
    }

    return d;
}


static int
gl_lua_shdict_flush_expired(lua_State *L)
{
    gl_shdict_t  *d;
    size_t        freed;
    int           max = 0;

    d = gl_lua_shdict_count_args(L, &max);

    /* as nginx: 0, or a negative count, is no limit */
    freed = gl_shdict_flush_expired(d, gl_lua_shdict_now(),
                                    max > 0 ? (size_t) max : 0);

    lua_pushnumber(L, (lua_Number) freed);
    return 1;
}


static int
gl_lua_shdict_get_keys(lua_State *L)
{
    gl_shdict_t           *d;
    gl_lua_shdict_tbuf_t  *tb;
    const u_char          *p;
    size_t                 nkeys, len, i, klen;
    int                    max = 1024, rc;

    d = gl_lua_shdict_count_args(L, &max);

    tb = gl_lua_shdict_buf();

    rc = gl_shdict_get_keys(d, gl_lua_shdict_now(),
                            max > 0 ? (size_t) max : 0, &tb->buf, &tb->size,
                            &nkeys, &len);

    if (rc != GL_SHDICT_OK) {
        return luaL_error(L, "%s", gl_shdict_strerror(rc));
    }

    lua_createtable(L, (int) nkeys, 0);

    p = (const u_char *) tb->buf;

    for (i = 0; i < nkeys; i++) {
        klen = (size_t) p[0] | (size_t) p[1] << 8;
        lua_pushlstring(L, (const char *) p + 2, klen);
        lua_rawseti(L, -2, (int) i + 1);
        p += 2 + klen;
    }

    return 1;
}


/* adds the zone table of d to the table on top, under its name */
static void
gl_lua_shdict_add(lua_State *L, int methods, gl_shdict_t *d)
{
    gl_shdict_t  **p;
    const char    *name;
    size_t         len;

    name = gl_shdict_name(d, &len);

    lua_pushlstring(L, name, len);
    lua_createtable(L, 1, 0);
    p = lua_newuserdata(L, sizeof(gl_shdict_t *));
    *p = d;
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, methods);
    lua_setmetatable(L, -2);
    lua_rawset(L, -3);
}


/*
 * ngx.shared (also golapis.shared), into the ngx table on top: the dicts
 * of the worker's config (every dict when there is no worker), and, in
 * its metatable, get/set/incr on the golapis_shared_dict.
 */
static void
gl_lua_shdict_inject(lua_State *L)
{
    static const luaL_Reg  c_methods[] = {
        { "lpush", gl_lua_shdict_lpush },
        { "rpush", gl_lua_shdict_rpush },
        { "lpop", gl_lua_shdict_lpop },
        { "rpop", gl_lua_shdict_rpop },
        { "llen", gl_lua_shdict_llen },
        { "flush_expired", gl_lua_shdict_flush_expired },
        { "get_keys", gl_lua_shdict_get_keys },
        { NULL, NULL }
    };

    gl_shdict_t            *d;
    const char             *def;
    const luaL_Reg         *m;
    size_t                  i, n;
    int                     base, methods, shared;
    gl_lua_shdict_conf_t   *conf;

    base = lua_gettop(L);
    conf = gl_vm_self != NULL
           ? gl_conf_module(gl_vm_self->conf, &gl_lua_shdict_module) : NULL;
    def = conf != NULL ? conf->golapis_dict : "golapis";

    /* the methods, the metatable of every zone table */
    lua_createtable(L, 0, 24);
    methods = lua_gettop(L);

    for (m = c_methods; m->name != NULL; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, methods, m->name);
    }

    lua_pushvalue(L, methods);
    lua_setfield(L, methods, "__index");

    n = conf != NULL ? (size_t) conf->nzones : gl_shdict_count();

    lua_createtable(L, 0, (int) n + 1);
    shared = lua_gettop(L);

    for (i = 0; i < n; i++) {
        if (conf == NULL) {
            d = gl_shdict_nth(i);

        } else {
            d = gl_shdict_find(conf->zones[i].name,
                               strlen(conf->zones[i].name));
            if (d == NULL) {
                /* added by a SIGHUP: dicts are made at start-up */
                gl_log_debug("no shared dict \"%s\" (restart to create it)",
                             conf->zones[i].name);
            }
        }

        if (d != NULL) {
            gl_lua_shdict_add(L, methods, d);
        }
    }

    d = gl_shdict_find(def, strlen(def));

    if (d != NULL) {
        lua_getfield(L, shared, def);
        n = lua_isnil(L, -1);
        lua_pop(L, 1);

        if (n) {
            gl_lua_shdict_add(L, methods, d);
        }
    }

    /* the FFI methods and golapis.shared's functions: it fills the
       methods table and returns golapis.shared's; its errors say
       "ngx.shared:LINE:", LINE in lua/golapis/shdict.lua */
    if (gl_lua_lib_load(L, "golapis.shdict", "=ngx.shared") != GL_OK) {
        /* our own chunk: only a lack of memory (or a broken copy in
           GOLAPIS_LUA_LIB's dir) gets here */
        gl_log_error(GL_LOG_EMERG, 0, "cannot load ngx.shared: %s",
                     lua_tostring(L, -1));
        lua_settop(L, base);
        return;
    }

    lua_pushvalue(L, methods);
    lua_getfield(L, shared, def);
    lua_pushstring(L, def);

    if (lua_pcall(L, 3, 1, 0) != 0) {
        gl_log_error(GL_LOG_EMERG, 0, "cannot load ngx.shared: %s",
                     lua_tostring(L, -1));
        lua_settop(L, base);
        return;
    }

    /* get/set/incr behind the dicts, so that pairs() sees only dicts */
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, shared);

    lua_pushvalue(L, shared);
    lua_setfield(L, base, "shared");

    lua_settop(L, base);
}


/*
 * lua_shared_dict NAME SIZE, and golapis_shared_dict NAME SIZE: the dict
 * behind golapis.shared.get/set/incr (by default "golapis", 1m), which is
 * also ngx.shared.NAME
 */
static int
gl_lua_shdict_conf_zone(gl_conf_parser_t *cp, const char **name,
    size_t *size)
{
    ssize_t      n;
    const char  *p;

    for (p = cp->args[1]; *p; p++) {
        if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-')) {
            return gl_conf_error(cp, "invalid dict name \"%s\"", cp->args[1]);
        }
    }

    if (strcmp(cp->args[1], "get") == 0 || strcmp(cp->args[1], "set") == 0
        || strcmp(cp->args[1], "incr") == 0)
    {
        /* ngx.shared (= golapis.shared) has functions of these names */
        return gl_conf_error(cp, "the dict name \"%s\" is reserved",
                             cp->args[1]);
    }

    n = gl_conf_parse_size(cp->args[2]);
    if (n < 8192) {
        return gl_conf_error(cp, "invalid size \"%s\" in \"%s\" (at least "
                             "8k)", cp->args[2], cp->args[0]);
    }

    *name = cp->args[1];
    *size = (size_t) n;

    return GL_OK;
}


static int
gl_lua_shdict_conf_lua_shared_dict(gl_conf_parser_t *cp,
    const gl_command_t *cmd, void *mconf)
{
    int                     i;
    size_t                  size;
    const char             *name;
    gl_lua_shdict_conf_t   *scf = mconf;

    (void) cmd;

    if (gl_lua_shdict_conf_zone(cp, &name, &size) != GL_OK) {
        return GL_ERROR;
    }

    for (i = 0; i < scf->nzones; i++) {
        if (strcmp(scf->zones[i].name, name) == 0) {
            return gl_conf_error(cp, "duplicate zone \"%s\"", name);
        }
    }

    if (scf->nzones == GL_LUA_SHDICT_MAX_ZONES) {
        return gl_conf_error(cp, "too many shared dicts (at most %d)",
                             GL_LUA_SHDICT_MAX_ZONES);
    }

    scf->zones[scf->nzones].name = gl_conf_strdup(cp->conf, name);
    if (scf->zones[scf->nzones].name == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    scf->zones[scf->nzones].size = size;
    scf->nzones++;

    return GL_OK;
}


static int
gl_lua_shdict_conf_golapis_dict(gl_conf_parser_t *cp,
    const gl_command_t *cmd, void *mconf)
{
    size_t                  size;
    const char             *name;
    gl_lua_shdict_conf_t   *scf = mconf;

    (void) cmd;

    if (scf->golapis_dict != NULL) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate",
                             cp->args[0]);
    }

    if (gl_lua_shdict_conf_zone(cp, &name, &size) != GL_OK) {
        return GL_ERROR;
    }

    scf->golapis_dict = gl_conf_strdup(cp->conf, name);
    if (scf->golapis_dict == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    scf->golapis_dict_size = size;

    return GL_OK;
}


static const char *
gl_lua_shdict_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_lua_shdict_conf_t  *scf = mconf;

    if (scf->golapis_dict == NULL) {
        scf->golapis_dict = gl_conf_strdup(conf, "golapis");
        if (scf->golapis_dict == NULL) {
            return "out of memory";
        }

        scf->golapis_dict_size = 1024 * 1024;
    }

    return NULL;
}


/*
 * Creates the shared dicts of conf that do not exist yet, in the main
 * thread before any worker runs with conf.  They live as long as the
 * process: a reload (SIGHUP or code) keeps their data.
 */
static int
gl_lua_shdict_init_main(gl_conf_t *conf)
{
    int                     i;
    size_t                  size;
    const char             *name;
    gl_shdict_t            *d;
    gl_lua_shdict_conf_t   *scf;

    scf = gl_conf_module(conf, &gl_lua_shdict_module);

    for (i = 0; i <= scf->nzones; i++) {
        if (i < scf->nzones) {
            name = scf->zones[i].name;
            size = scf->zones[i].size;

        } else {
            /* golapis.shared's, unless a lua_shared_dict has its name */
            name = scf->golapis_dict;
            size = scf->golapis_dict_size;
        }

        d = gl_shdict_find(name, strlen(name));

        if (d != NULL) {
            if (i < scf->nzones && gl_shdict_capacity(d) != size) {
                gl_log_error(GL_LOG_WARN, 0, "the size of shared dict "
                             "\"%s\" cannot change without a restart",
                             name);
            }
            continue;
        }

        if (gl_shdict_create(name, size) == NULL) {
            gl_log_error(GL_LOG_EMERG, errno, "cannot create shared dict "
                         "\"%s\" of %zu bytes", name, size);
            return GL_ERROR;
        }
    }

    return GL_OK;
}


static const gl_command_t  gl_lua_shdict_commands[] = {

    { "lua_shared_dict", GL_CONF_TAKE2, gl_lua_shdict_conf_lua_shared_dict,
      GL_CONF_MODULE, 0, NULL },

    { "golapis_shared_dict", GL_CONF_TAKE2, gl_lua_shdict_conf_golapis_dict,
      GL_CONF_MODULE, 0, NULL },

    gl_null_command
};


gl_module_t  gl_lua_shdict_module = {
    .name = "shdict",
    .inject = gl_lua_shdict_inject,
    .commands = gl_lua_shdict_commands,
    .conf_size = sizeof(gl_lua_shdict_conf_t),
    .init_conf = gl_lua_shdict_init_conf,
    .init_main = gl_lua_shdict_init_main
};
