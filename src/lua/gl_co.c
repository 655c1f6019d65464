/*
 * The coroutine core (see gl_co.h): the scheduler's posted events, the
 * wait blocks, and the resume loop that is the only caller of lua_resume
 * for coroutines of tasks.
 *
 * The loop follows lua-nginx-module's semantics.  A coroutine.resume
 * yields its caller to the loop, which resumes the target; a
 * coroutine.yield goes back to the parent with true and the values.  A
 * light thread runs at once when spawned, and its parent is posted: it
 * goes on once the thread stops (waits, yields or ends), after what the
 * task posted before it.  A coroutine.yield in the entry coroutine or a
 * thread lets the task's posted coroutines run first, if there are any
 * (else it goes on at once).  A thread that ends before its parent waits
 * for it is a zombie holding its results until ngx.thread.wait takes
 * them; a parent's death reaps its zombies.  The task is done when its
 * entry coroutine and every light thread have ended; ngx.exit or an error
 * in the entry coroutine kills the rest.
 *
 * Lifetime: every coroutine that runs, waits, is posted, or is a thread
 * not yet reaped is pinned in the registry and on its task's live list;
 * a suspended user coroutine is not (the script holds it, or the garbage
 * collector takes it, with its record: a userdata found through a weak
 * table keyed by the Lua thread).  Canceling the task unpins them all.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_watch.h"
#include "gl_log.h"

#include <lauxlib.h>

static _Thread_local gl_co_t    *gl_co_running;
static _Thread_local gl_task_t  *gl_task_sync;

static char  gl_co_map_key;         /* registry: Lua thread -> record */
static char  gl_co_cache_key;       /* registry: the state's thread cache */

/* Lua threads kept for reuse, each pinned by its ref */
typedef struct {
    int          n;
    int          max;
    int          refs[];
} gl_co_cache_t;

gl_co_t  gl_co_gone = { .status = GL_CO_DEAD, .kind = GL_CO_USER };

const char  *gl_co_status_names[] = {
    "running", "suspended", "normal", "dead", "zombie"
};

static void gl_co_ready_handler(gl_posted_t *ev);
static void gl_co_run(gl_co_t *co);
static void gl_co_unpin(gl_co_t *co);
static void gl_co_loop(gl_co_t *co, int nret);
static void gl_co_wait_end(gl_co_t *co, int cancel);
static void gl_co_kill(gl_co_t *co);
static void gl_task_end(gl_task_t *t, int rc);

static void gl_co_thread_wait_cancel(gl_co_t *co);

static const gl_wait_ops_t  gl_co_thread_wait_ops = {
    "ngx.thread.wait", gl_co_thread_wait_cancel, NULL
};


/* the scheduler */

static void
gl_sched_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void) loop;
    (void) revents;

    gl_sched_run(p->data);
}


static void
gl_sched_idle_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    /* nothing: while it is active, the loop polls without blocking, so
       that the prepare watcher runs the deferred events at once */
    (void) loop;
    (void) i;
    (void) revents;
}


void
gl_sched_init(gl_sched_t *s, struct ev_loop *loop)
{
    memset(s, 0, sizeof(gl_sched_t));

    s->loop = loop;
    gl_queue_init(&s->posted);
    gl_queue_init(&s->deferred);

    ev_prepare_init(&s->prepare, gl_sched_prepare_cb);
    s->prepare.data = s;
    ev_idle_init(&s->idle, gl_sched_idle_cb);
    s->idle.data = s;
}


void
gl_sched_free(gl_sched_t *s)
{
    ev_prepare_stop(s->loop, &s->prepare);
    ev_idle_stop(s->loop, &s->idle);
}


void
gl_post(gl_sched_t *s, gl_posted_t *ev)
{
    if (gl_posted(ev)) {
        return;
    }

    gl_queue_insert_tail(&s->posted, &ev->link);

    if (!ev_is_active(&s->prepare)) {
        ev_prepare_start(s->loop, &s->prepare);
    }
}


void
gl_post_deferred(gl_sched_t *s, gl_posted_t *ev)
{
    if (gl_posted(ev)) {
        return;
    }

    gl_queue_insert_tail(&s->deferred, &ev->link);

    if (!ev_is_active(&s->prepare)) {
        ev_prepare_start(s->loop, &s->prepare);
    }

    if (!ev_is_active(&s->idle)) {
        ev_idle_start(s->loop, &s->idle);
    }
}


void
gl_post_delete(gl_posted_t *ev)
{
    if (gl_posted(ev)) {
        gl_queue_remove(&ev->link);
    }
}


/* runs everything posted, and what that posts, until none is left */
void
gl_sched_drain(gl_sched_t *s)
{
    gl_queue_t   *q;
    gl_posted_t  *ev;

    while (!gl_queue_empty(&s->posted)) {
        q = gl_queue_head(&s->posted);
        gl_queue_remove(q);
        ev = gl_queue_data(q, gl_posted_t, link);
        ev->handler(ev);
    }
}


/*
 * Runs the events deferred at the last turn and everything posted until
 * none is left; what is deferred meanwhile waits for the next turn, so a
 * coroutine that keeps sleeping 0 cannot hold the loop.
 */
void
gl_sched_run(gl_sched_t *s)
{
    gl_queue_move(&s->posted, &s->deferred);

    gl_sched_drain(s);

    if (gl_queue_empty(&s->deferred)) {
        ev_prepare_stop(s->loop, &s->prepare);
        ev_idle_stop(s->loop, &s->idle);

    } else if (!ev_is_active(&s->idle)) {
        ev_idle_start(s->loop, &s->idle);
    }
}


/* co runs again (with nret values) once what was posted before it ran */
static void
gl_co_post(gl_co_t *co, int nret)
{
    co->nret = nret;

    if (!co->counted) {
        co->counted = 1;
        co->task->nposted++;
    }

    gl_post(co->task->sched, &co->ready);
}


static void
gl_co_unpost(gl_co_t *co)
{
    gl_post_delete(&co->ready);

    if (co->counted) {
        co->counted = 0;
        co->task->nposted--;
    }
}


void
gl_sched_release(gl_sched_t *s)
{
    if (--s->nbusy == 0 && s->on_idle != NULL) {
        s->on_idle(s);
    }
}


/* records and pins */

static gl_co_cache_t *
gl_co_cache(lua_State *L)
{
    gl_co_cache_t  *c;

    lua_pushlightuserdata(L, &gl_co_cache_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    c = lua_touserdata(L, -1);
    lua_pop(L, 1);

    return c;
}


lua_State *
gl_co_new_thread(lua_State *L, int *ref)
{
    lua_State      *co;
    gl_co_cache_t  *c;

    c = gl_co_cache(L);

    if (c != NULL && c->n > 0) {
        *ref = c->refs[--c->n];
        lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
        co = lua_tothread(L, -1);
        lua_pop(L, 1);

        return co;
    }

    co = lua_newthread(L);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);

    return co;
}


/* the entry coroutine co ended normally: its thread goes to the cache, or
   is let go */
static void
gl_co_recycle(gl_co_t *co)
{
    lua_State      *L;
    gl_co_cache_t  *c;

    L = co->task->L;
    c = gl_co_cache(L);

    if (c == NULL || c->n >= c->max || co->ref == LUA_NOREF
        || lua_status(co->L) != 0)
    {
        gl_co_unpin(co);
        return;
    }

    lua_settop(co->L, 0);
    c->refs[c->n++] = co->ref;
    co->ref = LUA_NOREF;
    gl_queue_remove(&co->live);
}


void
gl_co_init_state(lua_State *L, int cache_max)
{
    gl_co_cache_t  *c;

    if (cache_max > 0) {
        lua_pushlightuserdata(L, &gl_co_cache_key);
        c = lua_newuserdata(L, sizeof(gl_co_cache_t)
                               + cache_max * sizeof(int));
        c->n = 0;
        c->max = cache_max;
        lua_rawset(L, LUA_REGISTRYINDEX);
    }

    lua_pushlightuserdata(L, &gl_co_map_key);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}


static void
gl_co_record_init(gl_co_t *co, gl_task_t *t, lua_State *L, gl_co_kind_e kind)
{
    memset(co, 0, sizeof(gl_co_t));

    co->L = L;
    co->task = t;
    co->serial = t->serial;
    co->kind = kind;
    co->status = GL_CO_SUSPENDED;
    co->ref = LUA_NOREF;
    co->wait.ref = LUA_NOREF;
    co->ready.handler = gl_co_ready_handler;
    co->ready.data = co;
}


static void
gl_co_pin(gl_co_t *co)
{
    lua_State  *L;

    if (co->ref != LUA_NOREF) {
        return;
    }

    L = co->task->L;
    lua_pushthread(co->L);
    lua_xmove(co->L, L, 1);
    co->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    gl_queue_insert_tail(&co->task->live, &co->live);
}


static void
gl_co_unpin(gl_co_t *co)
{
    if (co->ref == LUA_NOREF || co->keep) {
        return;
    }

    gl_queue_remove(&co->live);
    luaL_unref(co->task->L, LUA_REGISTRYINDEX, co->ref);
    co->ref = LUA_NOREF;
}


gl_co_t *
gl_co_new(gl_co_t *cur, int idx, gl_co_kind_e kind)
{
    lua_State  *L, *th;
    gl_co_t    *co;

    L = cur->L;

    th = lua_newthread(L);
    lua_pushvalue(L, idx);
    lua_xmove(L, th, 1);

    co = lua_newuserdata(L, sizeof(gl_co_t));
    gl_co_record_init(co, cur->task, th, kind);

    /* map[thread] = record; the thread stays on top */
    lua_pushlightuserdata(L, &gl_co_map_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);

    return co;
}


gl_co_t *
gl_co_find(lua_State *L, int idx, gl_task_t *t)
{
    gl_co_t    *co;
    lua_State  *th;

    th = lua_tothread(L, idx);
    if (th == NULL) {
        return NULL;
    }

    if (t != NULL && th == t->entry.L) {
        return &t->entry;
    }

    lua_pushlightuserdata(L, &gl_co_map_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushthread(th);
    lua_xmove(th, L, 1);
    lua_rawget(L, -2);
    co = lua_touserdata(L, -1);
    lua_pop(L, 2);

    if (co == NULL) {
        return NULL;
    }

    if (t == NULL || co->serial != t->serial) {
        /* made by a task that has ended */
        return &gl_co_gone;
    }

    return co;
}


/* tasks */

void
gl_task_init(gl_task_t *t, gl_sched_t *s, lua_State *L,
    const gl_task_ops_t *ops, int context)
{
    memset(t, 0, sizeof(gl_task_t));

    t->ops = ops;
    t->sched = s;
    t->L = L;
    t->context = context;
    t->ctx_ref = LUA_NOREF;
    t->serial = ++s->serial;
    t->entry.status = GL_CO_DEAD;
    t->entry.ref = LUA_NOREF;
    gl_queue_init(&t->live);
    gl_queue_init(&t->cleanups);
}


int
gl_task_start(gl_task_t *t, int nargs)
{
    int         ref;
    lua_State  *L, *co;

    L = t->L;

    co = gl_co_new_thread(L, &ref);
    lua_xmove(L, co, nargs + 1);

    gl_task_start_thread(t, co, ref, nargs);

    return GL_OK;
}


void
gl_task_start_thread(gl_task_t *t, lua_State *co, int ref, int nargs)
{
    gl_co_t  *e;

    e = &t->entry;
    gl_co_record_init(e, t, co, GL_CO_ENTRY);
    e->thread = e;
    e->ref = ref;
    e->nret = nargs;
    t->start = ev_now(t->sched->loop);
    gl_queue_insert_tail(&t->live, &e->live);

    if (!t->started) {
        t->started = 1;
        gl_sched_hold(t->sched);
    }

    gl_co_post(e, nargs);
}


void
gl_task_run_thread(gl_task_t *t, lua_State *co, int ref, int nargs)
{
    gl_task_start_thread(t, co, ref, nargs);

    gl_post_delete(&t->entry.ready);
    gl_co_run(&t->entry);
}


void
gl_task_cancel(gl_task_t *t)
{
    gl_co_t  *co;

    while (!gl_queue_empty(&t->live)) {
        co = gl_queue_data(gl_queue_head(&t->live), gl_co_t, live);
        co->keep = 0;
        gl_co_kill(co);
    }


    t->nthreads = 0;
    t->nposted = 0;

    if (t->started) {
        t->started = 0;
        gl_sched_release(t->sched);
    }
}


void
gl_task_cleanup(gl_task_t *t)
{
    gl_task_cleanup_t  *c;

    while (!gl_queue_empty(&t->cleanups)) {
        c = gl_queue_data(gl_queue_head(&t->cleanups), gl_task_cleanup_t,
                          link);
        gl_queue_remove(&c->link);
        c->handler(c);
    }
}


void
gl_task_cleanup_add(gl_task_t *t, gl_task_cleanup_t *c)
{
    gl_queue_insert_tail(&t->cleanups, &c->link);
}


void
gl_task_cleanup_del(gl_task_cleanup_t *c)
{
    if (gl_queue_linked(&c->link)) {
        gl_queue_remove(&c->link);
    }
}


static void
gl_task_end(gl_task_t *t, int rc)
{
    gl_task_cancel(t);
    t->ops->done(t, rc);
}


gl_task_t *
gl_task_current(void)
{
    return gl_co_running != NULL ? gl_co_running->task : gl_task_sync;
}


void
gl_task_enter_sync(gl_task_t *t, gl_sync_t *save)
{
    /* the code that runs now cannot yield: no coroutine of ours runs it */
    save->task = gl_task_sync;
    save->co = gl_co_running;
    gl_task_sync = t;
    gl_co_running = NULL;
    gl_watch_begin(t->L);
}


void
gl_task_leave_sync(gl_sync_t *save)
{
    gl_watch_end(gl_task_sync != NULL ? gl_task_sync->L : NULL);
    gl_task_sync = save->task;
    gl_co_running = save->co;
}


gl_co_t *
gl_co_current(void)
{
    return gl_co_running;
}


gl_co_t *
gl_co_self(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_running;

    return (co != NULL && co->L == L) ? co : NULL;
}


/* waits */

static void
gl_co_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    int       n;
    gl_co_t  *co;

    (void) loop;
    (void) revents;

    co = w->data;
    n = co->wait.ops->timedout != NULL ? co->wait.ops->timedout(co) : 0;

    gl_co_wake(co, n);
}


void
gl_co_wait(gl_co_t *co, const gl_wait_ops_t *ops, double timeout)
{
    gl_wait_t  *w;

    w = &co->wait;
    w->ops = ops;

    if (timeout > 0) {
        ev_timer_init(&w->timer, gl_co_timeout_cb, timeout, 0);
        w->timer.data = co;
        ev_timer_start(co->task->sched->loop, &w->timer);

    } else if (timeout == 0) {
        /* the next turn of the loop ends it */
        co->nret = 0;
        gl_post_deferred(co->task->sched, &co->ready);
    }
}


void
gl_co_waitq_add(gl_queue_t *q, gl_co_t *co)
{
    co->wait.queue = q;
    gl_queue_insert_tail(q, &co->wait.link);
}


int
gl_co_yield(gl_co_t *co)
{
    co->op = GL_CO_OP_WAIT;
    return lua_yield(co->L, 0);
}


void
gl_co_yielding(gl_co_t *co)
{
    co->op = GL_CO_OP_WAIT;
}


/* the wait is over (or given up: cancel); what it holds goes */
static void
gl_co_wait_end(gl_co_t *co, int cancel)
{
    gl_wait_t            *w;
    const gl_wait_ops_t  *ops;

    w = &co->wait;
    ops = w->ops;

    if (ops == NULL) {
        return;
    }

    if (ev_is_active(&w->timer)) {
        ev_timer_stop(co->task->sched->loop, &w->timer);
    }

    if (w->queue != NULL) {
        gl_queue_remove(&w->link);
        w->queue = NULL;
    }

    if (cancel && ops->cancel != NULL) {
        ops->cancel(co);
    }

    if (w->ref != LUA_NOREF) {
        luaL_unref(co->task->L, LUA_REGISTRYINDEX, w->ref);
        w->ref = LUA_NOREF;
    }

    w->ops = NULL;
    w->data = NULL;
    w->buf = NULL;
    w->len = 0;
}


void
gl_co_wake(gl_co_t *co, int nret)
{
    gl_co_wait_end(co, 0);
    gl_co_post(co, nret);
}


int
gl_co_exit(gl_co_t *co)
{
    co->op = GL_CO_OP_EXIT;
    return lua_yield(co->L, 0);
}


/* stops co for good: its wait undone, off the posted queue, unpinned */
static void
gl_co_kill(gl_co_t *co)
{
    gl_co_wait_end(co, 1);
    gl_co_unpost(co);
    co->status = GL_CO_DEAD;
    co->waited = 0;
    gl_co_unpin(co);
}


/* user coroutines and threads */

int
gl_co_resume_user(gl_co_t *cur, gl_co_t *u, int nargs)
{
    cur->status = GL_CO_NORMAL;
    u->parent = cur;
    u->thread = cur->thread;
    u->status = GL_CO_RUNNING;
    gl_co_pin(u);

    cur->op = GL_CO_OP_RESUME;
    cur->target = u;

    return lua_yield(cur->L, nargs);
}


int
gl_co_yield_user(gl_co_t *cur, int nvals)
{
    cur->op = GL_CO_OP_YIELD;

    return lua_yield(cur->L, cur->kind == GL_CO_USER ? nvals : 0);
}


void
gl_co_thread_start(gl_co_t *th)
{
    th->parent = NULL;
    th->thread = th;
    th->status = GL_CO_RUNNING;
    gl_co_pin(th);
    th->task->nthreads++;
    gl_co_post(th, 0);
}


int
gl_co_spawn(gl_co_t *cur, gl_co_t *th, int nargs)
{
    th->parent = cur;
    th->thread = th;
    th->nret = nargs;
    th->status = GL_CO_RUNNING;
    gl_co_pin(th);
    cur->task->nthreads++;

    if (cur->kind == GL_CO_USER) {
        /* its threads point at it: it lives as long as its task */
        gl_co_pin(cur);
        cur->keep = 1;
    }

    cur->op = GL_CO_OP_SPAWN;
    cur->target = th;

    /* the thread object (on top) is what spawn returns, when cur runs
       again: it is posted now, ahead of whatever th posts */
    gl_co_post(cur, 1);

    return lua_yield(cur->L, 1);
}


/* co died: its zombie threads go, its running threads lose their parent */
static void
gl_co_orphan(gl_co_t *co)
{
    gl_queue_t  *q, *next;
    gl_co_t     *c;

    for (q = gl_queue_head(&co->task->live);
         q != gl_queue_sentinel(&co->task->live);
         q = next)
    {
        next = gl_queue_next(q);
        c = gl_queue_data(q, gl_co_t, live);

        if (c->kind != GL_CO_THREAD || c->parent != co) {
            continue;
        }

        c->parent = NULL;

        if (c->status == GL_CO_ZOMBIE) {
            gl_co_reap(c);
        }
    }
}


void
gl_co_reap(gl_co_t *th)
{
    th->status = GL_CO_DEAD;
    th->keep = 0;
    gl_co_unpin(th);
}


static void
gl_co_thread_wait_cancel(gl_co_t *co)
{
    gl_queue_t  *q;
    gl_co_t     *c;

    for (q = gl_queue_head(&co->task->live);
         q != gl_queue_sentinel(&co->task->live);
         q = gl_queue_next(q))
    {
        c = gl_queue_data(q, gl_co_t, live);

        if (c->kind == GL_CO_THREAD && c->parent == co) {
            c->waited = 0;
        }
    }
}


int
gl_co_thread_take(gl_co_t *cur, gl_co_t *th)
{
    int  n;

    n = lua_gettop(th->L);
    lua_xmove(th->L, cur->L, n);
    gl_co_reap(th);

    return n;
}


int
gl_co_thread_wait(gl_co_t *cur)
{
    gl_co_wait(cur, &gl_co_thread_wait_ops, -1);

    return gl_co_yield(cur);
}


void
gl_co_thread_kill(gl_co_t *th)
{
    gl_queue_t  *q, *next;
    gl_co_t     *c;

    /* the coroutines it runs go with it */
    for (q = gl_queue_head(&th->task->live);
         q != gl_queue_sentinel(&th->task->live);
         q = next)
    {
        next = gl_queue_next(q);
        c = gl_queue_data(q, gl_co_t, live);

        if (c->thread == th && c != th) {
            c->keep = 0;
            gl_co_kill(c);
        }
    }

    th->task->nthreads--;
    gl_co_orphan(th);
    th->keep = 0;
    gl_co_kill(th);
}


/* the resume loop */

/* co runs (it was posted, or its task runs it at once) */
static void
gl_co_run(gl_co_t *co)
{
    gl_task_t  *t;

    t = co->task;

    if (co->counted) {
        co->counted = 0;
        t->nposted--;
    }

    /* ngx.sleep(0) ends here */
    gl_co_wait_end(co, 0);

    t->ops->enter(t);
    gl_co_loop(co, co->nret);
    t->ops->leave(t);
}


static void
gl_co_ready_handler(gl_posted_t *ev)
{
    gl_co_run(ev->data);
}


/*
 * A user coroutine yielded or ended: its parent goes on with the values
 * on top of co's stack, after true unless co is a wrap function's.
 */
static gl_co_t *
gl_co_back(gl_co_t *co)
{
    int        n;
    gl_co_t   *p;

    p = co->parent;
    n = lua_gettop(co->L);
    lua_xmove(co->L, p->L, n);

    if (!co->wrap) {
        lua_pushboolean(p->L, 1);
        lua_insert(p->L, -(n + 1));
        n++;
    }

    co->parent = NULL;
    p->status = GL_CO_RUNNING;
    p->nret = n;

    return p;
}


/*
 * A light thread ended (ok), or died of the error on top of its stack: its
 * parent takes true or false and the values if it waits for it, else the
 * thread is a zombie that keeps them for ngx.thread.wait.  Returns the
 * coroutine that goes on now (with its nret values), or NULL.
 */
static gl_co_t *
gl_co_thread_end(gl_co_t *th, int ok)
{
    int        n;
    gl_co_t   *p;
    gl_task_t *t;

    t = th->task;
    t->nthreads--;
    th->status = GL_CO_DEAD;
    gl_co_orphan(th);

    if (!ok && lua_gettop(th->L) > 1) {
        /* just the error */
        lua_replace(th->L, 1);
        lua_settop(th->L, 1);
    }

    n = lua_gettop(th->L);
    lua_pushboolean(th->L, ok);
    lua_insert(th->L, 1);
    n++;

    p = th->parent;

    if (p != NULL && th->waited && p->wait.ops == &gl_co_thread_wait_ops) {
        gl_co_wait_end(p, 1);
        lua_xmove(th->L, p->L, n);
        gl_co_reap(th);
        p->nret = n;
        return p;
    }

    if (p != NULL) {
        th->status = GL_CO_ZOMBIE;

    } else {
        gl_co_reap(th);
    }

    return NULL;
}


/*
 * Pushes onto L the traceback of co and of the coroutines that resumed or
 * spawned it, as lua-nginx-module writes it: "stack traceback:", then for
 * each "coroutine N:" and its frames, at most 22 per coroutine and 5
 * coroutines.  The chunk a request's entry coroutine runs (golapis calls
 * it as a function made by its code cache) reads "in main chunk", as the
 * chunk it is.
 */
static void
gl_co_traceback(lua_State *L, gl_co_t *co)
{
    int         base, level, coid, bottom;
    lua_Debug   ar, next;
    lua_State  *th;

    base = lua_gettop(L);
    lua_pushliteral(L, "stack traceback:");

    for (coid = 0; co != NULL && coid < 5; co = co->parent) {

        if (coid > 0 && co->status == GL_CO_DEAD) {
            break;
        }

        th = co->L;
        lua_pushfstring(L, "\ncoroutine %d:", coid++);

        for (level = 0; lua_getstack(th, level, &ar); level++) {

            if (level >= 22) {
                lua_pushliteral(L, "\n\t...");
                break;
            }

            lua_getinfo(th, "Snl", &ar);
            lua_pushfstring(L, "\n\t%s:", ar.short_src);

            if (ar.currentline > 0) {
                lua_pushfstring(L, "%d:", ar.currentline);
            }

            bottom = !lua_getstack(th, level + 1, &next);

            if (*ar.namewhat != '\0') {
                lua_pushfstring(L, " in function '%s'", ar.name);

            } else if (*ar.what == 'm'
                       || (bottom && *ar.what == 'L'
                           && co->kind == GL_CO_ENTRY && co->task->chunk))
            {
                lua_pushliteral(L, " in main chunk");

            } else if (*ar.what == 'C' || *ar.what == 't') {
                lua_pushliteral(L, " ?");

            } else {
                lua_pushfstring(L, " in function <%s:%d>", ar.short_src,
                                ar.linedefined);
            }

            if (lua_gettop(L) - base >= 15) {
                lua_concat(L, lua_gettop(L) - base);
            }
        }
    }

    lua_concat(L, lua_gettop(L) - base);
}


/* "lua entry thread aborted: runtime error: MSG\nTRACE", MSG on top of
   co's stack, TRACE on top of the task's state (popped) */
static void
gl_co_log_error(gl_co_t *co, const char *who)
{
    const char  *msg;
    lua_State   *L;

    L = co->task->L;

    /* as lua-nginx-module: an error that is no string has no message */
    msg = lua_isstring(co->L, -1) ? lua_tostring(co->L, -1)
                                  : "unknown reason";

    gl_log_error(GL_LOG_ERR, 0, "lua %s thread aborted: runtime error: "
                 "%s\n%s", who, msg, lua_tostring(L, -1));
    lua_pop(L, 1);
}


/* the task is done if its entry coroutine and all its threads are */
static int
gl_co_task_over(gl_task_t *t)
{
    if (t->entry.status == GL_CO_DEAD && t->nthreads == 0) {
        gl_task_end(t, GL_OK);
        return 1;
    }

    return 0;
}


static void
gl_co_loop(gl_co_t *co, int nret)
{
    int         rc;
    gl_co_t    *next;
    gl_task_t  *t;

    t = co->task;

    for ( ;; ) {
        co->status = GL_CO_RUNNING;
        co->op = GL_CO_OP_NONE;

        next = gl_co_running;
        gl_co_running = co;
        gl_watch_begin(co->L);
        rc = lua_resume(co->L, nret);
        gl_watch_end(co->L);
        gl_co_running = next;

        if (rc == LUA_YIELD) {

            switch (co->op) {

            case GL_CO_OP_WAIT:
                return;

            case GL_CO_OP_RESUME:
                next = co->target;
                co->target = NULL;
                next->nret = lua_gettop(co->L);
                lua_xmove(co->L, next->L, next->nret);
                break;

            case GL_CO_OP_SPAWN:
                next = co->target;
                co->target = NULL;
                break;

            case GL_CO_OP_EXIT:
                gl_task_end(t, GL_DONE);
                return;

            default:
                if (co->kind == GL_CO_USER) {
                    co->status = GL_CO_SUSPENDED;
                    next = gl_co_back(co);
                    gl_co_unpin(co);
                    break;
                }

                /* the entry coroutine or a thread yields: the task's
                   posted coroutines go first, if it has any */
                lua_settop(co->L, 0);

                if (t->nposted > 0) {
                    gl_co_post(co, 0);
                    return;
                }

                next = co;
                next->nret = 0;
                break;
            }

            co = next;
            nret = co->nret;
            continue;
        }

        if (rc == 0) {

            switch (co->kind) {

            case GL_CO_USER:
                co->status = GL_CO_DEAD;
                gl_co_orphan(co);
                next = gl_co_back(co);
                co->keep = 0;
                gl_co_unpin(co);
                break;

            case GL_CO_THREAD:
                next = gl_co_thread_end(co, 1);
                break;

            default:
                co->status = GL_CO_DEAD;
                lua_settop(co->L, 0);
                gl_co_orphan(co);
                gl_co_recycle(co);
                (void) gl_co_task_over(t);
                return;
            }

            if (next == NULL) {
                (void) gl_co_task_over(t);
                return;
            }

            co = next;
            nret = co->nret;
            continue;
        }

        /*
         * co died of the error on top of its stack: where the error ends
         * up (a wrap function's goes up) logs it with the traceback of
         * where it happened, taken now, before the chain unwinds
         */
        for (next = co; next->kind == GL_CO_USER && next->wrap;
             next = next->parent)
        {
            /* void */
        }

        if (next->kind != GL_CO_USER) {
            gl_co_traceback(t->L, co);
        }

        for ( ;; ) {
            co->status = GL_CO_DEAD;

            if (co->kind != GL_CO_USER || !co->wrap) {
                break;
            }

            /*
             * a coroutine.wrap function's error is its caller's, as in
             * lua-nginx-module: the caller dies of it too (a pcall around
             * the call does not catch it), and so on up
             */
            next = co->parent;
            co->parent = NULL;
            gl_co_orphan(co);
            lua_settop(next->L, 0);
            lua_xmove(co->L, next->L, 1);
            co->keep = 0;
            gl_co_unpin(co);
            co = next;
        }

        switch (co->kind) {

        case GL_CO_USER:
            /* coroutine.resume returns false and the error */
            next = co->parent;
            co->parent = NULL;
            gl_co_orphan(co);
            lua_pushboolean(next->L, 0);
            lua_xmove(co->L, next->L, 1);
            next->status = GL_CO_RUNNING;
            next->nret = 2;
            co->keep = 0;
            gl_co_unpin(co);
            break;

        case GL_CO_THREAD:
            gl_co_log_error(co, "user");
            next = gl_co_thread_end(co, 0);

            if (next == NULL) {
                (void) gl_co_task_over(t);
                return;
            }
            break;

        default:
            if (t->ops->error != NULL && t->ops->error(t, co) == GL_OK) {
                /* the core's traceback is not needed */
                lua_pop(t->L, 1);

            } else {
                gl_co_log_error(co, "entry");
            }

            gl_task_end(t, GL_ERROR);
            return;
        }

        co = next;
        nret = co->nret;
    }
}
