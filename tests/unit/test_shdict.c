/*
 * Unit tests of the shared dict core (gl_shdict.c, included for its
 * statics).  The cases follow lua-nginx-module's t/043-shdict.t,
 * t/144-shdict-incr-init.t, t/145-shdict-list.t and lua-resty-core's
 * t/shdict.t, with time driven by hand.  Each semantic case runs on five
 * builds of a dict: the default (64 shards, spinlocks), 16 shards with
 * rwlocks, a single shard (nginx's one lock and one LRU), 4 with rwlocks,
 * 8 with mutexes.
 */
#include "../../src/core/gl_shdict.c"

#include <stdio.h>


#include "gl_test.h"


static const char         *gl_t_cfg = "-";
static unsigned            gl_t_nshards;
static unsigned            gl_t_flags;
static double              gl_t_now = 1000.0;
static char               *gl_t_buf;
static size_t              gl_t_buf_size;
static gl_shdict_value_t   gl_t_v;
static int                 gl_t_stale;
static int                 gl_t_forcible;
static int                 gl_t_seq;


/* a fresh dict for the current configuration */
static gl_shdict_t *
gl_t_dict(size_t size)
{
    char          name[64];
    gl_shdict_t  *d;

    snprintf(name, sizeof(name), "t%d_%s", gl_t_seq++, gl_t_cfg);

    d = gl_shdict_create_ex(name, size, gl_t_nshards, gl_t_flags);
    if (d == NULL) {
        printf("FAIL: cannot create dict %s: %s\n", name, strerror(errno));
        exit(1);
    }

    return d;
}


static gl_shdict_value_t
gl_t_lstr(const char *s, size_t len)
{
    gl_shdict_value_t  v;

    memset(&v, 0, sizeof(v));
    v.type = GL_SHDICT_TSTRING;
    v.str = s;
    v.len = len;

    return v;
}


static gl_shdict_value_t
gl_t_str(const char *s)
{
    return gl_t_lstr(s, strlen(s));
}


static gl_shdict_value_t
gl_t_num(double n)
{
    gl_shdict_value_t  v;

    memset(&v, 0, sizeof(v));
    v.type = GL_SHDICT_TNUMBER;
    v.num = n;

    return v;
}


static gl_shdict_value_t
gl_t_bool(int b)
{
    gl_shdict_value_t  v;

    memset(&v, 0, sizeof(v));
    v.type = GL_SHDICT_TBOOLEAN;
    v.boolean = b;

    return v;
}


static gl_shdict_value_t
gl_t_nil(void)
{
    gl_shdict_value_t  v;

    memset(&v, 0, sizeof(v));

    return v;
}


static int
gl_t_store(gl_shdict_t *d, int op, const char *key, gl_shdict_value_t v,
    double exptime, uint32_t flags)
{
    v.flags = flags;

    return gl_shdict_store(d, op, key, strlen(key), &v, exptime, gl_t_now,
                           &gl_t_forcible);
}


static int
gl_t_set(gl_shdict_t *d, const char *key, gl_shdict_value_t v)
{
    return gl_t_store(d, GL_SHDICT_SET, key, v, 0, 0);
}


static int
gl_t_get(gl_shdict_t *d, const char *key, int stale_ok)
{
    return gl_shdict_get(d, key, strlen(key), gl_t_now, stale_ok, &gl_t_v,
                         &gl_t_stale, &gl_t_buf, &gl_t_buf_size);
}


static int
gl_t_is_str(gl_shdict_t *d, const char *key, const char *want)
{
    return gl_t_get(d, key, 0) == GL_SHDICT_OK
           && gl_t_v.type == GL_SHDICT_TSTRING
           && gl_t_v.len == strlen(want)
           && memcmp(gl_t_v.str, want, gl_t_v.len) == 0;
}


static int
gl_t_is_num(gl_shdict_t *d, const char *key, double want)
{
    return gl_t_get(d, key, 0) == GL_SHDICT_OK
           && gl_t_v.type == GL_SHDICT_TNUMBER && gl_t_v.num == want;
}


static int
gl_t_is_nil(gl_shdict_t *d, const char *key)
{
    return gl_t_get(d, key, 0) == GL_SHDICT_OK
           && gl_t_v.type == GL_SHDICT_TNIL;
}


static int
gl_t_incr(gl_shdict_t *d, const char *key, double value, int has_init,
    double init, double init_ttl, double *newval)
{
    return gl_shdict_incr(d, key, strlen(key), value, has_init, init,
                          init_ttl, gl_t_now, newval, &gl_t_forcible);
}


static int
gl_t_push(gl_shdict_t *d, const char *key, int left, gl_shdict_value_t v,
    size_t *len)
{
    return gl_shdict_push(d, key, strlen(key), left, &v, gl_t_now, len);
}


static int
gl_t_pop(gl_shdict_t *d, const char *key, int left)
{
    return gl_shdict_pop(d, key, strlen(key), left, gl_t_now, &gl_t_v,
                         &gl_t_buf, &gl_t_buf_size);
}


static size_t
gl_t_llen(gl_shdict_t *d, const char *key, int *rc)
{
    size_t  len = 12345;

    *rc = gl_shdict_llen(d, key, strlen(key), gl_t_now, &len);

    return len;
}


static int
gl_t_ttl(gl_shdict_t *d, const char *key, double *ttl)
{
    return gl_shdict_ttl(d, key, strlen(key), gl_t_now, ttl);
}


static size_t
gl_t_nkeys(gl_shdict_t *d, size_t max)
{
    size_t  n, len;

    if (gl_shdict_get_keys(d, gl_t_now, max, &gl_t_buf, &gl_t_buf_size, &n,
                           &len)
        != GL_SHDICT_OK)
    {
        return (size_t) -1;
    }

    return n;
}


static int
gl_t_near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}


/* the bytes charged are the sum of the entries' costs, each the sum of
   its parts; the tables hold count entries; the LRU queues as many */
static int
gl_t_consistent(gl_shdict_t *d)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    gl_shdict_queue_t  *q;
    size_t              total, cost, count, lru, b, elts;
    unsigned            i;

    total = 0;

    for (i = 0; i < d->nshards; i++) {
        s = &d->shards[i];
        count = 0;
        lru = 0;

        for (b = 0; b < s->nbuckets; b++) {
            for (n = s->buckets[b]; n; n = n->hnext) {
                count++;
                cost = GL_SHDICT_NODE_COST + n->key_len;

                if (n->type == GL_SHDICT_TSTRING) {
                    cost += n->value_len;
                }

                if (n->type == GL_SHDICT_TLIST) {
                    elts = 0;

                    for (q = n->u.list.next; q != &n->u.list; q = q->next) {
                        cost += GL_SHDICT_ELT_COST + gl_shdict_elt(q)->len;
                        elts++;
                    }

                    if (elts != n->value_len || elts == 0) {
                        printf("  list of %zu elements says %u\n", elts,
                               n->value_len);
                        return 0;
                    }
                }

                if (cost != n->cost
                    || (n->hash & (s->nbuckets - 1)) != b
                    || gl_shdict_shard(d, gl_shdict_hash(n->data,
                                                         n->key_len)) != s)
                {
                    printf("  bad entry: cost %zu, want %zu\n", n->cost,
                           cost);
                    return 0;
                }

                total += cost;
            }
        }

        for (q = s->lru.next; q != &s->lru; q = q->next) {
            lru++;
        }

        if (count != s->count || lru != s->count) {
            printf("  shard %u: %zu in table, %zu in lru, count %zu\n", i,
                   count, lru, s->count);
            return 0;
        }
    }

    if (total != atomic_load(&d->used)) {
        printf("  used %zu, entries %zu\n", atomic_load(&d->used), total);
        return 0;
    }

    return 1;
}


static void
test_siphash(void)
{
    static const uint64_t  key[2] = { 0x0706050403020100ULL,
                                      0x0f0e0d0c0b0a0908ULL };
    u_char                 msg[15];
    size_t                 i;

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (u_char) i;
    }

    /* the reference vectors, with SipHash-2-4 */
    CHECK(gl_shdict_siphash(key, msg, 15, 2, 4) == 0xa129ca6149be45e5ULL);
    CHECK(gl_shdict_siphash(key, msg, 0, 2, 4) == 0x726fdb47dd0e0e31ULL);

    CHECK(gl_shdict_hash("foo", 3) == gl_shdict_hash("foo", 3));
    CHECK(gl_shdict_hash("foo", 3) != gl_shdict_hash("fop", 3));
}


static void
test_registry(void)
{
    gl_shdict_t  *d, *e;
    const char   *name;
    size_t        len, n;

    n = gl_shdict_count();

    errno = 0;
    CHECK(gl_shdict_create("small", GL_SHDICT_MIN_SIZE - 1) == NULL
          && errno == EINVAL);
    CHECK(gl_shdict_create("", GL_SHDICT_MIN_SIZE) == NULL
          && errno == EINVAL);
    CHECK(gl_shdict_create_ex("three", GL_SHDICT_MIN_SIZE, 3, 0) == NULL
          && errno == EINVAL);
    CHECK(gl_shdict_create_ex("many", GL_SHDICT_MIN_SIZE, 512, 0) == NULL
          && errno == EINVAL);

    d = gl_shdict_create("dogs", GL_SHDICT_MIN_SIZE);
    CHECK(d != NULL);
    CHECK(d != NULL && d->nshards == GL_SHDICT_SHARDS && d->lock == GL_SHDICT_LOCK_SPIN);

    errno = 0;
    CHECK(gl_shdict_create("dogs", 1 << 20) == NULL && errno == EEXIST);

    e = gl_shdict_create("cats", 16384);
    CHECK(e != NULL);

    CHECK(gl_shdict_find("dogs", 4) == d);
    CHECK(gl_shdict_find("cats", 4) == e);
    CHECK(gl_shdict_find("dog", 3) == NULL);
    CHECK(gl_shdict_find("dogs!", 5) == NULL);
    CHECK(gl_shdict_count() == n + 2);
    CHECK(gl_shdict_nth(n) == d && gl_shdict_nth(n + 1) == e);
    CHECK(gl_shdict_nth(n + 2) == NULL);

    name = gl_shdict_name(e, &len);
    CHECK(len == 4 && memcmp(name, "cats", 4) == 0);
    CHECK(gl_shdict_capacity(e) == 16384);
    CHECK(gl_shdict_free_space(e) == 16384);

    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_NOT_FOUND), "not found") == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_EXISTS), "exists") == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_NO_MEMORY), "no memory") == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_NOT_NUMBER), "not a number")
          == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_NOT_LIST), "value not a list")
          == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_IS_LIST), "value is a list")
          == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_NIL_VALUE),
                 "attempt to add or replace nil values") == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_KEY_TOO_LONG), "key too long")
          == 0);
    CHECK(strcmp(gl_shdict_strerror(GL_SHDICT_EMPTY_KEY), "empty key") == 0);
}


/* t/043 TEST 1-5, 11, 16-20, 42, 61-77 */
static void
test_values(void)
{
    gl_shdict_t  *d, *e;
    char         *big;
    size_t        len;
    double        ttl;

    d = gl_t_dict(1 << 20);

    CHECK(gl_t_set(d, "foo", gl_t_num(32)) == GL_SHDICT_OK);
    CHECK(gl_t_forcible == 0);
    CHECK(gl_t_set(d, "bah", gl_t_num(10502)) == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "foo", 32));
    CHECK(gl_t_v.flags == 0);
    CHECK(gl_t_is_num(d, "bah", 10502));

    CHECK(gl_t_set(d, "pi", gl_t_num(3.14159)) == GL_SHDICT_OK);
    CHECK(gl_t_set(d, "baz", gl_t_num(1.28)) == GL_SHDICT_OK);
    CHECK(gl_t_set(d, "baz", gl_t_num(3.96)) == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "pi", 3.14159));
    CHECK(gl_t_is_num(d, "baz", 3.96));

    CHECK(gl_t_set(d, "t", gl_t_bool(1)) == GL_SHDICT_OK);
    CHECK(gl_t_set(d, "f", gl_t_bool(0)) == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "t", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TBOOLEAN && gl_t_v.boolean == 1);
    CHECK(gl_t_get(d, "f", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TBOOLEAN && gl_t_v.boolean == 0);

    /* different sizes for one key */
    CHECK(gl_t_set(d, "s", gl_t_str("hello")) == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "s", "hello"));
    CHECK(gl_t_set(d, "s", gl_t_str("hello, world")) == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "s", "hello, world"));
    CHECK(gl_t_set(d, "s", gl_t_str("hello")) == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "s", "hello"));

    /* a type change */
    CHECK(gl_t_set(d, "s", gl_t_num(1)) == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "s", 1));
    CHECK(gl_t_set(d, "s", gl_t_bool(1)) == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "s", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TBOOLEAN && gl_t_v.boolean);

    /* empty and binary strings */
    CHECK(gl_t_set(d, "empty", gl_t_str("")) == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "empty", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TSTRING && gl_t_v.len == 0
          && gl_t_v.str != NULL);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bin", gl_t_lstr("a\0b\0", 4), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "bin", 0) == GL_SHDICT_OK && gl_t_v.len == 4
          && memcmp(gl_t_v.str, "a\0b\0", 4) == 0);

    /* keys are bytes: "1234" is one key, a NUL inside counts */
    CHECK(gl_shdict_store(d, GL_SHDICT_SET, "k\0x", 3, &(gl_shdict_value_t)
                          { GL_SHDICT_TNUMBER, 0, 7, NULL, 0, 0 }, 0,
                          gl_t_now, NULL) == GL_SHDICT_OK);
    CHECK(gl_t_is_nil(d, "k"));
    CHECK(gl_shdict_get(d, "k\0x", 3, gl_t_now, 0, &gl_t_v, NULL, &gl_t_buf,
                        &gl_t_buf_size) == GL_SHDICT_OK
          && gl_t_v.num == 7);

    /* flags */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "fl", gl_t_bool(0), 0, 325)
          == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "fl", 0) == GL_SHDICT_OK && gl_t_v.flags == 325
          && gl_t_v.type == GL_SHDICT_TBOOLEAN);
    CHECK(gl_t_get(d, "fl", 1) == GL_SHDICT_OK && gl_t_v.flags == 325
          && gl_t_stale == 0);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "fl", gl_t_str("x"), 0, 0xffffffff)
          == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "fl", 0) == GL_SHDICT_OK
          && gl_t_v.flags == 0xffffffff);
    CHECK(gl_t_set(d, "fl", gl_t_str("y")) == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "fl", 0) == GL_SHDICT_OK && gl_t_v.flags == 0);

    /* missing keys; nil deletes */
    CHECK(gl_t_is_nil(d, "nope"));
    CHECK(gl_t_get(d, "nope", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TNIL && gl_t_stale == 0);
    CHECK(gl_shdict_delete(d, "nope", 4, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_t_set(d, "foo", gl_t_nil()) == GL_SHDICT_OK);
    CHECK(gl_t_is_nil(d, "foo"));
    CHECK(gl_shdict_delete(d, "bah", 3, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_t_is_nil(d, "bah"));
    CHECK(gl_t_store(d, GL_SHDICT_SAFE, "pi", gl_t_nil(), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_nil(d, "pi"));

    /* bad arguments */
    CHECK(gl_t_store(d, GL_SHDICT_ADD, "x", gl_t_nil(), 0, 0)
          == GL_SHDICT_NIL_VALUE);
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "baz", gl_t_nil(), 0, 0)
          == GL_SHDICT_NIL_VALUE);
    CHECK(gl_t_is_num(d, "baz", 3.96));
    CHECK(gl_shdict_store(d, GL_SHDICT_SET, "x", 1, &(gl_shdict_value_t)
                          { 2, 0, 0, NULL, 0, 0 }, 0, gl_t_now, NULL)
          == GL_SHDICT_BAD_VALUE);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "", gl_t_num(1), 0, 0)
          == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_t_get(d, "", 0) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_t_incr(d, "", 1, 0, 0, 0, &ttl) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_t_push(d, "", 1, gl_t_num(1), &len) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_t_pop(d, "", 1) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_shdict_llen(d, "", 0, gl_t_now, &len) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_t_ttl(d, "", &ttl) == GL_SHDICT_EMPTY_KEY);
    CHECK(gl_shdict_set_expire(d, "", 0, 1, gl_t_now)
          == GL_SHDICT_EMPTY_KEY);

    /* t/043 TEST 15: 65535 bytes is the longest key */
    big = malloc(65537);
    CHECK(big != NULL);
    if (big == NULL) {
        return;
    }

    memset(big, 'a', 65536);
    big[65535] = '\0';
    CHECK(gl_t_set(d, big, gl_t_str("hello")) == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, big, "hello"));
    big[65535] = 'a';
    big[65536] = '\0';
    CHECK(gl_t_set(d, big, gl_t_str("world")) == GL_SHDICT_KEY_TOO_LONG);
    CHECK(gl_t_get(d, big, 0) == GL_SHDICT_KEY_TOO_LONG);
    CHECK(gl_t_incr(d, big, 1, 1, 0, 0, &ttl) == GL_SHDICT_KEY_TOO_LONG);

    /* t/043 TEST 68: large values, and a buffer that grows */
    memset(big, 'v', 65536);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "large", gl_t_lstr(big, 65536), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "large", 0) == GL_SHDICT_OK && gl_t_v.len == 65536
          && gl_t_buf_size >= 65536 && memcmp(gl_t_v.str, big, 65536) == 0);
    free(big);

    /* t/043 TEST 11: two dicts do not mix */
    e = gl_t_dict(GL_SHDICT_MIN_SIZE);
    CHECK(gl_t_set(d, "same", gl_t_num(1)) == GL_SHDICT_OK);
    CHECK(gl_t_set(e, "same", gl_t_num(2)) == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "same", 1));
    CHECK(gl_t_is_num(e, "same", 2));

    CHECK(gl_t_consistent(d));
    CHECK(gl_t_consistent(e));
}


/* t/043 TEST 27-34, 58-59, 84-85 */
static void
test_add_replace(void)
{
    gl_shdict_t  *d;

    d = gl_t_dict(1 << 20);

    CHECK(gl_t_set(d, "foo", gl_t_num(32)) == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_ADD, "foo", gl_t_num(10502), 0, 0)
          == GL_SHDICT_EXISTS);
    CHECK(gl_t_forcible == 0);
    CHECK(gl_t_is_num(d, "foo", 32));
    CHECK(gl_t_store(d, GL_SHDICT_ADD | GL_SHDICT_SAFE, "foo", gl_t_num(1),
                     0, 0) == GL_SHDICT_EXISTS);

    CHECK(gl_t_store(d, GL_SHDICT_ADD, "bah", gl_t_num(10502), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "bah", 10502));

    /* add over an expired key, same size and not */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "exp", gl_t_num(32), 0.001, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "exps", gl_t_str("hi"), 0.001, 0)
          == GL_SHDICT_OK);
    gl_t_now += 0.002;
    CHECK(gl_t_store(d, GL_SHDICT_ADD, "exp", gl_t_num(10502), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "exp", 10502));
    CHECK(gl_t_store(d, GL_SHDICT_ADD, "exps", gl_t_str("hello world"), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "exps", "hello world"));

    /* replace */
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "foo", gl_t_num(10502), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "foo", 10502));
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "none", gl_t_num(1), 0, 0)
          == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_is_nil(d, "none"));

    CHECK(gl_t_store(d, GL_SHDICT_SET, "rexp", gl_t_num(32), 0.001, 0)
          == GL_SHDICT_OK);
    gl_t_now += 0.002;
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "rexp", gl_t_num(10502), 0, 0)
          == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "rexp", gl_t_str("longer"), 0, 0)
          == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_is_nil(d, "rexp"));

    /* TEST 85: replace with an exptime */
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "foo", gl_t_str("x"), 0.01, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "foo", "x"));
    gl_t_now += 0.011;
    CHECK(gl_t_is_nil(d, "foo"));

    CHECK(gl_t_consistent(d));
}


/* t/043 TEST 6-8, 43-48, 60; resty's ttl, expire, TEST 47-49 */
static void
test_expiry(void)
{
    gl_shdict_t  *d;
    double        ttl, v;

    d = gl_t_dict(1 << 20);

    CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_num(32), 0.01, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "blah", gl_t_num(33), 0.3, 7)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "foo", 32));

    gl_t_now += 0.009;
    CHECK(gl_t_is_num(d, "foo", 32));
    gl_t_now += 0.001;

    /* expired at its very ms; get_stale still has it */
    CHECK(gl_t_is_nil(d, "foo"));
    CHECK(gl_t_get(d, "foo", 1) == GL_SHDICT_OK && gl_t_v.num == 32
          && gl_t_stale == 1 && gl_t_v.flags == 0);
    CHECK(gl_t_get(d, "blah", 1) == GL_SHDICT_OK && gl_t_v.num == 33
          && gl_t_stale == 0 && gl_t_v.flags == 7);

    /* ttl: negative for an expired entry still stored, as nginx */
    CHECK(gl_t_ttl(d, "foo", &ttl) == GL_SHDICT_OK && gl_t_near(ttl, 0));
    gl_t_now += 0.5;
    CHECK(gl_t_ttl(d, "foo", &ttl) == GL_SHDICT_OK
          && gl_t_near(ttl, -0.5));
    CHECK(gl_t_ttl(d, "blah", &ttl) == GL_SHDICT_OK
          && gl_t_near(ttl, -0.21));
    CHECK(gl_t_ttl(d, "nope", &ttl) == GL_SHDICT_NOT_FOUND);

    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) == 2);
    CHECK(gl_t_ttl(d, "foo", &ttl) == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_get(d, "foo", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TNIL);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));

    /* the README's ttl and expire examples */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "Marry", gl_t_str("a nice cat"), 0.5,
                     0) == GL_SHDICT_OK);
    gl_t_now += 0.2;
    CHECK(gl_t_ttl(d, "Marry", &ttl) == GL_SHDICT_OK && gl_t_near(ttl, 0.3));

    CHECK(gl_t_store(d, GL_SHDICT_SET, "Marry", gl_t_str("a nice cat"), 0.1,
                     0) == GL_SHDICT_OK);
    CHECK(gl_shdict_set_expire(d, "Marry", 5, 0.5, gl_t_now)
          == GL_SHDICT_OK);
    gl_t_now += 0.2;
    CHECK(gl_t_is_str(d, "Marry", "a nice cat"));
    CHECK(gl_shdict_set_expire(d, "Marry", 5, 0, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "Marry", &ttl) == GL_SHDICT_OK && ttl == 0);
    CHECK(gl_shdict_set_expire(d, "nope", 4, 1, gl_t_now)
          == GL_SHDICT_NOT_FOUND);

    /* expire() finds an expired entry still stored, and revives it */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "old", gl_t_num(1), 0.001, 0)
          == GL_SHDICT_OK);
    gl_t_now += 0.01;
    CHECK(gl_t_is_nil(d, "old"));
    CHECK(gl_shdict_set_expire(d, "old", 3, 1, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_t_is_num(d, "old", 1));

    /* exptimes: below 1 ms is never (nginx keeps ms); negative is never;
       huge ones do not overflow */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "sub", gl_t_num(1), 0.0005, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "sub", &ttl) == GL_SHDICT_OK && ttl == 0);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "neg", gl_t_num(1), -1, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "neg", &ttl) == GL_SHDICT_OK && ttl == 0);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "nan", gl_t_num(1), NAN, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "nan", &ttl) == GL_SHDICT_OK && ttl == 0);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "huge", gl_t_bool(1), 2147483648.0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "huge", &ttl) == GL_SHDICT_OK && ttl == 2147483648.0);
    CHECK(gl_shdict_set_expire(d, "sub", 3, 2147483648.0, gl_t_now)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "sub", &ttl) == GL_SHDICT_OK && ttl == 2147483648.0);
    CHECK(gl_t_incr(d, "ittl", 1, 1, 0, 2147483648.0, &v) == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "ittl", &ttl) == GL_SHDICT_OK && ttl == 2147483648.0);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "inf", gl_t_bool(1), 1e300, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_ttl(d, "inf", &ttl) == GL_SHDICT_OK && ttl > 1e11);
    CHECK(gl_t_is_num(d, "sub", 1));

    /* TEST 7: expired entries at the tail go with the next writes */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bar", gl_t_num(56), 0.001, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "baz", gl_t_num(78), 0.001, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_num(32), 0.01, 0)
          == GL_SHDICT_OK);
    gl_t_now += 0.012;
    CHECK(gl_t_is_nil(d, "foo"));
    CHECK(gl_t_is_nil(d, "bar"));

    CHECK(gl_t_consistent(d));
}


/* t/043 TEST 44-48, 60 */
static void
test_flush(void)
{
    gl_shdict_t  *d;
    double        ttl;
    size_t        len;

    d = gl_t_dict(1 << 20);

    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) == 0);
    gl_shdict_flush_all(d);

    CHECK(gl_t_set(d, "foo", gl_t_num(32)) == GL_SHDICT_OK);
    CHECK(gl_t_set(d, "bah", gl_t_num(10502)) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "list", 1, gl_t_str("x"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_nkeys(d, 0) == 3);

    gl_shdict_flush_all(d);

    CHECK(gl_t_is_nil(d, "foo"));
    CHECK(gl_t_is_nil(d, "bah"));
    CHECK(gl_t_get(d, "foo", 1) == GL_SHDICT_OK && gl_t_v.num == 32
          && gl_t_stale);
    CHECK(gl_t_ttl(d, "foo", &ttl) == GL_SHDICT_OK && ttl < 0);
    CHECK(gl_t_nkeys(d, 0) == 0);
    CHECK(gl_t_llen(d, "list", (int *) &gl_t_stale) == 0);
    CHECK(gl_shdict_free_space(d) < gl_shdict_capacity(d));

    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) == 3);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));

    /* TEST 45, 46: with and without a count */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_str("x"), 1, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bah", gl_t_str("y"), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bar", gl_t_str("z"), 100, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "baz", gl_t_str("z"), 1, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bat", gl_t_str("z"), 1, 0)
          == GL_SHDICT_OK);
    gl_t_now += 1.5;
    CHECK(gl_shdict_flush_expired(d, gl_t_now, 2) == 2);
    CHECK(gl_shdict_flush_expired(d, gl_t_now, 5) == 1);
    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) == 0);
    CHECK(gl_t_is_str(d, "bah", "y"));
    CHECK(gl_t_is_str(d, "bar", "z"));
    CHECK(gl_t_nkeys(d, 0) == 2);

    CHECK(gl_t_consistent(d));
}


/* t/043 TEST 35-41, 78-83; t/144; resty TEST 10-11, 28-29, 42-46 */
static void
test_incr(void)
{
    gl_shdict_t  *d;
    double        v, ttl;
    size_t        len;
    char          prefix[1001], key[1100];
    int           i;

    d = gl_t_dict(1 << 20);

    CHECK(gl_t_set(d, "foo", gl_t_num(32)) == GL_SHDICT_OK);
    CHECK(gl_t_incr(d, "foo", 10502, 0, 0, 0, &v) == GL_SHDICT_OK
          && v == 10534);
    CHECK(gl_t_is_num(d, "foo", 10534));
    CHECK(gl_t_incr(d, "foo", 0, 0, 0, 0, &v) == GL_SHDICT_OK && v == 10534);
    CHECK(gl_t_incr(d, "foo", 0.14, 0, 0, 0, &v) == GL_SHDICT_OK
          && v == 10534.14);
    CHECK(gl_t_incr(d, "foo", -0.14, 0, 0, 0, &v) == GL_SHDICT_OK
          && gl_t_near(v, 10534));
    CHECK(gl_t_incr(d, "foo", -20000, 0, 0, 0, &v) == GL_SHDICT_OK
          && gl_t_near(v, -9466));

    CHECK(gl_t_incr(d, "nope", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_is_nil(d, "nope"));

    /* an existing entry keeps its flags and expiry */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "fl", gl_t_num(1), 0.5, 7)
          == GL_SHDICT_OK);
    CHECK(gl_t_incr(d, "fl", 1, 1, 100, 5, &v) == GL_SHDICT_OK && v == 2);
    CHECK(gl_t_forcible == 0);
    CHECK(gl_t_get(d, "fl", 0) == GL_SHDICT_OK && gl_t_v.flags == 7);
    CHECK(gl_t_ttl(d, "fl", &ttl) == GL_SHDICT_OK && gl_t_near(ttl, 0.5));

    /* not numbers */
    CHECK(gl_t_set(d, "str", gl_t_str("bar")) == GL_SHDICT_OK);
    CHECK(gl_t_incr(d, "str", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_incr(d, "str", 1, 1, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_set(d, "bool", gl_t_bool(1)) == GL_SHDICT_OK);
    CHECK(gl_t_incr(d, "bool", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_push(d, "list", 1, gl_t_str("bar"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_incr(d, "list", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_get(d, "list", 0) == GL_SHDICT_IS_LIST);

    /* init */
    CHECK(gl_t_incr(d, "new", 10502, 1, 1, 0, &v) == GL_SHDICT_OK
          && v == 10503);
    CHECK(gl_t_forcible == 0);
    CHECK(gl_t_get(d, "new", 0) == GL_SHDICT_OK && gl_t_v.num == 10503
          && gl_t_v.flags == 0);
    CHECK(gl_t_ttl(d, "new", &ttl) == GL_SHDICT_OK && ttl == 0);

    /* expired: not found, or init; size matched or not */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "e1", gl_t_num(32), 0.001, 3)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "e2", gl_t_str("hi"), 0.001, 3)
          == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "e3", 1, gl_t_str("x"), &len) == GL_SHDICT_OK);
    CHECK(gl_shdict_set_expire(d, "e3", 2, 0.001, gl_t_now) == GL_SHDICT_OK);
    gl_t_now += 0.002;
    CHECK(gl_t_incr(d, "e1", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_FOUND);
    CHECK(gl_t_incr(d, "e1", 10502, 1, 0, 0.01, &v) == GL_SHDICT_OK
          && v == 10502);
    CHECK(gl_t_get(d, "e1", 0) == GL_SHDICT_OK && gl_t_v.flags == 0);
    CHECK(gl_t_incr(d, "e2", 10502, 1, 1, 0, &v) == GL_SHDICT_OK
          && v == 10503);
    CHECK(gl_t_incr(d, "e3", 1, 1, 0, 0, &v) == GL_SHDICT_OK && v == 1);
    CHECK(gl_t_is_num(d, "e3", 1));
    gl_t_now += 0.01;
    CHECK(gl_t_is_nil(d, "e1"));
    CHECK(gl_t_is_num(d, "e2", 10503));

    CHECK(gl_t_consistent(d));

    /* resty TEST 46: an incr with init evicts, and says so */
    d = gl_t_dict(1 << 20);
    memset(prefix, '1', 1000);
    prefix[1000] = '\0';

    for (i = 1; i <= 2000; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        CHECK(gl_t_set(d, key, gl_t_num(i)) == GL_SHDICT_OK);
        if (gl_t_forcible) {
            CHECK(gl_shdict_delete(d, key, strlen(key), gl_t_now)
                  == GL_SHDICT_OK);
            break;
        }
    }

    CHECK(i < 2000);
    snprintf(key, sizeof(key), "%sbar", prefix);
    CHECK(gl_t_incr(d, key, 10502, 1, 0, 0, &v) == GL_SHDICT_OK
          && v == 10502 && gl_t_forcible == 0);
    snprintf(key, sizeof(key), "%sfoo", prefix);
    CHECK(gl_t_incr(d, key, 10502, 1, 0, 0.01, &v) == GL_SHDICT_OK
          && v == 10502 && gl_t_forcible == 1);
    CHECK(gl_t_is_num(d, key, 10502));
    gl_t_now += 0.02;
    CHECK(gl_t_is_nil(d, key));

    CHECK(gl_t_consistent(d));
}


/* t/145 */
static void
test_lists(void)
{
    gl_shdict_t  *d;
    size_t        len;
    int           rc, i;
    double        v;
    char          s[32];

    d = gl_t_dict(1 << 20);

    /* TEST 1 */
    CHECK(gl_t_push(d, "foo", 1, gl_t_str("bar"), &len) == GL_SHDICT_OK
          && len == 1);
    CHECK(gl_t_llen(d, "foo", &rc) == 1 && rc == GL_SHDICT_OK);
    CHECK(gl_t_pop(d, "foo", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TSTRING && gl_t_v.len == 3
          && memcmp(gl_t_v.str, "bar", 3) == 0);
    CHECK(gl_t_llen(d, "foo", &rc) == 0 && rc == GL_SHDICT_OK);
    CHECK(gl_t_pop(d, "foo", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TNIL);
    CHECK(gl_t_nkeys(d, 0) == 0);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));

    /* TEST 2-8: the other operations on a list */
    CHECK(gl_t_push(d, "foo", 1, gl_t_str("bar"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_get(d, "foo", 0) == GL_SHDICT_IS_LIST);
    CHECK(gl_t_get(d, "foo", 1) == GL_SHDICT_IS_LIST);
    CHECK(gl_t_store(d, GL_SHDICT_ADD, "foo", gl_t_str("bar"), 0, 0)
          == GL_SHDICT_EXISTS);
    CHECK(gl_t_get(d, "foo", 0) == GL_SHDICT_IS_LIST);
    CHECK(gl_t_incr(d, "foo", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_nkeys(d, 0) == 1);
    CHECK(gl_t_buf[0] == 3 && gl_t_buf[1] == 0
          && memcmp(gl_t_buf + 2, "foo", 3) == 0);
    CHECK(gl_t_set(d, "foo", gl_t_str("baz")) == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "foo", "baz"));

    CHECK(gl_t_push(d, "l2", 1, gl_t_str("bar"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_REPLACE, "l2", gl_t_str("bar"), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_is_str(d, "l2", "bar"));

    CHECK(gl_t_push(d, "l3", 1, gl_t_str("bar"), &len) == GL_SHDICT_OK);
    CHECK(gl_shdict_delete(d, "l3", 2, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_t_is_nil(d, "l3"));
    CHECK(gl_t_consistent(d));

    /* TEST 9-11: list operations on a value */
    CHECK(gl_t_set(d, "kv", gl_t_str("bar")) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "kv", 1, gl_t_str("bar"), &len)
          == GL_SHDICT_NOT_LIST);
    CHECK(gl_t_push(d, "kv", 0, gl_t_num(1), &len) == GL_SHDICT_NOT_LIST);
    CHECK(gl_t_pop(d, "kv", 1) == GL_SHDICT_NOT_LIST);
    CHECK(gl_t_pop(d, "kv", 0) == GL_SHDICT_NOT_LIST);
    CHECK(gl_t_llen(d, "kv", &rc) == 0 && rc == GL_SHDICT_NOT_LIST);
    CHECK(gl_t_is_str(d, "kv", "bar"));

    /* TEST 12-14: orders */
    for (i = 1; i <= 3; i++) {
        CHECK(gl_t_push(d, "lp", 1, gl_t_num(i), &len) == GL_SHDICT_OK
              && len == (size_t) i);
        CHECK(gl_t_push(d, "lr", 1, gl_t_num(i), &len) == GL_SHDICT_OK);
        CHECK(gl_t_push(d, "rl", 0, gl_t_num(i), &len) == GL_SHDICT_OK);
    }

    for (i = 3; i >= 1; i--) {
        CHECK(gl_t_pop(d, "lp", 1) == GL_SHDICT_OK
              && gl_t_v.type == GL_SHDICT_TNUMBER && gl_t_v.num == i);
        CHECK(gl_t_pop(d, "lr", 0) == GL_SHDICT_OK
              && gl_t_v.num == 4 - i);
        CHECK(gl_t_pop(d, "rl", 1) == GL_SHDICT_OK
              && gl_t_v.num == 4 - i);
    }

    CHECK(gl_t_llen(d, "lp", &rc) == 0 && rc == GL_SHDICT_OK);

    /* TEST 18: long nodes; empty strings; a mix */
    CHECK(gl_t_push(d, "long", 1, gl_t_str("foofoofoofoofoofoofoofoofoofoo"),
                    &len) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "long", 1, gl_t_str(""), &len) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "long", 0, gl_t_num(-1.5), &len) == GL_SHDICT_OK
          && len == 3);
    CHECK(gl_t_pop(d, "long", 0) == GL_SHDICT_OK && gl_t_v.num == -1.5);
    CHECK(gl_t_pop(d, "long", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TSTRING && gl_t_v.len == 30);
    CHECK(gl_t_pop(d, "long", 0) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TSTRING && gl_t_v.len == 0
          && gl_t_v.str != NULL);
    CHECK(gl_t_is_nil(d, "long"));

    CHECK(gl_t_push(d, "bad", 1, gl_t_bool(1), &len) == GL_SHDICT_BAD_VALUE);
    CHECK(gl_t_push(d, "bad", 1, gl_t_nil(), &len) == GL_SHDICT_BAD_VALUE);

    /* TEST 17: flush_all takes lists too */
    CHECK(gl_t_push(d, "list", 1, gl_t_str("foo"), &len) == GL_SHDICT_OK);
    gl_shdict_flush_all(d);
    CHECK(gl_t_nkeys(d, 0) == 0);

    /* TEST 19: incr over expired lists */
    for (i = 1; i <= 10; i++) {
        snprintf(s, sizeof(s), "list%d", i);
        CHECK(gl_t_push(d, s, 1, gl_t_str("foo"), &len) == GL_SHDICT_OK);
    }

    gl_shdict_flush_all(d);

    for (i = 10; i >= 1; i--) {
        snprintf(s, sizeof(s), "list%d", i);
        CHECK(gl_t_incr(d, s, 1, 1, 0, 0, &v) == GL_SHDICT_OK && v == 1);
    }

    CHECK(gl_t_consistent(d));

    /* TEST 20, 21: a push on an expired list starts a new one */
    CHECK(gl_t_push(d, "cc", 1, gl_t_str("1"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "aa", 1, gl_t_str("1"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "aa", 1, gl_t_str("2"), &len) == GL_SHDICT_OK);
    CHECK(gl_shdict_set_expire(d, "aa", 2, 0.2, gl_t_now) == GL_SHDICT_OK);
    gl_t_now += 0.3;
    CHECK(gl_t_llen(d, "aa", &rc) == 0 && rc == GL_SHDICT_OK);
    CHECK(gl_t_pop(d, "aa", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TNIL);
    CHECK(gl_t_push(d, "aa", 1, gl_t_str("3"), &len) == GL_SHDICT_OK
          && len == 1);
    CHECK(gl_t_ttl(d, "aa", &v) == GL_SHDICT_OK && v == 0);
    CHECK(gl_t_pop(d, "aa", 1) == GL_SHDICT_OK && gl_t_v.len == 1
          && gl_t_v.str[0] == '3');
    CHECK(gl_t_pop(d, "aa", 1) == GL_SHDICT_OK
          && gl_t_v.type == GL_SHDICT_TNIL);

    /* a push over an expired value of another type */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "ev", gl_t_str("x"), 0.001, 0)
          == GL_SHDICT_OK);
    gl_t_now += 0.002;
    CHECK(gl_t_push(d, "ev", 0, gl_t_num(5), &len) == GL_SHDICT_OK
          && len == 1);
    CHECK(gl_t_llen(d, "ev", &rc) == 1);

    /* a pop into a buffer too small for it */
    free(gl_t_buf);
    gl_t_buf = NULL;
    gl_t_buf_size = 0;
    CHECK(gl_t_push(d, "big", 0, gl_t_lstr("0123456789", 10), &len)
          == GL_SHDICT_OK);
    CHECK(gl_t_pop(d, "big", 1) == GL_SHDICT_OK && gl_t_v.len == 10
          && gl_t_buf_size >= 10 && memcmp(gl_t_v.str, "0123456789", 10) == 0);

    CHECK(gl_t_consistent(d));
}


/* t/043 TEST 49-57 */
static void
test_keys(void)
{
    gl_shdict_t  *d;
    size_t        n, len, i, pos, klen;
    char          key[32];
    int           seen[2049];

    d = gl_t_dict(1 << 20);

    CHECK(gl_t_nkeys(d, 1024) == 0);
    CHECK(gl_t_nkeys(d, 4) == 0);

    CHECK(gl_t_store(d, GL_SHDICT_SET, "bah", gl_t_str("y"), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "bar", gl_t_str("z"), 0, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_nkeys(d, 1024) == 2);
    CHECK(gl_t_nkeys(d, 1) == 1);
    CHECK(gl_t_nkeys(d, 3) == 2);

    CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_str("x"), 1, 0)
          == GL_SHDICT_OK);
    CHECK(gl_t_nkeys(d, 0) == 3);
    gl_t_now += 1.5;
    CHECK(gl_t_nkeys(d, 0) == 2);

    gl_shdict_flush_all(d);
    CHECK(gl_t_nkeys(d, 0) == 0);

    for (i = 1; i <= 2048; i++) {
        snprintf(key, sizeof(key), "%zu", i);
        CHECK(gl_t_set(d, key, gl_t_num((double) i)) == GL_SHDICT_OK);
    }

    /* from an empty buffer; each key once */
    free(gl_t_buf);
    gl_t_buf = NULL;
    gl_t_buf_size = 0;

    CHECK(gl_t_nkeys(d, 1024) == 1024);
    CHECK(gl_shdict_get_keys(d, gl_t_now, 0, &gl_t_buf, &gl_t_buf_size, &n,
                             &len) == GL_SHDICT_OK
          && n == 2048 && len <= gl_t_buf_size);

    memset(seen, 0, sizeof(seen));

    for (pos = 0, i = 0; pos + 2 <= len && i < n; i++) {
        klen = (u_char) gl_t_buf[pos] | (u_char) gl_t_buf[pos + 1] << 8;
        CHECK(klen >= 1 && klen <= 4 && pos + 2 + klen <= len);
        memcpy(key, gl_t_buf + pos + 2, klen);
        key[klen] = '\0';
        seen[atoi(key)]++;
        pos += 2 + klen;
    }

    CHECK(pos == len && i == 2048);

    for (i = 1; i <= 2048; i++) {
        if (seen[i] != 1) {
            CHECK(seen[i] == 1);
            break;
        }
    }

    /* one shard: least recently used first */
    if (gl_t_nshards == 1) {
        d = gl_t_dict(1 << 20);
        CHECK(gl_t_set(d, "a", gl_t_num(1)) == GL_SHDICT_OK);
        CHECK(gl_t_set(d, "bb", gl_t_num(1)) == GL_SHDICT_OK);
        CHECK(gl_t_set(d, "ccc", gl_t_num(1)) == GL_SHDICT_OK);
        CHECK(gl_t_set(d, "a", gl_t_num(2)) == GL_SHDICT_OK);
        CHECK(gl_t_nkeys(d, 0) == 3);
        CHECK(memcmp(gl_t_buf, "\2\0bb\3\0ccc\1\0a", 12) == 0);
    }
}


/* what an entry is charged, and when */
static void
test_memory(void)
{
    gl_shdict_t  *d;
    size_t        cap, len;
    double        v;

    d = gl_t_dict(GL_SHDICT_MIN_SIZE);
    cap = gl_shdict_capacity(d);

    CHECK(cap == GL_SHDICT_MIN_SIZE);
    CHECK(gl_shdict_free_space(d) == cap);

    CHECK(gl_t_set(d, "k", gl_t_str("abc")) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap - (GL_SHDICT_NODE_COST + 1 + 3));
    CHECK(gl_t_set(d, "k", gl_t_str("abcdef")) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap - (GL_SHDICT_NODE_COST + 1 + 6));
    CHECK(gl_t_set(d, "k", gl_t_num(1)) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap - (GL_SHDICT_NODE_COST + 1));
    CHECK(gl_t_set(d, "kk", gl_t_bool(1)) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap - (2 * GL_SHDICT_NODE_COST + 3));
    CHECK(gl_shdict_delete(d, "k", 1, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_shdict_delete(d, "kk", 2, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap);

    CHECK(gl_t_push(d, "l", 1, gl_t_str("abcd"), &len) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "l", 1, gl_t_num(1), &len) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d)
          == cap - (GL_SHDICT_NODE_COST + 1 + 2 * GL_SHDICT_ELT_COST + 4 + 8));
    CHECK(gl_t_pop(d, "l", 0) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d)
          == cap - (GL_SHDICT_NODE_COST + 1 + GL_SHDICT_ELT_COST + 8));
    CHECK(gl_t_incr(d, "l", 1, 0, 0, 0, &v) == GL_SHDICT_NOT_NUMBER);
    CHECK(gl_t_set(d, "l", gl_t_str("ab")) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap - (GL_SHDICT_NODE_COST + 1 + 2));
    CHECK(gl_t_consistent(d));
    CHECK(gl_shdict_delete(d, "l", 1, gl_t_now) == GL_SHDICT_OK);
    CHECK(gl_shdict_free_space(d) == cap);

    /* t/043 TEST 14, 26: larger than the dict: no memory, nothing evicted
       (nginx evicts up to 30 entries first, and says forcible) */
    CHECK(gl_t_set(d, "bah", gl_t_str("hello")) == GL_SHDICT_OK);
    CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_lstr(NULL, 0), 0, 0)
          == GL_SHDICT_OK);
    {
        char  big[GL_SHDICT_MIN_SIZE];

        memset(big, 'h', sizeof(big));
        CHECK(gl_t_store(d, GL_SHDICT_SET, "foo", gl_t_lstr(big, sizeof(big)),
                         0, 0) == GL_SHDICT_NO_MEMORY);
        CHECK(gl_t_forcible == 0);
        CHECK(gl_t_push(d, "foo", 1, gl_t_lstr(big, sizeof(big)), &len)
              == GL_SHDICT_NO_MEMORY);
    }
    CHECK(gl_t_is_str(d, "bah", "hello"));
    CHECK(gl_t_consistent(d));
}


/* t/043 TEST 9, 10, 21, 58, 59; t/145 TEST 15, 16, 22 */
static void
test_eviction(void)
{
    gl_shdict_t  *d;
    char          key[32], val[128];
    double        v;
    size_t        len, max, n, got;
    int           i, abort_at, rc;

    /* TEST 9: set evicts the least recently used */
    d = gl_t_dict(100 * 1024);
    abort_at = 0;

    for (i = 1; i <= 1000; i++) {
        snprintf(key, sizeof(key), "key_%d", i);
        snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
                 " hello hello hello hello hello", i);
        rc = gl_t_set(d, key, gl_t_str(val));
        if (rc != GL_SHDICT_OK || gl_t_forcible) {
            abort_at = i;
            break;
        }
    }

    CHECK(rc == GL_SHDICT_OK && gl_t_forcible && abort_at > 500);
    CHECK(gl_t_is_str(d, key, val));
    CHECK(gl_t_is_nil(d, "key_1"));
    snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
             " hello hello hello hello hello", 2);
    CHECK(gl_t_is_str(d, "key_2", val));
    CHECK(gl_shdict_free_space(d) < GL_SHDICT_NODE_COST + 80);

    /* the second request: key_1 is gone, so its set evicts at once */
    snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
             " hello hello hello hello hello", 1);
    CHECK(gl_t_set(d, "key_1", gl_t_str(val)) == GL_SHDICT_OK
          && gl_t_forcible);
    CHECK(gl_t_is_str(d, "key_1", val));
    CHECK(gl_t_consistent(d));

    /* TEST 10: a read saves key_1, key_2 goes */
    d = gl_t_dict(100 * 1024);

    for (i = 1; i <= 1000; i++) {
        if (i == 10) {
            CHECK(gl_t_get(d, "key_1", 0) == GL_SHDICT_OK);
        }

        snprintf(key, sizeof(key), "key_%d", i);
        snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
                 " hello hello hello hello hello", i);
        rc = gl_t_set(d, key, gl_t_str(val));
        if (rc != GL_SHDICT_OK || gl_t_forcible) {
            break;
        }
    }

    CHECK(rc == GL_SHDICT_OK && gl_t_forcible);
    CHECK(gl_t_is_nil(d, "key_2"));
    CHECK(!gl_t_is_nil(d, "key_1"));
    CHECK(!gl_t_is_nil(d, "key_3"));

    /* the second request: key_1 is there (no eviction), key_2 is not */
    snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
             " hello hello hello hello hello", 1);
    CHECK(gl_t_set(d, "key_1", gl_t_str(val)) == GL_SHDICT_OK
          && !gl_t_forcible);
    snprintf(val, sizeof(val), "%s%d", " hello hello hello hello hello"
             " hello hello hello hello hello", 2);
    CHECK(gl_t_set(d, "key_2", gl_t_str(val)) == GL_SHDICT_OK
          && gl_t_forcible);
    CHECK(gl_t_consistent(d));

    /* TEST 58, 59: safe_set and safe_add never evict */
    for (rc = 0; rc < 2; rc++) {
        d = gl_t_dict(100 * 1024);

        for (i = 1; i <= 1000; i++) {
            snprintf(key, sizeof(key), "key_%d", i);
            snprintf(val, sizeof(val), "%s%d", " hello hello hello hello"
                     " hello hello hello hello hello hello", i);
            if (gl_t_store(d, GL_SHDICT_SAFE | (rc ? GL_SHDICT_ADD : 0), key,
                           gl_t_str(val), 0, 0) != GL_SHDICT_OK)
            {
                break;
            }
        }

        CHECK(i > 500 && i < 1000 && gl_t_forcible == 0);
        CHECK(gl_t_is_nil(d, key));
        CHECK(!gl_t_is_nil(d, "key_1"));
        CHECK(!gl_t_is_nil(d, "key_2"));
        CHECK(gl_t_store(d, GL_SHDICT_SAFE | (rc ? GL_SHDICT_ADD : 0),
                         "key_1", gl_t_str("x"), 0, 0)
              == (rc ? GL_SHDICT_EXISTS : GL_SHDICT_OK));
        CHECK(gl_t_consistent(d));
    }

    /* TEST 21: growing values, until one evicts */
    d = gl_t_dict(100 * 1024);

    for (i = 1; i <= 1000; i++) {
        char  *s = malloc(5 * i + 1);

        if (s == NULL) {
            CHECK(s != NULL);
            break;
        }

        memset(s, 'h', 5 * i);
        s[5 * i] = '\0';
        snprintf(key, sizeof(key), "key_%d", i);
        rc = gl_t_set(d, key, gl_t_str(s));
        free(s);
        if (rc != GL_SHDICT_OK || gl_t_forcible) {
            break;
        }
    }

    CHECK(rc == GL_SHDICT_OK && gl_t_forcible && i > 100 && i < 300);
    CHECK(gl_t_is_nil(d, "key_1"));
    CHECK(gl_t_consistent(d));

    /* t/145 TEST 22: a push never evicts */
    d = gl_t_dict(100 * 1024);

    for (i = 1; i <= 5000; i++) {
        if (gl_t_push(d, "foo", 1, gl_t_str("bar"), &len) != GL_SHDICT_OK) {
            break;
        }
    }

    CHECK(i > 1000 && i < 5000 && len == (size_t) i - 1);
    CHECK(gl_t_push(d, "foo2", 1, gl_t_str("bar"), &len)
          == GL_SHDICT_NO_MEMORY);
    CHECK(gl_t_nkeys(d, 0) == 1);
    CHECK(gl_t_llen(d, "foo", &rc) == (size_t) i - 1);
    CHECK(gl_t_consistent(d));

    /* t/145 TEST 15: lists until full; again after flush_all, with the
       expired ones freed by the pushes that meet them; again after
       flush_expired */
    d = gl_t_dict(200 * 1024);
    max = 0;

    for (i = 1; i <= 100000; i++) {
        snprintf(key, sizeof(key), "%05d", i);
        if (gl_t_push(d, key, 1, gl_t_num(i), &len) != GL_SHDICT_OK) {
            max = (size_t) i;
            break;
        }
    }

    CHECK(max > 0 && gl_t_nkeys(d, 0) == max - 1);
    gl_shdict_flush_all(d);
    CHECK(gl_t_nkeys(d, 0) == 0);

    /* the other keys fall into the shards otherwise (the hash seed is
       random): one shard fills a few keys sooner or later than in the
       first round, where nginx's one slab pool gives the same count */
    for (i = 100000; i >= 1; i--) {
        snprintf(key, sizeof(key), "%05d", i);
        if (gl_t_push(d, key, 1, gl_t_num(i), &len) != GL_SHDICT_OK) {
            got = (size_t) (100000 + 1 - i);
            CHECK(got + max / 10 >= max && got <= max + max / 10);
            break;
        }
    }

    gl_shdict_flush_all(d);
    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) == max - 1);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));

    for (i = 1; i <= 100000; i++) {
        snprintf(key, sizeof(key), "%05d", i);
        if (gl_t_push(d, key, 1, gl_t_num(i), &len) != GL_SHDICT_OK) {
            CHECK((size_t) i == max);
            break;
        }
    }

    CHECK(gl_t_consistent(d));

    /* t/145 TEST 16: sets evict the oldest lists, not younger numbers */
    d = gl_t_dict(200 * 1024);
    max = 0;

    for (i = 1; i <= 200000; i++) {
        snprintf(key, sizeof(key), "%d", i);
        if (gl_t_set(d, key, gl_t_num(i)) != GL_SHDICT_OK || gl_t_forcible) {
            max = (size_t) i;
            break;
        }
    }

    CHECK(max > 0 && gl_t_is_num(d, "2", 2));
    gl_shdict_flush_all(d);
    CHECK(gl_shdict_flush_expired(d, gl_t_now, 0) > 0);
    CHECK(gl_t_nkeys(d, 0) == 0);

    for (i = 1; i <= 200000; i++) {
        snprintf(key, sizeof(key), "%05d", i);
        if (gl_t_push(d, key, 1, gl_t_num(i), &len) != GL_SHDICT_OK) {
            break;
        }
    }

    for (n = 1; n <= max; n++) {
        snprintf(key, sizeof(key), "%zu", n);
        if (gl_t_set(d, key, gl_t_num((double) n)) != GL_SHDICT_OK) {
            CHECK(0);
            break;
        }
    }

    CHECK(gl_t_is_num(d, "2", 2));
    CHECK(gl_t_consistent(d));

    /* an incr with init evicts too */
    CHECK(gl_t_incr(d, "counter-key", 1, 1, 0, 0, &v) == GL_SHDICT_OK
          && gl_t_forcible);
}


/* the oldest entry of the whole dict goes first, whatever its shard */
static void
test_lru_across_shards(void)
{
    gl_shdict_t  *d;
    char          key[32];
    int           i, n, rc;

    d = gl_t_dict(64 * 1024);

    /* bounded: a dict that never evicts fails the test, not hangs it */
    for (n = 0; n < 100000; n++) {
        snprintf(key, sizeof(key), "key%05d", n);
        rc = gl_t_set(d, key, gl_t_str("0123456789"));
        CHECK(rc == GL_SHDICT_OK);
        if (rc != GL_SHDICT_OK || gl_t_forcible) {
            break;
        }
    }

    CHECK(n < 100000);

    /* key00000 went for key n */
    CHECK(gl_t_is_nil(d, "key00000"));

    /* a read gives key00002 a second chance; a write moves key00003 */
    CHECK(gl_t_is_str(d, "key00002", "0123456789"));
    CHECK(gl_t_set(d, "key00003", gl_t_str("9876543210")) == GL_SHDICT_OK
          && !gl_t_forcible);

    for (i = 1; i <= 5; i++) {
        snprintf(key, sizeof(key), "new%05d", i);
        CHECK(gl_t_set(d, key, gl_t_str("0123456789")) == GL_SHDICT_OK
              && gl_t_forcible);
    }

    /* gone: 1, 4, 5, 6, 7; kept: 2, 3, 8 */
    CHECK(gl_t_is_nil(d, "key00001"));
    CHECK(gl_t_is_str(d, "key00002", "0123456789"));
    CHECK(gl_t_is_str(d, "key00003", "9876543210"));
    CHECK(gl_t_is_nil(d, "key00004"));
    CHECK(gl_t_is_nil(d, "key00007"));
    CHECK(gl_t_is_str(d, "key00008", "0123456789"));

    /* an expired entry goes before live ones, without forcible */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "key00009", gl_t_str("0123456789"),
                     0.001, 0) == GL_SHDICT_OK);
    gl_t_now += 0.01;
    CHECK(gl_t_store(d, GL_SHDICT_SET, "zzz00001", gl_t_str("0123456789"),
                     0, 0) == GL_SHDICT_OK);
    CHECK(gl_t_consistent(d));
}


/* a counter kept busy by incr, and a list by pushes, stay */
static void
test_lru_in_place(void)
{
    gl_shdict_t  *d;
    char          key[32];
    double        v;
    size_t        len;
    int           i, n;

    d = gl_t_dict(32 * 1024);

    CHECK(gl_t_incr(d, "counter", 1, 1, 0, 0, &v) == GL_SHDICT_OK);
    CHECK(gl_t_push(d, "queue", 0, gl_t_num(1), &len) == GL_SHDICT_OK);

    for (n = 0; n < 100000; n++) {
        snprintf(key, sizeof(key), "key%05d", n);
        CHECK(gl_t_set(d, key, gl_t_str("0123456789")) == GL_SHDICT_OK);

        if (gl_t_forcible) {
            break;
        }
    }

    /* the first eviction took the counter: it was not used since */
    CHECK(gl_t_is_nil(d, "counter"));
    CHECK(gl_t_llen(d, "queue", &i) == 1);

    CHECK(gl_t_incr(d, "counter", 1, 1, 0, 0, &v) == GL_SHDICT_OK
          && v == 1);

    /* now: each round of n sets goes round the LRU once; the counter
       and the list, used in each round, go round with it */
    for (i = 0; i < 3 * n; i++) {
        if (i % 16 == 0) {
            CHECK(gl_t_incr(d, "counter", 1, 0, 0, 0, &v) == GL_SHDICT_OK);
            CHECK(gl_t_push(d, "queue", 0, gl_t_num(i), &len)
                  == GL_SHDICT_OK);
            CHECK(gl_t_pop(d, "queue", 1) == GL_SHDICT_OK
                  && gl_t_v.type == GL_SHDICT_TNUMBER);
        }

        snprintf(key, sizeof(key), "new%05d", i);
        CHECK(gl_t_set(d, key, gl_t_str("0123456789")) == GL_SHDICT_OK);
    }

    CHECK(gl_t_is_num(d, "counter", 1 + (3 * n + 15) / 16));
    CHECK(gl_t_llen(d, "queue", &i) == 1);
    CHECK(gl_t_consistent(d));
}


/* the housekeeping thread's gl_shdict_expire() */
static void
test_housekeeping(void)
{
    gl_shdict_t  *d;
    char          key[32];
    size_t        freed, total, calls, n;
    int           i;

    d = gl_t_dict(1 << 20);

    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK(gl_t_store(d, GL_SHDICT_SET, key, gl_t_num(i), i % 2 ? 1 : 0, 0)
              == GL_SHDICT_OK);
    }

    CHECK(gl_shdict_expire(d, gl_t_now, 1000) == 0);
    gl_t_now += 2;

    freed = gl_shdict_expire(d, gl_t_now, 100);
    CHECK(freed > 0 && freed <= 100);

    total = freed;

    /* each call looks at 100 buckets or entries at most, from where the
       last stopped: the tables' empty buckets count too, and the keys
       fall where the dict's random hash seed puts them, so the bound is
       a whole pass over every shard, not 1000 calls */
    for (calls = 0; calls < 100000 && total < 1000; calls++) {
        total += gl_shdict_expire(d, gl_t_now, 100);
    }

    CHECK(total == 1000);
    CHECK(gl_t_nkeys(d, 0) == 1000);
    CHECK(gl_shdict_expire(d, gl_t_now, 0) == 0);
    CHECK(gl_shdict_get_keys(d, gl_t_now, 0, &gl_t_buf, &gl_t_buf_size, &n,
                             &freed) == GL_SHDICT_OK && n == 1000);
    CHECK(gl_t_consistent(d));

    /* every dict of the registry */
    CHECK(gl_t_store(d, GL_SHDICT_SET, "x", gl_t_num(1), 1, 0)
          == GL_SHDICT_OK);
    gl_t_now += 2;
    for (total = 0, calls = 0; calls < 100 && total == 0; calls++) {
        total += gl_shdict_expire_all(gl_t_now, 1 << 20);
    }
    CHECK(total >= 1);
    CHECK(gl_t_is_nil(d, "x"));
    CHECK(gl_t_consistent(d));
}


static void
test_config(const char *name, unsigned nshards, unsigned flags)
{
    gl_t_cfg = name;
    gl_t_nshards = nshards;
    gl_t_flags = flags;

    test_values();
    test_add_replace();
    test_expiry();
    test_flush();
    test_incr();
    test_lists();
    test_keys();
    test_memory();
    test_eviction();
    test_lru_in_place();
    test_housekeeping();

    if (nshards != 1) {
        test_lru_across_shards();
    }
}


int
main(void)
{
    test_siphash();
    test_registry();

    test_config("default", 0, 0);
    test_config("rwlock16", 16, GL_SHDICT_RWLOCK);
    test_config("spin1", 1, 0);
    test_config("rwlock4", 4, GL_SHDICT_RWLOCK);
    test_config("mutex8", 8, GL_SHDICT_MUTEX);

    gl_shdict_destroy_all();
    CHECK(gl_shdict_count() == 0);
    CHECK(gl_shdict_find("dogs", 4) == NULL);

    free(gl_t_buf);

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
