/*
 * A worker: one pthread with its own libev loop, its FastCGI connections
 * (gl_srv_t) and its Lua side (gl_vm_t).  The acceptor (main thread) hands
 * it accepted sockets through a small queue guarded by a mutex, then wakes
 * it with an ev_async.  Everything else a worker owns is touched only by
 * its own thread.
 */
#ifndef GL_WORKER_H
#define GL_WORKER_H

#include "gl_core.h"
#include "gl_conn.h"
#include "gl_lua.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>

struct gl_worker_s {
    int                 id;
    pthread_t           tid;
    struct ev_loop     *loop;
    gl_conf_t          *conf;

    /* the hand-over queue: written by the acceptor, read by the worker */
    pthread_mutex_t     lock;
    int                *pending;
    size_t              npending;
    size_t              pending_cap;
    ev_async            notify;
    atomic_int          quit;          /* graceful stop asked */
    atomic_uint         reload_req;    /* bumped: make a new generation */
    _Atomic(gl_conf_t *) new_conf;     /* SIGHUP: the config to adopt */

    /* the rest is the worker thread's own */
    int                 exiting;
    unsigned            reload_done;
    gl_srv_t            srv;           /* its connections */
    gl_vm_t             vm;            /* its Lua side */

    void              (*on_exit)(gl_worker_t *w);   /* runs in the worker */
    atomic_int          done;
    atomic_int          dead;          /* retired after a Lua panic */
    atomic_int          ping;          /* the main thread asks: alive? */
    atomic_uint         beat;          /* the worker's answers */
    unsigned            beat_seen;     /* the main thread's own */
    unsigned            pinged;        /* the main thread's: asked once */
    unsigned            started:1;     /* its thread runs, or ran */
};

int gl_worker_start(gl_worker_t *w, int id, gl_conf_t *conf);

/* takes the connections handed to w and not yet taken (n of them, to be
   freed by the caller) */
int *gl_worker_take_pending(gl_worker_t *w, size_t *n);

/* called by the acceptor: hands fd to the worker.  On error closes fd. */
void gl_worker_post_conn(gl_worker_t *w, int fd);

/* asks the worker to finish its requests and exit */
void gl_worker_post_quit(gl_worker_t *w);

/* asks the worker for a new generation of its Lua state (with the config
   of gl_worker_post_conf, if one was posted) */
void gl_worker_post_reload(gl_worker_t *w);
void gl_worker_post_conf(gl_worker_t *w, gl_conf_t *conf);

/* asks the worker's loop to answer (beat): the service manager's
   watchdog */
void gl_worker_post_ping(gl_worker_t *w);

/* after the thread is joined */
void gl_worker_free(gl_worker_t *w);

#endif /* GL_WORKER_H */
