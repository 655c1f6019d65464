/*
 * A request: its params and body as they arrive, the coroutine that runs
 * its script, and its response (status, headers, output).  The connection
 * owns the request; the request owns its memory, which goes away with it.
 *
 * How a request waits (see docs/design.md): a Lua API function that must
 * wait arms a watcher on the worker's loop, records what it waits for in
 * r->wait, and yields.  The watcher's callback finishes the operation in C
 * and calls gl_request_resume() with the values the Lua call returns.
 */
#ifndef GL_REQUEST_H
#define GL_REQUEST_H

#include "gl_core.h"
#include "gl_conn.h"

#include <ev.h>

typedef enum {
    GL_WAIT_NONE = 0,
    GL_WAIT_SLEEP,        /* a timer: ngx.sleep */
    GL_WAIT_DRAIN,        /* output queue too long: ngx.print */
    GL_WAIT_YIELD,        /* a plain coroutine.yield: resume next turn */
    GL_WAIT_BODY,         /* ngx.req.read_body: the rest of STDIN */
    GL_WAIT_FLUSH         /* ngx.flush(true): the whole queue written */
} gl_wait_e;

typedef enum {
    GL_CO_NONE = 0,       /* nothing asked (a plain yield) */
    GL_CO_WAIT,           /* a watcher is armed, see r->wait */
    GL_CO_EXIT,           /* ngx.exit: finish the request */
    GL_CO_RESUME,         /* coroutine.resume: run r->co_cur */
    GL_CO_YIELD           /* coroutine.yield: back to the parent */
} gl_co_op_e;

/* a coroutine of a request (src/gl_lua_coroutine.c) */
typedef enum {
    GL_UCO_RUNNING = 0,
    GL_UCO_SUSPENDED,
    GL_UCO_NORMAL,
    GL_UCO_DEAD
} gl_uco_status_e;

struct gl_uco_s {
    void               *co;             /* lua_State * */
    gl_uco_t           *parent;         /* who resumed it, while it runs */
    uint64_t            req;            /* the serial of its request */
    gl_uco_status_e     status;
    unsigned            wrap:1;         /* made by coroutine.wrap */
};

typedef struct {
    char         *name;
    size_t        name_len;
    char         *value;
    size_t        value_len;
} gl_header_t;

typedef struct {
    const char   *name;       /* in the params arena, NUL-terminated */
    size_t        name_len;
    const char   *value;
    size_t        value_len;
} gl_param_t;

struct gl_request_s {
    gl_conn_t          *conn;
    gl_worker_t        *worker;
    gl_conf_t          *conf;          /* the config it started with */
    gl_request_t       *next;          /* on the connection's list */
    gl_request_t       *next_waiter;   /* on conn->drain_waiters */
    uint16_t            id;

    /* input */
    u_char             *params_raw;    /* the PARAMS stream until its end */
    size_t              params_raw_len;
    size_t              params_raw_cap;
    u_char             *params_arena;  /* decoded pairs */
    gl_param_t         *params;
    size_t              nparams;

    /* the body: in memory, or in a file once over client_body_buffer_size */
    u_char             *body;
    size_t              body_len;
    size_t              body_cap;
    size_t              body_total;     /* bytes of STDIN so far */
    size_t              body_buffer_size;
    int                 body_fd;
    char               *body_path;

    /* request headers, rebuilt from the HTTP_* params when first needed */
    gl_header_t        *rh;
    size_t              nrh;
    size_t              rh_cap;

    char               *method;         /* set_method, set_uri, ... */
    char               *uri;
    char               *args;

    double              start_time;
    gl_phase_e          phase;

    unsigned            keep_conn:1;
    unsigned            params_done:1;
    unsigned            stdin_done:1;
    unsigned            body_too_large:1;
    unsigned            body_read:1;    /* ngx.req.read_body() is done */
    unsigned            body_discard:1;
    unsigned            body_in_file:1;
    unsigned            body_clean:1;   /* unlink body_path at the end */
    unsigned            body_initing:1; /* between init_body and finish */
    unsigned            rh_built:1;
    unsigned            args_unset:1;   /* ngx.var.args = nil */
    unsigned            started:1;
    unsigned            header_sent:1;
    unsigned            finished:1;
    unsigned            eof:1;          /* ngx.eof(): the answer is sent */
    unsigned            in_filter:1;
    unsigned            mime_set:1;     /* Content-Type set or cleared */
    unsigned            body_filter_eof:1;  /* ngx.arg[2] = true */
    unsigned            body_filter_done:1; /* it has seen eof */
    unsigned            filter_exit:1;      /* ngx.exit in a filter */
    unsigned            discard_output:1;   /* an error page replaced it */
    unsigned            header_filtered:1;  /* header_filter_by_lua ran */
    unsigned            luafcgid:1;         /* main(env, r) runs */

    /* the coroutine, in the generation of Lua state it started on */
    struct gl_lua_gen_s *gen;
    void               *co;            /* lua_State * */
    int                 co_ref;
    gl_uco_t            co_entry;      /* co as a coroutine of the API */
    gl_uco_t           *co_cur;        /* the one that runs (or waits) */
    uint64_t            serial;        /* unique in the worker */
    gl_co_op_e          co_op;
    gl_wait_e           wait;
    ev_timer            timer;
    int                 exit_status;
    int                 ctx_ref;        /* ngx.ctx */
    int                 var_ref;        /* ngx.var writes */
    int                 env_ref;        /* the globals of the request */
    int                 lf_ref;         /* luafcgid's r object */

    /* ngx.print waiting for the queue to drain: the rest of its string */
    int                 pending_ref;
    const u_char       *pending;
    size_t              pending_len;

    /* the response */
    int                 status;
    char               *reason;         /* ngx.resp.set_status's */
    gl_header_t        *headers;
    size_t              nheaders;
    size_t              headers_cap;
    gl_chain_t         *out;           /* the STDOUT record being filled */
};

gl_request_t *gl_request_create(gl_conn_t *c, uint16_t id, int keep_conn);

/* PARAMS and STDIN content; GL_ERROR means the connection must close */
int gl_request_params(gl_request_t *r, const u_char *data, size_t len,
    int eos);
void gl_request_stdin(gl_request_t *r, const u_char *data, size_t len,
    int eos);

/* the content phase is over (or rewrite/access ended it): what comes next */
void gl_request_phase_done(gl_request_t *r);

/* ends the request with an error page (if nothing was sent yet) */
void gl_request_fail(gl_request_t *r, int status);

/* the body as it came: GL_ERROR if it cannot be stored */
int gl_request_body_append(gl_request_t *r, const u_char *data, size_t len);
void gl_request_body_free(gl_request_t *r);

/* ngx.eof(): sends the end of the answer, the script goes on */
void gl_request_eof(gl_request_t *r);

/* the request headers (from the HTTP_* params) */
int gl_request_build_headers(gl_request_t *r);

/* the first value of a request header (lower-case name), or NULL */
const gl_header_t *gl_request_header(gl_request_t *r, const char *name,
    size_t len);

/* the request's param, or NULL */
const gl_param_t *gl_request_param(gl_request_t *r, const char *name,
    size_t len);

/* the script is over (normally, by ngx.exit or by an error): sends the
   rest of the response and END_REQUEST, and frees the request */
void gl_request_finalize(gl_request_t *r);

/* output: copies into STDOUT records; the header is sent first */
int gl_request_output(gl_request_t *r, const u_char *data, size_t len);
/* output that skips the body filter (the filter's own output) */
int gl_request_output_raw(gl_request_t *r, const u_char *data, size_t len);

/* a HEAD request: no body goes out */
int gl_request_is_head(gl_request_t *r);

/* sends the header block now (ngx.send_headers) */
int gl_request_send_header_now(gl_request_t *r);

/* queues the record being filled, so it can be written */
void gl_request_flush(gl_request_t *r);

/* sends an nginx-like error page, if nothing was sent yet */
void gl_request_error_page(gl_request_t *r, int status);

/* the connection is gone or the request aborted: stop it at once and
   free it; the caller has taken it off the connection's list */
void gl_request_cancel(gl_request_t *r);

/* the queue drained: go on with a waiting ngx.print */
void gl_request_drained(gl_request_t *r);

/* sets a response header; value NULL removes it; replace: drop the old
   values first.  GL_ERROR on no memory. */
gl_header_t *gl_header_push(gl_header_t **a, size_t *n, size_t *cap,
    const char *name, size_t nlen, const char *value, size_t vlen);
int gl_request_set_header(gl_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen, int replace);

const char *gl_http_status_line(int status);

#endif /* GL_REQUEST_H */
