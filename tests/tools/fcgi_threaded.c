/*
 * fcgi_threaded: the classic libfcgi threaded responder, the baseline for
 * scripts/bench.  it is the shape of libfcgi's examples/threaded.c: a fixed
 * set of threads, each blocking in FCGX_Accept_r under one mutex, each
 * request answered with a fixed body.
 *
 * usage: fcgi_threaded /path/to.sock
 *
 * it listens on the unix socket (backlog 1024), serves until killed, and
 * removes the socket on SIGTERM or SIGINT.  one request at a time per
 * connection: a thread that takes a kept-alive connection holds it, so nginx
 * should talk to it without fastcgi_keep_conn.
 */

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE  200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>


#define GL_FT_THREADS  4
#define GL_FT_BACKLOG  1024


static const char  gl_ft_response[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello, world\n";

static pthread_mutex_t  gl_ft_accept_mutex = PTHREAD_MUTEX_INITIALIZER;
static int              gl_ft_sock = -1;
static const char      *gl_ft_path;


static void *
gl_ft_thread(void *arg)
{
    int           rc;
    long          id = (long) arg;
    FCGX_Request  req;

    if (FCGX_InitRequest(&req, gl_ft_sock, 0) != 0) {
        fprintf(stderr, "fcgi_threaded: thread %ld: FCGX_InitRequest failed\n",
                id);
        return NULL;
    }

    for ( ;; ) {
        /* libfcgi on some platforms can't accept() from several threads at
         * once, so the accept is serialised, as in examples/threaded.c */
        pthread_mutex_lock(&gl_ft_accept_mutex);
        rc = FCGX_Accept_r(&req);
        pthread_mutex_unlock(&gl_ft_accept_mutex);

        if (rc < 0) {
            fprintf(stderr, "fcgi_threaded: thread %ld: FCGX_Accept_r: %d\n",
                    id, rc);
            break;
        }

        FCGX_PutStr(gl_ft_response, sizeof(gl_ft_response) - 1, req.out);
        FCGX_Finish_r(&req);
    }

    return NULL;
}


static void
gl_ft_on_signal(int signo)
{
    (void) signo;

    if (gl_ft_path != NULL) {
        (void) unlink(gl_ft_path);
    }

    _exit(0);
}


int
main(int argc, char **argv)
{
    int               rc;
    long              i;
    pthread_t         tids[GL_FT_THREADS];
    struct sigaction  sa;

    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s /path/to.sock\n", argv[0]);
        return 2;
    }

    gl_ft_path = argv[1];

    if (FCGX_Init() != 0) {
        fprintf(stderr, "fcgi_threaded: FCGX_Init failed\n");
        return 1;
    }

    /* a stale socket from an earlier run would make bind() fail */
    if (unlink(gl_ft_path) != 0 && errno != ENOENT) {
        fprintf(stderr, "fcgi_threaded: unlink(\"%s\"): %s\n", gl_ft_path,
                strerror(errno));
        return 1;
    }

    gl_ft_sock = FCGX_OpenSocket(gl_ft_path, GL_FT_BACKLOG);
    if (gl_ft_sock < 0) {
        fprintf(stderr, "fcgi_threaded: FCGX_OpenSocket(\"%s\") failed\n",
                gl_ft_path);
        return 1;
    }

    /* nginx workers may run as another user */
    (void) chmod(gl_ft_path, 0666);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gl_ft_on_signal;
    sigemptyset(&sa.sa_mask);
    (void) sigaction(SIGTERM, &sa, NULL);
    (void) sigaction(SIGINT, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    (void) sigaction(SIGPIPE, &sa, NULL);

    for (i = 0; i < GL_FT_THREADS; i++) {
        rc = pthread_create(&tids[i], NULL, gl_ft_thread, (void *) i);
        if (rc != 0) {
            fprintf(stderr, "fcgi_threaded: pthread_create: %s\n",
                    strerror(rc));
            return 1;
        }
    }

    for (i = 0; i < GL_FT_THREADS; i++) {
        (void) pthread_join(tids[i], NULL);
    }

    (void) unlink(gl_ft_path);

    return 1;
}
