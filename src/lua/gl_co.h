/*
 * The coroutine core: every Lua coroutine that can wait, the task that owns
 * a set of them, what each one waits on, and the scheduler that resumes
 * them.  It knows Lua and libev, nothing of FastCGI or of requests.
 *
 * A coroutine (gl_co_t) is a task's entry coroutine (one per phase of a
 * request, a timer's handler), a light thread (ngx.thread.spawn) or a user
 * coroutine (coroutine.create/wrap).  A Lua API function that must wait
 * arms the coroutine's wait block (gl_co_wait: what it waits on, how to
 * undo it, an optional timeout), links it into a wait queue if it has one,
 * and returns gl_co_yield().  Whoever ends the wait pushes the values the
 * API call returns onto the coroutine's stack and calls gl_co_wake(): the
 * coroutine is posted, and the scheduler resumes it from the event loop,
 * never from inside another coroutine's API call (as lua-nginx-module's
 * posted events).  gl_task_cancel() undoes every wait of a task at once.
 *
 * A task (gl_task_t) is the owner: a request, a timer, init_worker.  Its
 * ops say what to do around each run of its coroutines (a request holds
 * its connection and flushes its output) and when they are all done.
 */
#ifndef GL_CO_H
#define GL_CO_H

#include "gl_core.h"
#include "gl_queue.h"

#include <ev.h>
#include <lua.h>

typedef struct gl_sched_s     gl_sched_t;
typedef struct gl_task_s      gl_task_t;
typedef struct gl_co_s        gl_co_t;
typedef struct gl_posted_s    gl_posted_t;
typedef struct gl_wait_ops_s  gl_wait_ops_t;
typedef struct gl_task_cleanup_s  gl_task_cleanup_t;


/*
 * An event posted to run from the scheduler: after every callback of this
 * turn of the loop (gl_post), or at the next turn (gl_post_deferred, for
 * a wait of no time: ngx.sleep(0)).
 */
struct gl_posted_s {
    void            (*handler)(gl_posted_t *ev);
    void             *data;
    gl_queue_t        link;
};

/* a worker's scheduler: one per event loop */
struct gl_sched_s {
    struct ev_loop   *loop;
    gl_queue_t        posted;
    gl_queue_t        deferred;
    ev_prepare        prepare;
    ev_idle           idle;         /* keeps the loop from blocking while
                                       events are deferred */
    uint64_t          serial;       /* of the last task started */
    int               nbusy;        /* tasks with a live coroutine, and
                                       what else holds the worker */

    /* nbusy fell to 0 (a stopping worker may exit) */
    void            (*on_idle)(gl_sched_t *s);
    void             *data;
};


typedef enum {
    GL_CO_RUNNING = 0,
    GL_CO_SUSPENDED,
    GL_CO_NORMAL,           /* it resumed another and waits for it */
    GL_CO_DEAD,
    GL_CO_ZOMBIE            /* a light thread that ended, not yet waited */
} gl_co_status_e;

typedef enum {
    GL_CO_ENTRY = 0,
    GL_CO_USER,
    GL_CO_THREAD
} gl_co_kind_e;

/* what a yielding API function asks of the scheduler */
typedef enum {
    GL_CO_OP_NONE = 0,      /* a yield the core did not ask for */
    GL_CO_OP_WAIT,          /* the wait block is armed */
    GL_CO_OP_RESUME,        /* coroutine.resume(co->target) */
    GL_CO_OP_YIELD,         /* coroutine.yield */
    GL_CO_OP_SPAWN,         /* ngx.thread.spawn: run co->target first */
    GL_CO_OP_EXIT           /* ngx.exit: end the task */
} gl_co_op_e;

/* how a kind of wait is undone; the same for every wait of that kind */
struct gl_wait_ops_s {
    const char       *name;             /* "ngx.sleep", for log lines */
    /* the wait is given up (its task ends, its thread is killed): undo
       whatever the core does not know of; NULL if nothing */
    void            (*cancel)(gl_co_t *co);
    /* the timeout expired: push the values the API call returns and
       return how many (nil, "timeout"); NULL: none */
    int             (*timedout)(gl_co_t *co);
};

typedef struct {
    const gl_wait_ops_t  *ops;          /* NULL: not waiting */
    void                 *data;         /* the wait's own (a semaphore) */
    const u_char         *buf;          /* bytes a wait carries (the rest of
                                           an ngx.print) */
    size_t                len;
    int                   ref;          /* pins what buf points into */
    gl_queue_t           *queue;        /* the wait queue it is in, or NULL */
    gl_queue_t            link;
    ev_timer              timer;        /* the timeout, if one was given */
} gl_wait_t;

struct gl_co_s {
    lua_State          *L;
    gl_task_t          *task;
    uint64_t            serial;         /* its task's, when made */
    gl_co_t            *parent;         /* a user coroutine: who resumed it
                                           (while it runs); a thread: who
                                           spawned it (NULL once that one
                                           is dead) */
    gl_co_t            *thread;         /* the entry or thread it runs in */
    gl_co_t            *target;         /* of a RESUME or SPAWN */
    int                 ref;            /* pinned in the registry, or
                                           LUA_NOREF */
    int                 nret;           /* values to resume it with */
    gl_co_status_e      status;
    gl_co_kind_e        kind;
    gl_co_op_e          op;
    unsigned            wrap:1;         /* made by coroutine.wrap */
    unsigned            waited:1;       /* its parent waits for it */
    unsigned            keep:1;         /* pinned until its task ends */
    unsigned            counted:1;      /* posted, in task->nposted */
    gl_wait_t           wait;
    gl_posted_t         ready;          /* posted to resume */
    gl_queue_t          live;           /* in its task's list while pinned */
};

typedef struct {
    /* before its coroutines run, and after (every coroutine waits, or the
       task is done); a task may be freed in leave */
    void              (*enter)(gl_task_t *t);
    void              (*leave)(gl_task_t *t);
    /*
     * the entry coroutine and every light thread have ended: rc is GL_OK,
     * GL_ERROR (the entry coroutine died of an error, logged; its threads
     * were killed) or GL_DONE (ngx.exit; every coroutine was killed).  It
     * may start the task again (gl_task_start) for its next phase.
     */
    void              (*done)(gl_task_t *t, int rc);
    /*
     * The entry coroutine co died of the error on top of its stack: GL_OK
     * if the task logged it its own way (log_by_lua, init_worker_by_lua
     * lines are nginx's), else the core logs "lua entry thread aborted";
     * NULL: the core's.
     */
    int               (*error)(gl_task_t *t, gl_co_t *co);
} gl_task_ops_t;

/* what a task holds that must go when it ends for good (a cosocket left
   open): its handler runs once, from gl_task_cleanup(), which the task's
   owner calls at its end (a request's last phase, a timer run), not
   between two phases */
struct gl_task_cleanup_s {
    void                (*handler)(gl_task_cleanup_t *c);
    gl_queue_t            link;
};

struct gl_task_s {
    const gl_task_ops_t  *ops;
    gl_sched_t           *sched;
    lua_State            *L;            /* the main state of its Lua world */
    gl_co_t               entry;
    gl_queue_t            live;         /* its pinned coroutines */
    gl_queue_t            cleanups;     /* gl_task_cleanup_t */
    int                   nthreads;     /* light threads not yet ended */
    int                   nposted;      /* coroutines posted to run */
    int                   context;      /* GL_PHASE_*: what API it may use */
    int                   ctx_ref;      /* ngx.ctx (its owner lets it go:
                                           gl_lua_free_ctx) */
    double                start;        /* when its entry coroutine last
                                           started, in the loop's time */
    uint64_t              serial;
    unsigned              started:1;    /* held in sched->nbusy */
    unsigned              chunk:1;      /* its entry coroutines run chunks
                                           (scripts, *_by_lua handlers) */
    void                 *data;
};


/* the scheduler of a loop; gl_sched_free() stops its watchers */
void gl_sched_init(gl_sched_t *s, struct ev_loop *loop);
void gl_sched_free(gl_sched_t *s);

void gl_post(gl_sched_t *s, gl_posted_t *ev);
void gl_post_deferred(gl_sched_t *s, gl_posted_t *ev);
void gl_post_delete(gl_posted_t *ev);
#define gl_posted(ev)   gl_queue_linked(&(ev)->link)

/* runs what is posted now (the prepare watcher does it before the loop
   polls, with what was deferred at the last turn; a test may call it) */
void gl_sched_run(gl_sched_t *s);

/* runs what is posted now, not what is deferred: for an event callback
   that must see its coroutines run before it goes on */
void gl_sched_drain(gl_sched_t *s);

/* something that must end before the worker exits (a task, a timer
   still pending at a stop) begins, or ends */
#define gl_sched_hold(s)   ((s)->nbusy++)
void gl_sched_release(gl_sched_t *s);

/*
 * A Lua state the core will run coroutines of (each new state, once).
 * Up to cache_max Lua threads whose entry coroutine ended normally are
 * kept for the next tasks (lua_thread_cache_max_entries), as OpenResty's
 * cached threads: a request or a timer then makes no new thread.
 */
void gl_co_init_state(lua_State *L, int cache_max);

/* a Lua thread for a new entry coroutine (a cached one, or a new one),
   pinned by *ref, which the caller hands to gl_task_start_thread */
lua_State *gl_co_new_thread(lua_State *L, int *ref);

void gl_task_init(gl_task_t *t, gl_sched_t *s, lua_State *L,
    const gl_task_ops_t *ops, int context);

/*
 * Runs the function under the nargs values on top of t->L as the task's
 * entry coroutine: posted, so it starts from the scheduler.  The previous
 * entry coroutine must be done.  GL_ERROR (logged, values popped) on no
 * memory.
 */
int gl_task_start(gl_task_t *t, int nargs);

/* the same with a Lua thread made already, pinned by ref (the caller's,
   the task's now), with the function and its nargs values on its stack */
void gl_task_start_thread(gl_task_t *t, lua_State *co, int ref, int nargs);

/* the same, but the entry coroutine runs at once, until it waits or ends;
   only from an event callback (no coroutine of ours runs) */
void gl_task_run_thread(gl_task_t *t, lua_State *co, int ref, int nargs);

/* stops every wait of the task's coroutines and lets them go; no op is
   called.  The task may be reused or freed after. */
void gl_task_cancel(gl_task_t *t);

/* c->handler runs when t ends, unless gl_task_cleanup_del(c) first */
void gl_task_cleanup_add(gl_task_t *t, gl_task_cleanup_t *c);
/* the task is over: its cleanups run (its coroutines are stopped first,
   by gl_task_cancel) */
void gl_task_cleanup(gl_task_t *t);
void gl_task_cleanup_del(gl_task_cleanup_t *c);

/* the task whose Lua code runs now (a coroutine's, or one set by
   gl_task_enter_sync for code that cannot yield), or NULL */
gl_task_t *gl_task_current(void);

/* around Lua code of t that runs in a plain call (a filter, a log
   handler, init_by_lua): it is t's, and it cannot wait */
typedef struct {
    gl_task_t   *task;
    gl_co_t     *co;
} gl_sync_t;

void gl_task_enter_sync(gl_task_t *t, gl_sync_t *save);
void gl_task_leave_sync(gl_sync_t *save);

/* the coroutine of L when the scheduler runs it now, else NULL (code of
   a coroutine the core does not run cannot wait) */
gl_co_t *gl_co_self(lua_State *L);

/* the coroutine the scheduler runs now, or NULL (for FFI functions, which
   get no lua_State) */
gl_co_t *gl_co_current(void);

/* arms co's wait (the caller fills in co->wait.data, buf, ...; a timeout
   below 0 is none, 0 resumes it at the next turn of the loop) */
void gl_co_wait(gl_co_t *co, const gl_wait_ops_t *ops, double timeout);
void gl_co_waitq_add(gl_queue_t *q, gl_co_t *co);
#define gl_co_waitq_first(q)                                                 \
    (gl_queue_empty(q) ? NULL                                                \
     : gl_queue_data(gl_queue_head(q), gl_co_t, wait.link))

/* an API function that armed a wait returns this */
int gl_co_yield(gl_co_t *co);

/* an FFI function armed co's wait and cannot yield itself: the Lua code
   that called it yields next (coroutine._yield()), with no values */
void gl_co_yielding(gl_co_t *co);

/* ends co's wait and posts it to resume with the nret values on top of
   its stack */
void gl_co_wake(gl_co_t *co, int nret);

/* ngx.exit: the API function returns this; the task's coroutines are
   killed and done(GL_DONE) is called */
int gl_co_exit(gl_co_t *co);


/* user coroutines and light threads (gl_lua_coroutine.c, gl_lua_thread.c) */

/* a new coroutine of cur's task running the function at idx of cur->L;
   pushes the Lua thread onto cur->L */
gl_co_t *gl_co_new(gl_co_t *cur, int idx, gl_co_kind_e kind);

/*
 * The record of the Lua thread at idx of L, if it is a coroutine of task
 * t; gl_co_gone (dead) if it belonged to a task that has ended; NULL if
 * the core does not know it.
 */
gl_co_t *gl_co_find(lua_State *L, int idx, gl_task_t *t);
extern gl_co_t  gl_co_gone;

/* coroutine.resume(u, ...) with the nargs values on top of cur's stack */
int gl_co_resume_user(gl_co_t *cur, gl_co_t *u, int nargs);
/* coroutine.yield(...) */
int gl_co_yield_user(gl_co_t *cur, int nvals);

/* a thread made by gl_co_new and kept by its owner (ngx.on_abort's, with
   no parent) starts now: posted, with no values */
void gl_co_thread_start(gl_co_t *th);

/* ngx.thread.spawn: th (made by gl_co_new) runs first, with the nargs
   values on top of its stack; cur is posted, to go on once th stops */
int gl_co_spawn(gl_co_t *cur, gl_co_t *th, int nargs);

/* a zombie thread's values (true or false, then what it returned or its
   error) move onto cur's stack, and it is reaped; returns how many */
int gl_co_thread_take(gl_co_t *cur, gl_co_t *th);

/* ngx.thread.wait: cur waits until one of its threads marked waited
   ends; the API function returns this */
int gl_co_thread_wait(gl_co_t *cur);

/* ngx.thread.kill of a running thread of cur's: it and the coroutines it
   runs stop, their waits undone */
void gl_co_thread_kill(gl_co_t *th);

/* reaps a zombie thread */
void gl_co_reap(gl_co_t *th);

extern const char  *gl_co_status_names[];

#endif /* GL_CO_H */
