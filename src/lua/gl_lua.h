/*
 * The Lua side of a worker (gl_vm_t): its generations of lua_State, the
 * code cache, the scheduler its coroutines run on, and what every API
 * module shares (the context checks, the ngx table).
 */
#ifndef GL_LUA_H
#define GL_LUA_H

#include "gl_core.h"
#include "gl_conf.h"
#include "gl_co.h"
#include "gl_stat.h"

#include <ev.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <lua.h>
#include <lauxlib.h>

/*
 * A generation of a worker's Lua state.  The worker holds a reference to
 * its current one, each task one to the generation it started on; the
 * state is closed when the last reference goes.
 */
typedef struct gl_lua_gen_s  gl_lua_gen_t;

struct gl_lua_gen_s {
    lua_State     *L;
    gl_conf_t     *conf;          /* the config it was made with */
    int            refs;
    unsigned       id;
    unsigned       retired:1;     /* a reload replaced it */
};

/* the worker's modules keep their own per-worker data here */
#define GL_VM_MODULES_MAX  64

struct gl_vm_s {
    int                 id;             /* the worker's number */
    struct ev_loop     *loop;
    gl_conf_t          *conf;           /* the current one */
    char               *docroot;        /* realpath of document_root */
    gl_sched_t          sched;
    gl_lua_gen_t       *gen;            /* the current generation */
    unsigned            gen_seq;
    unsigned            exiting:1;      /* the worker stops */

    /* its requests whose Lua side began and has not ended (gl_http_t,
       by their in_flight link), oldest first */
    gl_queue_t          requests;

    void               *mdata[GL_VM_MODULES_MAX];

    /* its slot of the status page's counters (gl_stat.h) */
    gl_stat_worker_t   *stat;
};

/* the vm of this thread: a worker's, or the one being set up */
extern _Thread_local gl_vm_t  *gl_vm_self;

/*
 * Sets up a worker's Lua side: the first generation (init_by_lua and
 * init_worker_by_lua run in it) and the modules' init_worker.  Runs in
 * the worker's thread, or for it before the thread starts.  GL_ERROR: logged.
 */
int gl_vm_init(gl_vm_t *vm, int id, struct ev_loop *loop, gl_conf_t *conf);
void gl_vm_close(gl_vm_t *vm);

/* a new generation for new tasks, with conf if not NULL (SIGHUP);
   GL_ERROR: logged, the old one (and its config) stays */
int gl_vm_reload(gl_vm_t *vm, gl_conf_t *conf);

/* the worker begins to stop: the modules' stop hooks run */
void gl_vm_stop(gl_vm_t *vm);

/* a module's per-worker data slot (NULL until the module sets it) */
void **gl_vm_module_data(gl_vm_t *vm, gl_module_t *m);

/* the generation L belongs to (a state or one of its coroutines) */
gl_lua_gen_t *gl_lua_gen_of(lua_State *L);

/* the current generation, with a reference taken for a task */
gl_lua_gen_t *gl_lua_gen_take(gl_vm_t *vm);

/*
 * lua_code_cache off: a generation of its own for one request, as
 * OpenResty's Lua VM per request (init_by_lua runs in it, not
 * init_worker_by_lua); its reference is the caller's.  NULL: logged.
 */
gl_lua_gen_t *gl_lua_gen_fresh(gl_vm_t *vm);
void gl_lua_gen_release(gl_lua_gen_t *g);

/* the state of vm's current generation */
#define gl_vm_state(vm)   ((vm)->gen->L)

/*
 * Pushes a fresh closure of a handler (h) or a script file (path), from
 * the code cache or freshly compiled; or pushes the error message and
 * returns GL_ERROR.
 */
int gl_lua_push_code(lua_State *L, gl_conf_t *conf, gl_lua_handler_t *h,
    const char *path);

/* pushes a new table of globals for a request: reads fall through to _G */
void gl_lua_new_env(lua_State *L);

/* init_by_lua / init_worker_by_lua (phase) in vm's current state */
int gl_lua_run_init(gl_vm_t *vm, int phase);

/* golapis -t: compiles every Lua handler of conf; GL_ERROR with err */
int gl_lua_check_conf(gl_conf_t *conf, char *err, size_t size);

/* pushes the ngx table of L */
void gl_lua_push_ngx(lua_State *L);

/* pushes package.loaded["golapis.core"], made if need be: the C functions
   golapis's lua/ modules (ngx.req, ngx.resp) find there */
void gl_lua_push_core(lua_State *L);

/* the phases an API function may run in */
#define GL_CTX_INIT           (1 << GL_PHASE_INIT)
#define GL_CTX_INIT_WORKER    (1 << GL_PHASE_INIT_WORKER)
#define GL_CTX_REWRITE        (1 << GL_PHASE_REWRITE)
#define GL_CTX_ACCESS         (1 << GL_PHASE_ACCESS)
#define GL_CTX_CONTENT        (1 << GL_PHASE_CONTENT)
#define GL_CTX_HEADER_FILTER  (1 << GL_PHASE_HEADER_FILTER)
#define GL_CTX_BODY_FILTER    (1 << GL_PHASE_BODY_FILTER)
#define GL_CTX_LOG            (1 << GL_PHASE_LOG)
#define GL_CTX_TIMER          (1 << GL_PHASE_TIMER)
#define GL_CTX_EXIT_WORKER    (1 << GL_PHASE_EXIT_WORKER)

/* where a coroutine may wait */
#define GL_CTX_YIELDABLE      (GL_CTX_REWRITE | GL_CTX_ACCESS                 \
                               | GL_CTX_CONTENT | GL_CTX_TIMER)

/* "content_by_lua*", "ngx.timer": as lua-nginx-module names contexts */
const char *gl_lua_context_name(int context);

/*
 * The task whose Lua code calls us, its context checked against mask:
 * raises "no request found" outside any task (init_by_lua) and "API
 * disabled in the context of ..." in a context mask leaves out.
 */
gl_task_t *gl_lua_check_context(lua_State *L, unsigned mask);

/* ngx.ctx: the table of task t (made on first use), set, and let go by
   its owner when t ends */
void gl_lua_push_ctx(lua_State *L, gl_task_t *t);
void gl_lua_set_ctx(lua_State *L, gl_task_t *t, int idx);
void gl_lua_free_ctx(gl_task_t *t);

/* the phase now: the task's; -1 in init_by_lua's */
int gl_lua_get_phase(void);

/*
 * The panic handler of every Lua state (lua_atpanic): an error outside any
 * protected call (a __gc metamethod that fails in a collection step the
 * worker's own pushes start, a shortage of memory there).  In a thread
 * that called gl_lua_catch_panic(jb), it logs the message and jumps to jb:
 * the thread must then leave its Lua state (and all it was doing) as it
 * is, never to be touched again.  Elsewhere (init_by_lua at start) it says
 * in the error log that the process exits, as LuaJIT makes it after.
 */
int gl_lua_panic(lua_State *L);
void gl_lua_catch_panic(jmp_buf *jb);

/* the message handler of a lua_pcall of a chunk (init_by_lua, filters):
   the message and lua-nginx-module's traceback */
int gl_lua_traceback(lua_State *L);

/* pushes onto L the same message and traceback for the coroutine co that
   died of the error msg (its frames from level) */
void gl_lua_traceback_of(lua_State *L, lua_State *co, const char *msg,
    int level);

#endif /* GL_LUA_H */
