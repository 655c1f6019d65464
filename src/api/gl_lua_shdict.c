/*
 * ngx.shared: the dicts of lua_shared_dict (gl_shdict.c) for Lua, with the
 * methods lua-nginx-module 0.10.23 and lua-resty-core 0.1.25 give them, and
 * golapis.shared.get/set/incr on the golapis_shared_dict.
 *
 * ngx.shared.NAME is a table holding a full userdata (the gl_shdict_t
 * pointer) at [1], whose metatable is the methods table, as in
 * lua-nginx-module.  The methods lua-resty-core implements through the FFI
 * (get, set, incr, ttl, ...) are here too: the Lua layer below calls the
 * gl_ffi_shdict_* wrappers, so that a loop of d:incr() stays JIT-compiled.
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
#include "gl_shdict.h"
#include "gl_module.h"

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


/*
 * The Lua layer: the FFI methods and golapis.shared's functions.  It runs
 * with the methods table, the default dict's zone table (or nil) and its
 * name; it fills the methods table and returns golapis.shared's functions.
 */
static const char  gl_lua_shdict_lua[] =
    "local methods, default_zone, default_name = ...\n"
    "\n"
    "local ffi = require \"ffi\"\n"
    "local C = ffi.C\n"
    "local ffi_str = ffi.string\n"
    "local ffi_cast = ffi.cast\n"
    "local type = type\n"
    "local tostring = tostring\n"
    "local tonumber = tonumber\n"
    "local error = error\n"
    "\n"
    "ffi.cdef [[\n"
    "typedef struct {\n"
    "    int            type;\n"
    "    int            flags;\n"
    "    double         num;\n"
    "    const char    *str;\n"
    "    size_t         len;\n"
    "    int            stale;\n"
    "} gl_ffi_shdict_val_t;\n"
    "int gl_ffi_shdict_get(void *d, const char *key, size_t key_len,\n"
    "    int stale_ok, gl_ffi_shdict_val_t *out);\n"
    "int gl_ffi_shdict_store(void *d, int op, const char *key,\n"
    "    size_t key_len, int type, const char *str, size_t len, double num,\n"
    "    long exptime, int flags, int *forcible);\n"
    "int gl_ffi_shdict_incr(void *d, const char *key, size_t key_len,\n"
    "    double *value, int has_init, double init, long init_ttl,\n"
    "    int *forcible);\n"
    "void gl_ffi_shdict_flush_all(void *d);\n"
    "int gl_ffi_shdict_ttl(void *d, const char *key, size_t key_len,\n"
    "    double *ttl);\n"
    "int gl_ffi_shdict_expire(void *d, const char *key, size_t key_len,\n"
    "    long exptime);\n"
    "size_t gl_ffi_shdict_capacity(void *d);\n"
    "size_t gl_ffi_shdict_free_space(void *d);\n"
    "]]\n"
    "\n"
    "local c_get = C.gl_ffi_shdict_get\n"
    "-- named as lua-resty-core's, which LuaJIT's conversion errors name\n"
    "local ngx_lua_ffi_shdict_store = C.gl_ffi_shdict_store\n"
    "local c_incr = C.gl_ffi_shdict_incr\n"
    "local c_ttl = C.gl_ffi_shdict_ttl\n"
    "local c_expire = C.gl_ffi_shdict_expire\n"
    "\n"
    "local dict_pp = ffi.typeof(\"void **\")\n"
    "local val = ffi.new(\"gl_ffi_shdict_val_t\")\n"
    "local num = ffi.new(\"double[1]\")\n"
    "local forcible = ffi.new(\"int[1]\")\n"
    "\n"
    /* gl_shdict.h's codes */
    "local errors = {\n"
    "    [-1] = \"not found\", [-2] = \"exists\", [-3] = \"no memory\",\n"
    "    [-4] = \"not a number\", [-5] = \"value not a list\",\n"
    "    [-6] = \"value is a list\", [-7] = \"bad value type\",\n"
    "    [-8] = \"attempt to add or replace nil values\",\n"
    "    [-9] = \"empty key\", [-10] = \"key too long\",\n"
    "}\n"
    "\n"
    "-- the dict of a zone table; errors point at the method's caller\n"
    "local function zone_dict(zone)\n"
    "    if type(zone) ~= \"table\" then\n"
    "        error(\"bad \\\"zone\\\" argument\", 3)\n"
    "    end\n"
    "    local ud = zone[1]\n"
    "    if type(ud) ~= \"userdata\" then\n"
    "        error(\"bad \\\"zone\\\" argument\", 3)\n"
    "    end\n"
    "    local d = ffi_cast(dict_pp, ud)[0]\n"
    "    if d == nil then\n"
    "        error(\"bad \\\"zone\\\" argument\", 3)\n"
    "    end\n"
    "    return d\n"
    "end\n"
    "\n"
    "-- the key as a string and its length, or nil and the message\n"
    "local function key_of(key)\n"
    "    if key == nil then\n"
    "        return nil, \"nil key\"\n"
    "    end\n"
    "    if type(key) ~= \"string\" then\n"
    "        key = tostring(key)\n"
    "    end\n"
    "    local n = #key\n"
    "    if n == 0 then\n"
    "        return nil, \"empty key\"\n"
    "    end\n"
    "    if n > 65535 then\n"
    "        return nil, \"key too long\"\n"
    "    end\n"
    "    return key, n\n"
    "end\n"
    "\n"
    "-- set, add, replace and their safe_ forms: op is gl_shdict.h's\n"
    "local function store(zone, op, key, value, exptime, flags)\n"
    "    local d = zone_dict(zone)\n"
    "    if not exptime then\n"
    "        exptime = 0\n"
    "    elseif exptime < 0 then\n"
    "        error(\"bad \\\"exptime\\\" argument\", 2)\n"
    "    end\n"
    "    local k, n = key_of(key)\n"
    "    if not k then\n"
    "        return nil, n\n"
    "    end\n"
    "    local vt, str, len, x = type(value), nil, 0, 0\n"
    "    if vt == \"string\" then\n"
    "        vt, str, len = 4, value, #value\n"
    "    elseif vt == \"number\" then\n"
    "        vt, x = 3, value\n"
    "    elseif vt == \"nil\" then\n"
    "        vt = 0\n"
    "    elseif vt == \"boolean\" then\n"
    "        vt, x = 1, value and 1 or 0\n"
    "    else\n"
    "        return nil, \"bad value type\"\n"
    "    end\n"
    "    local rc = ngx_lua_ffi_shdict_store(d, op, k, n, vt, str, len, x,\n"
    "                                        exptime * 1000, flags or 0,\n"
    "                                        forcible)\n"
    "    if rc == 0 then\n"
    "        return true, nil, forcible[0] == 1\n"
    "    end\n"
    "    return false, errors[rc], forcible[0] == 1\n"
    "end\n"
    "\n"
    "local function set(zone, key, value, exptime, flags)\n"
    "    return store(zone, 0, key, value, exptime, flags)\n"
    "end\n"
    "\n"
    "local function incr(zone, key, value, init, init_ttl)\n"
    "    local d = zone_dict(zone)\n"
    "    local k, n = key_of(key)\n"
    "    if not k then\n"
    "        return nil, n\n"
    "    end\n"
    "    if type(value) ~= \"number\" then\n"
    "        value = tonumber(value)\n"
    "    end\n"
    "    num[0] = value\n"
    "    if init then\n"
    "        local t = type(init)\n"
    "        if t ~= \"number\" then\n"
    "            init = tonumber(init)\n"
    "            if not init then\n"
    "                error(\"bad init arg: number expected, got \" .. t, 2)\n"
    "            end\n"
    "        end\n"
    "    end\n"
    "    if init_ttl == nil then\n"
    "        init_ttl = 0\n"
    "    else\n"
    "        local t = type(init_ttl)\n"
    "        if t ~= \"number\" then\n"
    "            init_ttl = tonumber(init_ttl)\n"
    "            if not init_ttl then\n"
    "                error(\"bad init_ttl arg: number expected, got \" .. t,\n"
    "                      2)\n"
    "            end\n"
    "        end\n"
    "        if init_ttl < 0 then\n"
    "            error(\"bad \\\"init_ttl\\\" argument\", 2)\n"
    "        end\n"
    "        if not init then\n"
    "            error(\"must provide \\\"init\\\" when providing \"\n"
    "                  .. \"\\\"init_ttl\\\"\", 2)\n"
    "        end\n"
    "    end\n"
    "    local rc = c_incr(d, k, n, num, init and 1 or 0, init or 0,\n"
    "                      init_ttl * 1000, forcible)\n"
    "    if rc ~= 0 then\n"
    "        return nil, errors[rc]\n"
    "    end\n"
    "    if not init then\n"
    "        return num[0]\n"
    "    end\n"
    "    return num[0], nil, forcible[0] == 1\n"
    "end\n"
    "\n"
    "-- get and get_stale: the value, and its flags unless 0\n"
    "local function get(zone, key, stale)\n"
    "    local d = zone_dict(zone)\n"
    "    local k, n = key_of(key)\n"
    "    if not k then\n"
    "        return nil, n\n"
    "    end\n"
    "    local rc = c_get(d, k, n, stale, val)\n"
    "    if rc ~= 0 then\n"
    "        if rc == -6 then\n"
    "            return nil, \"value is a list\"\n"
    "        end\n"
    "        error(\"failed to get the key\")\n"
    "    end\n"
    "    local vt, v = val.type\n"
    "    if vt == 3 then\n"
    "        v = val.num\n"
    "    elseif vt == 4 then\n"
    "        v = ffi_str(val.str, val.len)\n"
    "    elseif vt == 1 then\n"
    "        v = val.num ~= 0\n"
    "    elseif vt == 0 then\n"
    "        return nil\n"
    "    else\n"
    "        error(\"unknown value type: \" .. vt)\n"
    "    end\n"
    "    local flags = val.flags\n"
    "    if stale == 0 then\n"
    "        if flags ~= 0 then\n"
    "            return v, flags\n"
    "        end\n"
    "        return v\n"
    "    end\n"
    "    return v, flags ~= 0 and flags or nil, val.stale == 1\n"
    "end\n"
    "\n"
    "methods.get = function(zone, key)\n"
    "    return get(zone, key, 0)\n"
    "end\n"
    "\n"
    "methods.get_stale = function(zone, key)\n"
    "    return get(zone, key, 1)\n"
    "end\n"
    "\n"
    "methods.set = set\n"
    "\n"
    "methods.safe_set = function(zone, key, value, exptime, flags)\n"
    "    return store(zone, 4, key, value, exptime, flags)\n"
    "end\n"
    "\n"
    "methods.add = function(zone, key, value, exptime, flags)\n"
    "    return store(zone, 1, key, value, exptime, flags)\n"
    "end\n"
    "\n"
    "methods.safe_add = function(zone, key, value, exptime, flags)\n"
    "    return store(zone, 5, key, value, exptime, flags)\n"
    "end\n"
    "\n"
    "methods.replace = function(zone, key, value, exptime, flags)\n"
    "    return store(zone, 2, key, value, exptime, flags)\n"
    "end\n"
    "\n"
    "methods.delete = function(zone, key)\n"
    "    return store(zone, 0, key, nil)\n"
    "end\n"
    "\n"
    "methods.incr = incr\n"
    "\n"
    "methods.flush_all = function(zone)\n"
    "    C.gl_ffi_shdict_flush_all(zone_dict(zone))\n"
    "end\n"
    "\n"
    "local ttl_out = ffi.new(\"double[1]\")\n"
    "\n"
    "methods.ttl = function(zone, key)\n"
    "    local d = zone_dict(zone)\n"
    "    local k, n = key_of(key)\n"
    "    if not k then\n"
    "        return nil, n\n"
    "    end\n"
    "    if c_ttl(d, k, n, ttl_out) ~= 0 then\n"
    "        return nil, \"not found\"\n"
    "    end\n"
    "    return ttl_out[0]\n"
    "end\n"
    "\n"
    "methods.expire = function(zone, key, exptime)\n"
    "    local d = zone_dict(zone)\n"
    "    if not exptime then\n"
    "        error(\"bad \\\"exptime\\\" argument\", 2)\n"
    "    end\n"
    "    local k, n = key_of(key)\n"
    "    if not k then\n"
    "        return nil, n\n"
    "    end\n"
    "    if c_expire(d, k, n, exptime * 1000) ~= 0 then\n"
    "        return nil, \"not found\"\n"
    "    end\n"
    "    return true\n"
    "end\n"
    "\n"
    "methods.capacity = function(zone)\n"
    "    return tonumber(C.gl_ffi_shdict_capacity(zone_dict(zone)))\n"
    "end\n"
    "\n"
    "methods.free_space = function(zone)\n"
    "    return tonumber(C.gl_ffi_shdict_free_space(zone_dict(zone)))\n"
    "end\n"
    "\n"
    "-- golapis.shared.get/set/incr: the default dict's methods\n"
    "if not default_zone then\n"
    "    local function missing()\n"
    "        error(\"no shared dict \\\"\" .. default_name .. \"\\\"\", 2)\n"
    "    end\n"
    "    return { get = missing, set = missing, incr = missing }\n"
    "end\n"
    "\n"
    "return {\n"
    "    get = function(key)\n"
    "        return get(default_zone, key, 0)\n"
    "    end,\n"
    "    set = function(key, value, exptime, flags)\n"
    "        return store(default_zone, 0, key, value, exptime, flags)\n"
    "    end,\n"
    "    incr = function(key, value, init, init_ttl)\n"
    "        return incr(default_zone, key, value, init, init_ttl)\n"
    "    end,\n"
    "}\n";


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

    gl_conf_t          *conf;
    gl_shdict_t        *d;
    const char         *def;
    const luaL_Reg     *m;
    size_t              i, n;
    int                 base, methods, shared;

    base = lua_gettop(L);
    conf = gl_vm_self != NULL ? gl_vm_self->conf : NULL;
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

    n = conf != NULL ? (size_t) conf->ndicts : gl_shdict_count();

    lua_createtable(L, 0, (int) n + 1);
    shared = lua_gettop(L);

    for (i = 0; i < n; i++) {
        if (conf == NULL) {
            d = gl_shdict_nth(i);

        } else {
            d = gl_shdict_find(conf->dicts[i].name,
                               strlen(conf->dicts[i].name));
            if (d == NULL) {
                /* added by a SIGHUP: dicts are made at start-up */
                gl_log_debug("no shared dict \"%s\" (restart to create it)",
                             conf->dicts[i].name);
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

    if (luaL_loadbuffer(L, gl_lua_shdict_lua, sizeof(gl_lua_shdict_lua) - 1,
                        "=ngx.shared")
        != 0)
    {
        /* our own chunk: only a lack of memory gets here */
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


gl_module_t  gl_lua_shdict_module = {
    "shdict", gl_lua_shdict_inject, NULL, NULL, NULL, NULL
};
