/*
 * The counters of the status page (docs/status.md): one slot per worker
 * number and a few for the whole process, all in static memory, so that
 * any thread may read any of them at any time.
 *
 * A worker's slot is written by that worker's thread alone (and, before
 * its thread starts, by the thread that starts it): a counter goes up with
 * a relaxed load and store, no locked instruction, and other threads read
 * it with relaxed loads (a value may be a few events old, never torn).
 * The process-wide counters are written by one thread each (the acceptor,
 * the watchdog) or rarely, with an atomic add.
 */
#ifndef GL_STAT_H
#define GL_STAT_H

#include "gl_core.h"

#include <stdalign.h>
#include <stdatomic.h>

/* workers (1024 at most) and as many started in place of stuck ones */
#define GL_STAT_WORKERS_MAX     2048
#define GL_STAT_LISTEN_MAX      16      /* GL_CONF_MAX_LISTEN */

/* the request latency histogram: upper bounds in seconds, then one bucket
   above the last */
#define GL_STAT_LATENCY_BOUNDS  11
extern const double  gl_stat_latency_le[GL_STAT_LATENCY_BOUNDS];

/* a worker slot's state */
#define GL_STAT_UNUSED          0
#define GL_STAT_RUNNING         1
#define GL_STAT_EXITING         2   /* a graceful stop: finishing requests */
#define GL_STAT_EXITED          3
#define GL_STAT_RETIRED         4   /* its Lua state panicked */

/* responses by class: 1xx .. 5xx, and none of them (no status: the client
   went away before the answer) */
#define GL_STAT_CLASSES         6

typedef _Atomic uint64_t  gl_stat_counter_t;
typedef _Atomic int64_t   gl_stat_gauge_t;

typedef struct {
    alignas(64)
    atomic_int          state;          /* GL_STAT_* */
    gl_stat_counter_t   starts;         /* a worker began in the slot */

    /* the FastCGI side */
    gl_stat_counter_t   conns;          /* connections taken */
    gl_stat_gauge_t     conns_open;
    gl_stat_counter_t   conns_refused;  /* worker_connections was full */
    gl_stat_counter_t   client_timeouts;    /* closed by client_timeout */
    gl_stat_counter_t   keepalive_closes;   /* by keepalive_timeout */
    gl_stat_counter_t   requests;
    gl_stat_gauge_t     requests_active;
    gl_stat_counter_t   responses[GL_STAT_CLASSES];
    gl_stat_counter_t   latency[GL_STAT_LATENCY_BOUNDS + 1];
    gl_stat_counter_t   latency_us;     /* the sum, in microseconds */

    /* the Lua side */
    gl_stat_gauge_t     lua_gen;
    gl_stat_counter_t   lua_reloads;
    gl_stat_counter_t   lua_reloads_failed;
    gl_stat_gauge_t     lua_heap;       /* bytes, as of its last Lua run */
    gl_stat_counter_t   lua_interrupted;    /* runs cut by lua_max_run_time */
    gl_stat_counter_t   lua_block_warnings; /* lua_block_warn_time passed */
    gl_stat_gauge_t     timers_pending;
    gl_stat_gauge_t     timers_running;
    gl_stat_gauge_t     tcp_pools;
    gl_stat_gauge_t     tcp_idle;       /* idle connections in them */

    /* the worker's thread's own: the bytes its Lua states hold now
       (lua_heap is published from it) */
    size_t              lua_heap_own;
} gl_stat_worker_t;

typedef struct {
    double              start_time;     /* the process's, Unix time */
    double              start_mono;     /* the same, CLOCK_MONOTONIC */
    gl_stat_counter_t   accepted;       /* by the acceptor */
    gl_stat_counter_t   denied;         /* closed by allow / deny */
    gl_stat_counter_t   accept_errors;  /* accept4() failed for want of
                                           descriptors or memory */
    gl_stat_counter_t   workers_stuck;  /* found stuck in Lua code */
    gl_stat_counter_t   workers_retired;    /* after a Lua panic */
    atomic_int          nworkers;       /* slots used: highest number + 1 */

    /* the listening sockets, set once before any worker starts: what the
       status page shows (the sockets open, whatever a reload's config
       says), found among the kernel's by their inode */
    int                 nlisten;
    struct {
        const char     *text;           /* the listen line's address */
        uint64_t        ino;            /* the socket's inode */
    }                   listen[GL_STAT_LISTEN_MAX];
} gl_stat_process_t;

extern gl_stat_process_t  gl_stat;

/* the slot of worker id; for an id out of range (-1: no worker), a slot
   of the calling thread's own that nobody reads */
gl_stat_worker_t *gl_stat_worker(int id);

/* a worker is about to start in slot id (from the thread that starts it,
   before the worker's thread runs): what a worker before it in the slot
   left of its gauges is cleared; the worker's thread then sets its state
   to GL_STAT_RUNNING */
void gl_stat_worker_start(int id);

/* the monotonic clock, in seconds */
double gl_stat_now(void);

/* a request of the slot's worker ended, after secs, with that status (0:
   none was sent) */
void gl_stat_request_end(gl_stat_worker_t *st, double secs, int status);

/* a counter or gauge of the calling thread's own slot */
static inline void
gl_stat_add(gl_stat_counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
                             + n, memory_order_relaxed);
}

static inline void
gl_stat_gauge_add(gl_stat_gauge_t *g, int64_t n)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed)
                             + n, memory_order_relaxed);
}

static inline void
gl_stat_gauge_set(gl_stat_gauge_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

/* a read, from any thread */
#define gl_stat_get(p)  atomic_load_explicit(p, memory_order_relaxed)

#endif /* GL_STAT_H */
