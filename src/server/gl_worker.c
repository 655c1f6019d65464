/*
 * Workers.  The acceptor gives each new connection to the next worker in
 * turn (round robin): one thread accepts, so there is no thundering herd,
 * and the spread is even by construction.  Each worker logs how many
 * connections and requests it served when it exits.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_request.h"
#include "gl_worker.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

_Thread_local gl_worker_t  *gl_worker_self;


static void
gl_worker_notify_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    int           *fds;
    size_t         i, n;
    unsigned       reload;
    gl_conf_t     *conf, *old;
    gl_worker_t   *w;

    (void) loop;
    (void) revents;

    w = a->data;

    pthread_mutex_lock(&w->lock);
    fds = w->pending;
    n = w->npending;
    w->pending = NULL;
    w->npending = 0;
    w->pending_cap = 0;
    pthread_mutex_unlock(&w->lock);

    for (i = 0; i < n; i++) {
        gl_conn_init(w, fds[i]);
    }

    free(fds);

    old = w->conf;
    conf = atomic_exchange(&w->new_conf, NULL);
    if (conf != NULL) {
        /* SIGHUP: the new config, with a new generation for it */
        w->conf = conf;
    }

    reload = atomic_load(&w->reload_req);

    if (reload != w->reload_done && !w->exiting) {
        w->reload_done = reload;

        if (gl_lua_reload(w) != GL_OK) {
            /* the new config's Lua does not start: keep both old */
            w->conf = old;
        }
    }

    if (atomic_load(&w->quit) && !w->exiting) {
        w->exiting = 1;
        gl_log_error(GL_LOG_INFO, 0, "worker %d: finishing %d connections",
                     w->id, w->nconns);
        gl_conn_close_idle(w);
        gl_worker_conn_closed(w);
    }
}


void
gl_worker_conn_closed(gl_worker_t *w)
{
    if (w->exiting && w->nconns == 0 && w->ndetached == 0) {
        ev_break(w->loop, EVBREAK_ALL);
    }
}


void
gl_worker_detached_add(gl_worker_t *w, gl_request_t *r)
{
    r->next = w->detached;
    w->detached = r;
    w->ndetached++;
}


void
gl_worker_detached_done(gl_worker_t *w, gl_request_t *r)
{
    gl_request_t  **pr;

    for (pr = &w->detached; *pr; pr = &(*pr)->next) {
        if (*pr == r) {
            *pr = r->next;
            w->ndetached--;
            break;
        }
    }

    gl_worker_conn_closed(w);
}


static void *
gl_worker_thread(void *arg)
{
    gl_worker_t  *w;

    w = arg;
    gl_worker_self = w;
    gl_log_set_worker(w->id);

    ev_run(w->loop, 0);

    gl_log_error(GL_LOG_NOTICE, 0, "worker %d exiting: %llu connections, "
                 "%llu requests, %u reloads, %u failed reloads", w->id,
                 (unsigned long long) w->stat_conns,
                 (unsigned long long) w->stat_reqs,
                 atomic_load(&w->stat_reloads),
                 atomic_load(&w->stat_failed_reloads));

    ev_async_stop(w->loop, &w->notify);

    while (w->detached) {
        gl_request_t  *r = w->detached;

        w->detached = r->next;
        gl_request_cancel(r);
    }

    gl_lua_close(w);

    while (w->conn_cache) {
        gl_conn_t  *c = w->conn_cache;

        w->conn_cache = c->next;
        free(c);
    }

    while (w->chain_cache) {
        gl_chain_t  *cl = w->chain_cache;

        w->chain_cache = cl->next;
        free(cl);
    }

    atomic_store(&w->done, 1);

    if (w->on_exit) {
        w->on_exit(w);
    }

    return NULL;
}


int
gl_worker_start(gl_worker_t *w, int id, gl_conf_t *conf)
{
    int       err;
    char      buf[PATH_MAX];
    sigset_t  set, old;

    w->id = id;
    w->conf = conf;

    if (conf->document_root != NULL) {
        if (realpath(conf->document_root, buf) == NULL) {
            gl_log_error(GL_LOG_EMERG, errno, "realpath(\"%s\") failed",
                         conf->document_root);
            return GL_ERROR;
        }

        w->docroot = strdup(buf);
        if (w->docroot == NULL) {
            return GL_ERROR;
        }
    }

    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (w->loop == NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "cannot create an event loop");
        return GL_ERROR;
    }

    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        return GL_ERROR;
    }

    ev_async_init(&w->notify, gl_worker_notify_cb);
    w->notify.data = w;
    ev_async_start(w->loop, &w->notify);

    if (gl_lua_init(w) != GL_OK) {
        return GL_ERROR;
    }

    /* signals go to the main thread only */
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    err = pthread_create(&w->tid, NULL, gl_worker_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        gl_log_error(GL_LOG_EMERG, err, "pthread_create() failed");
        return GL_ERROR;
    }

    return GL_OK;
}


void
gl_worker_post_conn(gl_worker_t *w, int fd)
{
    int     *p;
    size_t   size;

    pthread_mutex_lock(&w->lock);

    if (w->npending == w->pending_cap) {
        size = w->pending_cap ? w->pending_cap * 2 : 16;
        p = realloc(w->pending, size * sizeof(int));
        if (p == NULL) {
            pthread_mutex_unlock(&w->lock);
            gl_log_error(GL_LOG_ALERT, errno, "no memory to hand over a "
                         "connection");
            close(fd);
            return;
        }
        w->pending = p;
        w->pending_cap = size;
    }

    w->pending[w->npending++] = fd;

    pthread_mutex_unlock(&w->lock);

    ev_async_send(w->loop, &w->notify);
}


void
gl_worker_post_quit(gl_worker_t *w)
{
    atomic_store(&w->quit, 1);
    ev_async_send(w->loop, &w->notify);
}


void
gl_worker_free(gl_worker_t *w)
{
    size_t  i;

    for (i = 0; i < w->npending; i++) {
        close(w->pending[i]);
    }

    free(w->pending);
    free(w->docroot);

    if (w->loop) {
        ev_loop_destroy(w->loop);
    }

    pthread_mutex_destroy(&w->lock);
}
