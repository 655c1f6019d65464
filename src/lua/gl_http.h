/*
 * A request as lua-nginx-module runs it: the handler the FastCGI side
 * calls (gl_http_handler), which runs the request's phases (rewrite,
 * access, content: each a new entry coroutine of the request's task), its
 * header and body filters and its log handler, and keeps what the Lua API
 * holds for it (ngx.ctx, its globals, ngx.var writes).
 */
#ifndef GL_HTTP_H
#define GL_HTTP_H

#include "gl_core.h"
#include "gl_co.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_request.h"

struct gl_http_s {
    gl_request_t        r;              /* the FastCGI side's; first */
    gl_task_t           task;           /* its coroutines */
    gl_vm_t            *vm;
    gl_lua_gen_t       *gen;            /* the generation it runs in */
    gl_conn_t          *held;           /* while its coroutines run */
    gl_log_ctx_t        log;            /* ", client: ..." on its lines */
    gl_log_ctx_t       *saved_log;
    gl_queue_t          in_flight;      /* on vm->requests, from its start
                                           to its end (request_end) */

    int                 exit_status;    /* ngx.exit's */
    int                 var_ref;        /* ngx.var writes */
    int                 env_ref;        /* the globals of the request */
    int                 lf_ref;         /* luafcgid's r object */
    int                 on_abort_ref;   /* ngx.on_abort's thread */
    gl_co_t            *on_abort;

    gl_queue_t          body_waiters;   /* ngx.req.read_body */
    /* ngx.req.socket(): told of each piece of the body that comes */
    void              (*stdin_handler)(void *data);
    void               *stdin_data;
    gl_queue_t          drain_waiters;  /* ngx.print, ngx.flush(true) */

    unsigned            in_filter:1;        /* a body filter runs */
    unsigned            body_filter_eof:1;  /* it set ngx.arg[2] */
    unsigned            filter_exit:1;      /* ngx.exit in a filter */
    unsigned            header_filtered:1;  /* header_filter_by_lua ran */
    unsigned            luafcgid:1;         /* main(env, r) runs */
    unsigned            running:1;          /* its coroutines run now */
    unsigned            body_wait:1;        /* lua_need_request_body: the
                                               phases wait for the body */
    unsigned            bare:1;             /* the header went out, no
                                               body data yet */
    unsigned            over:1;             /* finalized: freed once they
                                               stop */
    unsigned            req_socket:1;       /* ngx.req.socket() took the
                                               body */
    unsigned            slow_logged:1;      /* its slow log entry is
                                               written */
    unsigned            logging:1;          /* its log_by_lua runs, after
                                               the response */
};

extern const gl_request_handler_t  gl_http_handler;

/* the request whose Lua code runs now, or NULL */
gl_http_t *gl_http_current(void);

/*
 * The request whose Lua code calls us, with the context checked against
 * mask (gl_lua_check_context); raises "API disabled in the current
 * context" in a timer or init_worker_by_lua, which have none.
 */
gl_http_t *gl_http_get(lua_State *L, unsigned mask);

/* is there a handler for the phase */
int gl_http_has_handler(gl_http_t *h, int phase);

/* ngx.on_abort(fn): the API function returns this */
int gl_http_on_abort(lua_State *L, gl_http_t *h);

/* ngx.exit(status) in a request: the API function returns this */
int gl_http_exit(lua_State *L, gl_http_t *h);

/*
 * Output from Lua (ngx.print): written at once, or, with the connection's
 * queue over GL_OUT_HIGH, the calling coroutine waits until it drains;
 * the API function returns what this returns (ngx.print's value).  The
 * Lua value that holds data is on top of L's stack (it is kept alive
 * while the coroutine waits).
 */
int gl_http_print(lua_State *L, gl_http_t *h, const u_char *data,
    size_t len);

/* ngx.flush(true): waits until the connection's queue is written */
int gl_http_flush_wait(lua_State *L, gl_http_t *h);

/* ngx.req.read_body: waits for the end of the body */
int gl_http_read_body(lua_State *L, gl_http_t *h);

/* runs body_filter_by_lua on a chunk of the body */
int gl_http_body_filter(gl_http_t *h, const u_char *data, size_t len,
    int eof);

/* the query string (set_uri_args and ngx.var.args writes included) */
const char *gl_http_args(gl_http_t *h, size_t *len);

/*
 * A header value (string, number or boolean at idx) with its control
 * characters %-escaped, as lua-nginx-module sends them, so that a value
 * cannot add header lines; pushes it.  NULL (nothing pushed) for another
 * type.
 */
const char *gl_http_escape_header(lua_State *L, int idx, size_t *len);

/* get_headers' tables: name on top, table at -2; pops the name */
void gl_http_add_header_value(lua_State *L, const char *value, size_t len);

/*
 * The response as nginx holds it for the Lua API (ngx.resp.get_headers,
 * $sent_http_*): nginx adds these in its header filter, golapis's nginx
 * after the FastCGI answer, so they are worked out from the request.
 */

/* the client's HTTP version as nginx counts it: 9, 1000, 1001, 2000 */
int gl_http_version(gl_request_t *r);

/* nginx's r->headers_out.content_type: the Content-Type the script set,
   or default_type once the header is out (unless the script cleared it
   or the status is 204); NULL if none */
const char *gl_http_resp_content_type(gl_request_t *r, size_t *len);

/* nginx's Connection answer: "upgrade", "keep-alive" or "close" */
const char *gl_http_resp_connection(gl_request_t *r);

/* nginx answers with Transfer-Encoding: chunked (r->chunked) */
int gl_http_resp_chunked(gl_request_t *r);

/* the value of response header name (case-insensitive), or NULL */
const gl_header_t *gl_http_resp_header(gl_request_t *r, const char *name,
    size_t len);

#endif /* GL_HTTP_H */
