/*
 * ngx.timer.at, ngx.timer.every, ngx.timer.running_count and
 * ngx.timer.pending_count, as lua-nginx-module's.
 *
 * A pending timer is small: its handler (and its arguments, in a table)
 * pinned in the registry of the Lua state that made it, whose generation
 * it holds, and when it is due.  A worker's pending timers are kept by
 * due time in slots (the timers due at one time, in creation order, so
 * that timers due at once run in the order they were made; a storm of
 * ngx.timer.at(0) is one slot), the slots in a binary heap; one libev
 * timer is armed for the first.  When a timer is due, it becomes a task
 * (src/lua/gl_co.c; its record reused from a free list) whose entry
 * coroutine, a Lua thread from the state's cache, runs the handler with
 * premature and the arguments; the handler may wait, spawn threads, use
 * semaphores and shared dicts, and has no request.  An every timer makes
 * its next run as it starts this one.
 *
 * Stops and reloads: when the worker stops, every pending timer runs at
 * once with premature = true, and the stop waits for the running ones
 * (worker_shutdown_timeout bounds it); when a reload retires a generation
 * of the Lua state, the pending timers of its code run the same way.
 * Meanwhile new timers with a delay are refused ("process exiting") and
 * every timers are not made again, so the old code winds down.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"

#include <stdio.h>

/* lua_max_pending_timers, lua_max_running_timers */
typedef struct {
    int              max_pending;
    int              max_running;
} gl_timer_conf_t;

typedef struct gl_timer_s      gl_timer_t;
typedef struct gl_timer_slot_s gl_timer_slot_t;
typedef struct gl_timer_run_s  gl_timer_run_t;
typedef struct gl_timers_s     gl_timers_t;

/* a pending timer */
struct gl_timer_s {
    gl_lua_gen_t    *gen;           /* its Lua state, held */
    int              ref;           /* the handler, or with arguments a
                                       table { handler, args... } */
    int              nargs;
    double           every;         /* ngx.timer.every's period; 0 */
    gl_timer_slot_t *slot;
    gl_queue_t       link;          /* in its slot */
    unsigned         held:1;        /* holds a stopping worker */
};

/* the pending timers due at one time, in the order they were made: the
   heap's elements (a storm of ngx.timer.at(0) is one slot) */
struct gl_timer_slot_s {
    double           at;            /* due, in the loop's time */
    uint64_t         seq;           /* orders the slots due at once */
    size_t           index;         /* in the heap */
    gl_queue_t       timers;
};

/* a timer that runs: its task */
struct gl_timer_run_s {
    gl_task_t        task;
    gl_timers_t     *st;
    gl_lua_gen_t    *gen;
    gl_log_ctx_t    *saved_log;
    gl_timer_run_t  *next;          /* on the free list */
    unsigned         done:1;        /* its handler ended: freed on leave */
};

/* a worker's timers */
struct gl_timers_s {
    gl_vm_t         *vm;
    gl_timer_slot_t **heap;         /* by (at, seq) */
    size_t           nslots;
    size_t           cap;
    gl_timer_slot_t *last;          /* the slot last added to */
    size_t           npending;
    int              nrunning;
    uint64_t         seq;
    ev_timer         ev;            /* armed for heap[0] */
    gl_timer_run_t  *free_runs;
    int              nfree_runs;
};

extern gl_module_t  gl_lua_timer_module;

static void gl_timer_enter(gl_task_t *t);
static void gl_timer_leave(gl_task_t *t);
static void gl_timer_done(gl_task_t *t, int rc);

static const gl_task_ops_t  gl_timer_ops = {
    gl_timer_enter, gl_timer_leave, gl_timer_done, NULL
};

#define gl_timer_of_task(t)                                                  \
    ((gl_timer_run_t *) ((u_char *) (t) - offsetof(gl_timer_run_t, task)))

/* the run records kept for reuse */
#define GL_TIMER_FREE_RUNS  256


static gl_timers_t *
gl_timers(gl_vm_t *vm)
{
    return *gl_vm_module_data(vm, &gl_lua_timer_module);
}


static gl_timer_conf_t *
gl_timer_conf(gl_vm_t *vm)
{
    return gl_conf_module(vm->conf, &gl_lua_timer_module);
}


/* the heap of slots */

static int
gl_timer_before(gl_timer_slot_t *a, gl_timer_slot_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}


static void
gl_timer_heap_set(gl_timers_t *st, size_t i, gl_timer_slot_t *sl)
{
    st->heap[i] = sl;
    sl->index = i;
}


static void
gl_timer_heap_up(gl_timers_t *st, size_t i)
{
    size_t            p;
    gl_timer_slot_t  *sl;

    sl = st->heap[i];

    while (i > 0) {
        p = (i - 1) / 2;

        if (!gl_timer_before(sl, st->heap[p])) {
            break;
        }

        gl_timer_heap_set(st, i, st->heap[p]);
        i = p;
    }

    gl_timer_heap_set(st, i, sl);
}


static void
gl_timer_heap_down(gl_timers_t *st, size_t i)
{
    size_t            c;
    gl_timer_slot_t  *sl;

    sl = st->heap[i];

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= st->nslots) {
            break;
        }

        if (c + 1 < st->nslots
            && gl_timer_before(st->heap[c + 1], st->heap[c]))
        {
            c++;
        }

        if (!gl_timer_before(st->heap[c], sl)) {
            break;
        }

        gl_timer_heap_set(st, i, st->heap[c]);
        i = c;
    }

    gl_timer_heap_set(st, i, sl);
}


/* tm joins the pending timers due at at; GL_ERROR on no memory */
static int
gl_timer_add(gl_timers_t *st, gl_timer_t *tm, double at)
{
    size_t             cap;
    gl_timer_slot_t   *sl, **heap;

    sl = st->last;

    if (sl == NULL || sl->at != at) {
        if (st->nslots == st->cap) {
            cap = st->cap ? st->cap * 2 : 64;
            heap = realloc(st->heap, cap * sizeof(gl_timer_slot_t *));
            if (heap == NULL) {
                return GL_ERROR;
            }
            st->heap = heap;
            st->cap = cap;
        }

        sl = malloc(sizeof(gl_timer_slot_t));
        if (sl == NULL) {
            return GL_ERROR;
        }

        sl->at = at;
        sl->seq = ++st->seq;
        gl_queue_init(&sl->timers);

        gl_timer_heap_set(st, st->nslots++, sl);
        gl_timer_heap_up(st, st->nslots - 1);
        st->last = sl;
    }

    tm->slot = sl;
    gl_queue_insert_tail(&sl->timers, &tm->link);
    st->npending++;
    gl_stat_gauge_set(&st->vm->stat->timers_pending, st->npending);

    return GL_OK;
}


/* tm leaves the pending timers */
static void
gl_timer_take(gl_timers_t *st, gl_timer_t *tm)
{
    size_t            i;
    gl_timer_slot_t  *sl;

    sl = tm->slot;
    gl_queue_remove(&tm->link);
    st->npending--;
    gl_stat_gauge_set(&st->vm->stat->timers_pending, st->npending);

    if (!gl_queue_empty(&sl->timers)) {
        return;
    }

    if (st->last == sl) {
        st->last = NULL;
    }

    i = sl->index;

    if (--st->nslots != i) {
        /* the last slot takes its place, then finds its own */
        sl = st->heap[st->nslots];
        gl_timer_heap_set(st, i, sl);
        gl_timer_heap_up(st, i);
        gl_timer_heap_down(st, sl->index);
        sl = tm->slot;
    }

    free(sl);
}


/* the first pending timer due, or NULL */
static gl_timer_t *
gl_timer_first(gl_timers_t *st)
{
    if (st->nslots == 0) {
        return NULL;
    }

    return gl_queue_data(gl_queue_head(&st->heap[0]->timers), gl_timer_t,
                         link);
}


/* the libev timer, for the first due */
static void
gl_timer_arm(gl_timers_t *st)
{
    double  after;

    ev_timer_stop(st->vm->loop, &st->ev);

    if (st->nslots == 0) {
        return;
    }

    after = st->heap[0]->at - ev_now(st->vm->loop);
    ev_timer_set(&st->ev, after > 0 ? after : 0, 0);
    ev_timer_start(st->vm->loop, &st->ev);
}


/* a timer's life */

static size_t
gl_timer_log_handler(gl_log_ctx_t *ctx, char *buf, size_t size)
{
    int  n;

    (void) ctx;

    n = snprintf(buf, size, ", context: ngx.timer");

    return n > 0 ? (size_t) n : 0;
}


static gl_log_ctx_t  gl_timer_log = { gl_timer_log_handler, 0 };


/* the code of a generation is going away: new timers with a delay are
   refused, every timers are not made again */
static int
gl_timer_exiting(gl_vm_t *vm, gl_lua_gen_t *gen)
{
    return vm->exiting || gen->retired;
}


/* a pending timer goes without running (its record only: the caller has
   what it needs of its thread) */
static void
gl_timer_free(gl_timers_t *st, gl_timer_t *tm, int unref)
{
    if (tm->held) {
        gl_sched_release(&st->vm->sched);
    }

    if (unref) {
        luaL_unref(tm->gen->L, LUA_REGISTRYINDEX, tm->ref);
        gl_lua_gen_release(tm->gen);
    }

    free(tm);
}


/*
 * A new pending timer of gen's, due after delay: ref pins its handler (and
 * its nargs arguments, in a table); the timer owns it now.  NULL on no
 * memory.
 */
static gl_timer_t *
gl_timer_new(gl_timers_t *st, gl_lua_gen_t *gen, int ref, int nargs,
    double delay, double every)
{
    gl_timer_t  *tm;

    tm = malloc(sizeof(gl_timer_t));
    if (tm == NULL) {
        return NULL;
    }

    tm->gen = gen;
    tm->ref = ref;
    tm->nargs = nargs;
    tm->every = every;
    tm->held = 0;

    if (gl_timer_add(st, tm, ev_now(st->vm->loop) + delay) != GL_OK) {
        free(tm);
        return NULL;
    }

    gen->refs++;

    if (st->vm->exiting) {
        /* made while the worker stops: it must run before the worker
           ends */
        tm->held = 1;
        gl_sched_hold(&st->vm->sched);
    }

    if (tm->slot->index == 0 && gl_timer_first(st) == tm) {
        /* the first due now */
        gl_timer_arm(st);
    }

    return tm;
}


/* pushes onto co the handler and its arguments */
static void
gl_timer_push_handler(gl_timer_t *tm, lua_State *co)
{
    int  i, t;

    lua_rawgeti(co, LUA_REGISTRYINDEX, tm->ref);

    if (tm->nargs == 0) {
        return;
    }

    t = lua_gettop(co);

    for (i = 1; i <= tm->nargs + 1; i++) {
        lua_rawgeti(co, t, i);
    }

    lua_remove(co, t);
}


/*
 * tm is due (or runs early, premature): its handler starts as the entry
 * coroutine of a task.  now: it runs at once, until it waits, before the
 * next timer starts (as nginx's timer events, one after the other); else
 * it is posted.  tm goes; an every timer's handler goes to its next run.
 */
static void
gl_timer_fire(gl_timers_t *st, gl_timer_t *tm, int premature, int now)
{
    int              max, ref;
    lua_Debug        ar;
    lua_State       *L, *co;
    gl_timer_run_t  *run;

    L = tm->gen->L;

    if (tm->every > 0 && !premature
        && !gl_timer_exiting(st->vm, tm->gen))
    {
        /* the next run, counted pending from now, as upstream; it takes
           the handler */
        if (gl_timer_new(st, tm->gen, tm->ref, tm->nargs, tm->every,
                         tm->every)
            != NULL)
        {
            lua_rawgeti(L, LUA_REGISTRYINDEX, tm->ref);
            tm->ref = luaL_ref(L, LUA_REGISTRYINDEX);

        } else {
            gl_log_error(GL_LOG_ALERT, 0, "failed to create the next timer "
                         "of delay %u ms", (unsigned) (tm->every * 1000));
        }
    }

    max = gl_timer_conf(st->vm)->max_running;

    if (st->nrunning >= max) {
        gl_timer_push_handler(tm, L);
        lua_pop(L, tm->nargs);
        lua_getinfo(L, ">S", &ar);
        gl_log_error_limited(GL_LOG_ALERT, 0, "lua failed to run timer "
                             "with function defined at %s:%d: %d "
                             "lua_max_running_timers are not enough",
                             ar.source ? ar.source : "(unknown)",
                             ar.linedefined, max);
        gl_timer_free(st, tm, 1);
        return;
    }

    if (st->free_runs != NULL) {
        run = st->free_runs;
        st->free_runs = run->next;
        st->nfree_runs--;

    } else {
        run = malloc(sizeof(gl_timer_run_t));
        if (run == NULL) {
            gl_log_error(GL_LOG_ALERT, errno, "no memory to run a timer");
            gl_timer_free(st, tm, 1);
            return;
        }
    }

    st->nrunning++;
    gl_stat_gauge_set(&st->vm->stat->timers_running, st->nrunning);

    run->st = st;
    run->gen = tm->gen;
    run->done = 0;

    gl_task_init(&run->task, &st->vm->sched, L, &gl_timer_ops,
                 GL_PHASE_TIMER);

    /* the handler, premature, the arguments, on a cached thread */
    co = gl_co_new_thread(L, &ref);
    gl_timer_push_handler(tm, co);
    lua_pushboolean(co, premature);
    lua_insert(co, 2);

    luaL_unref(L, LUA_REGISTRYINDEX, tm->ref);

    if (now) {
        gl_task_run_thread(&run->task, co, ref, tm->nargs + 1);
    } else {
        gl_task_start_thread(&run->task, co, ref, tm->nargs + 1);
    }

    /* the generation's reference is the run's now */
    gl_timer_free(st, tm, 0);
}


static void
gl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    double        now;
    gl_timer_t   *tm;
    gl_timers_t  *st;

    (void) revents;

    st = w->data;
    now = ev_now(loop);

    while ((tm = gl_timer_first(st)) != NULL && tm->slot->at <= now) {
        gl_timer_take(st, tm);
        gl_timer_fire(st, tm, 0, 1);
    }

    gl_timer_arm(st);
}


/* every pending timer (of gen, or all) runs now, premature; only from an
   event callback (a stop, a reload), never under a coroutine of ours */
static void
gl_timer_fire_all(gl_timers_t *st, gl_lua_gen_t *gen)
{
    size_t         i, n;
    gl_timer_t    *tm;

    struct {
        gl_timer_t  *tm;
        double       at;
    }             *list;

    if (st->npending == 0) {
        return;
    }

    list = malloc(st->npending * sizeof(*list));
    if (list == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "no memory to end the pending "
                     "timers");
        return;
    }

    /* in the order they are due */
    n = 0;

    while ((tm = gl_timer_first(st)) != NULL) {
        list[n].tm = tm;
        list[n++].at = tm->slot->at;
        gl_timer_take(st, tm);
    }

    for (i = 0; i < n; i++) {
        tm = list[i].tm;

        if (gen != NULL && tm->gen != gen) {
            if (gl_timer_add(st, tm, list[i].at) != GL_OK) {
                gl_log_error(GL_LOG_ALERT, errno, "no memory for a timer");
                gl_timer_free(st, tm, 1);
            }

            continue;
        }

        /* at once, as nginx's: a handler that returns on premature is
           done before the next starts, and lua_max_running_timers counts
           only the ones that wait */
        gl_timer_fire(st, tm, 1, 1);
    }

    free(list);
    gl_timer_arm(st);
}


/* the task's ops */

static void
gl_timer_enter(gl_task_t *t)
{
    gl_timer_run_t  *run;

    run = gl_timer_of_task(t);
    run->saved_log = gl_log_set_ctx(&gl_timer_log);
}


static void
gl_timer_leave(gl_task_t *t)
{
    gl_timers_t     *st;
    gl_timer_run_t  *run;

    run = gl_timer_of_task(t);
    (void) gl_log_set_ctx(run->saved_log);

    if (!run->done) {
        return;
    }

    st = run->st;
    gl_lua_free_ctx(&run->task);
    gl_lua_gen_release(run->gen);

    if (st->nfree_runs < GL_TIMER_FREE_RUNS) {
        run->next = st->free_runs;
        st->free_runs = run;
        st->nfree_runs++;

    } else {
        free(run);
    }
}


static void
gl_timer_done(gl_task_t *t, int rc)
{
    gl_timer_run_t  *run;

    (void) rc;

    run = gl_timer_of_task(t);
    run->done = 1;
    run->st->nrunning--;
    gl_stat_gauge_set(&run->st->vm->stat->timers_running,
                      run->st->nrunning);

    /* what its handler left open (a cosocket) goes */
    gl_task_cleanup(t);
}


/* the API */

/* the worker's timers, for Lua code that may use them (raises "no
   request" in init_by_lua) */
static gl_timers_t *
gl_lua_timers(lua_State *L)
{
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL || t->context == GL_PHASE_INIT || gl_vm_self == NULL) {
        luaL_error(L, "no request");
    }

    return gl_timers(gl_vm_self);
}


static int
gl_lua_timer_helper(lua_State *L, int every)
{
    int            i, nargs, ref;
    long           ms;
    double         delay;
    gl_vm_t       *vm;
    gl_task_t     *t;
    gl_timers_t   *st;
    gl_lua_gen_t  *gen;

    nargs = lua_gettop(L);
    if (nargs < 2) {
        return luaL_error(L, "expecting at least 2 arguments but got %d",
                          nargs);
    }

    delay = luaL_checknumber(L, 1);
    if (delay < 0) {
        return luaL_error(L, "delay cannot be negative");
    }

    /* whole milliseconds, as nginx's timers */
    ms = (long) (delay * 1000);
    delay = ms / 1000.0;

    if (every && ms == 0) {
        return luaL_error(L, "delay cannot be zero");
    }

    luaL_argcheck(L, lua_isfunction(L, 2) && !lua_iscfunction(L, 2), 2,
                  "Lua function expected");

    st = gl_lua_timers(L);
    t = gl_task_current();
    vm = gl_vm_self;

    if (t->context == GL_PHASE_EXIT_WORKER) {
        /* the loop is over: a timer would never run */
        return luaL_error(L, "API disabled in the context of %s",
                          gl_lua_context_name(t->context));
    }

    gen = gl_lua_gen_of(L);

    if (gl_timer_exiting(vm, gen) && ms > 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "process exiting");
        return 2;
    }

    if (st->npending >= (size_t) gl_timer_conf(vm)->max_pending) {
        lua_pushnil(L);
        lua_pushliteral(L, "too many pending timers");
        return 2;
    }

    /* the handler, or a table { handler, args... } */
    if (nargs == 2) {
        lua_pushvalue(L, 2);

    } else {
        lua_createtable(L, nargs - 1, 0);

        for (i = 2; i <= nargs; i++) {
            lua_pushvalue(L, i);
            lua_rawseti(L, -2, i - 1);
        }
    }

    ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if (gl_timer_new(st, gen, ref, nargs - 2, delay, every ? delay : 0)
        == NULL)
    {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "no memory");
    }

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_lua_timer_at(lua_State *L)
{
    return gl_lua_timer_helper(L, 0);
}


static int
gl_lua_timer_every(lua_State *L)
{
    return gl_lua_timer_helper(L, 1);
}


static int
gl_lua_timer_running_count(lua_State *L)
{
    lua_pushnumber(L, gl_lua_timers(L)->nrunning);
    return 1;
}


static int
gl_lua_timer_pending_count(lua_State *L)
{
    lua_pushnumber(L, gl_lua_timers(L)->npending);
    return 1;
}


/* the module's hooks */

static void
gl_lua_timer_inject(lua_State *L)
{
    lua_createtable(L, 0, 4);

    lua_pushcfunction(L, gl_lua_timer_at);
    lua_setfield(L, -2, "at");
    lua_pushcfunction(L, gl_lua_timer_every);
    lua_setfield(L, -2, "every");
    lua_pushcfunction(L, gl_lua_timer_running_count);
    lua_setfield(L, -2, "running_count");
    lua_pushcfunction(L, gl_lua_timer_pending_count);
    lua_setfield(L, -2, "pending_count");

    lua_setfield(L, -2, "timer");
}


static int
gl_lua_timer_init_worker(gl_vm_t *vm)
{
    gl_timers_t  *st;

    st = calloc(1, sizeof(gl_timers_t));
    if (st == NULL) {
        gl_log_error(GL_LOG_EMERG, errno, "no memory for timers");
        return GL_ERROR;
    }

    st->vm = vm;
    ev_timer_init(&st->ev, gl_timer_cb, 0, 0);
    st->ev.data = st;

    *gl_vm_module_data(vm, &gl_lua_timer_module) = st;

    return GL_OK;
}


static void
gl_lua_timer_exit_worker(gl_vm_t *vm)
{
    gl_timer_t      *tm;
    gl_timers_t     *st;
    gl_timer_run_t  *run;

    st = gl_timers(vm);
    if (st == NULL) {
        return;
    }

    ev_timer_stop(vm->loop, &st->ev);

    /* what is left when the loop ended (the shutdown timeout cut it) */
    while ((tm = gl_timer_first(st)) != NULL) {
        gl_timer_take(st, tm);
        tm->held = 0;
        gl_timer_free(st, tm, 1);
    }

    while (st->free_runs != NULL) {
        run = st->free_runs;
        st->free_runs = run->next;
        free(run);
    }

    free(st->heap);
    free(st);
    *gl_vm_module_data(vm, &gl_lua_timer_module) = NULL;
}


static void
gl_lua_timer_stop(gl_vm_t *vm)
{
    gl_timer_fire_all(gl_timers(vm), NULL);
}


static void
gl_lua_timer_retire(gl_vm_t *vm, void *gen)
{
    gl_timer_fire_all(gl_timers(vm), gen);
}


static const char *
gl_lua_timer_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_timer_conf_t  *tcf = mconf;

    (void) conf;

    gl_conf_init_value(tcf->max_pending, 1024);
    gl_conf_init_value(tcf->max_running, 256);

    return NULL;
}


static const gl_conf_bounds_t  gl_lua_timer_bounds = { 0, 1000000000, NULL };

static const gl_command_t  gl_lua_timer_commands[] = {

    { "lua_max_pending_timers", GL_CONF_TAKE1, gl_conf_set_num_slot,
      GL_CONF_MODULE, offsetof(gl_timer_conf_t, max_pending),
      &gl_lua_timer_bounds },

    { "lua_max_running_timers", GL_CONF_TAKE1, gl_conf_set_num_slot,
      GL_CONF_MODULE, offsetof(gl_timer_conf_t, max_running),
      &gl_lua_timer_bounds },

    gl_null_command
};


gl_module_t  gl_lua_timer_module = {
    .name = "timer",
    .commands = gl_lua_timer_commands,
    .conf_size = sizeof(gl_timer_conf_t),
    .init_conf = gl_lua_timer_init_conf,
    .inject = gl_lua_timer_inject,
    .init_worker = gl_lua_timer_init_worker,
    .exit_worker = gl_lua_timer_exit_worker,
    .stop = gl_lua_timer_stop,
    .retire = gl_lua_timer_retire,
};
