/*
 * ngx.timer.at, ngx.timer.every, ngx.timer.running_count and
 * ngx.timer.pending_count, as lua-nginx-module's.
 *
 * A timer is its handler and arguments (a table in the registry of the
 * Lua state that made it, whose generation it holds) and when it is due.
 * A worker's pending timers are a binary heap ordered by that time, then
 * by creation, so that timers due at once run in the order they were
 * made; one libev timer is armed for the first.  When a timer is due it
 * becomes a task (src/lua/gl_co.c) whose entry coroutine runs the handler
 * with premature and the arguments; the handler may wait, spawn threads,
 * use semaphores and shared dicts, and has no request.  An every timer
 * makes its next run as it starts this one.
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

typedef struct gl_timer_s  gl_timer_t;

struct gl_timer_s {
    gl_task_t        task;          /* once it runs */
    gl_vm_t         *vm;
    gl_lua_gen_t    *gen;           /* its Lua state, held */
    int              ref;           /* { handler, args..., n = nargs } */
    double           at;            /* due, in the loop's time */
    double           every;         /* ngx.timer.every's period; 0 */
    uint64_t         seq;           /* creation order */
    size_t           index;         /* in the heap, while pending */
    unsigned         premature:1;
    unsigned         held:1;        /* holds a stopping worker */
    unsigned         done:1;        /* its handler ended: freed on leave */
    gl_log_ctx_t    *saved_log;
    gl_log_ctx_t     log;
};

/* a worker's timers */
typedef struct {
    gl_vm_t         *vm;
    gl_timer_t     **heap;          /* pending, by (at, seq) */
    size_t           npending;
    size_t           cap;
    int              nrunning;
    uint64_t         seq;
    ev_timer         ev;            /* armed for heap[0] */
} gl_timers_t;

extern gl_module_t  gl_lua_timer_module;

static void gl_timer_enter(gl_task_t *t);
static void gl_timer_leave(gl_task_t *t);
static void gl_timer_done(gl_task_t *t, int rc);

static const gl_task_ops_t  gl_timer_ops = {
    gl_timer_enter, gl_timer_leave, gl_timer_done
};

#define gl_timer_of_task(t)                                                  \
    ((gl_timer_t *) ((u_char *) (t) - offsetof(gl_timer_t, task)))


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


/* the heap */

static int
gl_timer_before(gl_timer_t *a, gl_timer_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}


static void
gl_timer_heap_set(gl_timers_t *st, size_t i, gl_timer_t *tm)
{
    st->heap[i] = tm;
    tm->index = i;
}


static void
gl_timer_heap_up(gl_timers_t *st, size_t i)
{
    size_t       p;
    gl_timer_t  *tm;

    tm = st->heap[i];

    while (i > 0) {
        p = (i - 1) / 2;

        if (!gl_timer_before(tm, st->heap[p])) {
            break;
        }

        gl_timer_heap_set(st, i, st->heap[p]);
        i = p;
    }

    gl_timer_heap_set(st, i, tm);
}


static void
gl_timer_heap_down(gl_timers_t *st, size_t i)
{
    size_t       c;
    gl_timer_t  *tm;

    tm = st->heap[i];

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= st->npending) {
            break;
        }

        if (c + 1 < st->npending
            && gl_timer_before(st->heap[c + 1], st->heap[c]))
        {
            c++;
        }

        if (!gl_timer_before(st->heap[c], tm)) {
            break;
        }

        gl_timer_heap_set(st, i, st->heap[c]);
        i = c;
    }

    gl_timer_heap_set(st, i, tm);
}


static int
gl_timer_heap_push(gl_timers_t *st, gl_timer_t *tm)
{
    size_t        cap;
    gl_timer_t  **heap;

    if (st->npending == st->cap) {
        cap = st->cap ? st->cap * 2 : 64;
        heap = realloc(st->heap, cap * sizeof(gl_timer_t *));
        if (heap == NULL) {
            return GL_ERROR;
        }
        st->heap = heap;
        st->cap = cap;
    }

    gl_timer_heap_set(st, st->npending++, tm);
    gl_timer_heap_up(st, st->npending - 1);

    return GL_OK;
}


static void
gl_timer_heap_remove(gl_timers_t *st, gl_timer_t *tm)
{
    size_t  i;

    i = tm->index;

    if (--st->npending == i) {
        return;
    }

    gl_timer_heap_set(st, i, st->heap[st->npending]);
    gl_timer_heap_up(st, i);
    gl_timer_heap_down(st, st->heap[i]->index);
}


/* the libev timer, for the first due */
static void
gl_timer_arm(gl_timers_t *st)
{
    double  after;

    ev_timer_stop(st->vm->loop, &st->ev);

    if (st->npending == 0) {
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


/* the code of tm's generation is going away: new timers with a delay are
   refused, every timers are not made again */
static int
gl_timer_exiting(gl_vm_t *vm, gl_lua_gen_t *gen)
{
    return vm->exiting || gen->retired;
}


static void
gl_timer_free(gl_timer_t *tm)
{
    if (tm->held) {
        gl_sched_release(&tm->vm->sched);
    }

    gl_lua_free_ctx(&tm->task);
    luaL_unref(tm->gen->L, LUA_REGISTRYINDEX, tm->ref);
    gl_lua_gen_release(tm->gen);
    free(tm);
}


/*
 * A new pending timer of gen's: the handler and its args at [first,
 * first + nargs] of L go into a table.  GL_ERROR on no memory.
 */
static gl_timer_t *
gl_timer_new(gl_timers_t *st, gl_lua_gen_t *gen, int ref, double delay,
    double every)
{
    gl_timer_t  *tm;

    tm = calloc(1, sizeof(gl_timer_t));
    if (tm == NULL) {
        return NULL;
    }

    tm->vm = st->vm;
    tm->gen = gen;
    tm->task.ctx_ref = LUA_NOREF;
    tm->ref = ref;
    tm->every = every;
    tm->at = ev_now(st->vm->loop) + delay;
    tm->seq = ++st->seq;
    tm->log.handler = gl_timer_log_handler;

    if (gl_timer_heap_push(st, tm) != GL_OK) {
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

    return tm;
}


/*
 * tm is due (or runs early, premature): its handler starts as a task.
 * now: it runs at once, until it waits, before the next timer starts (as
 * nginx's timer events, one after the other); else it is posted.
 */
static void
gl_timer_fire(gl_timers_t *st, gl_timer_t *tm, int now)
{
    int          i, n, ref, max;
    lua_State   *L;
    lua_Debug    ar;
    gl_timer_t  *next;

    L = tm->gen->L;

    if (tm->every > 0 && !tm->premature
        && !gl_timer_exiting(tm->vm, tm->gen))
    {
        /* the next run, counted pending from now, as upstream */
        lua_rawgeti(L, LUA_REGISTRYINDEX, tm->ref);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
        next = gl_timer_new(st, tm->gen, ref, tm->every, tm->every);

        if (next == NULL) {
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            gl_log_error(GL_LOG_ALERT, 0, "failed to create the next timer "
                         "of delay %u ms", (unsigned) (tm->every * 1000));
        }
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, tm->ref);
    max = gl_timer_conf(tm->vm)->max_running;

    if (st->nrunning >= max) {
        lua_rawgeti(L, -1, 1);
        lua_getinfo(L, ">S", &ar);
        gl_log_error(GL_LOG_ALERT, 0, "lua failed to run timer with function "
                     "defined at %s:%d: %d lua_max_running_timers are not "
                     "enough", ar.source ? ar.source : "(unknown)",
                     ar.linedefined, max);
        lua_pop(L, 1);
        gl_timer_free(tm);
        return;
    }

    st->nrunning++;

    /* the handler, premature, the arguments */
    lua_getfield(L, -1, "n");
    n = (int) lua_tointeger(L, -1);
    lua_pop(L, 1);

    lua_rawgeti(L, -1, 1);
    lua_pushboolean(L, tm->premature);

    for (i = 2; i <= n + 1; i++) {
        lua_rawgeti(L, -2 - (i - 1), i);
    }

    lua_remove(L, -(n + 3));

    gl_task_init(&tm->task, &tm->vm->sched, L, &gl_timer_ops,
                 GL_PHASE_TIMER);

    if (now) {
        gl_task_run(&tm->task, n + 1);
    } else {
        (void) gl_task_start(&tm->task, n + 1);
    }
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

    while (st->npending > 0 && st->heap[0]->at <= now) {
        tm = st->heap[0];
        gl_timer_heap_remove(st, tm);
        gl_timer_fire(st, tm, 1);
    }

    gl_timer_arm(st);
}


/* every pending timer (of gen, or all) runs now, premature */
static void
gl_timer_fire_all(gl_timers_t *st, gl_lua_gen_t *gen)
{
    size_t        i, n;
    gl_timer_t  **list, *tm;

    if (st->npending == 0) {
        return;
    }

    list = malloc(st->npending * sizeof(gl_timer_t *));
    if (list == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "no memory to end the pending "
                     "timers");
        return;
    }

    /* in the order they are due */
    n = 0;

    while (st->npending > 0) {
        tm = st->heap[0];
        gl_timer_heap_remove(st, tm);
        list[n++] = tm;
    }

    for (i = 0; i < n; i++) {
        tm = list[i];

        if (gen != NULL && tm->gen != gen) {
            (void) gl_timer_heap_push(st, tm);
            continue;
        }

        tm->premature = 1;
        gl_timer_fire(st, tm, 0);
    }

    free(list);
    gl_timer_arm(st);
}


/* the task's ops */

static void
gl_timer_enter(gl_task_t *t)
{
    gl_timer_t  *tm;

    tm = gl_timer_of_task(t);
    tm->saved_log = gl_log_set_ctx(&tm->log);
}


static void
gl_timer_leave(gl_task_t *t)
{
    gl_timer_t  *tm;

    tm = gl_timer_of_task(t);
    (void) gl_log_set_ctx(tm->saved_log);

    if (tm->done) {
        gl_timer_free(tm);
    }
}


static void
gl_timer_done(gl_task_t *t, int rc)
{
    gl_timer_t  *tm;

    (void) rc;

    tm = gl_timer_of_task(t);
    tm->done = 1;
    gl_timers(tm->vm)->nrunning--;

}


/* the API */

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

    t = gl_task_current();
    vm = gl_vm_self;

    if (t == NULL || t->context == GL_PHASE_INIT || vm == NULL) {
        return luaL_error(L, "no request");
    }

    st = gl_timers(vm);
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

    /* { handler, args..., n = nargs } */
    lua_createtable(L, nargs - 1, 1);
    lua_pushinteger(L, nargs - 2);
    lua_setfield(L, -2, "n");

    for (i = 2; i <= nargs; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - 1);
    }

    ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if (gl_timer_new(st, gen, ref, delay, every ? delay : 0) == NULL) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "no memory");
    }

    gl_timer_arm(st);

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
    gl_timer_t   *tm;
    gl_timers_t  *st;

    st = gl_timers(vm);
    if (st == NULL) {
        return;
    }

    ev_timer_stop(vm->loop, &st->ev);

    /* what is left when the loop ended (the shutdown timeout cut it) */
    while (st->npending > 0) {
        tm = st->heap[0];
        gl_timer_heap_remove(st, tm);
        tm->held = 0;
        gl_timer_free(tm);
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
