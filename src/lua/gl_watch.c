/*
 * The watchdog of Lua runs (gl_watch.h): lua_block_warn_time and
 * lua_max_run_time.
 *
 * Each worker thread has a gl_watch_t: when its current run began (0: no
 * Lua runs), a serial of runs, and what the watchdog asks of it.  The
 * watchdog thread reads them every tick; to act, it sets the ask bits and
 * sends SIGURG to the worker's thread.  The signal handler only arms a
 * count hook on the worker's Lua state (lua_sethook is the one Lua call
 * made for signal handlers); the hook then runs in the worker's thread at
 * the next instruction the interpreter executes, where it may log and
 * raise an error.
 *
 * What cannot be interrupted: code that the interpreter does not run --
 * a loop compiled by LuaJIT's JIT (its traces do not check hooks unless
 * LuaJIT is built with LUAJIT_ENABLE_CHECKHOOK, which Debian's is not), or
 * a C function that does not return (a blocking read, one huge pattern
 * match).  The hook fires as soon as such code gives control back to the
 * interpreter; until then the watchdog reports the worker as stuck, and if
 * every worker is, golapis exits with status 1 so that its service manager
 * restarts it.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_stat.h"
#include "gl_watch.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <luajit.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#define GL_WATCH_WARN   0x01
#define GL_WATCH_STOP   0x02
#define GL_WATCH_SLOW   0x04

#define GL_WATCH_MAX    2048        /* workers, and their replacements */
#define GL_WATCH_TICK   20          /* ms between two looks */

typedef struct {
    /* written by the worker, read by the watchdog */
    _Atomic uint64_t    since;      /* ms of CLOCK_MONOTONIC; 0: no run */
    _Atomic uint64_t    run;        /* serial of its runs */
    atomic_int          warn_ms;    /* its limits, from its config */
    atomic_int          max_ms;
    _Atomic uint64_t    slow_at;    /* gl_watch_slow_at(); 0: none */
    /* written by the watchdog, taken by the worker */
    atomic_int          ask;

    /* the watchdog's own */
    pthread_t           tid;
    int                 id;
    uint64_t            warned_run;
    uint64_t            stopped_run;
    uint64_t            stuck_run;
    uint64_t            slow_asked;     /* the slow_at asked for */

    /* its connections' sockets (the worker adds and removes, the watchdog
       shuts them down), under lock */
    pthread_mutex_t     lock;
    int                *fds;
    int                 nfds;
    int                 cap;

    /* the worker's own */
    int                 depth;
    unsigned            stopping:1;
    uint64_t            last_warn;  /* ms of its last warning line */
} gl_watch_t;

typedef struct {
    double              max_run_time;
    double              block_warn_time;
    size_t              max_memory;
} gl_watch_conf_t;

/* a Lua state's allocator under lua_max_memory */
typedef struct {
    lua_Alloc           alloc;      /* LuaJIT's own */
    void               *ud;
    size_t              total;      /* bytes it holds */
    size_t              limit;
    size_t              refused;    /* allocations refused */
    size_t              failed;     /* allocations the system refused */
    size_t             *sum;        /* its worker's states' total, or NULL
                                       (the status page's lua_heap) */
} gl_watch_mem_t;

extern gl_module_t  gl_lua_watch_module;

static _Thread_local gl_watch_t          *gl_watch_self;
static _Thread_local lua_State *volatile  gl_watch_L;

static atomic_int        gl_watch_stuck_flags[GL_WATCH_MAX];
static void            (*gl_watch_stuck_cb)(void);
static void            (*gl_watch_slow_cb)(lua_State *L);

static pthread_mutex_t   gl_watch_lock = PTHREAD_MUTEX_INITIALIZER;
static gl_watch_t       *gl_watch_workers[GL_WATCH_MAX];
static int               gl_watch_n;
static pthread_once_t    gl_watch_once = PTHREAD_ONCE_INIT;


static uint64_t
gl_watch_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


/* in the worker's thread, at the next instruction the interpreter runs */
/* "file:line: " of the code the hook interrupts (luaL_where knows none
   inside a hook) */
static void
gl_watch_where(lua_State *L, char *buf, size_t size)
{
    lua_Debug  ar;

    buf[0] = '\0';

    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar)
        && ar.currentline > 0)
    {
        snprintf(buf, size, "%s:%d: ", ar.short_src, ar.currentline);
    }
}


static void
gl_watch_hook(lua_State *L, lua_Debug *ar)
{
    int          ask;
    char         where[LUA_IDSIZE + 32];
    uint64_t     now, since;
    gl_watch_t  *w;

    (void) ar;

    w = gl_watch_self;

    if (w == NULL || w->depth == 0) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }

    ask = atomic_exchange(&w->ask, 0);
    now = gl_watch_now();
    since = atomic_load(&w->since);

    if ((ask & GL_WATCH_WARN) && gl_vm_self != NULL) {
        gl_stat_add(&gl_vm_self->stat->lua_block_warnings, 1);
    }

    if ((ask & GL_WATCH_SLOW) && !w->stopping && gl_watch_slow_cb != NULL) {
        /* request_slowlog_timeout passed while this code runs: the slow
           log is written here, with where the code is now */
        gl_watch_slow_cb(L);
    }

    if ((ask & GL_WATCH_WARN) && !w->stopping
        && now - w->last_warn >= 1000)
    {
        /* where the code is now: just after what held it (a blocking
           call returns to the interpreter here) */
        w->last_warn = now;
        luaL_traceback(L, L, NULL, 0);
        gl_log_error(GL_LOG_WARN, 0, "lua code has run for %llums without "
                     "yielding (lua_block_warn_time %dms): a blocking call "
                     "holds every request of this worker\n%s",
                     (unsigned long long) (now - since),
                     atomic_load(&w->warn_ms), lua_tostring(L, -1));
        lua_pop(L, 1);
    }

    if ((ask & GL_WATCH_STOP) || w->stopping) {
        /* again at every instruction until the run ends: a pcall that
           catches it gets it again right after, and so on outwards */
        if (!w->stopping && gl_vm_self != NULL) {
            gl_stat_add(&gl_vm_self->stat->lua_interrupted, 1);
        }

        w->stopping = 1;
        lua_sethook(L, gl_watch_hook, LUA_MASKCOUNT, 1);
        gl_watch_where(L, where, sizeof(where));
        luaL_error(L, "%slua_max_run_time (%dms) exceeded: the code ran "
                   "%dms without yielding", where, atomic_load(&w->max_ms),
                   (int) (now - since));
        return;
    }

    lua_sethook(L, NULL, 0, 0);

    /* what the watchdog asked while this hook ran (the slow log's write
       can take a while: its signal armed the hook just removed): the
       hook again.  Removed first, then looked at, so that a signal
       after the look arms it for good */
    if (atomic_load(&w->ask) != 0) {
        lua_sethook(L, gl_watch_hook, LUA_MASKCOUNT, 1);
    }
}


/* SIGURG from the watchdog: only arms the hook */
static void
gl_watch_signal(int signo)
{
    lua_State  *L;

    (void) signo;

    L = gl_watch_L;

    if (L != NULL) {
        lua_sethook(L, gl_watch_hook, LUA_MASKCOUNT, 1);
    }
}


static _Thread_local int  gl_watch_running;    /* a run goes on (any
                                                 thread's: -t, tests) */


static void *
gl_watch_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void            *p;
    gl_watch_mem_t  *m;

    m = ud;

    if (nsize > osize && gl_watch_running
        && m->total + (nsize - osize) > m->limit)
    {
        /* LuaJIT raises "not enough memory" where the code is */
        m->refused++;
        return NULL;
    }

    p = m->alloc(m->ud, ptr, osize, nsize);

    if (p != NULL || nsize == 0) {
        m->total = m->total - (ptr != NULL ? osize : 0) + nsize;

        if (m->sum != NULL) {
            *m->sum = *m->sum - (ptr != NULL ? osize : 0) + nsize;
        }

    } else {
        /* a real shortage (a ulimit, the system): what the failed code
           held is collected before the next request */
        m->failed++;
    }

    return p;
}


void
gl_watch_state(lua_State *L, gl_conf_t *conf)
{
    void             *ud;
    gl_watch_mem_t   *m;
    gl_watch_conf_t  *wcf;

    wcf = gl_conf_module(conf, &gl_lua_watch_module);

    /* every state has it: without lua_max_memory it only counts, and
       notices a failed allocation */
    m = calloc(1, sizeof(gl_watch_mem_t));
    if (m == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "calloc() failed: no "
                     "lua_max_memory for a Lua state");
        return;
    }

    m->alloc = lua_getallocf(L, &ud);
    m->ud = ud;
    m->limit = (wcf != NULL && wcf->max_memory != 0) ? wcf->max_memory
                                                     : SIZE_MAX;
    /* what the state holds already (its first blocks) */
    m->total = (size_t) lua_gc(L, LUA_GCCOUNT, 0) * 1024
               + (size_t) lua_gc(L, LUA_GCCOUNTB, 0);

    /* a worker's state (not the housekeeping thread's, not -t's): its
       thread keeps the sum of its states' heaps */
    if (gl_vm_self != NULL && gl_vm_self->stat != NULL) {
        m->sum = &gl_vm_self->stat->lua_heap_own;
        *m->sum += m->total;
    }

    lua_setallocf(L, gl_watch_alloc, m);
}


/* jit.on() in a state under lua_max_memory: the compiler stays off */
static int
gl_watch_jit_on(lua_State *L)
{
    (void) L;

    return 0;
}


void
gl_watch_state_libs(lua_State *L, gl_conf_t *conf)
{
    gl_watch_conf_t  *wcf;

    wcf = gl_conf_module(conf, &gl_lua_watch_module);

    if (wcf == NULL || wcf->max_memory == 0) {
        return;
    }

    /* LuaJIT 2.1-20230119 (Debian 12's) can crash when an allocation
       fails in compiled code (a GC step at a trace exit, a sunk object
       restored: upstream's LuaJIT#1004 and #1247, fixed later): under
       lua_max_memory, which makes allocations fail on purpose, the
       state is interpreted, and jit.on() leaves it so */
    (void) luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);

    lua_getglobal(L, "jit");

    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, gl_watch_jit_on);
        lua_setfield(L, -2, "on");
    }

    lua_pop(L, 1);
}


void
gl_watch_state_close(lua_State *L)
{
    void            *ud;
    lua_Alloc        f;
    gl_watch_mem_t  *m;

    f = lua_getallocf(L, &ud);

    lua_close(L);

    if (f == gl_watch_alloc) {
        m = ud;

        /* what lua_close() did not give back through the allocator */
        if (m->sum != NULL) {
            *m->sum -= m->total;
        }

        free(m);
    }
}


static int
gl_watch_collect_call(lua_State *L)
{
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}


/*
 * A full collection, in a protected call of the state's main thread: a
 * __gc metamethod that raises an error (LuaJIT passes it on to whatever
 * made the collection run) would otherwise make a panic of it.  Each
 * failure ends one finalizer; the collection goes on after it.
 */
static void
gl_watch_collect(lua_State *L)
{
    int            i;
    const char    *msg;
    gl_lua_gen_t  *g;

    g = gl_lua_gen_of(L);
    if (g != NULL) {
        L = g->L;
    }

    for (i = 0; i < 100; i++) {
        if (lua_cpcall(L, gl_watch_collect_call, NULL) == 0) {
            return;
        }

        msg = lua_tostring(L, -1);
        gl_log_error_limited(GL_LOG_ERR, 0, "a __gc metamethod failed in a "
                             "full collection of the Lua heap: %s",
                             msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
}


/* before a run: a heap that went near its limit (or past it: a refusal)
   is collected, so that the run starts with room */
void
gl_watch_mem_check(lua_State *L)
{
    void            *ud;
    size_t           before;
    gl_watch_mem_t  *m;

    if (lua_getallocf(L, &ud) != gl_watch_alloc) {
        return;
    }

    m = ud;

    if (m->refused == 0 && m->failed == 0 && m->total < m->limit / 10 * 9) {
        return;
    }

    before = m->total;
    gl_watch_collect(L);

    if (m->refused) {
        gl_log_error(GL_LOG_ERR, 0, "lua_max_memory (%zu bytes) reached: "
                     "%zu allocations refused; the heap went from %zu to "
                     "%zu bytes after a full collection", m->limit,
                     m->refused, before, m->total);
        m->refused = 0;
    }

    if (m->failed) {
        gl_log_error(GL_LOG_ERR, 0, "the system refused %zu allocations of "
                     "the Lua heap; it went from %zu to %zu bytes after a "
                     "full collection", m->failed, before, m->total);
        m->failed = 0;
    }
}


void
gl_watch_begin(lua_State *L)
{
    gl_watch_t       *w;
    gl_watch_conf_t  *wcf;

    w = gl_watch_self;

    if (w == NULL || w->depth++ > 0) {
        return;
    }

    /* the last run's garbage goes first if it came near the limit (the
       coroutine that held it has ended by now) */
    gl_watch_mem_check(L);

    gl_watch_running = 1;

    if (gl_vm_self != NULL) {
        wcf = gl_conf_module(gl_vm_self->conf, &gl_lua_watch_module);
        atomic_store_explicit(&w->warn_ms,
                              (int) (wcf->block_warn_time * 1000),
                              memory_order_relaxed);
        atomic_store_explicit(&w->max_ms, (int) (wcf->max_run_time * 1000),
                              memory_order_relaxed);
    }

    gl_watch_L = L;
    atomic_fetch_add_explicit(&w->run, 1, memory_order_relaxed);
    atomic_store(&w->since, gl_watch_now());
}


void
gl_watch_end(lua_State *L)
{
    gl_watch_t  *w;

    /* the status page's view of the heap: as of the end of the last run */
    if (gl_vm_self != NULL && gl_vm_self->stat != NULL) {
        gl_stat_gauge_set(&gl_vm_self->stat->lua_heap,
                          (int64_t) gl_vm_self->stat->lua_heap_own);
    }

    w = gl_watch_self;

    if (w == NULL || w->depth == 0 || --w->depth > 0) {
        return;
    }

    atomic_store(&w->since, 0);
    gl_watch_L = NULL;
    atomic_store(&w->ask, 0);
    gl_watch_running = 0;

    if (w->id >= 0 && w->id < GL_WATCH_MAX) {
        atomic_store_explicit(&gl_watch_stuck_flags[w->id], 0,
                              memory_order_relaxed);
    }

    if (w->stopping) {
        w->stopping = 0;

        if (L != NULL) {
            lua_sethook(L, NULL, 0, 0);
        }
    }
}


/* the watchdog thread */

/* a stuck worker: the acceptor passes it by, and its connections are
   shut down (nginx sees them end, answers their requests 502 at once and
   opens new connections, which go to the other workers); returns how
   many */
static int
gl_watch_shut(gl_watch_t *w)
{
    int  i, n;

    if (w->id >= 0 && w->id < GL_WATCH_MAX) {
        atomic_store_explicit(&gl_watch_stuck_flags[w->id], 1,
                              memory_order_relaxed);
    }

    pthread_mutex_lock(&w->lock);

    n = w->nfds;
    for (i = 0; i < n; i++) {
        (void) shutdown(w->fds[i], SHUT_RDWR);
    }

    pthread_mutex_unlock(&w->lock);

    return n;
}


void
gl_watch_on_stuck(void (*fn)(void))
{
    gl_watch_stuck_cb = fn;
}


uint64_t
gl_watch_clock(void)
{
    return gl_watch_now();
}


void
gl_watch_slow_at(uint64_t at)
{
    if (gl_watch_self != NULL) {
        atomic_store(&gl_watch_self->slow_at, at);
    }
}


void
gl_watch_on_slow(void (*fn)(lua_State *L))
{
    gl_watch_slow_cb = fn;
}


int
gl_watch_stuck(int id)
{
    if (id < 0 || id >= GL_WATCH_MAX) {
        return 0;
    }

    return atomic_load_explicit(&gl_watch_stuck_flags[id],
                                memory_order_relaxed);
}


void
gl_watch_unstick(int id)
{
    if (id >= 0 && id < GL_WATCH_MAX) {
        atomic_store(&gl_watch_stuck_flags[id], 0);
    }
}


void
gl_watch_conn(int fd, int open)
{
    int          i, *p;
    gl_watch_t  *w;

    w = gl_watch_self;
    if (w == NULL) {
        return;
    }

    pthread_mutex_lock(&w->lock);

    if (open) {
        if (w->nfds == w->cap) {
            p = realloc(w->fds, sizeof(int) * (w->cap ? w->cap * 2 : 64));
            if (p == NULL) {
                pthread_mutex_unlock(&w->lock);
                return;
            }
            w->fds = p;
            w->cap = w->cap ? w->cap * 2 : 64;
        }

        w->fds[w->nfds++] = fd;

    } else {
        for (i = w->nfds - 1; i >= 0; i--) {
            if (w->fds[i] == fd) {
                w->fds[i] = w->fds[--w->nfds];
                break;
            }
        }
    }

    pthread_mutex_unlock(&w->lock);
}


static void *
gl_watch_thread(void *arg)
{
    int               i, n, nstuck, warn, max;
    uint64_t          now, since, run, el, slow;
    gl_watch_t       *w;
    struct timespec   tick;

    (void) arg;

    tick.tv_sec = 0;
    tick.tv_nsec = GL_WATCH_TICK * 1000000L;

    for ( ;; ) {
        nanosleep(&tick, NULL);

        now = gl_watch_now();
        nstuck = 0;

        pthread_mutex_lock(&gl_watch_lock);

        n = gl_watch_n;

        for (i = 0; i < n; i++) {
            w = gl_watch_workers[i];
            since = atomic_load(&w->since);

            if (since == 0 || since > now) {
                continue;
            }

            run = atomic_load(&w->run);
            el = now - since;
            warn = atomic_load(&w->warn_ms);
            max = atomic_load(&w->max_ms);

            slow = atomic_load(&w->slow_at);

            if (slow != 0 && now >= slow && w->slow_asked != slow) {
                w->slow_asked = slow;
                atomic_fetch_or(&w->ask, GL_WATCH_SLOW);
                pthread_kill(w->tid, SIGURG);
            }

            if (warn > 0 && el >= (uint64_t) warn && w->warned_run != run) {
                w->warned_run = run;
                atomic_fetch_or(&w->ask, GL_WATCH_WARN);
                pthread_kill(w->tid, SIGURG);
            }

            if (max <= 0 || el < (uint64_t) max) {
                continue;
            }

            if (w->stopped_run != run) {
                w->stopped_run = run;
                atomic_fetch_or(&w->ask, GL_WATCH_STOP);
                pthread_kill(w->tid, SIGURG);
                continue;
            }

            /* asked to stop, and still running: past twice the limit (at
               least a second more), it is stuck where no hook is checked */
            if (el < 2 * (uint64_t) max && el < (uint64_t) max + 1000) {
                continue;
            }

            nstuck++;

            if (w->stuck_run != run) {
                w->stuck_run = run;
                gl_stat_add(&gl_stat.workers_stuck, 1);
                gl_log_error(GL_LOG_CRIT, 0, "worker %d has run lua code "
                             "for %llums and cannot be interrupted (a loop "
                             "compiled by the JIT, or a C call that does "
                             "not return): it gets no new connection, and "
                             "its %d connections are shut down",
                             w->id, (unsigned long long) el,
                             gl_watch_shut(w));

                if (gl_watch_stuck_cb != NULL) {
                    gl_watch_stuck_cb();
                }
            }
        }

        pthread_mutex_unlock(&gl_watch_lock);

        /* with a callback, the main thread decides (it may start other
           workers first) */
        if (n > 0 && nstuck == n && gl_watch_stuck_cb == NULL) {
            gl_log_error(GL_LOG_CRIT, 0, "every worker is stuck in lua code "
                         "that cannot be interrupted: exiting with status 1 "
                         "(the service manager restarts golapis)");
            _exit(EXIT_FAILURE);
        }
    }

    return NULL;
}


static void
gl_watch_start_thread(void)
{
    int                err;
    pthread_t          tid;
    sigset_t           set, old;
    struct sigaction   sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gl_watch_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGURG, &sa, NULL) == -1) {
        gl_log_error(GL_LOG_ALERT, errno, "sigaction(SIGURG) failed: no "
                     "lua_max_run_time");
        return;
    }

    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    err = pthread_create(&tid, NULL, gl_watch_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        gl_log_error(GL_LOG_ALERT, err, "pthread_create() failed: no "
                     "lua_max_run_time");
        return;
    }

    pthread_detach(tid);
}


void
gl_watch_worker_start(int id)
{
    sigset_t     set;
    gl_watch_t  *w;

    pthread_once(&gl_watch_once, gl_watch_start_thread);

    w = calloc(1, sizeof(gl_watch_t));
    if (w == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "calloc() failed: worker %d's lua "
                     "is not watched", id);
        return;
    }

    w->tid = pthread_self();
    w->id = id;
    pthread_mutex_init(&w->lock, NULL);

    pthread_mutex_lock(&gl_watch_lock);

    if (gl_watch_n == GL_WATCH_MAX) {
        pthread_mutex_unlock(&gl_watch_lock);
        free(w);
        return;
    }

    gl_watch_workers[gl_watch_n++] = w;

    pthread_mutex_unlock(&gl_watch_lock);

    gl_watch_self = w;

    /* the worker takes the watchdog's signal (it blocks the rest) */
    sigemptyset(&set);
    sigaddset(&set, SIGURG);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}


static void gl_watch_worker_end(int dead);


void
gl_watch_worker_stop(void)
{
    gl_watch_worker_end(0);
}


int
gl_watch_worker_dead(void)
{
    int          i, n;
    gl_watch_t  *w;

    w = gl_watch_self;
    if (w == NULL) {
        return 0;
    }

    pthread_mutex_lock(&w->lock);

    n = w->nfds;
    for (i = 0; i < n; i++) {
        (void) shutdown(w->fds[i], SHUT_RDWR);
        (void) close(w->fds[i]);
    }

    w->nfds = 0;

    pthread_mutex_unlock(&w->lock);

    gl_watch_worker_end(1);

    return n;
}


static void
gl_watch_worker_end(int dead)
{
    int          i;
    sigset_t     set;
    gl_watch_t  *w;

    w = gl_watch_self;
    if (w == NULL) {
        return;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGURG);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    gl_watch_self = NULL;
    gl_watch_L = NULL;

    pthread_mutex_lock(&gl_watch_lock);

    for (i = 0; i < gl_watch_n; i++) {
        if (gl_watch_workers[i] == w) {
            gl_watch_workers[i] = gl_watch_workers[--gl_watch_n];
            break;
        }
    }

    pthread_mutex_unlock(&gl_watch_lock);

    /* a dead worker stays passed by until another takes its place */
    if (w->id >= 0 && w->id < GL_WATCH_MAX) {
        atomic_store(&gl_watch_stuck_flags[w->id], dead ? 1 : 0);
    }

    pthread_mutex_destroy(&w->lock);
    free(w->fds);
    free(w);
}


/* the directives */

static const char *
gl_watch_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_watch_conf_t  *wcf = mconf;

    (void) conf;

    gl_conf_init_value(wcf->max_run_time, 30);
    gl_conf_init_value(wcf->block_warn_time, 0.1);
    gl_conf_init_size(wcf->max_memory, 0);

    if (wcf->max_memory != 0 && wcf->max_memory < 1024 * 1024) {
        return "\"lua_max_memory\" must be 0 (no limit) or at least 1m";
    }

    return NULL;
}


static const gl_conf_bounds_t  gl_watch_memory_bounds = {
    0, 0, "\"lua_max_memory\" must be 0 (no limit) or at least 1m"
};

static const gl_command_t  gl_watch_commands[] = {

    { "lua_max_run_time", GL_CONF_TAKE1, gl_conf_set_time_slot,
      GL_CONF_MODULE, offsetof(gl_watch_conf_t, max_run_time), NULL },

    { "lua_block_warn_time", GL_CONF_TAKE1, gl_conf_set_time_slot,
      GL_CONF_MODULE, offsetof(gl_watch_conf_t, block_warn_time), NULL },

    { "lua_max_memory", GL_CONF_TAKE1, gl_conf_set_size_slot,
      GL_CONF_MODULE, offsetof(gl_watch_conf_t, max_memory),
      &gl_watch_memory_bounds },

    gl_null_command
};


gl_module_t  gl_lua_watch_module = {
    .name = "watch",
    .commands = gl_watch_commands,
    .conf_size = sizeof(gl_watch_conf_t),
    .init_conf = gl_watch_init_conf,
};
