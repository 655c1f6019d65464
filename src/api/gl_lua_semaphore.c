/*
 * ngx.semaphore: the C side of lua/ngx/semaphore.lua, which calls it
 * through LuaJIT's FFI as lua-resty-core's calls lua-nginx-module's.
 *
 * A semaphore belongs to the worker that made it: its waiters may be
 * coroutines of any task of that worker (requests, timers).  wait() takes
 * a resource at once if there is one and nobody queues before it;
 * otherwise the coroutine waits in FIFO order, with a timeout.  post()
 * adds resources and posts the wake-up: the waiters get them in order
 * from the scheduler, after the poster has yielded, never inside its call
 * (as lua-nginx-module's posted event).  A waiter whose task ends leaves
 * the queue (its wait is cancelled with the task).
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"

#include <stdio.h>

#define GL_FFI_OK          0
#define GL_FFI_ERROR      -1
#define GL_FFI_AGAIN      -2
#define GL_FFI_DECLINED   -5
#define GL_FFI_NO_REQ     -100

typedef struct gl_sema_s {
    int            count;       /* resources */
    int            nwait;       /* coroutines in the queue */
    gl_queue_t     waiters;
    gl_posted_t    wake;        /* posted by post() while some wait */
    gl_sched_t    *sched;
} gl_sema_t;

int gl_ffi_sema_new(gl_sema_t **psem, int n, char **errmsg);
int gl_ffi_sema_post(gl_sema_t *sem, int n);
int gl_ffi_sema_count(gl_sema_t *sem);
int gl_ffi_sema_wait(gl_sema_t *sem, int wait_ms, u_char *err,
    size_t *errlen);
void gl_ffi_sema_gc(gl_sema_t *sem);

static void gl_sema_wake_handler(gl_posted_t *ev);
static void gl_sema_cancel(gl_co_t *co);
static int gl_sema_timedout(gl_co_t *co);

static const gl_wait_ops_t  gl_sema_wait_ops = {
    "ngx.semaphore", gl_sema_cancel, gl_sema_timedout
};


int
gl_ffi_sema_new(gl_sema_t **psem, int n, char **errmsg)
{
    gl_sema_t  *sem;

    if (gl_vm_self == NULL) {
        *errmsg = "no worker";
        return GL_FFI_ERROR;
    }

    sem = calloc(1, sizeof(gl_sema_t));
    if (sem == NULL) {
        *errmsg = "no memory";
        return GL_FFI_ERROR;
    }

    sem->count = n;
    sem->sched = &gl_vm_self->sched;
    gl_queue_init(&sem->waiters);
    sem->wake.handler = gl_sema_wake_handler;
    sem->wake.data = sem;

    *psem = sem;

    return GL_FFI_OK;
}


int
gl_ffi_sema_post(gl_sema_t *sem, int n)
{
    sem->count += n;

    if (!gl_queue_empty(&sem->waiters)) {
        gl_post(sem->sched, &sem->wake);
    }

    return GL_FFI_OK;
}


int
gl_ffi_sema_count(gl_sema_t *sem)
{
    return sem->count - sem->nwait;
}


/*
 * GL_FFI_OK: a resource was taken; GL_FFI_DECLINED: none now and no wait
 * asked; GL_FFI_AGAIN: the calling coroutine waits, and must yield (the
 * Lua side does, and gets true, nil or false, "timeout" back);
 * GL_FFI_NO_REQ: no task runs (init_by_lua); GL_FFI_ERROR with a message
 * in err.
 */
int
gl_ffi_sema_wait(gl_sema_t *sem, int wait_ms, u_char *err, size_t *errlen)
{
    gl_co_t    *co;
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL || t->context == GL_PHASE_INIT) {
        return GL_FFI_NO_REQ;
    }

    if (!(GL_CTX_YIELDABLE & (1u << t->context))) {
        *errlen = snprintf((char *) err, *errlen, "API disabled in the "
                           "context of %s",
                           gl_lua_context_name(t->context));
        return GL_FFI_ERROR;
    }

    /* first come, first served: a resource goes to the queue first */
    if (gl_queue_empty(&sem->waiters) && sem->count > 0) {
        sem->count--;
        return GL_FFI_OK;
    }

    if (wait_ms == 0) {
        return GL_FFI_DECLINED;
    }

    co = gl_co_current();
    if (co == NULL) {
        *errlen = snprintf((char *) err, *errlen, "no co ctx found");
        return GL_FFI_ERROR;
    }

    sem->nwait++;
    gl_co_wait(co, &gl_sema_wait_ops, wait_ms / 1000.0);
    co->wait.data = sem;
    gl_co_waitq_add(&sem->waiters, co);
    gl_co_yielding(co);

    return GL_FFI_AGAIN;
}


void
gl_ffi_sema_gc(gl_sema_t *sem)
{
    gl_co_t  *co;

    if (sem == NULL) {
        return;
    }

    /* cannot be (a waiter's Lua frame holds the semaphore's object), but
       if it were: the waiters leave it and wait out their timeouts */
    while (!gl_queue_empty(&sem->waiters)) {
        co = gl_co_waitq_first(&sem->waiters);
        gl_queue_remove(&co->wait.link);
        co->wait.queue = NULL;
        co->wait.data = NULL;

        gl_log_error(GL_LOG_ERR, 0, "a semaphore is collected while "
                     "coroutines wait on it");
    }

    gl_post_delete(&sem->wake);
    free(sem);
}


/* after a post(): the resources go to the waiters, first come first */
static void
gl_sema_wake_handler(gl_posted_t *ev)
{
    gl_co_t    *co;
    gl_sema_t  *sem;

    sem = ev->data;

    while (sem->count > 0
           && (co = gl_co_waitq_first(&sem->waiters)) != NULL)
    {
        sem->count--;
        sem->nwait--;

        lua_pushboolean(co->L, 1);
        lua_pushnil(co->L);
        gl_co_wake(co, 2);
    }
}


/* the waiter's task ends: it leaves the queue (the core unlinks it) */
static void
gl_sema_cancel(gl_co_t *co)
{
    gl_sema_t  *sem;

    sem = co->wait.data;

    if (sem != NULL) {
        sem->nwait--;
    }
}


static int
gl_sema_timedout(gl_co_t *co)
{
    gl_sema_t  *sem;

    sem = co->wait.data;

    if (sem != NULL) {
        sem->nwait--;
    }

    lua_pushboolean(co->L, 0);
    lua_pushliteral(co->L, "timeout");

    return 2;
}


/* ngx.semaphore is lua/ngx/semaphore.lua: nothing to inject */
gl_module_t  gl_lua_semaphore_module = {
    .name = "semaphore",
};
