/*
 * The Lua side of a worker: its state, the code cache, and the coroutine of
 * each request with the resume loop that drives it.
 */
#ifndef GL_LUA_H
#define GL_LUA_H

#include "gl_core.h"

#include <ev.h>
#include <lua.h>
#include <lauxlib.h>

/* creates the worker's state; GL_ERROR with a log line on failure */
int gl_lua_init(gl_worker_t *w);
void gl_lua_close(gl_worker_t *w);

/* loads the script (cached) and runs it in a new coroutine */
void gl_lua_run(gl_request_t *r, const char *path);

/*
 * Resumes the request's coroutine; nargs values on its stack are what the
 * call it waits in returns.  The request may be freed when this returns.
 */
void gl_lua_resume(gl_request_t *r, int nargs);

/* a timer callback that resumes the request in t->data with no values */
void gl_lua_timer_resume(struct ev_loop *loop, ev_timer *t, int revents);

/* ngx.print waited for the output queue: finish it and go on */
void gl_lua_drained(gl_request_t *r);

/* stops what the coroutine waits for and lets it go */
void gl_lua_release(gl_request_t *r);

/* the request whose coroutine runs now; raises a Lua error if none */
gl_request_t *gl_lua_request(lua_State *L);

/* registers ngx.say, ngx.print, ngx.header, ... into the table on top */
void gl_lua_inject_output_api(lua_State *L);
void gl_lua_inject_sleep_api(lua_State *L);

/* yield helpers for API functions */
int gl_lua_yield_exit(lua_State *L, gl_request_t *r);

/* writes the rest of a pending ngx.print; GL_AGAIN if it must wait again */
int gl_lua_write_pending(gl_request_t *r);

#endif /* GL_LUA_H */
