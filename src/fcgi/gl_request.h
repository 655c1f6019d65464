/*
 * A FastCGI request: its params and body as they arrive, and its response
 * (status, headers, output) framed into STDOUT records.  The connection
 * owns the request; the request owns its memory, which goes away with it.
 *
 * What runs the request is its handler (gl_request_handler_t, in
 * gl_conn.h): the FastCGI side starts it when the params are in, tells it
 * when more body came or the output drained, passes the response through
 * its header and output hooks, and cancels it when the connection goes.
 * The handler's own data follows the gl_request_t in the same block.
 */
#ifndef GL_REQUEST_H
#define GL_REQUEST_H

#include "gl_core.h"
#include "gl_conn.h"

#include <ev.h>

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
    gl_srv_t           *srv;
    gl_conn_t          *conn;          /* NULL once detached (ngx.eof) */
    gl_conf_t          *conf;          /* the config it started with */
    gl_request_t       *next;          /* on the connection's list */
    gl_request_t       *next_waiter;   /* on conn->drain_waiters */
    uint16_t            id;
    uint64_t            serial;        /* unique in the worker */
    uint64_t            conn_number;   /* its connection's */
    uint64_t            conn_requests; /* its place on it: 1, 2, ... */

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

    unsigned            keep_conn:1;
    unsigned            params_done:1;
    unsigned            stdin_done:1;
    unsigned            body_too_large:1;
    unsigned            body_error:1;   /* the body could not be stored */
    unsigned            body_read:1;    /* ngx.req.read_body() is done */
    unsigned            body_discard:1;
    unsigned            body_in_file:1;
    unsigned            body_clean:1;   /* unlink body_path at the end */
    unsigned            body_initing:1; /* between init_body and finish */
    unsigned            rh_built:1;
    unsigned            args_unset:1;   /* ngx.var.args = nil */
    unsigned            started:1;
    unsigned            header_sent:1;
    unsigned            finished:1;     /* END_REQUEST is queued */
    unsigned            eof:1;          /* ngx.eof(): the answer is sent */
    unsigned            mime_set:1;     /* Content-Type set or cleared */
    unsigned            output_done:1;  /* the output hook saw the end */
    unsigned            discard_output:1;   /* an error page replaced it */
    unsigned            want_drain:1;   /* on conn->drain_waiters */
    unsigned            aborted:1;      /* cut short: no END_REQUEST */
    unsigned            cancelled:1;    /* its connection went (or nginx
                                           aborted it) before it ended */
    unsigned            head:1;         /* REQUEST_METHOD is HEAD */

    /* the response */
    int                 status;
    char               *reason;         /* ngx.resp.set_status's */
    gl_header_t        *headers;
    size_t              nheaders;
    size_t              headers_cap;
    gl_chain_t         *out;           /* the STDOUT record being filled */
    size_t              bytes_sent;     /* STDOUT content queued: the
                                           header block and the body */
    size_t              header_size;    /* of the header block in it */
};

gl_request_t *gl_request_create(gl_conn_t *c, uint16_t id, int keep_conn);

/* PARAMS and STDIN content; GL_ERROR means the connection must close */
int gl_request_params(gl_request_t *r, const u_char *data, size_t len,
    int eos);
void gl_request_stdin(gl_request_t *r, const u_char *data, size_t len,
    int eos);

/* the body as it came: GL_ERROR if it cannot be stored */
int gl_request_body_append(gl_request_t *r, const u_char *data, size_t len);
void gl_request_body_free(gl_request_t *r);

/* ngx.eof(): sends the end of the answer, the script goes on */
void gl_request_eof(gl_request_t *r);

/* a request whose response went (gl_request_finalize) still runs (its log
   handler): the server keeps it as a detached one until it is finalized
   again or cancelled at the worker's exit */
void gl_request_detach(gl_request_t *r);

/* the request headers (from the HTTP_* params) */
int gl_request_build_headers(gl_request_t *r);

/* the first value of a request header (lower-case name), or NULL */
const gl_header_t *gl_request_header(gl_request_t *r, const char *name,
    size_t len);

/* the request's param, or NULL */
const gl_param_t *gl_request_param(gl_request_t *r, const char *name,
    size_t len);

/* a piece of text in the request's params */
typedef struct {
    const char         *data;
    size_t              len;
} gl_request_piece_t;

/*
 * $request, the request line, in at most 5 pieces to join: nginx's own
 * when it is passed ("fastcgi_param REQUEST $request;": as the client
 * sent it, an absolute URI and extra spaces included), else the method,
 * " ", REQUEST_URI and, but for HTTP/0.9, " " and the protocol.  Returns
 * the number of pieces; 0 when the params lack the method or the URI.
 */
int gl_request_line(gl_request_t *r, gl_request_piece_t *pieces);

/* the handler is done with it: sends the rest of the response and
   END_REQUEST (unless ngx.eof did); gl_request_free() follows */
void gl_request_finalize(gl_request_t *r);
void gl_request_free(gl_request_t *r);

/* the response cannot be completed: instead of END_REQUEST, a record
   nginx refuses, and the connection closes, so that nginx cuts the
   client's response short; gl_request_finalize() then sends nothing */
void gl_request_abort(gl_request_t *r);

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

/*
 * The connection is gone, or nginx aborted the request (abort), or the
 * worker exits (not abort): the handler stops it and frees it, or, for an
 * abort, may keep it running without a client (it is detached then).  The
 * caller has taken it off the connection's list.
 */
void gl_request_cancel(gl_request_t *r, int abort);

/* the handler's drained hook runs when the connection's queue falls under
   GL_OUT_LOW; 0 if there is no connection to wait for */
int gl_request_want_drain(gl_request_t *r);

/* bytes queued on the connection (0 without one) */
size_t gl_request_queued(gl_request_t *r);

/* writes what was queued, now */
void gl_request_write(gl_request_t *r);

/* sets a response header; value NULL removes it; replace: drop the old
   values first.  GL_ERROR on no memory. */
gl_header_t *gl_header_push(gl_header_t **a, size_t *n, size_t *cap,
    const char *name, size_t nlen, const char *value, size_t vlen);
int gl_request_set_header(gl_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen, int replace);

const char *gl_http_status_line(int status);

#endif /* GL_REQUEST_H */
