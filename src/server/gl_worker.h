/*
 * A worker: one pthread with its own libev loop and LuaJIT state.  The
 * acceptor (main thread) hands it accepted sockets through a small queue
 * guarded by a mutex, then wakes it with an ev_async.  Everything else a
 * worker owns (connections, requests, the Lua state) is touched only by its
 * own thread.
 */
#ifndef GL_WORKER_H
#define GL_WORKER_H

#include "gl_core.h"

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <lua.h>

#include "gl_conn.h"

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
    gl_conn_t          *conns;         /* a list of open connections */
    int                 nconns;
    gl_request_t       *detached;      /* requests still running after
                                          ngx.eof(): no connection owns
                                          them */
    int                 ndetached;
    lua_State          *L;             /* the current generation's */
    struct gl_lua_gen_s *gen;
    unsigned            gen_seq;
    unsigned            reload_done;
    char               *docroot;       /* realpath of document_root */

    gl_conn_t          *conn_cache;     /* freed connections, for reuse */
    int                 nconn_cache;
    gl_chain_t         *chain_cache;    /* freed output blocks */
    int                 nchain_cache;

    uint64_t            stat_conns;
    uint64_t            stat_reqs;

    /* read by other threads (the status page, later) */
    atomic_uint         stat_reloads;
    atomic_uint         stat_failed_reloads;
    atomic_uint         stat_gen;

    void              (*on_exit)(gl_worker_t *w);   /* runs in the worker */
    atomic_int          done;
};

/* the worker whose thread this is (NULL in the main thread) */
extern _Thread_local gl_worker_t  *gl_worker_self;

int gl_worker_start(gl_worker_t *w, int id, gl_conf_t *conf);

/* called by the acceptor: hands fd to the worker.  On error closes fd. */
void gl_worker_post_conn(gl_worker_t *w, int fd);

/* asks the worker to finish its requests and exit */
void gl_worker_post_quit(gl_worker_t *w);

/* after the thread is joined */
void gl_worker_free(gl_worker_t *w);

/* a request left its connection (ngx.eof) / ended after that */
void gl_worker_detached_add(gl_worker_t *w, gl_request_t *r);
void gl_worker_detached_done(gl_worker_t *w, gl_request_t *r);

/* called by a connection when it is gone: may end an exiting worker */
void gl_worker_conn_closed(gl_worker_t *w);

#endif /* GL_WORKER_H */
