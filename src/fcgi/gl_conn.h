/*
 * A FastCGI connection: the socket, the record parser, the requests
 * multiplexed on it (by request id) and the queue of output waiting to be
 * written.  A connection owns its requests; closing it cancels them.
 *
 * A connection is never freed in the middle of a callback: code that finds
 * it dead sets c->error, and the event callback that entered the
 * connection code frees it on its way out (gl_conn_release).
 */
#ifndef GL_CONN_H
#define GL_CONN_H

#include "gl_core.h"
#include "gl_fcgi.h"

#include <ev.h>

/* queued output above this stops reading and makes writers wait */
#define GL_OUT_HIGH   (256 * 1024)
/* ... and below this lets them go on */
#define GL_OUT_LOW    (64 * 1024)

/* a block of output: bytes [pos, last) are still to be written */
typedef struct gl_chain_s  gl_chain_t;

struct gl_chain_s {
    gl_chain_t   *next;
    size_t        pos;
    size_t        last;
    size_t        size;
    u_char        data[];
};

/* the size of a STDOUT block (see gl_request.c): the one worth caching */
#define GL_CHAIN_BLOCK  (8 + 16384 + 8 + 24)

gl_chain_t *gl_chain_alloc(size_t size);
void gl_chain_free(gl_chain_t *cl);

struct gl_conn_s {
    gl_worker_t        *worker;
    gl_conn_t          *prev;
    gl_conn_t          *next;

    int                 fd;
    ev_io               rev;
    ev_io               wev;

    gl_fcgi_parser_t    parser;

    gl_request_t       *requests;     /* the requests on this connection */
    int                 nrequests;

    gl_chain_t         *out;          /* output queue */
    gl_chain_t         *out_last;
    size_t              out_bytes;

    gl_request_t       *drain_waiters;   /* requests waiting for out_bytes
                                            to fall below GL_OUT_LOW */

    u_char             *gv;           /* a GET_VALUES record being read */
    size_t              gv_len;

    int                 linger_id;    /* closing waits for the end of this
                                         request's STDIN; -1: none */

    unsigned            reading:1;    /* rev started */
    unsigned            closing:1;    /* close once the output is written */
    unsigned            error:1;      /* dead: free on the way out */
    unsigned            shut:1;       /* shutdown(SHUT_WR) done */
    int                 busy;         /* callbacks inside this connection */

    u_char              ibuf[16384];
};

/* takes fd (non-blocking) and starts reading; on error closes fd */
void gl_conn_init(gl_worker_t *w, int fd);

/* queues a block; the connection owns it from now on */
void gl_conn_queue(gl_conn_t *c, gl_chain_t *cl);

/* writes what can be written now, without blocking */
void gl_conn_write(gl_conn_t *c);

/* marks an entry into the connection, and the way out of it */
#define gl_conn_hold(c)   ((c)->busy++)
void gl_conn_release(gl_conn_t *c);

/* a request is done with the connection (it has queued END_REQUEST) */
void gl_conn_request_done(gl_conn_t *c, gl_request_t *r);

/* closes idle connections of an exiting worker */
void gl_conn_close_idle(gl_worker_t *w);

#endif /* GL_CONN_H */
