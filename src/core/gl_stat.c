/*
 * The counters of the status page (gl_stat.h).
 */
#include "gl_core.h"
#include "gl_stat.h"

#include <time.h>

const double  gl_stat_latency_le[GL_STAT_LATENCY_BOUNDS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

gl_stat_process_t  gl_stat;

static gl_stat_worker_t                 gl_stat_workers[GL_STAT_WORKERS_MAX];
static _Thread_local gl_stat_worker_t   gl_stat_nobody;


double
gl_stat_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}


/* the process's start: before main() */
__attribute__((constructor))
static void
gl_stat_init(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    gl_stat.start_time = (double) ts.tv_sec + ts.tv_nsec / 1e9;
    gl_stat.start_mono = gl_stat_now();
}


gl_stat_worker_t *
gl_stat_worker(int id)
{
    if (id < 0 || id >= GL_STAT_WORKERS_MAX) {
        return &gl_stat_nobody;
    }

    return &gl_stat_workers[id];
}


void
gl_stat_worker_start(int id)
{
    int                n;
    gl_stat_worker_t  *st;

    if (id < 0 || id >= GL_STAT_WORKERS_MAX) {
        return;
    }

    st = &gl_stat_workers[id];

    /* the counters go on from the worker before; what it had open or
       pending went with it */
    gl_stat_gauge_set(&st->conns_open, 0);
    gl_stat_gauge_set(&st->requests_active, 0);
    gl_stat_gauge_set(&st->lua_gen, 0);
    gl_stat_gauge_set(&st->lua_heap, 0);
    gl_stat_gauge_set(&st->timers_pending, 0);
    gl_stat_gauge_set(&st->timers_running, 0);
    gl_stat_gauge_set(&st->tcp_pools, 0);
    gl_stat_gauge_set(&st->tcp_idle, 0);
    st->lua_heap_own = 0;

    gl_stat_add(&st->starts, 1);

    n = atomic_load(&gl_stat.nworkers);
    while (n < id + 1
           && !atomic_compare_exchange_weak(&gl_stat.nworkers, &n, id + 1))
    {
        /* n has the current value again */
    }
}


void
gl_stat_request_end(gl_stat_worker_t *st, double secs, int status)
{
    int       i, c;
    uint64_t  us;

    for (i = 0; i < GL_STAT_LATENCY_BOUNDS; i++) {
        if (secs <= gl_stat_latency_le[i]) {
            break;
        }
    }

    gl_stat_add(&st->latency[i], 1);

    us = secs > 0 ? (uint64_t) (secs * 1e6 + 0.5) : 0;
    gl_stat_add(&st->latency_us, us);

    c = status / 100;
    gl_stat_add(&st->responses[(c >= 1 && c <= 5) ? c - 1 : 5], 1);

    gl_stat_gauge_add(&st->requests_active, -1);
}
