/*
 * The shared dict (docs/shdict-core.md).
 *
 * A dict is split into shards by the keys' hash: each shard has its own
 * lock (a spinlock by default; a mutex or a rwlock on request), a chained
 * hash table and an LRU queue.  The
 * memory budget is one atomic counter for the whole dict, so any entry that
 * fits the dict fits whatever its shard.  A thread holds at most one shard
 * lock at a time, so there is no lock order to get wrong: eviction from
 * another shard happens after the own shard's lock is let go.
 *
 * The LRU order across shards comes from a dict-wide tick, taken when an
 * entry is queued at the head of its shard (a new entry, one that came
 * back from expiry, one spared by eviction); each shard publishes the
 * tick of its tail, so the oldest entry of the dict is the oldest of
 * those tails.  New entries write the budget counter anyway, and the tick
 * shares its cache line.
 *
 * A use of an entry in place (get, incr, a push or pop on a list, llen)
 * does not requeue it: it sets the entry's "used" bit (a relaxed atomic),
 * and eviction gives a used entry at the LRU tail a second chance (back to
 * the head, with a new tick) instead of taking it.  So reads never change
 * a shard's structure (they could share a rwlock), and a hot counter does
 * not write the dict-wide tick on every incr.
 *
 * Nothing is malloc'ed or freed under a lock but the hash table when it
 * doubles: new entries are built before the lock is taken, and the ones
 * taken out are freed after it is let go.
 */
#include "gl_core.h"
#include "gl_shdict.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>


typedef struct gl_shdict_queue_s  gl_shdict_queue_t;

struct gl_shdict_queue_s {
    gl_shdict_queue_t  *prev;
    gl_shdict_queue_t  *next;
};

typedef struct gl_shdict_node_s  gl_shdict_node_t;

struct gl_shdict_node_s {
    gl_shdict_node_t   *hnext;      /* the hash chain; then the garbage */
    gl_shdict_queue_t   lru;        /* head: the most recently used */
    size_t              cost;       /* bytes charged, list elements too */
    int64_t             expires;    /* ms; 0: never */
    uint64_t            stamp;      /* the dict's tick when last queued */
    uint32_t            hash;
    uint32_t            flags;
    uint32_t            value_len;  /* string: bytes; list: elements */
    uint16_t            key_len;
    uint8_t             type;
    _Atomic uint8_t     used;       /* read since it was last queued */
    union {
        double              num;
        int                 boolean;
        gl_shdict_queue_t   list;   /* of gl_shdict_elt_t */
    } u;
    char                data[];     /* the key, then a string value */
};

/* a list element */
typedef struct {
    gl_shdict_queue_t   q;
    uint32_t            len;
    uint8_t             type;       /* TNUMBER or TSTRING */
    char                data[];     /* the string, or the double's bytes */
} gl_shdict_elt_t;

typedef struct {
    alignas(64)
    _Atomic int         spin;       /* 1: held */
    pthread_mutex_t     mutex;
    pthread_rwlock_t    rwlock;
    gl_shdict_node_t  **buckets;
    size_t              nbuckets;   /* a power of two */
    size_t              count;
    size_t              cursor;     /* gl_shdict_expire()'s next bucket */
    gl_shdict_queue_t   lru;
    _Atomic uint64_t    tail_stamp; /* the LRU tail's stamp; empty: max */
} gl_shdict_shard_t;

struct gl_shdict_s {
    char               *name;
    size_t              name_len;
    size_t              size;       /* the budget */
    size_t              max_evict;  /* evictions per store, at most */
    unsigned            nshards;    /* a power of two */
    unsigned            lock;       /* GL_SHDICT_LOCK_* */
    _Atomic unsigned    expire_next; /* gl_shdict_expire()'s next shard */
    gl_shdict_shard_t  *shards;
    alignas(64)
    _Atomic size_t      used;       /* bytes charged, or reserved */
    _Atomic uint64_t    tick;       /* the clock of the LRU order */
};


/*
 * What an entry costs against the budget: its header, the allocator's own
 * header and rounding (about 16 bytes with glibc and jemalloc), and its
 * hash bucket; then the key and a string value.  A list element: its
 * header, the allocator's share, and its value (8 bytes for a number).
 */
#define GL_SHDICT_ALLOC_OVERHEAD  16
#define GL_SHDICT_NODE_COST                                                  \
    (sizeof(gl_shdict_node_t) + GL_SHDICT_ALLOC_OVERHEAD                     \
     + sizeof(gl_shdict_node_t *))
#define GL_SHDICT_ELT_COST                                                   \
    (sizeof(gl_shdict_elt_t) + GL_SHDICT_ALLOC_OVERHEAD)

/* flush_all's expiry time: 1 ms after the epoch, long past */
#define GL_SHDICT_FLUSHED         1

/* times are clamped to +-1e15 ms (31,000 years) so that sums fit */
#define GL_SHDICT_MS_MAX          1e15

/* gl_shdict_expire(): entries and buckets looked at per lock hold */
#define GL_SHDICT_EXPIRE_CHUNK    128

#define gl_shdict_relaxed         memory_order_relaxed


static pthread_mutex_t   gl_shdict_lock = PTHREAD_MUTEX_INITIALIZER;
static gl_shdict_t     **gl_shdicts;
static size_t            gl_shdict_n;
static size_t            gl_shdict_cap;
static uint64_t          gl_shdict_key[2];
static int               gl_shdict_seeded;


/* the queue: a circular doubly linked list with a sentinel, as nginx's */

static void
gl_shdict_queue_init(gl_shdict_queue_t *h)
{
    h->prev = h;
    h->next = h;
}


static int
gl_shdict_queue_empty(const gl_shdict_queue_t *h)
{
    return h->next == h;
}


static void
gl_shdict_queue_insert_head(gl_shdict_queue_t *h, gl_shdict_queue_t *x)
{
    x->next = h->next;
    x->next->prev = x;
    x->prev = h;
    h->next = x;
}


static void
gl_shdict_queue_insert_tail(gl_shdict_queue_t *h, gl_shdict_queue_t *x)
{
    x->prev = h->prev;
    x->prev->next = x;
    x->next = h;
    h->prev = x;
}


static void
gl_shdict_queue_remove(gl_shdict_queue_t *x)
{
    x->next->prev = x->prev;
    x->prev->next = x->next;
}


/* moves all of from's items to the tail of to; from ends up empty */
static void
gl_shdict_queue_move(gl_shdict_queue_t *from, gl_shdict_queue_t *to)
{
    gl_shdict_queue_t  *first, *last;

    if (gl_shdict_queue_empty(from)) {
        return;
    }

    first = from->next;
    last = from->prev;

    first->prev = to->prev;
    to->prev->next = first;
    last->next = to;
    to->prev = last;

    gl_shdict_queue_init(from);
}


#define gl_shdict_lru_node(q)                                                \
    ((gl_shdict_node_t *) ((char *) (q) - offsetof(gl_shdict_node_t, lru)))

#define gl_shdict_elt(q)                                                     \
    ((gl_shdict_elt_t *) ((char *) (q) - offsetof(gl_shdict_elt_t, q)))


/*
 * SipHash (Aumasson and Bernstein), c compression and f finalisation
 * rounds; we use SipHash-1-3 with a random key, so that no one can choose
 * keys that pile up in one hash chain.
 */

#define gl_shdict_rotl(x, b)  (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define gl_shdict_sipround()                                                 \
    do {                                                                     \
        v0 += v1; v1 = gl_shdict_rotl(v1, 13); v1 ^= v0;                     \
        v0 = gl_shdict_rotl(v0, 32);                                         \
        v2 += v3; v3 = gl_shdict_rotl(v3, 16); v3 ^= v2;                     \
        v0 += v3; v3 = gl_shdict_rotl(v3, 21); v3 ^= v0;                     \
        v2 += v1; v1 = gl_shdict_rotl(v1, 17); v1 ^= v2;                     \
        v2 = gl_shdict_rotl(v2, 32);                                         \
    } while (0)


static uint64_t
gl_shdict_le64(const u_char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
}


static inline uint64_t
gl_shdict_siphash(const uint64_t key[2], const u_char *p, size_t len,
    int c, int f)
{
    uint64_t  v0, v1, v2, v3, m;
    size_t    i, left;
    int       r;

    v0 = key[0] ^ 0x736f6d6570736575ULL;
    v1 = key[1] ^ 0x646f72616e646f6dULL;
    v2 = key[0] ^ 0x6c7967656e657261ULL;
    v3 = key[1] ^ 0x7465646279746573ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        m = gl_shdict_le64(p + i);
        v3 ^= m;
        for (r = 0; r < c; r++) {
            gl_shdict_sipround();
        }
        v0 ^= m;
    }

    m = (uint64_t) len << 56;
    left = len - i;

    while (left--) {
        m |= (uint64_t) p[i + left] << (8 * left);
    }

    v3 ^= m;
    for (r = 0; r < c; r++) {
        gl_shdict_sipround();
    }
    v0 ^= m;

    v2 ^= 0xff;
    for (r = 0; r < f; r++) {
        gl_shdict_sipround();
    }

    return v0 ^ v1 ^ v2 ^ v3;
}


static uint64_t
gl_shdict_hash(const char *key, size_t len)
{
    return gl_shdict_siphash(gl_shdict_key, (const u_char *) key, len, 1, 3);
}


/* the key from /dev/urandom; else from the clock, the pid and ASLR */
static void
gl_shdict_seed(void)
{
    struct timespec  ts;
    ssize_t          n = -1;
    int              fd;

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd != -1) {
        n = read(fd, gl_shdict_key, sizeof(gl_shdict_key));
        (void) close(fd);
    }

    if (n != (ssize_t) sizeof(gl_shdict_key)) {
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        gl_shdict_key[0] = (uint64_t) ts.tv_sec * 1000000007ULL
                           ^ (uint64_t) ts.tv_nsec ^ (uint64_t) getpid();
        gl_shdict_key[1] = (uint64_t) (uintptr_t) &ts
                           ^ (uint64_t) (uintptr_t) gl_shdict_seed
                           ^ ((uint64_t) ts.tv_nsec << 32);
    }

    gl_shdict_seeded = 1;
}


/* time: nginx keeps milliseconds */

static int64_t
gl_shdict_clamp_ms(double ms)
{
    if (ms != ms) {
        return 0;
    }

    if (ms > GL_SHDICT_MS_MAX) {
        return (int64_t) GL_SHDICT_MS_MAX;
    }

    if (ms < -GL_SHDICT_MS_MAX) {
        return -(int64_t) GL_SHDICT_MS_MAX;
    }

    return (int64_t) ms;
}


/* the caller's clock, to the nearest ms */
static int64_t
gl_shdict_now_ms(double now)
{
    double  ms = now * 1000 + 0.5;

    /* the usual case, without floor(): truncation is floor for ms >= 0 */
    if (ms >= 0 && ms < GL_SHDICT_MS_MAX) {
        return (int64_t) ms;
    }

    return gl_shdict_clamp_ms(floor(ms));
}


/*
 * An exptime's expiry: truncated to ms as lua-resty-core's exptime * 1000
 * passed as a C long; 0 ms or less means never.
 */
static int64_t
gl_shdict_expires(double exptime, int64_t now_ms)
{
    int64_t  ms;

    if (!(exptime * 1000 >= 1)) {       /* no exptime, and NaN */
        return 0;
    }

    ms = gl_shdict_clamp_ms(exptime * 1000);

    return now_ms + ms;
}


static int
gl_shdict_expired(const gl_shdict_node_t *n, int64_t now_ms)
{
    return n->expires != 0 && n->expires <= now_ms;
}


/*
 * Locks.  A shard's lock is held for tens of nanoseconds (a lookup and a
 * few stores; nothing is allocated under it), so by default it is a
 * spinlock: taking it is one atomic exchange, and letting it go a plain
 * store, where a mutex also needs an atomic exchange to learn whether
 * someone sleeps on it.  A waiter spins on a read of the lock with a pause
 * in between, and yields its CPU after GL_SHDICT_SPINS turns, in case the
 * holder was preempted.  docs/shdict-core.md has the measurements.
 */
#define GL_SHDICT_LOCK_SPIN       0
#define GL_SHDICT_LOCK_MUTEX      1
#define GL_SHDICT_LOCK_RW         2

#define GL_SHDICT_SPINS           64

#if defined(__x86_64__) || defined(__i386__)
#define gl_shdict_cpu_pause()     __builtin_ia32_pause()
#elif defined(__aarch64__)
#define gl_shdict_cpu_pause()     __asm__ __volatile__ ("yield" ::: "memory")
#else
#define gl_shdict_cpu_pause()
#endif

static int
gl_shdict_spin_trylock(_Atomic int *l)
{
    return atomic_load_explicit(l, gl_shdict_relaxed) == 0
           && atomic_exchange_explicit(l, 1, memory_order_acquire) == 0;
}


static void
gl_shdict_spin_wait(_Atomic int *l)
{
    unsigned  i = 0;

    while (!gl_shdict_spin_trylock(l)) {
        if (++i < GL_SHDICT_SPINS) {
            gl_shdict_cpu_pause();

        } else {
            (void) sched_yield();
            i = 0;
        }
    }
}


static inline void
gl_shdict_spin_lock(_Atomic int *l)
{
    if (atomic_exchange_explicit(l, 1, memory_order_acquire) != 0) {
        gl_shdict_spin_wait(l);
    }
}


/* the benchmark defines these to count the busy ones */
#ifndef GL_SHDICT_MUTEX_LOCK
#define GL_SHDICT_SPIN_LOCK(l)    gl_shdict_spin_lock(l)
#define GL_SHDICT_MUTEX_LOCK(m)   pthread_mutex_lock(m)
#define GL_SHDICT_RDLOCK(l)       pthread_rwlock_rdlock(l)
#define GL_SHDICT_WRLOCK(l)       pthread_rwlock_wrlock(l)
#endif

/* a shard's lock; write: exclusive (it matters for rwlocks only) */
static void
gl_shdict_shard_lock(gl_shdict_t *d, gl_shdict_shard_t *s, int write)
{
    switch (d->lock) {
    case GL_SHDICT_LOCK_SPIN:
        GL_SHDICT_SPIN_LOCK(&s->spin);
        break;
    case GL_SHDICT_LOCK_MUTEX:
        (void) GL_SHDICT_MUTEX_LOCK(&s->mutex);
        break;
    default:
        if (write) {
            (void) GL_SHDICT_WRLOCK(&s->rwlock);
        } else {
            (void) GL_SHDICT_RDLOCK(&s->rwlock);
        }
    }
}

#define gl_shdict_rlock(d, s)     gl_shdict_shard_lock(d, s, 0)
#define gl_shdict_wlock(d, s)     gl_shdict_shard_lock(d, s, 1)


static void
gl_shdict_runlock(gl_shdict_t *d, gl_shdict_shard_t *s)
{
    switch (d->lock) {
    case GL_SHDICT_LOCK_SPIN:
        atomic_store_explicit(&s->spin, 0, memory_order_release);
        break;
    case GL_SHDICT_LOCK_MUTEX:
        (void) pthread_mutex_unlock(&s->mutex);
        break;
    default:
        (void) pthread_rwlock_unlock(&s->rwlock);
    }
}


/* lets go of a write lock, telling the others how old our tail is */
static void
gl_shdict_wunlock(gl_shdict_t *d, gl_shdict_shard_t *s)
{
    uint64_t  t = UINT64_MAX;

    if (!gl_shdict_queue_empty(&s->lru)) {
        t = gl_shdict_lru_node(s->lru.prev)->stamp;
    }

    atomic_store_explicit(&s->tail_stamp, t, gl_shdict_relaxed);

    gl_shdict_runlock(d, s);
}


/* the budget */

static int
gl_shdict_reserve(gl_shdict_t *d, size_t n)
{
    size_t  used = atomic_load_explicit(&d->used, gl_shdict_relaxed);

    do {
        if (n > d->size - used) {
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&d->used, &used,
                 used + n, gl_shdict_relaxed, gl_shdict_relaxed));

    return 1;
}


static void
gl_shdict_release(gl_shdict_t *d, size_t n)
{
    atomic_fetch_sub_explicit(&d->used, n, gl_shdict_relaxed);
}


static uint64_t
gl_shdict_tick(gl_shdict_t *d)
{
    return atomic_fetch_add_explicit(&d->tick, 1, gl_shdict_relaxed);
}


/* entries */

static gl_shdict_shard_t *
gl_shdict_shard(gl_shdict_t *d, uint64_t hash)
{
    return &d->shards[(hash >> 32) & (d->nshards - 1)];
}


static gl_shdict_node_t *
gl_shdict_lookup(gl_shdict_shard_t *s, uint32_t hash, const char *key,
    size_t key_len)
{
    gl_shdict_node_t  *n;

    for (n = s->buckets[hash & (s->nbuckets - 1)]; n; n = n->hnext) {
        if (n->hash == hash && n->key_len == key_len
            && memcmp(n->data, key, key_len) == 0)
        {
            return n;
        }
    }

    return NULL;
}


/* doubles the table; if calloc fails, the chains just grow longer */
static void
gl_shdict_grow_table(gl_shdict_shard_t *s)
{
    gl_shdict_node_t  **b, *n, *next;
    size_t              i, nb;

    if (s->nbuckets > SIZE_MAX / 2 / sizeof(*b)) {
        return;
    }

    nb = s->nbuckets * 2;

    b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return;
    }

    for (i = 0; i < s->nbuckets; i++) {
        for (n = s->buckets[i]; n; n = next) {
            next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }

    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}


/* adds n (its cost already reserved) as the most recently used */
static void
gl_shdict_link(gl_shdict_t *d, gl_shdict_shard_t *s, gl_shdict_node_t *n)
{
    gl_shdict_node_t  **b;

    b = &s->buckets[n->hash & (s->nbuckets - 1)];
    n->hnext = *b;
    *b = n;

    gl_shdict_queue_insert_head(&s->lru, &n->lru);
    atomic_store_explicit(&n->used, 0, gl_shdict_relaxed);
    n->stamp = gl_shdict_tick(d);

    if (++s->count > s->nbuckets) {
        gl_shdict_grow_table(s);
    }
}


/* takes n out; n goes to *garbage, for gl_shdict_free_garbage() once
   the lock is let go; its cost stays charged */
static void
gl_shdict_detach(gl_shdict_shard_t *s, gl_shdict_node_t *n,
    gl_shdict_node_t **garbage)
{
    gl_shdict_node_t  **p;

    for (p = &s->buckets[n->hash & (s->nbuckets - 1)]; *p != n;
         p = &(*p)->hnext)
    {
        gl_assert(*p != NULL);
    }

    *p = n->hnext;

    gl_shdict_queue_remove(&n->lru);
    s->count--;

    n->hnext = *garbage;
    *garbage = n;
}


/* takes n out and gives back its cost */
static void
gl_shdict_unlink(gl_shdict_t *d, gl_shdict_shard_t *s, gl_shdict_node_t *n,
    gl_shdict_node_t **garbage)
{
    gl_shdict_release(d, n->cost);
    gl_shdict_detach(s, n, garbage);
}


static void
gl_shdict_free_elts(gl_shdict_queue_t *h)
{
    gl_shdict_queue_t  *q, *next;

    for (q = h->next; q != h; q = next) {
        next = q->next;
        free(gl_shdict_elt(q));
    }

    gl_shdict_queue_init(h);
}


static void
gl_shdict_free_garbage(gl_shdict_node_t *n)
{
    gl_shdict_node_t  *next;

    for (; n; n = next) {
        next = n->hnext;

        if (n->type == GL_SHDICT_TLIST) {
            gl_shdict_free_elts(&n->u.list);
        }

        free(n);
    }
}


/* lets go of s, then frees the entries taken out under it */
static void
gl_shdict_wunlock_free(gl_shdict_t *d, gl_shdict_shard_t *s,
    gl_shdict_node_t **garbage)
{
    gl_shdict_wunlock(d, s);
    gl_shdict_free_garbage(*garbage);
    *garbage = NULL;
}


/* n is queued again as the most recently used */
static void
gl_shdict_touch(gl_shdict_t *d, gl_shdict_shard_t *s, gl_shdict_node_t *n)
{
    gl_shdict_queue_remove(&n->lru);
    gl_shdict_queue_insert_head(&s->lru, &n->lru);
    atomic_store_explicit(&n->used, 0, gl_shdict_relaxed);
    n->stamp = gl_shdict_tick(d);
}


/* a use of n in place, maybe under a read lock: no structure changes;
   we store only when the bit is not set yet, so that a hot key's cache
   line stays shared between readers */
static void
gl_shdict_use(gl_shdict_node_t *n)
{
    if (!atomic_load_explicit(&n->used, gl_shdict_relaxed)) {
        atomic_store_explicit(&n->used, 1, gl_shdict_relaxed);
    }
}


/* as nginx on each write: frees up to 2 expired entries at the LRU tail */
static void
gl_shdict_expire_tail(gl_shdict_t *d, gl_shdict_shard_t *s, int64_t now_ms,
    gl_shdict_node_t **garbage)
{
    gl_shdict_node_t  *n;
    int                i;

    for (i = 0; i < 2 && !gl_shdict_queue_empty(&s->lru); i++) {
        n = gl_shdict_lru_node(s->lru.prev);

        if (!gl_shdict_expired(n, now_ms)) {
            return;
        }

        gl_shdict_unlink(d, s, n, garbage);
    }
}


/*
 * Evicts s's least recently used entry, unless it was read since it was
 * queued: then it gets a second chance at the head, and the caller looks
 * again for the oldest tail of the dict.  Returns GL_SHDICT_EVICT_*.
 */
#define GL_SHDICT_EVICT_EMPTY    0
#define GL_SHDICT_EVICT_EXPIRED  1
#define GL_SHDICT_EVICT_LIVE     2
#define GL_SHDICT_EVICT_SPARED   3

static int
gl_shdict_evict_one(gl_shdict_t *d, gl_shdict_shard_t *s, int64_t now_ms,
    gl_shdict_node_t **garbage)
{
    gl_shdict_node_t  *n;

    if (gl_shdict_queue_empty(&s->lru)) {
        return GL_SHDICT_EVICT_EMPTY;
    }

    n = gl_shdict_lru_node(s->lru.prev);

    if (gl_shdict_expired(n, now_ms)) {
        gl_shdict_unlink(d, s, n, garbage);
        return GL_SHDICT_EVICT_EXPIRED;
    }

    if (atomic_load_explicit(&n->used, gl_shdict_relaxed)) {
        gl_shdict_touch(d, s, n);
        return GL_SHDICT_EVICT_SPARED;
    }

    gl_shdict_unlink(d, s, n, garbage);

    return GL_SHDICT_EVICT_LIVE;
}


static uint64_t
gl_shdict_oldest_other(gl_shdict_t *d, gl_shdict_shard_t *s)
{
    uint64_t  t, oldest = UINT64_MAX;
    unsigned  i;

    for (i = 0; i < d->nshards; i++) {
        if (&d->shards[i] != s) {
            t = atomic_load_explicit(&d->shards[i].tail_stamp,
                                     gl_shdict_relaxed);
            oldest = gl_min(oldest, t);
        }
    }

    return oldest;
}


/*
 * With s write-locked: reserves need bytes, evicting from s while its
 * tail is the oldest of the dict's tails.  Returns 0 when another shard
 * holds older entries, or s is empty.  It ends: under the write lock no
 * "used" bit of s is set, so each entry is spared at most once.
 */
static int
gl_shdict_reserve_local(gl_shdict_t *d, gl_shdict_shard_t *s, size_t need,
    int64_t now_ms, int *forcible, gl_shdict_node_t **garbage)
{
    gl_shdict_node_t  *tail;
    int                rc;

    for ( ;; ) {
        if (gl_shdict_reserve(d, need)) {
            return 1;
        }

        if (gl_shdict_queue_empty(&s->lru)) {
            return 0;
        }

        tail = gl_shdict_lru_node(s->lru.prev);

        if (!gl_shdict_expired(tail, now_ms)
            && tail->stamp > gl_shdict_oldest_other(d, s))
        {
            return 0;
        }

        rc = gl_shdict_evict_one(d, s, now_ms, garbage);

        if (rc == GL_SHDICT_EVICT_EMPTY) {
            return 0;
        }

        if (rc == GL_SHDICT_EVICT_LIVE) {
            *forcible = 1;
        }
    }
}


/*
 * With no lock held: evicts the oldest tail of the dict, shard by shard,
 * until need bytes are reserved.  Returns 0 if the dict ran out of entries
 * (the rest is reserved by stores in flight) or after max_evict tries.
 */
static int
gl_shdict_make_room(gl_shdict_t *d, size_t need, int64_t now_ms,
    int *forcible)
{
    gl_shdict_shard_t  *s, *best;
    gl_shdict_node_t   *garbage;
    uint64_t            t, oldest;
    size_t              n;
    unsigned            i;
    int                 rc;

    for (n = 0; n < d->max_evict; n++) {
        if (gl_shdict_reserve(d, need)) {
            return 1;
        }

        best = NULL;
        oldest = UINT64_MAX;

        for (i = 0; i < d->nshards; i++) {
            s = &d->shards[i];
            t = atomic_load_explicit(&s->tail_stamp, gl_shdict_relaxed);

            if (t < oldest) {
                oldest = t;
                best = s;
            }
        }

        if (best == NULL) {
            return 0;
        }

        garbage = NULL;

        gl_shdict_wlock(d, best);
        rc = gl_shdict_evict_one(d, best, now_ms, &garbage);
        gl_shdict_wunlock(d, best);

        gl_shdict_free_garbage(garbage);

        if (rc == GL_SHDICT_EVICT_LIVE) {
            *forcible = 1;
        }
    }

    return gl_shdict_reserve(d, need);
}


static int
gl_shdict_check_key(size_t key_len)
{
    if (key_len == 0) {
        return GL_SHDICT_EMPTY_KEY;
    }

    if (key_len > GL_SHDICT_MAX_KEY_LEN) {
        return GL_SHDICT_KEY_TOO_LONG;
    }

    return GL_SHDICT_OK;
}


static int
gl_shdict_grow_buf(char **buf, size_t *buf_size, size_t need)
{
    size_t   size;
    char    *p;

    size = gl_max(need, 256);

    if (*buf_size <= SIZE_MAX / 2) {
        size = gl_max(size, *buf_size * 2);
    }

    p = realloc(*buf, size);
    if (p == NULL) {
        return GL_SHDICT_NO_MEMORY;
    }

    *buf = p;
    *buf_size = size;

    return GL_SHDICT_OK;
}


/* the registry */

static void
gl_shdict_free(gl_shdict_t *d, unsigned nshards)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *next, *garbage;
    size_t              b;
    unsigned            i;

    for (i = 0; i < nshards; i++) {
        s = &d->shards[i];
        garbage = NULL;

        for (b = 0; b < s->nbuckets; b++) {
            for (n = s->buckets[b]; n; n = next) {
                next = n->hnext;
                n->hnext = garbage;
                garbage = n;
            }
        }

        gl_shdict_free_garbage(garbage);
        free(s->buckets);
        (void) pthread_mutex_destroy(&s->mutex);
        (void) pthread_rwlock_destroy(&s->rwlock);
    }

    free(d->shards);
    free(d->name);
    free(d);
}


static int
gl_shdict_init_shard(gl_shdict_shard_t *s, size_t nbuckets)
{
    pthread_rwlockattr_t  attr;
    int                   rc;

    s->buckets = calloc(nbuckets, sizeof(gl_shdict_node_t *));
    if (s->buckets == NULL) {
        return ENOMEM;
    }

    s->nbuckets = nbuckets;
    gl_shdict_queue_init(&s->lru);
    atomic_init(&s->tail_stamp, UINT64_MAX);
    atomic_init(&s->spin, 0);

    rc = pthread_mutex_init(&s->mutex, NULL);
    if (rc != 0) {
        free(s->buckets);
        return rc;
    }

    rc = pthread_rwlockattr_init(&attr);
    if (rc == 0) {
#ifdef __GLIBC__
        /* glibc lets a stream of readers starve a writer otherwise */
        (void) pthread_rwlockattr_setkind_np(&attr,
                   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
        rc = pthread_rwlock_init(&s->rwlock, &attr);
        (void) pthread_rwlockattr_destroy(&attr);
    }

    if (rc != 0) {
        (void) pthread_mutex_destroy(&s->mutex);
        free(s->buckets);
        return rc;
    }

    return 0;
}


static gl_shdict_t *
gl_shdict_new(const char *name, size_t size, unsigned nshards,
    unsigned flags)
{
    gl_shdict_t  *d;
    size_t        nbuckets, want;
    unsigned      i;
    int           rc;

    d = aligned_alloc(alignof(gl_shdict_t), sizeof(gl_shdict_t));
    if (d == NULL) {
        return NULL;
    }

    memset(d, 0, sizeof(*d));
    atomic_init(&d->used, 0);
    atomic_init(&d->tick, 0);
    atomic_init(&d->expire_next, 0);

    d->name_len = strlen(name);
    d->name = malloc(d->name_len + 1);
    d->shards = aligned_alloc(alignof(gl_shdict_shard_t),
                              nshards * sizeof(gl_shdict_shard_t));

    if (d->name == NULL || d->shards == NULL) {
        free(d->shards);
        free(d->name);
        free(d);
        errno = ENOMEM;
        return NULL;
    }

    memcpy(d->name, name, d->name_len + 1);
    memset(d->shards, 0, nshards * sizeof(gl_shdict_shard_t));

    d->size = size;
    d->nshards = nshards;
    d->lock = (flags & GL_SHDICT_RWLOCK) ? GL_SHDICT_LOCK_RW
              : (flags & GL_SHDICT_MUTEX) ? GL_SHDICT_LOCK_MUTEX
              : GL_SHDICT_LOCK_SPIN;

    /* enough to empty the dict of its smallest entries, each spared
       once, and some */
    d->max_evict = 2 * (size / GL_SHDICT_NODE_COST) + 64;

    /* a bucket per 4 KB of budget, 16 to 4096 a shard; a table doubles
       when it holds more entries than buckets */
    want = size / nshards / 4096;
    for (nbuckets = 16; nbuckets < want && nbuckets < 4096; nbuckets *= 2) {
        /* void */
    }

    for (i = 0; i < nshards; i++) {
        rc = gl_shdict_init_shard(&d->shards[i], nbuckets);
        if (rc != 0) {
            gl_shdict_free(d, i);
            errno = rc;
            return NULL;
        }
    }

    return d;
}


gl_shdict_t *
gl_shdict_create(const char *name, size_t size)
{
    return gl_shdict_create_ex(name, size, 0, 0);
}


gl_shdict_t *
gl_shdict_create_ex(const char *name, size_t size, unsigned nshards,
    unsigned flags)
{
    gl_shdict_t  **a, *d;
    size_t         i, len;

    if (nshards == 0) {
        nshards = GL_SHDICT_SHARDS;
    }

    if (name == NULL || name[0] == '\0' || size < GL_SHDICT_MIN_SIZE
        || nshards > 256 || (nshards & (nshards - 1)) != 0)
    {
        errno = EINVAL;
        return NULL;
    }

    len = strlen(name);

    (void) pthread_mutex_lock(&gl_shdict_lock);

    for (i = 0; i < gl_shdict_n; i++) {
        if (gl_shdicts[i]->name_len == len
            && memcmp(gl_shdicts[i]->name, name, len) == 0)
        {
            (void) pthread_mutex_unlock(&gl_shdict_lock);
            errno = EEXIST;
            return NULL;
        }
    }

    if (!gl_shdict_seeded) {
        gl_shdict_seed();
    }

    if (gl_shdict_n == gl_shdict_cap) {
        a = realloc(gl_shdicts, (gl_shdict_cap + 8) * sizeof(*a));
        if (a == NULL) {
            (void) pthread_mutex_unlock(&gl_shdict_lock);
            errno = ENOMEM;
            return NULL;
        }

        gl_shdicts = a;
        gl_shdict_cap += 8;
    }

    d = gl_shdict_new(name, size, nshards, flags);
    if (d != NULL) {
        gl_shdicts[gl_shdict_n++] = d;
    }

    (void) pthread_mutex_unlock(&gl_shdict_lock);

    return d;
}


gl_shdict_t *
gl_shdict_find(const char *name, size_t len)
{
    gl_shdict_t  *d = NULL;
    size_t        i;

    (void) pthread_mutex_lock(&gl_shdict_lock);

    for (i = 0; i < gl_shdict_n; i++) {
        if (gl_shdicts[i]->name_len == len
            && memcmp(gl_shdicts[i]->name, name, len) == 0)
        {
            d = gl_shdicts[i];
            break;
        }
    }

    (void) pthread_mutex_unlock(&gl_shdict_lock);

    return d;
}


size_t
gl_shdict_count(void)
{
    size_t  n;

    (void) pthread_mutex_lock(&gl_shdict_lock);
    n = gl_shdict_n;
    (void) pthread_mutex_unlock(&gl_shdict_lock);

    return n;
}


gl_shdict_t *
gl_shdict_nth(size_t i)
{
    gl_shdict_t  *d = NULL;

    (void) pthread_mutex_lock(&gl_shdict_lock);

    if (i < gl_shdict_n) {
        d = gl_shdicts[i];
    }

    (void) pthread_mutex_unlock(&gl_shdict_lock);

    return d;
}


void
gl_shdict_destroy_all(void)
{
    size_t  i;

    (void) pthread_mutex_lock(&gl_shdict_lock);

    for (i = 0; i < gl_shdict_n; i++) {
        gl_shdict_free(gl_shdicts[i], gl_shdicts[i]->nshards);
    }

    free(gl_shdicts);
    gl_shdicts = NULL;
    gl_shdict_n = 0;
    gl_shdict_cap = 0;

    (void) pthread_mutex_unlock(&gl_shdict_lock);
}


const char *
gl_shdict_name(gl_shdict_t *d, size_t *len)
{
    if (len) {
        *len = d->name_len;
    }

    return d->name;
}


size_t
gl_shdict_capacity(gl_shdict_t *d)
{
    return d->size;
}


size_t
gl_shdict_free_space(gl_shdict_t *d)
{
    return d->size - atomic_load_explicit(&d->used, gl_shdict_relaxed);
}


size_t
gl_shdict_nkeys(gl_shdict_t *d)
{
    size_t              i, n;
    gl_shdict_shard_t  *s;

    n = 0;

    for (i = 0; i < d->nshards; i++) {
        s = &d->shards[i];
        gl_shdict_rlock(d, s);
        n += s->count;
        gl_shdict_runlock(d, s);
    }

    return n;
}


const char *
gl_shdict_strerror(int rc)
{
    switch (rc) {
    case GL_SHDICT_OK:
        return "ok";
    case GL_SHDICT_NOT_FOUND:
        return "not found";
    case GL_SHDICT_EXISTS:
        return "exists";
    case GL_SHDICT_NO_MEMORY:
        return "no memory";
    case GL_SHDICT_NOT_NUMBER:
        return "not a number";
    case GL_SHDICT_NOT_LIST:
        return "value not a list";
    case GL_SHDICT_IS_LIST:
        return "value is a list";
    case GL_SHDICT_BAD_VALUE:
        return "bad value type";
    case GL_SHDICT_NIL_VALUE:
        return "attempt to add or replace nil values";
    case GL_SHDICT_EMPTY_KEY:
        return "empty key";
    case GL_SHDICT_KEY_TOO_LONG:
        return "key too long";
    default:
        return "unknown error";
    }
}


/* the operations */

int
gl_shdict_get(gl_shdict_t *d, const char *key, size_t key_len, double now,
    int stale_ok, gl_shdict_value_t *v, int *stale, char **buf,
    size_t *buf_size)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    uint64_t            h;
    int64_t             now_ms;
    size_t              need;
    int                 rc, expired;

    v->type = GL_SHDICT_TNIL;
    v->flags = 0;

    if (stale) {
        *stale = 0;
    }

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    for ( ;; ) {
        gl_shdict_rlock(d, s);

        n = gl_shdict_lookup(s, (uint32_t) h, key, key_len);

        expired = n && gl_shdict_expired(n, now_ms);

        if (n == NULL || (expired && !stale_ok)) {
            gl_shdict_runlock(d, s);
            return GL_SHDICT_OK;
        }

        if (n->type == GL_SHDICT_TLIST) {
            gl_shdict_runlock(d, s);
            return GL_SHDICT_IS_LIST;
        }

        if (n->type == GL_SHDICT_TSTRING && n->value_len > *buf_size) {
            need = n->value_len;
            gl_shdict_runlock(d, s);

            /* the value may change meanwhile: we look again */
            rc = gl_shdict_grow_buf(buf, buf_size, need);
            if (rc != GL_SHDICT_OK) {
                return rc;
            }

            continue;
        }

        break;
    }

    v->type = n->type;
    v->flags = n->flags;

    switch (n->type) {
    case GL_SHDICT_TNUMBER:
        v->num = n->u.num;
        break;
    case GL_SHDICT_TBOOLEAN:
        v->boolean = n->u.boolean;
        break;
    default: /* GL_SHDICT_TSTRING */
        v->len = n->value_len;
        if (v->len) {
            memcpy(*buf, n->data + n->key_len, v->len);
            v->str = *buf;
        } else {
            v->str = "";
        }
        break;
    }

    if (!expired) {
        gl_shdict_use(n);
    }

    gl_shdict_runlock(d, s);

    if (stale) {
        *stale = expired;
    }

    return GL_SHDICT_OK;
}


int
gl_shdict_store(gl_shdict_t *d, int op, const char *key, size_t key_len,
    const gl_shdict_value_t *v, double exptime, double now, int *forcible)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *old, *garbage;
    uint64_t            h;
    int64_t             now_ms;
    size_t              vlen, cost, held;
    int                 rc, live, reserved, first, evicted;

    evicted = 0;
    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        goto out;
    }

    switch (v->type) {
    case GL_SHDICT_TNIL:
        if (op & (GL_SHDICT_ADD | GL_SHDICT_REPLACE)) {
            rc = GL_SHDICT_NIL_VALUE;
            goto out;
        }
        /* fall through */
    case GL_SHDICT_TBOOLEAN:
    case GL_SHDICT_TNUMBER:
        vlen = 0;
        break;
    case GL_SHDICT_TSTRING:
        vlen = v->len;
        if (vlen > UINT32_MAX) {
            rc = GL_SHDICT_NO_MEMORY;
            goto out;
        }
        break;
    default:
        rc = GL_SHDICT_BAD_VALUE;
        goto out;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    n = NULL;
    cost = 0;

    if (v->type != GL_SHDICT_TNIL) {
        cost = GL_SHDICT_NODE_COST + key_len + vlen;

        /* nothing to evict for a value larger than the dict */
        if (cost > d->size) {
            rc = GL_SHDICT_NO_MEMORY;
            goto out;
        }

        n = malloc(sizeof(gl_shdict_node_t) + key_len + vlen);
        if (n == NULL) {
            rc = GL_SHDICT_NO_MEMORY;
            goto out;
        }

        n->cost = cost;
        n->expires = gl_shdict_expires(exptime, now_ms);
        n->hash = (uint32_t) h;
        n->flags = v->flags;
        n->value_len = (uint32_t) vlen;
        n->key_len = (uint16_t) key_len;
        n->type = (uint8_t) v->type;
        atomic_init(&n->used, 0);

        memcpy(n->data, key, key_len);

        if (v->type == GL_SHDICT_TNUMBER) {
            n->u.num = v->num;

        } else if (v->type == GL_SHDICT_TBOOLEAN) {
            n->u.boolean = v->boolean != 0;

        } else if (vlen) {
            memcpy(n->data + key_len, v->str, vlen);
        }
    }

    garbage = NULL;
    reserved = 0;
    first = 1;

    for ( ;; ) {
        gl_shdict_wlock(d, s);

        gl_shdict_expire_tail(d, s, now_ms, &garbage);

        old = gl_shdict_lookup(s, (uint32_t) h, key, key_len);
        live = old && !gl_shdict_expired(old, now_ms);

        if ((op & GL_SHDICT_ADD) && live) {
            rc = GL_SHDICT_EXISTS;
            break;
        }

        /* after a retry, the key we replaced is gone: that is us */
        if ((op & GL_SHDICT_REPLACE) && first && !live) {
            rc = GL_SHDICT_NOT_FOUND;
            break;
        }

        first = 0;
        held = 0;

        if (old) {
            held = old->cost;
            gl_shdict_detach(s, old, &garbage);
        }

        if (n == NULL) {
            gl_shdict_release(d, held);
            rc = GL_SHDICT_OK;
            break;
        }

        /*
         * the old entry's bytes go to the new one, so that a value no
         * larger than the one it replaces always fits, whatever the
         * other threads reserve meanwhile
         */
        if (reserved) {
            gl_shdict_release(d, held);

        } else if (cost <= held) {
            gl_shdict_release(d, held - cost);

        } else if (!gl_shdict_reserve(d, cost - held)) {
            gl_shdict_release(d, held);

            if (op & GL_SHDICT_SAFE) {
                rc = GL_SHDICT_NO_MEMORY;
                break;
            }

            if (!gl_shdict_reserve_local(d, s, cost, now_ms, &evicted,
                                         &garbage))
            {
                gl_shdict_wunlock_free(d, s, &garbage);

                if (!gl_shdict_make_room(d, cost, now_ms, &evicted)) {
                    free(n);
                    rc = GL_SHDICT_NO_MEMORY;
                    goto out;
                }

                /* the key's state may have changed: look again */
                reserved = 1;
                continue;
            }
        }

        reserved = 0;
        gl_shdict_link(d, s, n);
        n = NULL;
        rc = GL_SHDICT_OK;
        break;
    }

    gl_shdict_wunlock_free(d, s, &garbage);

    free(n);

    if (reserved) {
        gl_shdict_release(d, cost);
    }

out:

    if (forcible) {
        *forcible = evicted;
    }

    return rc;
}


int
gl_shdict_delete(gl_shdict_t *d, const char *key, size_t key_len,
    double now)
{
    gl_shdict_value_t  v;

    memset(&v, 0, sizeof(v));
    v.type = GL_SHDICT_TNIL;

    return gl_shdict_store(d, GL_SHDICT_SET, key, key_len, &v, 0, now, NULL);
}


int
gl_shdict_incr(gl_shdict_t *d, const char *key, size_t key_len,
    double value, int has_init, double init, double init_ttl, double now,
    double *newval, int *forcible)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *old, *garbage;
    uint64_t            h;
    int64_t             now_ms, expires;
    size_t              cost;
    double              num;
    int                 rc, reserved, evicted;

    evicted = 0;
    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        goto out;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);
    expires = gl_shdict_expires(init_ttl, now_ms);
    cost = GL_SHDICT_NODE_COST + key_len;

    n = NULL;
    garbage = NULL;
    reserved = 0;

    for ( ;; ) {
        gl_shdict_wlock(d, s);

        gl_shdict_expire_tail(d, s, now_ms, &garbage);

        old = gl_shdict_lookup(s, (uint32_t) h, key, key_len);

        if (old && !gl_shdict_expired(old, now_ms)) {
            if (old->type != GL_SHDICT_TNUMBER) {
                rc = GL_SHDICT_NOT_NUMBER;
                break;
            }

            old->u.num += value;
            *newval = old->u.num;
            gl_shdict_use(old);
            rc = GL_SHDICT_OK;
            break;
        }

        if (!has_init) {
            rc = GL_SHDICT_NOT_FOUND;
            break;
        }

        num = init + value;

        if (old && old->type == GL_SHDICT_TNUMBER) {
            /* an expired number: it takes the new value, as in nginx */
            old->u.num = num;
            old->flags = 0;
            old->expires = expires;
            gl_shdict_touch(d, s, old);
            *newval = num;
            rc = GL_SHDICT_OK;
            break;
        }

        if (cost > d->size) {
            rc = GL_SHDICT_NO_MEMORY;
            break;
        }

        if (n == NULL) {
            gl_shdict_wunlock_free(d, s, &garbage);

            n = malloc(sizeof(gl_shdict_node_t) + key_len);
            if (n == NULL) {
                rc = GL_SHDICT_NO_MEMORY;
                goto out;
            }

            n->cost = cost;
            n->hash = (uint32_t) h;
            n->value_len = 0;
            n->key_len = (uint16_t) key_len;
            n->type = GL_SHDICT_TNUMBER;
            atomic_init(&n->used, 0);
            memcpy(n->data, key, key_len);

            continue;
        }

        if (old) {
            gl_shdict_unlink(d, s, old, &garbage);
        }

        if (!reserved && !gl_shdict_reserve(d, cost)
            && !gl_shdict_reserve_local(d, s, cost, now_ms, &evicted,
                                        &garbage))
        {
            gl_shdict_wunlock_free(d, s, &garbage);

            if (!gl_shdict_make_room(d, cost, now_ms, &evicted)) {
                free(n);
                rc = GL_SHDICT_NO_MEMORY;
                goto out;
            }

            reserved = 1;
            continue;
        }

        reserved = 0;
        n->u.num = num;
        n->flags = 0;
        n->expires = expires;
        gl_shdict_link(d, s, n);
        n = NULL;
        *newval = num;
        rc = GL_SHDICT_OK;
        break;
    }

    gl_shdict_wunlock_free(d, s, &garbage);

    if (n != NULL) {            /* not on the hot path: a call saved */
        free(n);
    }

    if (reserved) {
        gl_shdict_release(d, cost);
    }

out:

    if (forcible) {
        *forcible = evicted;
    }

    return rc;
}


int
gl_shdict_push(gl_shdict_t *d, const char *key, size_t key_len, int left,
    const gl_shdict_value_t *v, double now, size_t *len)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *old, *list, *garbage;
    gl_shdict_elt_t    *e;
    gl_shdict_queue_t   elts;
    uint64_t            h;
    int64_t             now_ms;
    size_t              vlen, ecost;
    int                 rc, fresh;

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    if (v->type == GL_SHDICT_TNUMBER) {
        vlen = sizeof(double);

    } else if (v->type == GL_SHDICT_TSTRING) {
        vlen = v->len;
        if (vlen > UINT32_MAX) {
            return GL_SHDICT_NO_MEMORY;
        }

    } else {
        return GL_SHDICT_BAD_VALUE;
    }

    ecost = GL_SHDICT_ELT_COST + vlen;
    if (ecost > d->size) {
        return GL_SHDICT_NO_MEMORY;
    }

    e = malloc(sizeof(gl_shdict_elt_t) + vlen);
    if (e == NULL) {
        return GL_SHDICT_NO_MEMORY;
    }

    e->len = (uint32_t) vlen;
    e->type = (uint8_t) v->type;

    if (v->type == GL_SHDICT_TNUMBER) {
        memcpy(e->data, &v->num, sizeof(double));

    } else if (vlen) {
        memcpy(e->data, v->str, vlen);
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    n = NULL;
    garbage = NULL;
    fresh = 0;
    gl_shdict_queue_init(&elts);

    for ( ;; ) {
        gl_shdict_wlock(d, s);

        gl_shdict_expire_tail(d, s, now_ms, &garbage);

        old = gl_shdict_lookup(s, (uint32_t) h, key, key_len);

        if (old && !gl_shdict_expired(old, now_ms)) {
            if (old->type != GL_SHDICT_TLIST) {
                rc = GL_SHDICT_NOT_LIST;
                break;
            }

            list = old;

        } else if (old && old->type == GL_SHDICT_TLIST) {
            /* an expired list starts again empty, as in nginx */
            gl_shdict_queue_move(&old->u.list, &elts);
            gl_shdict_release(d, old->cost - GL_SHDICT_NODE_COST - key_len);
            old->cost = GL_SHDICT_NODE_COST + key_len;
            old->value_len = 0;
            old->expires = 0;
            old->flags = 0;
            gl_shdict_touch(d, s, old);
            list = old;
            fresh = 1;

        } else {
            if (n == NULL) {
                gl_shdict_wunlock_free(d, s, &garbage);

                n = malloc(sizeof(gl_shdict_node_t) + key_len);
                if (n == NULL) {
                    free(e);
                    return GL_SHDICT_NO_MEMORY;
                }

                n->cost = GL_SHDICT_NODE_COST + key_len;
                n->expires = 0;
                n->hash = (uint32_t) h;
                n->flags = 0;
                n->value_len = 0;
                n->key_len = (uint16_t) key_len;
                n->type = GL_SHDICT_TLIST;
                atomic_init(&n->used, 0);
                gl_shdict_queue_init(&n->u.list);
                memcpy(n->data, key, key_len);

                continue;
            }

            if (old) {
                gl_shdict_unlink(d, s, old, &garbage);
            }

            if (!gl_shdict_reserve(d, n->cost)) {
                rc = GL_SHDICT_NO_MEMORY;
                break;
            }

            gl_shdict_link(d, s, n);
            list = n;
            n = NULL;
            fresh = 1;
        }

        if (!gl_shdict_reserve(d, ecost)) {
            if (list->value_len == 0) {
                gl_shdict_unlink(d, s, list, &garbage);
            }

            rc = GL_SHDICT_NO_MEMORY;
            break;
        }

        if (left) {
            gl_shdict_queue_insert_head(&list->u.list, &e->q);
        } else {
            gl_shdict_queue_insert_tail(&list->u.list, &e->q);
        }

        e = NULL;
        list->cost += ecost;
        *len = ++list->value_len;

        if (!fresh) {
            gl_shdict_use(list);
        }

        rc = GL_SHDICT_OK;
        break;
    }

    gl_shdict_wunlock_free(d, s, &garbage);
    gl_shdict_free_elts(&elts);

    free(e);
    free(n);

    return rc;
}


int
gl_shdict_pop(gl_shdict_t *d, const char *key, size_t key_len, int left,
    double now, gl_shdict_value_t *v, char **buf, size_t *buf_size)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *garbage;
    gl_shdict_elt_t    *e;
    gl_shdict_queue_t  *q;
    uint64_t            h;
    int64_t             now_ms;
    size_t              need;
    int                 rc;

    v->type = GL_SHDICT_TNIL;
    v->flags = 0;

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    garbage = NULL;
    e = NULL;

    for ( ;; ) {
        gl_shdict_wlock(d, s);

        gl_shdict_expire_tail(d, s, now_ms, &garbage);

        n = gl_shdict_lookup(s, (uint32_t) h, key, key_len);

        if (n == NULL || gl_shdict_expired(n, now_ms)) {
            rc = GL_SHDICT_OK;
            break;
        }

        if (n->type != GL_SHDICT_TLIST) {
            rc = GL_SHDICT_NOT_LIST;
            break;
        }

        gl_assert(!gl_shdict_queue_empty(&n->u.list));

        q = left ? n->u.list.next : n->u.list.prev;
        e = gl_shdict_elt(q);

        if (e->type == GL_SHDICT_TSTRING && e->len > *buf_size) {
            need = e->len;
            e = NULL;
            gl_shdict_wunlock_free(d, s, &garbage);

            rc = gl_shdict_grow_buf(buf, buf_size, need);
            if (rc != GL_SHDICT_OK) {
                return rc;
            }

            continue;
        }

        v->type = e->type;

        if (e->type == GL_SHDICT_TNUMBER) {
            memcpy(&v->num, e->data, sizeof(double));

        } else if (e->len) {
            memcpy(*buf, e->data, e->len);
            v->str = *buf;
            v->len = e->len;

        } else {
            v->str = "";
            v->len = 0;
        }

        gl_shdict_queue_remove(q);
        n->cost -= GL_SHDICT_ELT_COST + e->len;
        gl_shdict_release(d, GL_SHDICT_ELT_COST + e->len);

        if (--n->value_len == 0) {
            gl_shdict_unlink(d, s, n, &garbage);
        } else {
            gl_shdict_use(n);
        }

        rc = GL_SHDICT_OK;
        break;
    }

    gl_shdict_wunlock_free(d, s, &garbage);

    free(e);

    return rc;
}


int
gl_shdict_llen(gl_shdict_t *d, const char *key, size_t key_len, double now,
    size_t *len)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    uint64_t            h;
    int64_t             now_ms;
    int                 rc;

    *len = 0;

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    gl_shdict_rlock(d, s);

    n = gl_shdict_lookup(s, (uint32_t) h, key, key_len);

    if (n && !gl_shdict_expired(n, now_ms)) {
        if (n->type == GL_SHDICT_TLIST) {
            *len = n->value_len;
            gl_shdict_use(n);

        } else {
            rc = GL_SHDICT_NOT_LIST;
        }
    }

    gl_shdict_runlock(d, s);

    return rc;
}


int
gl_shdict_ttl(gl_shdict_t *d, const char *key, size_t key_len, double now,
    double *ttl)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    uint64_t            h;
    int64_t             now_ms, expires;
    int                 rc;

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    now_ms = gl_shdict_now_ms(now);

    gl_shdict_rlock(d, s);

    n = gl_shdict_lookup(s, (uint32_t) h, key, key_len);
    expires = n ? n->expires : 0;

    gl_shdict_runlock(d, s);

    if (n == NULL) {
        return GL_SHDICT_NOT_FOUND;
    }

    *ttl = expires ? (double) (expires - now_ms) / 1000 : 0;

    return GL_SHDICT_OK;
}


int
gl_shdict_set_expire(gl_shdict_t *d, const char *key, size_t key_len,
    double exptime, double now)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    uint64_t            h;
    int64_t             expires;
    int                 rc;

    rc = gl_shdict_check_key(key_len);
    if (rc != GL_SHDICT_OK) {
        return rc;
    }

    h = gl_shdict_hash(key, key_len);
    s = gl_shdict_shard(d, h);
    expires = gl_shdict_expires(exptime, gl_shdict_now_ms(now));

    gl_shdict_wlock(d, s);

    n = gl_shdict_lookup(s, (uint32_t) h, key, key_len);
    if (n) {
        n->expires = expires;
    }

    gl_shdict_wunlock(d, s);

    return n ? GL_SHDICT_OK : GL_SHDICT_NOT_FOUND;
}


void
gl_shdict_flush_all(gl_shdict_t *d)
{
    gl_shdict_shard_t  *s;
    gl_shdict_queue_t  *q;
    unsigned            i;

    for (i = 0; i < d->nshards; i++) {
        s = &d->shards[i];

        gl_shdict_wlock(d, s);

        for (q = s->lru.next; q != &s->lru; q = q->next) {
            gl_shdict_lru_node(q)->expires = GL_SHDICT_FLUSHED;
        }

        gl_shdict_wunlock(d, s);
    }
}


size_t
gl_shdict_flush_expired(gl_shdict_t *d, double now, size_t max)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *garbage;
    gl_shdict_queue_t  *q, *prev;
    int64_t             now_ms;
    size_t              freed;
    unsigned            i;

    now_ms = gl_shdict_now_ms(now);
    freed = 0;

    for (i = 0; i < d->nshards && (max == 0 || freed < max); i++) {
        s = &d->shards[i];
        garbage = NULL;

        gl_shdict_wlock(d, s);

        for (q = s->lru.prev; q != &s->lru; q = prev) {
            prev = q->prev;
            n = gl_shdict_lru_node(q);

            if (gl_shdict_expired(n, now_ms)) {
                gl_shdict_unlink(d, s, n, &garbage);

                if (++freed == max) {
                    break;
                }
            }
        }

        gl_shdict_wunlock_free(d, s, &garbage);
    }

    return freed;
}


int
gl_shdict_get_keys(gl_shdict_t *d, double now, size_t max, char **buf,
    size_t *buf_size, size_t *nkeys, size_t *len)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n;
    gl_shdict_queue_t  *q;
    int64_t             now_ms;
    size_t              count, pos, need, start_count, start_pos;
    u_char             *p;
    unsigned            i;
    int                 rc;

    now_ms = gl_shdict_now_ms(now);
    count = 0;
    pos = 0;

    for (i = 0; i < d->nshards && (max == 0 || count < max); i++) {
        s = &d->shards[i];
        start_count = count;
        start_pos = pos;

        for ( ;; ) {
            need = 0;

            gl_shdict_rlock(d, s);

            for (q = s->lru.prev; q != &s->lru; q = q->prev) {
                n = gl_shdict_lru_node(q);

                if (gl_shdict_expired(n, now_ms)) {
                    continue;
                }

                if (need == 0 && pos + 2 + n->key_len <= *buf_size) {
                    p = (u_char *) *buf + pos;
                    p[0] = (u_char) (n->key_len & 0xff);
                    p[1] = (u_char) (n->key_len >> 8);
                    memcpy(p + 2, n->data, n->key_len);

                } else {
                    /* out of room: count what this shard needs */
                    need += 2 + n->key_len;
                }

                pos += 2 + n->key_len;

                if (++count == max) {
                    break;
                }
            }

            gl_shdict_runlock(d, s);

            if (need == 0) {
                break;
            }

            rc = gl_shdict_grow_buf(buf, buf_size, pos);
            if (rc != GL_SHDICT_OK) {
                return rc;
            }

            count = start_count;
            pos = start_pos;
        }
    }

    *nkeys = count;
    *len = pos;

    return GL_SHDICT_OK;
}


size_t
gl_shdict_expire(gl_shdict_t *d, double now, size_t max)
{
    gl_shdict_shard_t  *s;
    gl_shdict_node_t   *n, *next, *garbage;
    int64_t             now_ms;
    size_t              left, chunk, buckets, freed;
    unsigned            i, shard;
    int                 done;

    now_ms = gl_shdict_now_ms(now);
    left = max;
    freed = 0;

    /* shard after shard, each from its cursor to the end of its table,
       from where the last call stopped */
    shard = atomic_load_explicit(&d->expire_next, gl_shdict_relaxed);

    for (i = 0; i < d->nshards && left > 0; i++) {
        shard = (shard + (i ? 1 : 0)) & (d->nshards - 1);
        s = &d->shards[shard];

        do {
            garbage = NULL;
            chunk = 0;
            buckets = 0;

            gl_shdict_wlock(d, s);

            while (chunk + buckets < gl_min(GL_SHDICT_EXPIRE_CHUNK, left)
                   && s->cursor < s->nbuckets && s->count)
            {
                for (n = s->buckets[s->cursor]; n; n = next) {
                    next = n->hnext;
                    chunk++;

                    if (gl_shdict_expired(n, now_ms)) {
                        gl_shdict_unlink(d, s, n, &garbage);
                        freed++;
                    }
                }

                s->cursor++;
                buckets++;
            }

            done = s->cursor >= s->nbuckets || s->count == 0;

            if (done) {
                s->cursor = 0;
            }

            gl_shdict_wunlock_free(d, s, &garbage);

            left -= gl_min(chunk + buckets, left);

        } while (left > 0 && !done);
    }

    atomic_store_explicit(&d->expire_next,
                          left ? (shard + 1) & (d->nshards - 1) : shard,
                          gl_shdict_relaxed);

    return freed;
}


size_t
gl_shdict_expire_all(double now, size_t max)
{
    gl_shdict_t  *d;
    size_t        i, freed;

    freed = 0;

    for (i = 0; (d = gl_shdict_nth(i)) != NULL; i++) {
        freed += gl_shdict_expire(d, now, max);
    }

    return freed;
}
