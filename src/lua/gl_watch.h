/*
 * The watchdog of Lua runs: how long a worker's Lua code runs without
 * yielding to its loop.  Past lua_block_warn_time the code gets one
 * warning with its traceback (a blocking call: io.popen, os.execute, a
 * LuaSocket call); past lua_max_run_time it is interrupted with an error
 * (its request gets a 500, or is cut if it had begun to answer), and the
 * worker goes on.  docs/limits-lua.md says what can and cannot be
 * interrupted.
 *
 * The coroutine core marks each run (gl_watch_begin/end: a coroutine's
 * resume, a plain call of a filter or init code); a thread of the watchdog
 * looks at every worker's mark and, when one is over a limit, signals the
 * worker's thread, whose handler arms a Lua count hook: the hook does the
 * rest in the worker's own thread, at the next instruction the interpreter
 * runs.
 */
#ifndef GL_WATCH_H
#define GL_WATCH_H

#include "gl_core.h"
#include "gl_conf.h"

#include <lua.h>

/* a worker's thread begins (its runs are watched from now on; id: the
   worker's number, for log lines), and ends */
void gl_watch_worker_start(int id);
void gl_watch_worker_stop(void);

/* the worker's thread ends after a panic (gl_lua_panic), its Lua state
   left as it is: the acceptor passes it by until another worker of the
   same number starts, and its connections are closed (nginx answers
   their requests at once); returns how many */
int gl_watch_worker_dead(void);

/* a connection of the worker's was opened or is about to be closed: the
   watchdog shuts a stuck worker's connections down, so that nginx answers
   at once and opens new ones elsewhere */
void gl_watch_conn(int fd, int open);

/* worker id is stuck in Lua code that cannot be interrupted: the acceptor
   gives it no new connection */
int gl_watch_stuck(int id);

/* a new worker takes the number of a retired one (gl_watch_worker_dead) */
void gl_watch_unstick(int id);

/* fn() is called (from the watchdog's thread) each time a worker is found
   stuck: the main thread may start another in its place */
void gl_watch_on_stuck(void (*fn)(void));

/*
 * request_slowlog_timeout (gl_slowlog.c): the worker's next deadline, in
 * ms of gl_watch_clock() (CLOCK_MONOTONIC); 0: none.  If Lua code of the
 * worker is running at that time (its loop cannot run the slow log's
 * timer), the watchdog has the worker's hook call fn(L), L the running
 * coroutine, in the worker's thread.  fn is set once, for every worker,
 * before they start.
 */
uint64_t gl_watch_clock(void);
void gl_watch_slow_at(uint64_t at);
void gl_watch_on_slow(void (*fn)(lua_State *L));

/*
 * lua_max_memory: a new Lua state of conf gets an allocator that refuses
 * to grow its heap past the limit while Lua code runs (the code then gets
 * "not enough memory", as on a real shortage, and its request fails
 * alone); outside a run (the worker's own pushes) it never refuses.
 * gl_watch_state_close() closes the state and frees what this adds.
 */
void gl_watch_state(lua_State *L, gl_conf_t *conf);

/* after the state's standard libraries are open: under lua_max_memory,
   the JIT compiler off for good (docs/limits-lua.md) */
void gl_watch_state_libs(lua_State *L, gl_conf_t *conf);
void gl_watch_state_close(lua_State *L);

/* a heap that reached its limit, or where an allocation failed, is fully
   collected now (a run's start does it; so does a request's, before its
   code is loaded) */
void gl_watch_mem_check(lua_State *L);

/* around a run of Lua code in a worker (nested runs count as one) */
void gl_watch_begin(lua_State *L);
void gl_watch_end(lua_State *L);

#endif /* GL_WATCH_H */
