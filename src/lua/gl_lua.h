/*
 * The Lua side of a worker: its state, the code cache, and the coroutine of
 * each request with the resume loop that drives it.
 */
#ifndef GL_LUA_H
#define GL_LUA_H

#include "gl_core.h"
#include "gl_conf.h"

#include <ev.h>
#include <lua.h>
#include <lauxlib.h>

/*
 * A generation of a worker's Lua state.  The worker holds a reference to
 * its current one, each request one to the generation it started on; the
 * state is closed when the last reference goes.
 */
typedef struct gl_lua_gen_s  gl_lua_gen_t;

struct gl_lua_gen_s {
    lua_State     *L;
    int            refs;
    unsigned       id;
};

/* the request's state (its generation, taken on first use) */
lua_State *gl_lua_state(gl_worker_t *w, gl_request_t *r);
void gl_lua_gen_release(gl_worker_t *w, gl_lua_gen_t *g);

/* a new generation for new requests (code reload); GL_ERROR: logged, the
   old one stays */
int gl_lua_reload(gl_worker_t *w);

/* creates the worker's state; GL_ERROR with a log line on failure */
int gl_lua_init(gl_worker_t *w);
void gl_lua_close(gl_worker_t *w);

/* runs a rewrite/access/content handler, or the script at path, in a
   new coroutine of the request */
void gl_lua_run(gl_request_t *r, gl_lua_handler_t *h, const char *path);

/* golapis -t: compiles every Lua handler of conf; GL_ERROR with err */
int gl_lua_check_conf(gl_conf_t *conf, char *err, size_t size);

/* init_by_lua / init_worker_by_lua in the worker's state */
int gl_lua_run_init(gl_worker_t *w, int phase);

int gl_lua_has_handler(gl_request_t *r, int phase);
void gl_lua_run_header_filter(gl_request_t *r);
int gl_lua_run_body_filter(gl_request_t *r, const u_char *data, size_t len,
    int eof);
void gl_lua_run_log(gl_request_t *r);

/* the phase now: the request's, or init/init_worker outside requests;
   -1 if none */
int gl_lua_get_phase(gl_request_t *r);

/* the request running now, or NULL (never raises) */
gl_request_t *gl_lua_current_request(void);

/* the same, exported for Lua modules through FFI (see resty.core.base) */
void *gl_ffi_get_request(void);

/*
 * luafcgid scripts: after the chunk ran, if it defined the handler (a
 * global main(env, r)), pushes it with its two arguments on the
 * request's coroutine and returns GL_OK; else GL_DECLINED.
 */
int gl_lua_luafcgid(gl_request_t *r);
void gl_lua_luafcgid_release(gl_request_t *r);

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
void gl_lua_inject_re_api(lua_State *L);
void gl_lua_inject_string_api(lua_State *L);
void gl_lua_inject_time_api(lua_State *L);
void gl_lua_inject_log_api(lua_State *L);
void gl_lua_inject_misc_api(lua_State *L);
void gl_lua_inject_shdict_api(lua_State *L);
void gl_lua_inject_coroutine_api(lua_State *L);

/* gl_lua_coroutine.c: the request's coroutines, for the resume loop */
void gl_lua_co_start(gl_request_t *r, lua_State *co);
int gl_lua_co_back(gl_request_t *r, gl_uco_t *u);
int gl_lua_co_fail(gl_request_t *r, gl_uco_t *u);

/* the phases an API function may run in */
#define GL_CTX_INIT           (1 << GL_PHASE_INIT)
#define GL_CTX_INIT_WORKER    (1 << GL_PHASE_INIT_WORKER)
#define GL_CTX_REWRITE        (1 << GL_PHASE_REWRITE)
#define GL_CTX_ACCESS         (1 << GL_PHASE_ACCESS)
#define GL_CTX_CONTENT        (1 << GL_PHASE_CONTENT)
#define GL_CTX_HEADER_FILTER  (1 << GL_PHASE_HEADER_FILTER)
#define GL_CTX_BODY_FILTER    (1 << GL_PHASE_BODY_FILTER)
#define GL_CTX_LOG            (1 << GL_PHASE_LOG)

/* raises "API disabled in the context of ..." outside the phases */
void gl_lua_check_context(lua_State *L, gl_request_t *r, unsigned mask);

/*
 * A header value (string, number or boolean at idx) with its control
 * characters %-escaped, as lua-nginx-module sends them, so that a value
 * cannot add header lines; pushes it.  NULL (nothing pushed) for another
 * type.
 */
const char *gl_lua_escape_header(lua_State *L, int idx, size_t *len);

/* get_headers' tables: name on top, table at -2; pops the name */
void gl_lua_add_header_value(lua_State *L, const char *value, size_t len);

/* ngx.ctx of the request */
void gl_lua_push_ctx(lua_State *L, gl_request_t *r);
void gl_lua_set_ctx(lua_State *L, gl_request_t *r, int idx);

/* the query string (set_uri_args and ngx.var.args writes included) */
const char *gl_lua_req_args(gl_request_t *r, size_t *len);

void gl_lua_inject_var_api(lua_State *L);
void gl_lua_inject_req_api(lua_State *L);

/* yield helpers for API functions */
int gl_lua_yield_exit(lua_State *L, gl_request_t *r);

/* writes the rest of a pending ngx.print; GL_AGAIN if it must wait again */
int gl_lua_write_pending(gl_request_t *r);

#endif /* GL_LUA_H */
