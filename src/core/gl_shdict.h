/*
 * The shared dict: the pure-C store behind ngx.shared.DICT (the zones of
 * lua-nginx-module's lua_shared_dict).  No Lua, no I/O, no logging: every
 * function returns a code, and the caller turns it into Lua values and log
 * lines.  docs/shdict-core.md has the design.
 *
 * A dict is a process-wide key/value store that every thread may use at
 * once: every function is thread-safe but gl_shdict_destroy_all(), for
 * the end.  Keys are 1..65535 bytes; values are booleans, numbers
 * (double), strings, or lists of numbers and strings; each entry has 32
 * bits of user flags and an expiry time (milliseconds, as nginx).
 *
 * Time is the caller's: each call takes `now`, in seconds (the worker's
 * cached clock, as ngx.now()); it must be well above 0.001.
 *
 * Strings are copied out under the lock into a buffer the caller owns and
 * passes as (char **buf, size_t *buf_size): *buf is NULL or from malloc(),
 * it is grown with realloc() when a value does not fit (never shrunk), and
 * the caller frees it.  One such buffer per thread is the idea.  No pointer
 * into the dict ever leaves a call.
 *
 * All the types are plain C, so the functions can be declared in LuaJIT's
 * ffi.cdef as they are.
 */
#ifndef GL_SHDICT_H
#define GL_SHDICT_H

#include "gl_core.h"

typedef struct gl_shdict_s  gl_shdict_t;

/* the smallest size accepted (nginx's minimum shared zone) */
#define GL_SHDICT_MIN_SIZE      8192
#define GL_SHDICT_MAX_KEY_LEN   65535

/* value types: lua_type()'s numbers, as lua-nginx-module stores them */
#define GL_SHDICT_TNIL          0
#define GL_SHDICT_TBOOLEAN      1
#define GL_SHDICT_TNUMBER       3
#define GL_SHDICT_TSTRING       4
#define GL_SHDICT_TLIST         5

/* gl_shdict_store() ops: lua-nginx-module's bits */
#define GL_SHDICT_SET           0x0000
#define GL_SHDICT_ADD           0x0001  /* only if absent (or expired) */
#define GL_SHDICT_REPLACE       0x0002  /* only if present and live */
#define GL_SHDICT_SAFE          0x0004  /* never evict: "no memory" */

/* return codes; gl_shdict_strerror() gives lua-nginx-module's messages */
#define GL_SHDICT_OK            0
#define GL_SHDICT_NOT_FOUND    -1       /* "not found" */
#define GL_SHDICT_EXISTS       -2       /* "exists" */
#define GL_SHDICT_NO_MEMORY    -3       /* "no memory" */
#define GL_SHDICT_NOT_NUMBER   -4       /* "not a number" */
#define GL_SHDICT_NOT_LIST     -5       /* "value not a list" */
#define GL_SHDICT_IS_LIST      -6       /* "value is a list" */
#define GL_SHDICT_BAD_VALUE    -7       /* "bad value type" */
#define GL_SHDICT_NIL_VALUE    -8       /* add/replace of nil */
#define GL_SHDICT_EMPTY_KEY    -9       /* "empty key" */
#define GL_SHDICT_KEY_TOO_LONG -10      /* "key too long" */

/* gl_shdict_create_ex() flags */
#define GL_SHDICT_RWLOCK        0x0001  /* rwlocks instead of spinlocks */
#define GL_SHDICT_MUTEX         0x0002  /* mutexes instead of spinlocks */

/* the number of shards gl_shdict_create() gives a dict */
#define GL_SHDICT_SHARDS        64

/*
 * A value in and out.  In: type, and num (TNUMBER), boolean (TBOOLEAN) or
 * str/len (TSTRING), and flags.  Out (get, pop): the same fields; str then
 * points into the caller's buffer (or to a static "" for an empty string).
 */
typedef struct {
    int           type;
    int           boolean;
    double        num;
    const char   *str;
    size_t        len;
    uint32_t      flags;
} gl_shdict_value_t;


/*
 * The registry, a process-wide list of dicts.  Dicts are created while the
 * config is read, before the workers start, and live until
 * gl_shdict_destroy_all() at exit, so a gl_shdict_t * stays valid.
 */

/*
 * Creates the dict `name` of `size` bytes (its memory budget; see
 * docs/shdict-core.md for what an entry costs) and adds it to the registry.
 * On error returns NULL with errno: EINVAL (size below GL_SHDICT_MIN_SIZE,
 * or an empty name), EEXIST (a dict of that name exists), ENOMEM.
 */
gl_shdict_t *gl_shdict_create(const char *name, size_t size);

/* the same, with a shard count (a power of two, 1..256; 0 for the
   default) and GL_SHDICT_* flags: for the tests and the benchmark */
gl_shdict_t *gl_shdict_create_ex(const char *name, size_t size,
    unsigned nshards, unsigned flags);

/* the dict of that name, or NULL */
gl_shdict_t *gl_shdict_find(const char *name, size_t len);

/* the number of dicts, and the i-th one (creation order), or NULL */
size_t gl_shdict_count(void);
gl_shdict_t *gl_shdict_nth(size_t i);

/* frees every dict; no thread may use one any more */
void gl_shdict_destroy_all(void);

const char *gl_shdict_name(gl_shdict_t *d, size_t *len);

/* the configured size; the bytes of it not used by entries */
size_t gl_shdict_capacity(gl_shdict_t *d);
size_t gl_shdict_free_space(gl_shdict_t *d);

/* the entries stored, expired ones not yet freed included (a shard's
   lock at a time: not one snapshot of the whole dict) */
size_t gl_shdict_nkeys(gl_shdict_t *d);

/* lua-nginx-module's message for a code ("not found", ...) */
const char *gl_shdict_strerror(int rc);


/*
 * Reads key into *v.  A missing key, or an expired one unless stale_ok, gives
 * v->type GL_SHDICT_TNIL (and GL_SHDICT_OK).  *stale (may be NULL) tells
 * whether the value returned has expired.  GL_SHDICT_IS_LIST for a list;
 * GL_SHDICT_NO_MEMORY if the buffer could not grow.
 */
int gl_shdict_get(gl_shdict_t *d, const char *key, size_t key_len,
    double now, int stale_ok, gl_shdict_value_t *v, int *stale,
    char **buf, size_t *buf_size);

/*
 * set / add / replace (op, GL_SHDICT_SAFE or'ed in for safe_*), with
 * exptime in seconds (0 or less: never; below 1 ms: never, as nginx,
 * which keeps milliseconds).  A nil value deletes (set only:
 * GL_SHDICT_NIL_VALUE for add and replace).  When the budget is short,
 * set/add/replace evict the least recently used entries (and set
 * *forcible, if forcible is not NULL, when a live one went); safe ones
 * return GL_SHDICT_NO_MEMORY.
 * A value no larger than the one it replaces always fits; as in nginx,
 * when a larger one does not, the key's old value is gone too.  add:
 * GL_SHDICT_EXISTS on a live key; replace: GL_SHDICT_NOT_FOUND on a
 * missing or expired one.
 */
int gl_shdict_store(gl_shdict_t *d, int op, const char *key, size_t key_len,
    const gl_shdict_value_t *v, double exptime, double now, int *forcible);

/* store of nil: always GL_SHDICT_OK for a valid key */
int gl_shdict_delete(gl_shdict_t *d, const char *key, size_t key_len,
    double now);

/*
 * Adds value to the number at key; *newval gets the result.  A missing or
 * expired key: GL_SHDICT_NOT_FOUND, or with has_init a new entry init +
 * value (flags 0, expiring after init_ttl seconds, 0: never), evicting if
 * it must (*forcible; forcible may be NULL).  GL_SHDICT_NOT_NUMBER if the
 * value is not a number.  An existing entry keeps its expiry and flags.
 */
int gl_shdict_incr(gl_shdict_t *d, const char *key, size_t key_len,
    double value, int has_init, double init, double init_ttl, double now,
    double *newval, int *forcible);

/*
 * lpush (left) / rpush of a number or string (else GL_SHDICT_BAD_VALUE);
 * *len gets the list's new length.  A missing or expired key becomes a new
 * list; GL_SHDICT_NOT_LIST for another live value.  Never evicts:
 * GL_SHDICT_NO_MEMORY.
 */
int gl_shdict_push(gl_shdict_t *d, const char *key, size_t key_len,
    int left, const gl_shdict_value_t *v, double now, size_t *len);

/* lpop / rpop into *v: TNIL for a missing or expired key; the entry goes
   with its last element.  GL_SHDICT_NOT_LIST for another value. */
int gl_shdict_pop(gl_shdict_t *d, const char *key, size_t key_len,
    int left, double now, gl_shdict_value_t *v, char **buf,
    size_t *buf_size);

/* the length of a list: 0 for a missing or expired key;
   GL_SHDICT_NOT_LIST for another value */
int gl_shdict_llen(gl_shdict_t *d, const char *key, size_t key_len,
    double now, size_t *len);

/*
 * The seconds key has left (0: never expires).  As in nginx, an expired
 * entry that is still stored is found, with a negative ttl;
 * GL_SHDICT_NOT_FOUND once it is gone.
 */
int gl_shdict_ttl(gl_shdict_t *d, const char *key, size_t key_len,
    double now, double *ttl);

/* expire(key, exptime): sets the expiry (0 or less: never); as ttl, it
   finds an expired entry still stored (and makes it live again) */
int gl_shdict_set_expire(gl_shdict_t *d, const char *key, size_t key_len,
    double exptime, double now);

/* marks every entry expired; their memory goes with flush_expired, the
   housekeeping, or the writes that meet them */
void gl_shdict_flush_all(gl_shdict_t *d);

/* frees up to max expired entries (0: all); returns how many */
size_t gl_shdict_flush_expired(gl_shdict_t *d, double now, size_t max);

/*
 * Up to max live keys (0: all), least recently used first within each
 * shard, shard after shard (not one atomic snapshot of the whole dict).
 * *buf gets each key as its length in 2 bytes, little-endian, then its
 * bytes; *nkeys the count and *len the bytes used.  GL_SHDICT_NO_MEMORY if
 * the buffer could not grow.
 */
int gl_shdict_get_keys(gl_shdict_t *d, double now, size_t max,
    char **buf, size_t *buf_size, size_t *nkeys, size_t *len);

/*
 * For the housekeeping thread: looks at about max hash buckets and entries
 * (a hash chain is not split), resuming where the last call stopped, and
 * frees the expired entries; returns how many.  A lock is held for about
 * 128 of them at most.  Calls that add up to twice the number of entries
 * go round the whole dict (there is about one bucket per entry).
 */
size_t gl_shdict_expire(gl_shdict_t *d, double now, size_t max);

/* gl_shdict_expire() on every dict */
size_t gl_shdict_expire_all(double now, size_t max);

#endif /* GL_SHDICT_H */
