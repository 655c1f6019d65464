/*
 * The shared dict under threads (gl_shdict.c included, for its statics):
 * incr sums that must come out exact, random set/get/delete with
 * invariants every reader can check, eviction in a small dict while every
 * thread writes (with a housekeeping thread expiring beside them), and a
 * list used as a queue.  Meant for TSan too: make test-tsan, or
 *
 *   gcc -std=c11 -O1 -g -fsanitize=thread -pthread -Iobjs -Isrc \
 *       tests/unit/test_shdict_threads.c -o /tmp/t -lm
 *
 * "test_shdict_threads bench" runs the lock benchmark instead: spinlocks,
 * mutexes and rwlocks, on 1 to 256 shards, on a few workloads; it prints operations per
 * second and asserts nothing (docs/shdict-core.md has the numbers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdint.h>

/* each thread counts its lock takes, and the ones that found it busy */
static _Thread_local uint64_t  gl_t_takes;
static _Thread_local uint64_t  gl_t_busy;


static int
gl_t_mutex_lock(pthread_mutex_t *m)
{
    gl_t_takes++;

    if (pthread_mutex_trylock(m) == 0) {
        return 0;
    }

    gl_t_busy++;

    return pthread_mutex_lock(m);
}


static int
gl_t_rdlock(pthread_rwlock_t *l)
{
    gl_t_takes++;

    if (pthread_rwlock_tryrdlock(l) == 0) {
        return 0;
    }

    gl_t_busy++;

    return pthread_rwlock_rdlock(l);
}


static int
gl_t_wrlock(pthread_rwlock_t *l)
{
    gl_t_takes++;

    if (pthread_rwlock_trywrlock(l) == 0) {
        return 0;
    }

    gl_t_busy++;

    return pthread_rwlock_wrlock(l);
}

static void gl_t_spin_lock(_Atomic int *l);

#define GL_SHDICT_SPIN_LOCK(l)    gl_t_spin_lock(l)
#define GL_SHDICT_MUTEX_LOCK(m)   gl_t_mutex_lock(m)
#define GL_SHDICT_RDLOCK(l)       gl_t_rdlock(l)
#define GL_SHDICT_WRLOCK(l)       gl_t_wrlock(l)

#include "../../src/core/gl_shdict.c"


static void
gl_t_spin_lock(_Atomic int *l)
{
    gl_t_takes++;

    if (gl_shdict_spin_trylock(l)) {
        return;
    }

    gl_t_busy++;

    gl_shdict_spin_lock(l);
}


#include <sched.h>
#include <stdio.h>


static _Atomic int  gl_t_passed;
static _Atomic int  gl_t_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            atomic_fetch_add(&gl_t_passed, 1);                               \
        } else {                                                             \
            if (atomic_fetch_add(&gl_t_failed, 1) < 20) {                    \
                printf("FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__,          \
                       gl_t_cfg, #cond);                                     \
            }                                                                \
        }                                                                    \
    } while (0)

/* for the hot loops: count, but print only the first few */
#define CHECK_QUIET(cond, fails)                                             \
    do {                                                                     \
        if (!(cond)) {                                                       \
            if ((fails)++ < 3) {                                             \
                printf("FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__,          \
                       gl_t_cfg, #cond);                                     \
            }                                                                \
        }                                                                    \
    } while (0)


#define GL_T_THREADS  4

static const char         *gl_t_cfg = "-";
static unsigned            gl_t_nshards;
static unsigned            gl_t_flags;
static _Atomic int64_t     gl_t_clock_ms = 1000000;
static _Atomic int         gl_t_stop;
static int                 gl_t_seq;
static pthread_barrier_t   gl_t_barrier;


static double
gl_t_now(void)
{
    return (double) atomic_load(&gl_t_clock_ms) / 1000;
}


static uint64_t
gl_t_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


/* FNV-1a: the flags of a value are this sum of its bytes */
static uint32_t
gl_t_sum(const char *p, size_t len)
{
    uint32_t  h = 2166136261u;

    while (len--) {
        h = (h ^ (u_char) *p++) * 16777619u;
    }

    return h;
}


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


static void
gl_t_run(void *(*fn)(void *), void *args, size_t arg_size, int n)
{
    pthread_t  tid[16];
    int        i;

    (void) pthread_barrier_init(&gl_t_barrier, NULL, n);

    for (i = 0; i < n; i++) {
        if (pthread_create(&tid[i], NULL, fn, (char *) args + i * arg_size)
            != 0)
        {
            printf("FAIL: pthread_create\n");
            exit(1);
        }
    }

    for (i = 0; i < n; i++) {
        (void) pthread_join(tid[i], NULL);
    }

    (void) pthread_barrier_destroy(&gl_t_barrier);
}


/* single-threaded, afterwards: the bytes charged are the entries' costs */
static int
gl_t_consistent(gl_shdict_t *d)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    gl_shdict_queue_t  *q;
    size_t              total, count, b;
    unsigned            i;

    total = 0;

    for (i = 0; i < d->nshards; i++) {
        s = &d->shards[i];
        count = 0;

        for (b = 0; b < s->nbuckets; b++) {
            for (n = s->buckets[b]; n; n = n->hnext) {
                count++;
                total += n->cost;
            }
        }

        for (q = s->lru.next; q != &s->lru; q = q->next) {
            count--;
        }

        if (count != 0) {
            return 0;
        }
    }

    return total == atomic_load(&d->used) && total <= d->size;
}


/* 4 threads x 100k incr of one key */

#define GL_T_INCRS  100000

typedef struct {
    gl_shdict_t  *d;
    double        sum;      /* of the values incr returned */
    double        last;
    int           fails;
} gl_t_incr_arg_t;


static void *
gl_t_incr_thread(void *data)
{
    gl_t_incr_arg_t  *a = data;
    double            v;
    int               i, forcible;

    (void) pthread_barrier_wait(&gl_t_barrier);

    for (i = 0; i < GL_T_INCRS; i++) {
        if (gl_shdict_incr(a->d, "counter", 7, 1, 1, 0, 0, gl_t_now(), &v,
                           &forcible) != GL_SHDICT_OK
            || v <= a->last)
        {
            a->fails++;
            continue;
        }

        a->sum += v;
        a->last = v;
    }

    return NULL;
}


static void
test_incr(void)
{
    gl_t_incr_arg_t  args[GL_T_THREADS];
    gl_shdict_t      *d;
    double           v, sum, n;
    int              i, fails;
    char            *buf = NULL;
    size_t           buf_size = 0;
    gl_shdict_value_t  val;

    d = gl_t_dict(1 << 20);
    memset(args, 0, sizeof(args));

    for (i = 0; i < GL_T_THREADS; i++) {
        args[i].d = d;
    }

    gl_t_run(gl_t_incr_thread, args, sizeof(args[0]), GL_T_THREADS);

    n = (double) GL_T_THREADS * GL_T_INCRS;
    sum = 0;
    fails = 0;

    for (i = 0; i < GL_T_THREADS; i++) {
        sum += args[i].sum;
        fails += args[i].fails;
    }

    CHECK(fails == 0);
    CHECK(gl_shdict_get(d, "counter", 7, gl_t_now(), 0, &val, NULL, &buf,
                        &buf_size) == GL_SHDICT_OK
          && val.type == GL_SHDICT_TNUMBER && val.num == n);

    /* each value 1..n came back exactly once (n(n+1)/2 is exact here) */
    CHECK(sum == n * (n + 1) / 2);

    CHECK(gl_shdict_incr(d, "counter", 7, -n, 0, 0, 0, gl_t_now(), &v, NULL)
          == GL_SHDICT_OK && v == 0);
    CHECK(gl_t_consistent(d));

    free(buf);
}


/*
 * Random set/get/delete.  Shared keys hold "key=K;w=T;n=N;" and padding,
 * with the value's sum as flags: any reader can check what it gets.
 * Private keys are written by one thread only, which keeps a model of
 * them: what it reads must be exactly what it wrote last.
 */

#define GL_T_SHARED    512
#define GL_T_PRIVATE   128
#define GL_T_OPS       60000

typedef struct {
    gl_shdict_t  *d;
    int           id;
    int           ops;
    int           evicting;     /* the dict is small: things vanish */
    int           fails;
    size_t        no_memory;
    size_t        forcible;
    char         *model[GL_T_PRIVATE];
    size_t        model_len[GL_T_PRIVATE];
} gl_t_mix_arg_t;


static size_t
gl_t_make_value(char *buf, const char *key, int id, uint64_t n,
    uint64_t *rnd)
{
    size_t  len, pad;

    len = (size_t) snprintf(buf, 64, "key=%s;w=%d;n=%llu;", key, id,
                            (unsigned long long) n);
    pad = gl_t_rand(rnd) % 400;
    memset(buf + len, 'a' + (int) (n % 26), pad);

    return len + pad;
}


static int
gl_t_valid(const gl_shdict_value_t *v, const char *key)
{
    char    prefix[64];
    size_t  len;

    if (v->type == GL_SHDICT_TNIL) {
        return 1;
    }

    if (v->type != GL_SHDICT_TSTRING) {
        return 0;
    }

    len = (size_t) snprintf(prefix, sizeof(prefix), "key=%s;", key);

    return v->len >= len && memcmp(v->str, prefix, len) == 0
           && v->flags == gl_t_sum(v->str, v->len);
}


static void *
gl_t_mix_thread(void *data)
{
    gl_t_mix_arg_t     *a = data;
    gl_shdict_value_t   v;
    uint64_t            rnd, r;
    char                key[64], value[512], *buf = NULL, *p;
    size_t              buf_size = 0, len, k;
    int                 i, rc, forcible, stale;
    double              num;

    rnd = 0x9e3779b97f4a7c15ULL * (uint64_t) (a->id + 1);

    (void) pthread_barrier_wait(&gl_t_barrier);

    for (i = 0; i < a->ops; i++) {
        r = gl_t_rand(&rnd);

        if (r % 100 < 20) {
            /* a private key: exactly as modelled (unless evicted) */
            k = (r >> 8) % GL_T_PRIVATE;
            len = (size_t) snprintf(key, sizeof(key), "p%d:%zu", a->id, k);

            if ((r >> 20) % 3 == 0) {
                rc = gl_shdict_delete(a->d, key, len, gl_t_now());
                CHECK_QUIET(rc == GL_SHDICT_OK, a->fails);
                free(a->model[k]);
                a->model[k] = NULL;

            } else if ((r >> 20) % 3 == 1) {
                v.len = gl_t_make_value(value, key, a->id, r, &rnd);
                v.type = GL_SHDICT_TSTRING;
                v.str = value;
                v.flags = gl_t_sum(value, v.len);
                rc = gl_shdict_store(a->d, GL_SHDICT_SET, key, len, &v, 0,
                                     gl_t_now(), &forcible);
                CHECK_QUIET(rc == GL_SHDICT_OK
                            || (a->evicting && rc == GL_SHDICT_NO_MEMORY),
                            a->fails);

                free(a->model[k]);
                a->model[k] = NULL;

                if (rc == GL_SHDICT_OK) {
                    p = malloc(v.len ? v.len : 1);
                    if (p == NULL) {
                        a->fails++;
                        continue;
                    }

                    memcpy(p, value, v.len);
                    a->model[k] = p;
                    a->model_len[k] = v.len;

                } else {
                    a->no_memory++;
                }

            } else {
                rc = gl_shdict_get(a->d, key, len, gl_t_now(), 0, &v, &stale,
                                   &buf, &buf_size);
                CHECK_QUIET(rc == GL_SHDICT_OK && !stale, a->fails);

                if (a->model[k] == NULL || a->evicting) {
                    CHECK_QUIET(a->model[k] != NULL
                                || v.type == GL_SHDICT_TNIL, a->fails);
                    CHECK_QUIET(gl_t_valid(&v, key), a->fails);

                } else {
                    CHECK_QUIET(v.type == GL_SHDICT_TSTRING
                                && v.len == a->model_len[k]
                                && memcmp(v.str, a->model[k], v.len) == 0
                                && v.flags == gl_t_sum(v.str, v.len),
                                a->fails);
                }
            }

            continue;
        }

        k = (r >> 8) % GL_T_SHARED;
        len = (size_t) snprintf(key, sizeof(key), "s%zu", k);

        if (r % 100 < 60) {
            rc = gl_shdict_get(a->d, key, len, gl_t_now(), (r >> 40) & 1, &v,
                               &stale, &buf, &buf_size);
            CHECK_QUIET(rc == GL_SHDICT_OK && gl_t_valid(&v, key), a->fails);

        } else if (r % 100 < 80) {
            v.len = gl_t_make_value(value, key, a->id, r, &rnd);
            v.type = GL_SHDICT_TSTRING;
            v.str = value;
            v.flags = gl_t_sum(value, v.len);
            rc = gl_shdict_store(a->d, (r >> 40) % 8, key, len, &v,
                                 (r >> 44) % 4 ? 0 : 0.05, gl_t_now(),
                                 &forcible);
            CHECK_QUIET(rc == GL_SHDICT_OK || rc == GL_SHDICT_EXISTS
                        || rc == GL_SHDICT_NOT_FOUND
                        || rc == GL_SHDICT_NO_MEMORY, a->fails);
            CHECK_QUIET(a->evicting || !forcible, a->fails);
            a->forcible += forcible;

            /* safe stores do fail in a full dict; the others should not */
            if (!((r >> 40) & GL_SHDICT_SAFE)) {
                a->no_memory += rc == GL_SHDICT_NO_MEMORY;
            }

        } else if (r % 100 < 88) {
            rc = gl_shdict_delete(a->d, key, len, gl_t_now());
            CHECK_QUIET(rc == GL_SHDICT_OK, a->fails);

        } else if (r % 100 < 94) {
            /* numbers of their own */
            len = (size_t) snprintf(key, sizeof(key), "n%zu", k % 64);
            rc = gl_shdict_incr(a->d, key, len, 1, 1, 0, 0, gl_t_now(), &num,
                                &forcible);
            CHECK_QUIET((rc == GL_SHDICT_OK && num >= 1)
                        || rc == GL_SHDICT_NO_MEMORY, a->fails);

        } else if (r % 100 < 97) {
            len = (size_t) snprintf(key, sizeof(key), "l%zu", k % 16);
            v.type = GL_SHDICT_TSTRING;
            v.str = value;
            v.len = gl_t_make_value(value, key, a->id, r, &rnd);
            rc = gl_shdict_push(a->d, key, len, (r >> 40) & 1, &v,
                                gl_t_now(), &k);
            CHECK_QUIET((rc == GL_SHDICT_OK && k >= 1)
                        || rc == GL_SHDICT_NO_MEMORY, a->fails);

        } else {
            len = (size_t) snprintf(key, sizeof(key), "l%zu", k % 16);
            rc = gl_shdict_pop(a->d, key, len, (r >> 40) & 1, gl_t_now(), &v,
                               &buf, &buf_size);
            v.flags = v.type == GL_SHDICT_TSTRING ? gl_t_sum(v.str, v.len)
                                                  : 0;
            CHECK_QUIET(rc == GL_SHDICT_OK && gl_t_valid(&v, key), a->fails);
        }
    }

    for (k = 0; k < GL_T_PRIVATE; k++) {
        free(a->model[k]);
    }

    free(buf);

    return NULL;
}


/* beside the writers: time goes on, expired entries go, keys are listed,
   and the budget is never overdrawn */
typedef struct {
    gl_shdict_t  *d;
    int           fails;
    size_t        freed;
    _Atomic size_t  rounds;
} gl_t_house_arg_t;


static void *
gl_t_house_thread(void *data)
{
    gl_t_house_arg_t  *a = data;
    char              *buf = NULL;
    size_t             buf_size = 0, n, len, pos, klen;

    while (!atomic_load(&gl_t_stop)) {
        atomic_fetch_add(&gl_t_clock_ms, 7);

        a->freed += gl_shdict_expire(a->d, gl_t_now(), 200);

        if (a->rounds % 16 == 0) {
            a->freed += gl_shdict_flush_expired(a->d, gl_t_now(), 50);
        }

        CHECK_QUIET(gl_shdict_free_space(a->d) <= gl_shdict_capacity(a->d)
                    && atomic_load(&a->d->used) <= a->d->size, a->fails);

        if (a->rounds % 4 == 0) {
            CHECK_QUIET(gl_shdict_get_keys(a->d, gl_t_now(), 0, &buf,
                                           &buf_size, &n, &len)
                        == GL_SHDICT_OK, a->fails);

            for (pos = 0; n--; pos += 2 + klen) {
                klen = (u_char) buf[pos] | (u_char) buf[pos + 1] << 8;
                CHECK_QUIET(klen >= 2 && klen < 16 && pos + 2 + klen <= len
                            && strchr("pslnk", buf[pos + 2]) != NULL,
                            a->fails);
            }
        }

        atomic_fetch_add(&a->rounds, 1);
    }

    free(buf);

    return NULL;
}


static void
gl_t_wait_rounds(gl_t_house_arg_t *house, size_t rounds)
{
    struct timespec  pause = { 0, 1000000 };

    while (atomic_load(&house->rounds) < rounds) {
        (void) nanosleep(&pause, NULL);
    }
}


static void
test_mix(size_t size, int evicting)
{
    gl_t_mix_arg_t     args[GL_T_THREADS];
    gl_t_house_arg_t  *house;
    gl_shdict_t       *d;
    pthread_t          tid;
    size_t             no_memory, evicted;
    int                i, fails;

    d = gl_t_dict(size);
    memset(args, 0, sizeof(args));

    for (i = 0; i < GL_T_THREADS; i++) {
        args[i].d = d;
        args[i].id = i;
        args[i].ops = GL_T_OPS;
        args[i].evicting = evicting;
    }

    /* the housekeeper runs on its own until the writers are done */
    house = calloc(1, sizeof(*house));
    if (house == NULL) {
        printf("FAIL: calloc\n");
        exit(1);
    }

    house->d = d;
    atomic_store(&gl_t_stop, 0);

    if (pthread_create(&tid, NULL, gl_t_house_thread, house) != 0) {
        printf("FAIL: pthread_create\n");
        exit(1);
    }

    /* the housekeeper runs before, while, and after the writers */
    gl_t_wait_rounds(house, 1);
    gl_t_run(gl_t_mix_thread, args, sizeof(args[0]), GL_T_THREADS);
    gl_t_wait_rounds(house, atomic_load(&house->rounds) + 2);

    atomic_store(&gl_t_stop, 1);
    (void) pthread_join(tid, NULL);

    fails = house->fails;
    no_memory = 0;
    evicted = 0;

    for (i = 0; i < GL_T_THREADS; i++) {
        fails += args[i].fails;
        no_memory += args[i].no_memory;
        evicted += args[i].forcible;
    }

    CHECK(fails == 0);
    CHECK(gl_t_consistent(d));
    CHECK(gl_shdict_free_space(d) + atomic_load(&d->used)
          == gl_shdict_capacity(d));

    /* a big dict never runs out; a small one rarely fails a store */
    CHECK(evicting || no_memory == 0);
    CHECK(no_memory < GL_T_THREADS * GL_T_OPS / 100);
    CHECK(!evicting || evicted > 1000);

    if (evicting) {
        printf("  [%s] small dict: %zu shared-key stores evicted, %zu ran "
               "out of memory; housekeeping expired %zu\n", gl_t_cfg,
               evicted, no_memory, house->freed);
    }

    gl_shdict_flush_all(d);
    (void) gl_shdict_flush_expired(d, gl_t_now(), 0);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));

    free(house);
}


/* a list as a queue: 2 threads rpush, 2 lpop; each item once, in order */

#define GL_T_ITEMS  30000

typedef struct {
    gl_shdict_t  *d;
    int           id;
    int           fails;
    double        sum;
    int           got;
} gl_t_queue_arg_t;

static _Atomic int  gl_t_popped;


static void *
gl_t_queue_thread(void *data)
{
    gl_t_queue_arg_t   *a = data;
    gl_shdict_value_t   v;
    double              last[2] = { -1, -1 };
    char               *buf = NULL;
    size_t              buf_size = 0, len;
    int                 i, rc, who;

    (void) pthread_barrier_wait(&gl_t_barrier);

    if (a->id < 2) {
        for (i = 0; i < GL_T_ITEMS; i++) {
            v.type = GL_SHDICT_TNUMBER;
            v.num = a->id * 1e6 + i;
            rc = gl_shdict_push(a->d, "q", 1, 0, &v, gl_t_now(), &len);
            CHECK_QUIET(rc == GL_SHDICT_OK && len >= 1, a->fails);
        }

        return NULL;
    }

    while (atomic_load(&gl_t_popped) < 2 * GL_T_ITEMS) {
        rc = gl_shdict_pop(a->d, "q", 1, 1, gl_t_now(), &v, &buf, &buf_size);
        CHECK_QUIET(rc == GL_SHDICT_OK, a->fails);

        if (v.type == GL_SHDICT_TNIL) {
            sched_yield();
            continue;
        }

        CHECK_QUIET(v.type == GL_SHDICT_TNUMBER, a->fails);
        atomic_fetch_add(&gl_t_popped, 1);

        who = v.num >= 1e6;
        CHECK_QUIET(v.num > last[who], a->fails);
        last[who] = v.num;
        a->sum += v.num;
        a->got++;
    }

    free(buf);

    return NULL;
}


static void
test_queue(void)
{
    gl_t_queue_arg_t  args[4];
    gl_shdict_t      *d;
    double            sum, want;
    size_t            len;
    int               i, fails, got;

    d = gl_t_dict(4 << 20);
    memset(args, 0, sizeof(args));
    atomic_store(&gl_t_popped, 0);

    for (i = 0; i < 4; i++) {
        args[i].d = d;
        args[i].id = i;
    }

    gl_t_run(gl_t_queue_thread, args, sizeof(args[0]), 4);

    sum = 0;
    got = 0;
    fails = 0;

    for (i = 0; i < 4; i++) {
        sum += args[i].sum;
        got += args[i].got;
        fails += args[i].fails;
    }

    want = (double) GL_T_ITEMS * (GL_T_ITEMS - 1) + 1e6 * GL_T_ITEMS;

    CHECK(fails == 0);
    CHECK(got == 2 * GL_T_ITEMS);
    CHECK(sum == want);
    CHECK(gl_shdict_llen(d, "q", 1, gl_t_now(), &len) == GL_SHDICT_OK
          && len == 0);
    CHECK(gl_shdict_free_space(d) == gl_shdict_capacity(d));
}


/*
 * The benchmark.  The neighbours of a small VM steal time now and then,
 * and then its vCPUs do not run at once: so each figure is the median of
 * 5 runs of 200 ms, the threads are pinned to CPUs in turn, and the first
 * row, a dict per thread, shows how much parallelism the machine gave.
 * The keys are made before, so that the loop is mostly the dict.
 */

#define GL_T_BENCH_KEYS  10000
#define GL_T_BENCH_RUNS  5

typedef struct {
    gl_shdict_t  *d;
    int           id;
    int           workload;
    uint64_t      ops;
    uint64_t      takes;
    uint64_t      busy;
} gl_t_bench_arg_t;


enum {
    GL_T_READ_MOSTLY = 0,   /* 90% get, 10% set, 10k keys */
    GL_T_HOT_GET,           /* get of one key */
    GL_T_INCR_SPREAD,       /* incr of 1k keys (rate limiting) */
    GL_T_INCR_HOT,          /* incr of one key */
    GL_T_WORKLOADS
};

static const char  *gl_t_workload_names[] = {
    "90% get / 10% set, 10k keys, 32-byte values",
    "get, one hot key",
    "incr, 1k keys",
    "incr, one key"
};

static char    gl_t_keys[GL_T_BENCH_KEYS][8];
static size_t  gl_t_key_lens[GL_T_BENCH_KEYS];


static void *
gl_t_bench_thread(void *data)
{
    gl_t_bench_arg_t   *a = data;
    gl_shdict_value_t   v, out;
    uint64_t            rnd, r, ops;
    cpu_set_t           cpus;
    char               *buf = NULL;
    size_t              buf_size = 0, k;
    double              num;
    int                 f;

    CPU_ZERO(&cpus);
    CPU_SET(a->id % sysconf(_SC_NPROCESSORS_ONLN), &cpus);
    (void) pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);

    rnd = 0x2545f4914f6cdd1dULL * (uint64_t) (a->id + 1);
    ops = 0;
    v.type = GL_SHDICT_TSTRING;
    v.str = "0123456789abcdef0123456789abcdef";
    v.len = 32;
    v.flags = 0;

    (void) pthread_barrier_wait(&gl_t_barrier);

    gl_t_takes = 0;
    gl_t_busy = 0;

    while (!atomic_load_explicit(&gl_t_stop, memory_order_relaxed)) {
        r = gl_t_rand(&rnd);

        switch (a->workload) {
        case GL_T_READ_MOSTLY:
            k = (r >> 8) % GL_T_BENCH_KEYS;
            if (r % 10 == 0) {
                (void) gl_shdict_store(a->d, GL_SHDICT_SET, gl_t_keys[k],
                                       gl_t_key_lens[k], &v, 0, 1000.0, &f);
            } else {
                (void) gl_shdict_get(a->d, gl_t_keys[k], gl_t_key_lens[k],
                                     1000.0, 0, &out, NULL, &buf, &buf_size);
            }
            break;

        case GL_T_HOT_GET:
            (void) gl_shdict_get(a->d, "hot", 3, 1000.0, 0, &out, NULL, &buf,
                                 &buf_size);
            break;

        case GL_T_INCR_SPREAD:
            k = (r >> 8) % 1000;
            (void) gl_shdict_incr(a->d, gl_t_keys[k], gl_t_key_lens[k], 1, 1,
                                  0, 0, 1000.0, &num, &f);
            break;

        default:
            (void) gl_shdict_incr(a->d, "hot-counter", 11, 1, 1, 0, 0,
                                  1000.0, &num, &f);
            break;
        }

        ops++;
    }

    a->ops = ops;
    a->takes = gl_t_takes;
    a->busy = gl_t_busy;
    free(buf);

    return NULL;
}


/* returns Mops/s; *busy gets the share of lock takes that waited */
static double
gl_t_bench_run(gl_shdict_t **d, int workload, int nthreads, double *busy)
{
    gl_t_bench_arg_t   args[16];
    struct timespec    t0, t1, pause;
    pthread_t          tid[16];
    uint64_t           ops, takes, waited;
    double             secs;
    int                i;

    memset(args, 0, sizeof(args));
    atomic_store(&gl_t_stop, 0);
    (void) pthread_barrier_init(&gl_t_barrier, NULL, nthreads + 1);

    for (i = 0; i < nthreads; i++) {
        args[i].d = d[i];
        args[i].id = i;
        args[i].workload = workload;
        (void) pthread_create(&tid[i], NULL, gl_t_bench_thread, &args[i]);
    }

    (void) pthread_barrier_wait(&gl_t_barrier);
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);

    pause.tv_sec = 0;
    pause.tv_nsec = 200 * 1000000;
    (void) nanosleep(&pause, NULL);

    atomic_store(&gl_t_stop, 1);

    ops = 0;
    takes = 0;
    waited = 0;

    for (i = 0; i < nthreads; i++) {
        (void) pthread_join(tid[i], NULL);
        ops += args[i].ops;
        takes += args[i].takes;
        waited += args[i].busy;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &t1);
    (void) pthread_barrier_destroy(&gl_t_barrier);

    secs = (double) (t1.tv_sec - t0.tv_sec)
           + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;

    *busy = takes ? (double) waited / (double) takes : 0;

    return (double) ops / secs / 1e6;
}


static int
gl_t_cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static void
bench(void)
{
    static const struct {
        const char  *name;
        unsigned     nshards;
        unsigned     flags;
        int          own;       /* a dict per thread */
    } variants[] = {
        { "a dict per thread", 64, 0, 1 },
        { "spin, 1 shard", 1, 0, 0 },
        { "mutex, 1 shard", 1, GL_SHDICT_MUTEX, 0 },
        { "rwlock, 1 shard", 1, GL_SHDICT_RWLOCK, 0 },
        { "spin, 16 shards", 16, 0, 0 },
        { "mutex, 16 shards", 16, GL_SHDICT_MUTEX, 0 },
        { "spin, 64 shards", 64, 0, 0 },
        { "mutex, 64 shards", 64, GL_SHDICT_MUTEX, 0 },
    };
    static const int    threads[] = { 1, 2, 4 };
    gl_shdict_value_t   v;
    gl_shdict_t        *d[gl_nelems(variants)][4];
    double              ops[gl_nelems(variants)][gl_nelems(threads)]
                           [GL_T_BENCH_RUNS];
    double              busy[gl_nelems(variants)][gl_nelems(threads)]
                            [GL_T_BENCH_RUNS];
    char                name[64];
    size_t              i, t, k, j;
    int                 w, run, f;

    for (k = 0; k < GL_T_BENCH_KEYS; k++) {
        gl_t_key_lens[k] = (size_t) snprintf(gl_t_keys[k],
                                             sizeof(gl_t_keys[k]), "k%zu", k);
    }

    v.type = GL_SHDICT_TSTRING;
    v.str = "0123456789abcdef0123456789abcdef";
    v.len = 32;
    v.flags = 0;

    for (i = 0; i < gl_nelems(variants); i++) {
        for (j = 0; j < 4; j++) {
            if (j > 0 && !variants[i].own) {
                d[i][j] = d[i][0];
                continue;
            }

            snprintf(name, sizeof(name), "bench%zu.%zu", i, j);
            d[i][j] = gl_shdict_create_ex(name, 64 << 20, variants[i].nshards,
                                          variants[i].flags);
            if (d[i][j] == NULL) {
                printf("cannot create %s\n", name);
                exit(1);
            }

            for (k = 0; k < GL_T_BENCH_KEYS; k++) {
                (void) gl_shdict_store(d[i][j], GL_SHDICT_SET, gl_t_keys[k],
                                       gl_t_key_lens[k], &v, 0, 1000.0, &f);
            }

            (void) gl_shdict_store(d[i][j], GL_SHDICT_SET, "hot", 3, &v, 0,
                                   1000.0, &f);
        }
    }

    printf("million operations per second, and [the share of lock takes\n"
           "that found the lock busy]; medians of %d runs (%ld CPUs)\n",
           GL_T_BENCH_RUNS, sysconf(_SC_NPROCESSORS_ONLN));

    for (w = 0; w < GL_T_WORKLOADS; w++) {

        /* the variants take turns, so that a noisy second hits them all */
        for (run = 0; run < GL_T_BENCH_RUNS; run++) {
            for (t = 0; t < gl_nelems(threads); t++) {
                for (i = 0; i < gl_nelems(variants); i++) {
                    ops[i][t][run] = gl_t_bench_run(d[i], w, threads[t],
                                                    &busy[i][t][run]);
                }
            }
        }

        printf("%s\n  %-20s", gl_t_workload_names[w], "threads:");

        for (t = 0; t < gl_nelems(threads); t++) {
            printf(" %14d", threads[t]);
        }

        printf("\n");

        for (i = 0; i < gl_nelems(variants); i++) {
            printf("  %-20s", variants[i].name);

            for (t = 0; t < gl_nelems(threads); t++) {
                qsort(ops[i][t], GL_T_BENCH_RUNS, sizeof(double),
                      gl_t_cmp_double);
                qsort(busy[i][t], GL_T_BENCH_RUNS, sizeof(double),
                      gl_t_cmp_double);
                printf(" %6.2f [%4.1f%%]", ops[i][t][GL_T_BENCH_RUNS / 2],
                       100 * busy[i][t][GL_T_BENCH_RUNS / 2]);
            }

            printf("\n");
        }
    }
}


static void
test_config(const char *name, unsigned nshards, unsigned flags)
{
    gl_t_cfg = name;
    gl_t_nshards = nshards;
    gl_t_flags = flags;

    test_incr();
    test_mix(8 << 20, 0);
    test_mix(64 * 1024, 1);
    test_queue();
}


int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        bench();
        gl_shdict_destroy_all();
        printf("0 passed, 0 failed\n");
        return 0;
    }

    test_config("default", 0, 0);
    test_config("rwlock16", 16, GL_SHDICT_RWLOCK);
    test_config("spin1", 1, 0);
    test_config("mutex4", 4, GL_SHDICT_MUTEX);

    gl_shdict_destroy_all();

    printf("%d passed, %d failed\n", atomic_load(&gl_t_passed),
           atomic_load(&gl_t_failed));

    return atomic_load(&gl_t_failed) ? 1 : 0;
}
