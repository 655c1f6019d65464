/*
 * Unit tests of the error log's rate limiter (gl_log.c, included for its
 * statics): at most GL_LOG_LIMIT_BURST lines a second per site, the count
 * of dropped lines on the next line written, and the same from threads.
 */
#include "../../src/core/gl_log.c"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>


#include "gl_test.h"


static void
test_burst(void)
{
    int              i, written, since;
    long long        rc, dropped;
    gl_log_limit_t   lim = GL_LOG_LIMIT_INIT;

    written = 0;
    dropped = 0;

    for (i = 0; i < 1000; i++) {
        rc = gl_log_limit_check(&lim, 100, &since);
        if (rc >= 0) {
            written++;
            dropped += rc;
        }
    }

    CHECK(written == GL_LOG_LIMIT_BURST);
    CHECK(dropped == 0);

    /* the next second: the first line tells of the 990 dropped */
    since = 0;
    rc = gl_log_limit_check(&lim, 101, &since);
    CHECK(rc == 1000 - GL_LOG_LIMIT_BURST);
    CHECK(since == 2);

    rc = gl_log_limit_check(&lim, 101, &since);
    CHECK(rc == 0);

    /* a quiet site writes every line */
    for (i = 0; i < GL_LOG_LIMIT_BURST - 2; i++) {
        CHECK(gl_log_limit_check(&lim, 101, &since) == 0);
    }

    CHECK(gl_log_limit_check(&lim, 101, &since) == -1);
    CHECK(gl_log_limit_check(&lim, 101, &since) == -1);

    /* reported much later: the span says so */
    rc = gl_log_limit_check(&lim, 160, &since);
    CHECK(rc == 2);
    CHECK(since == 60);
}


#define GL_T_THREADS  4
#define GL_T_CALLS    100000

static gl_log_limit_t      gl_t_shared = GL_LOG_LIMIT_INIT;
static _Atomic long long   gl_t_written;
static _Atomic long long   gl_t_reported;


static void *
gl_t_thread(void *arg)
{
    int        i, since;
    long long  rc;

    (void) arg;

    for (i = 0; i < GL_T_CALLS; i++) {
        /* all in one second */
        rc = gl_log_limit_check(&gl_t_shared, 7, &since);
        if (rc >= 0) {
            atomic_fetch_add(&gl_t_written, 1);
            atomic_fetch_add(&gl_t_reported, rc);
        }
    }

    return NULL;
}


static void
test_threads(void)
{
    int        i, since;
    long long  rc;
    pthread_t  t[GL_T_THREADS];

    for (i = 0; i < GL_T_THREADS; i++) {
        pthread_create(&t[i], NULL, gl_t_thread, NULL);
    }

    for (i = 0; i < GL_T_THREADS; i++) {
        pthread_join(t[i], NULL);
    }

    CHECK(atomic_load(&gl_t_written) == GL_LOG_LIMIT_BURST);

    rc = gl_log_limit_check(&gl_t_shared, 8, &since);
    atomic_fetch_add(&gl_t_written, 1);
    atomic_fetch_add(&gl_t_reported, rc);

    /* every call is either written or counted once */
    CHECK(atomic_load(&gl_t_written) + atomic_load(&gl_t_reported)
          == (long long) GL_T_THREADS * GL_T_CALLS + 1);
}


static void
test_lines(void)
{
    int      i, fd, n, lines;
    char     path[] = "/tmp/gl-t-log-XXXXXX", buf[65536], *p;

    fd = mkstemp(path);
    CHECK(fd != -1);
    close(fd);

    CHECK(gl_log_open(path, GL_LOG_INFO) == GL_OK);

    for (i = 0; i < 5000; i++) {
        gl_log_error_limited(GL_LOG_WARN, 0, "flood line %d", i);
    }

    /* below the level: not even counted */
    gl_log_error_limited(GL_LOG_DEBUG, 0, "debug");

    fd = open(path, O_RDONLY);
    n = (int) read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';

    lines = 0;
    for (p = buf; (p = strchr(p, '\n')) != NULL; p++) {
        lines++;
    }

    /* a second may turn during the loop: two bursts at most */
    CHECK(lines >= GL_LOG_LIMIT_BURST && lines <= 2 * GL_LOG_LIMIT_BURST);
    CHECK(strstr(buf, "[warn]") != NULL);
    CHECK(strstr(buf, "flood line 0\n") != NULL);
    CHECK(strstr(buf, "debug") == NULL);
}


int
main(void)
{
    test_burst();
    test_threads();
    test_lines();

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
