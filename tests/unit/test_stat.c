/*
 * Unit tests of the status page's counters (gl_stat.c, included): the
 * latency buckets and status classes of a request's end, the slots and
 * their restarts, and slots written by their threads while another
 * thread reads them (run under TSan by make test-tsan).
 */
#include "../../src/core/gl_stat.c"

#include <pthread.h>
#include <stdio.h>

#include "gl_test.h"


static void
test_request_end(void)
{
    int                i;
    uint64_t           n;
    gl_stat_worker_t  *st;

    st = gl_stat_worker(7);

    gl_stat_gauge_add(&st->requests_active, 8);

    gl_stat_request_end(st, 0, 200);
    gl_stat_request_end(st, 0.005, 204);        /* on the bound: in it */
    gl_stat_request_end(st, 0.0051, 404);
    gl_stat_request_end(st, 10, 499);
    gl_stat_request_end(st, 10.5, 500);         /* above the last bound */
    gl_stat_request_end(st, -0.001, 0);         /* a clock step back */
    gl_stat_request_end(st, 1, 600);
    gl_stat_request_end(st, 0.3, 101);

    CHECK(gl_stat_get(&st->latency[0]) == 3);
    CHECK(gl_stat_get(&st->latency[1]) == 1);
    CHECK(gl_stat_get(&st->latency[6]) == 1);   /* 0.3 <= 0.5 */
    CHECK(gl_stat_get(&st->latency[7]) == 1);   /* 1 <= 1 */
    CHECK(gl_stat_get(&st->latency[GL_STAT_LATENCY_BOUNDS - 1]) == 1);
    CHECK(gl_stat_get(&st->latency[GL_STAT_LATENCY_BOUNDS]) == 1);

    n = 0;
    for (i = 0; i <= GL_STAT_LATENCY_BOUNDS; i++) {
        n += gl_stat_get(&st->latency[i]);
    }
    CHECK(n == 8);

    /* microseconds: 5000 + 5100 + 10000000 + 10500000 + 1000000 + 300000 */
    CHECK(gl_stat_get(&st->latency_us) == 21810100);

    CHECK(gl_stat_get(&st->responses[0]) == 1);     /* 101 */
    CHECK(gl_stat_get(&st->responses[1]) == 2);
    CHECK(gl_stat_get(&st->responses[3]) == 2);     /* 404, 499 */
    CHECK(gl_stat_get(&st->responses[4]) == 1);
    CHECK(gl_stat_get(&st->responses[5]) == 2);     /* 0, 600 */
    CHECK(gl_stat_get(&st->requests_active) == 0);

    for (i = 1; i < GL_STAT_LATENCY_BOUNDS; i++) {
        CHECK(gl_stat_latency_le[i] > gl_stat_latency_le[i - 1]);
    }
    CHECK(gl_stat_latency_le[0] == 0.005);
    CHECK(gl_stat_latency_le[GL_STAT_LATENCY_BOUNDS - 1] == 10);
}


static void *
test_nobody_thread(void *arg)
{
    *(gl_stat_worker_t **) arg = gl_stat_worker(-1);
    gl_stat_add(&gl_stat_worker(-1)->requests, 1);

    return NULL;
}


static void
test_slots(void)
{
    pthread_t          t;
    gl_stat_worker_t  *st, *other;

    /* the process's start, before main() */
    CHECK(gl_stat.start_time > 1e9);
    CHECK(gl_stat.start_mono > 0 && gl_stat_now() >= gl_stat.start_mono);

    CHECK(atomic_load(&gl_stat.nworkers) == 0);

    st = gl_stat_worker(3);
    CHECK(st == gl_stat_worker(3) && st != gl_stat_worker(2));
    CHECK(((uintptr_t) st & 63) == 0);

    gl_stat_worker_start(3);
    CHECK(atomic_load(&gl_stat.nworkers) == 4);
    gl_stat_worker_start(1);
    CHECK(atomic_load(&gl_stat.nworkers) == 4);
    gl_stat_worker_start(GL_STAT_WORKERS_MAX);      /* out of range */
    CHECK(atomic_load(&gl_stat.nworkers) == 4);

    /* a worker starts again in the slot: the counters go on, what the
       old one had open does not */
    gl_stat_add(&st->requests, 5);
    gl_stat_gauge_add(&st->requests_active, 2);
    gl_stat_gauge_set(&st->timers_pending, 3);
    st->lua_heap_own = 1000;
    gl_stat_worker_start(3);
    CHECK(gl_stat_get(&st->starts) == 2);
    CHECK(gl_stat_get(&st->requests) == 5);
    CHECK(gl_stat_get(&st->requests_active) == 0);
    CHECK(gl_stat_get(&st->timers_pending) == 0);
    CHECK(st->lua_heap_own == 0);

    /* no worker: a slot of the thread's own, read by nobody */
    st = gl_stat_worker(-1);
    CHECK(st == gl_stat_worker(GL_STAT_WORKERS_MAX));
    CHECK(st != gl_stat_worker(0));
    other = NULL;
    pthread_create(&t, NULL, test_nobody_thread, &other);
    pthread_join(t, NULL);
    CHECK(other != NULL && other != st);
    CHECK(gl_stat_get(&st->requests) == 0);
}


#define TEST_THREADS  4
#define TEST_N        200000

static atomic_int  test_done;


static void *
test_writer(void *arg)
{
    int                i;
    gl_stat_worker_t  *st;

    st = gl_stat_worker((int) (intptr_t) arg);

    for (i = 0; i < TEST_N; i++) {
        gl_stat_add(&st->requests, 1);
        gl_stat_gauge_add(&st->requests_active, 1);
        gl_stat_request_end(st, 0.001, 200);
    }

    atomic_fetch_add(&test_done, 1);

    return NULL;
}


static void
test_threads(void)
{
    int        i, ok;
    uint64_t   last[TEST_THREADS], v;
    pthread_t  t[TEST_THREADS];

    for (i = 0; i < TEST_THREADS; i++) {
        last[i] = 0;
        pthread_create(&t[i], NULL, test_writer,
                       (void *) (intptr_t) (100 + i));
    }

    /* a reader, as the status page: each counter only goes up */
    ok = 1;
    while (atomic_load(&test_done) < TEST_THREADS) {
        for (i = 0; i < TEST_THREADS; i++) {
            v = gl_stat_get(&gl_stat_worker(100 + i)->requests);
            if (v < last[i]) {
                ok = 0;
            }
            last[i] = v;
        }
    }
    CHECK(ok);

    for (i = 0; i < TEST_THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(gl_stat_get(&gl_stat_worker(100 + i)->requests) == TEST_N);
        CHECK(gl_stat_get(&gl_stat_worker(100 + i)->latency[0]) == TEST_N);
        CHECK(gl_stat_get(&gl_stat_worker(100 + i)->requests_active) == 0);
        CHECK(gl_stat_get(&gl_stat_worker(100 + i)->latency_us)
              == (uint64_t) TEST_N * 1000);
    }
}


int
main(void)
{
    test_slots();
    test_request_end();
    test_threads();

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
