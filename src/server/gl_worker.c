/*
 * Workers.  The acceptor gives each new connection to the next worker in
 * turn (round robin): one thread accepts, so there is no thundering herd,
 * and the spread is even by construction.  Each worker logs how many
 * connections and requests it served when it exits.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_http.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_stat.h"
#include "gl_worker.h"
#include "gl_watch.h"

#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>


/* a stopping worker ends its loop when nothing of it is left */
static void
gl_worker_check_exit(gl_worker_t *w)
{
    if (w->exiting && w->srv.nconns == 0 && w->srv.ndetached == 0
        && w->vm.sched.nbusy == 0)
    {
        ev_break(w->loop, EVBREAK_ALL);
    }
}


static void
gl_worker_srv_idle(gl_srv_t *s)
{
    gl_worker_check_exit(s->data);
}


static void
gl_worker_sched_idle(gl_sched_t *s)
{
    gl_worker_check_exit(s->data);
}


int *
gl_worker_take_pending(gl_worker_t *w, size_t *n)
{
    int  *fds;

    pthread_mutex_lock(&w->lock);
    fds = w->pending;
    *n = w->npending;
    w->pending = NULL;
    w->npending = 0;
    w->pending_cap = 0;
    pthread_mutex_unlock(&w->lock);

    return fds;
}


static void
gl_worker_notify_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    int           *fds;
    size_t         i, n;
    unsigned       reload;
    gl_conf_t     *conf;
    gl_worker_t   *w;

    (void) loop;
    (void) revents;

    w = a->data;

    fds = gl_worker_take_pending(w, &n);

    for (i = 0; i < n; i++) {
        gl_conn_init(&w->srv, fds[i]);
    }

    free(fds);

    if (atomic_exchange(&w->ping, 0)) {
        atomic_fetch_add(&w->beat, 1);
    }

    conf = atomic_exchange(&w->new_conf, NULL);
    reload = atomic_load(&w->reload_req);

    if ((reload != w->reload_done || conf != NULL) && !w->exiting) {
        w->reload_done = reload;

        /* SIGHUP: the new config, with a new generation for it; if its
           Lua does not start, both old ones stay */
        if (gl_vm_reload(&w->vm, conf) == GL_OK && conf != NULL) {
            /* the old one goes when its requests and code have ended */
            gl_conf_unref(w->conf);
            w->conf = conf;
            w->srv.conf = conf;
            conf = NULL;
        }
    }

    /* not taken (a failed reload, the worker stops): the reference that
       came with it goes */
    gl_conf_unref(conf);

    if (atomic_load(&w->quit) && !w->exiting) {
        w->exiting = 1;
        atomic_store_explicit(&w->vm.stat->state, GL_STAT_EXITING,
                              memory_order_relaxed);
        gl_vm_stop(&w->vm);
        gl_log_error(GL_LOG_INFO, 0, "worker %d: finishing %d connections",
                     w->id, w->srv.nconns);
        gl_srv_close_idle(&w->srv);
        gl_worker_check_exit(w);
    }
}


/* the watchdog keeps the worker's connections, to shut them down if the
   worker gets stuck in Lua code */
static void
gl_worker_srv_conn(gl_srv_t *s, int fd, int open)
{
    (void) s;

    gl_watch_conn(fd, open);
}


/*
 * A panic in the worker's Lua state (gl_lua_panic jumped here, out of
 * whatever the worker was doing): the state, its tasks and the worker's
 * connections are left as they are, never to be touched again; the
 * connections' sockets are closed, so that nginx answers their requests
 * at once, and the main thread starts a new worker in this one's place.
 * What the old one held stays allocated (w->srv, w->vm) until the process
 * ends: its memory cannot be trusted enough to free.
 */
static void
gl_worker_retire(gl_worker_t *w)
{
    int  n;

    n = gl_watch_worker_dead();

    gl_log_error(GL_LOG_ALERT, 0, "worker %d is retired after a panic of its "
                 "Lua state: its %d connections are closed, and a new "
                 "worker starts in its place", w->id, n);

    atomic_store_explicit(&w->vm.stat->state, GL_STAT_RETIRED,
                          memory_order_relaxed);
    atomic_fetch_add(&gl_stat.workers_retired, 1);

    atomic_store(&w->dead, 1);
    atomic_store(&w->done, 1);

    if (w->on_exit) {
        w->on_exit(w);
    }
}


static void *
gl_worker_thread(void *arg)
{
    jmp_buf       jb;
    gl_worker_t  *w;

    w = arg;
    gl_vm_self = &w->vm;
    gl_log_set_worker(w->id);
    gl_watch_worker_start(w->id);
    atomic_store_explicit(&w->vm.stat->state, GL_STAT_RUNNING,
                          memory_order_relaxed);

    if (setjmp(jb) != 0) {
        gl_worker_retire(arg);
        return NULL;
    }

    gl_lua_catch_panic(&jb);

    ev_run(w->loop, 0);

    gl_watch_worker_stop();

    gl_log_error(GL_LOG_NOTICE, 0, "worker %d exiting: %llu connections, "
                 "%llu requests, %llu reloads, %llu failed reloads", w->id,
                 (unsigned long long) w->srv.stat_conns,
                 (unsigned long long) w->srv.stat_reqs,
                 (unsigned long long) gl_stat_get(&w->vm.stat->lua_reloads),
                 (unsigned long long)
                     gl_stat_get(&w->vm.stat->lua_reloads_failed));

    ev_async_stop(w->loop, &w->notify);

    gl_srv_free(&w->srv);

    /* exit_worker_by_lua and the last finalizers run here: a panic of the
       state now ends this thread as a normal exit would, not the process
       (the other workers may be finishing their requests) */
    if (setjmp(jb) != 0) {
        gl_log_error(GL_LOG_ALERT, 0, "worker %d: its Lua state panicked "
                     "while it exited; what it held is left", w->id);
    } else {
        gl_vm_close(&w->vm);
    }

    gl_lua_catch_panic(NULL);

    gl_conf_unref(w->conf);
    w->conf = NULL;

    atomic_store_explicit(&w->vm.stat->state, GL_STAT_EXITED,
                          memory_order_relaxed);
    atomic_store(&w->done, 1);

    if (w->on_exit) {
        w->on_exit(w);
    }

    return NULL;
}


int
gl_worker_start(gl_worker_t *w, int id, gl_conf_t *conf)
{
    int       err, rc;
    jmp_buf   jb;
    sigset_t  set, old;

    w->id = id;
    w->conf = gl_conf_ref(conf);
    gl_stat_worker_start(id);

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

    gl_srv_init(&w->srv, w->loop, conf, &gl_http_handler);
    w->srv.on_idle = gl_worker_srv_idle;
    w->srv.on_conn = gl_worker_srv_conn;
    w->srv.data = w;
    w->srv.stat = gl_stat_worker(id);

    /* init_worker_by_lua runs here, in the caller's thread: a panic of
       the new state fails the start, not the process */
    if (setjmp(jb) != 0) {
        gl_log_error(GL_LOG_ALERT, 0, "worker %d cannot start: its Lua "
                     "state panicked", id);
        return GL_ERROR;
    }

    gl_lua_catch_panic(&jb);
    rc = gl_vm_init(&w->vm, id, w->loop, conf);
    gl_lua_catch_panic(NULL);

    if (rc != GL_OK) {
        return GL_ERROR;
    }

    w->vm.sched.on_idle = gl_worker_sched_idle;
    w->vm.sched.data = w;

    /* signals go to the main thread only */
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    err = pthread_create(&w->tid, NULL, gl_worker_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        gl_log_error(GL_LOG_EMERG, err, "pthread_create() failed");
        return GL_ERROR;
    }

    w->started = 1;

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


/* a slot whose worker ended, or never started (a replacement that
   failed): nobody to ask */
static int
gl_worker_gone(gl_worker_t *w)
{
    return w->loop == NULL || atomic_load(&w->done);
}


void
gl_worker_post_ping(gl_worker_t *w)
{
    if (gl_worker_gone(w)) {
        return;
    }

    atomic_store(&w->ping, 1);
    ev_async_send(w->loop, &w->notify);
}


void
gl_worker_post_quit(gl_worker_t *w)
{
    if (gl_worker_gone(w)) {
        return;
    }

    atomic_store(&w->quit, 1);
    ev_async_send(w->loop, &w->notify);
}


void
gl_worker_post_reload(gl_worker_t *w)
{
    if (gl_worker_gone(w)) {
        return;
    }

    atomic_fetch_add(&w->reload_req, 1);
    ev_async_send(w->loop, &w->notify);
}


void
gl_worker_post_conf(gl_worker_t *w, gl_conf_t *conf)
{
    if (gl_worker_gone(w)) {
        return;
    }

    /* the worker takes a reference with it; one it has not taken yet (two
       SIGHUPs in a row) is not for it any more */
    gl_conf_unref(atomic_exchange(&w->new_conf, gl_conf_ref(conf)));
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

    /* a retired worker keeps what it held (its Lua state may point into
       its config); a config posted that it never took is not held */
    if (!atomic_load(&w->dead)) {
        gl_conf_unref(w->conf);
        w->conf = NULL;
    }

    gl_conf_unref(atomic_exchange(&w->new_conf, NULL));

    if (w->loop) {
        ev_loop_destroy(w->loop);
    }

    pthread_mutex_destroy(&w->lock);
}
