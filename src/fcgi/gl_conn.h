/*
 * A FastCGI connection: the socket, the record parser, the requests
 * multiplexed on it (by request id) and the queue of output waiting to be
 * written.  A connection owns its requests; closing it cancels them.
 *
 * A worker's connections make up its server (gl_srv_t): the loop they run
 * on, the config, and the handler that runs their requests.  The FastCGI
 * side knows the handler only through gl_request_handler_t, and tells its
 * owner that a connection ended through srv->on_idle.
 *
 * A connection is never freed in the middle of a callback: code that finds
 * it dead sets c->error, and the code that entered the connection
 * (gl_conn_hold) frees it on its way out (gl_conn_release).
 */
#ifndef GL_CONN_H
#define GL_CONN_H

#include "gl_core.h"
#include "gl_fcgi.h"
#include "gl_stat.h"

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

gl_chain_t *gl_chain_alloc(gl_srv_t *s, size_t size);
void gl_chain_free(gl_srv_t *s, gl_chain_t *cl);


/*
 * What runs the requests.  Every hook gets the request; the request stays
 * valid until the hook returns, except where said.
 */
typedef struct {
    /* a request takes this many bytes: gl_request_t first, then the
       handler's own, zeroed */
    size_t      size;
    /* the params are in: run it */
    void      (*start)(gl_request_t *r);
    /* more of the body came (r->stdin_done at its end; r->body_too_large
       or r->body_error when it cannot be kept) */
    void      (*stdin)(gl_request_t *r);
    /* the connection's queue fell under GL_OUT_LOW (asked for with
       gl_request_want_drain) */
    void      (*drained)(gl_request_t *r);
    /*
     * the client is gone (abort: the connection closed, or nginx sent
     * ABORT_REQUEST), or the worker exits (not abort).  The handler stops
     * the request and frees it (gl_request_free), or, for an abort, keeps
     * it running without a client and returns GL_AGAIN (it then ends it
     * with gl_request_finalize and gl_request_free, as after ngx.eof)
     */
    int       (*cancel)(gl_request_t *r, int abort);
    /* the header block is about to go: a header filter may change status
       and headers; GL_DONE if it sent an error page instead */
    int       (*header)(gl_request_t *r);
    /* the body passes through here on its way out (last: its end); what
       is given to gl_request_output_raw goes out */
    int       (*output)(gl_request_t *r, const u_char *data, size_t len,
                        int last);
} gl_request_handler_t;

struct gl_srv_s {
    struct ev_loop              *loop;
    gl_conf_t                   *conf;
    const gl_request_handler_t  *handler;

    /* a connection or a detached request ended */
    void                       (*on_idle)(gl_srv_t *s);
    /* a connection's socket was taken (open 1) or is about to be closed
       (open 0); NULL: nobody asks */
    void                       (*on_conn)(gl_srv_t *s, int fd, int open);
    void                        *data;

    gl_conn_t                   *conns;
    int                          nconns;
    gl_request_t                *detached;   /* running after ngx.eof():
                                                no connection owns them */
    int                          ndetached;
    unsigned                     exiting:1;  /* take no new connections */
    unsigned                     freeing:1;  /* the worker exits */

    gl_conn_t                   *conn_cache;   /* freed, for reuse */
    int                          nconn_cache;
    gl_chain_t                  *chain_cache;
    int                          nchain_cache;

    uint64_t                     stat_conns;
    uint64_t                     stat_reqs;
    gl_stat_worker_t            *stat;        /* the status page's */
};

struct gl_conn_s {
    gl_srv_t           *srv;
    gl_conn_t          *prev;
    gl_conn_t          *next;

    int                 fd;
    uint64_t            number;       /* as nginx's: unique in the process,
                                         "*N" in log lines */
    ev_io               rev;
    ev_io               wev;

    gl_fcgi_parser_t    parser;

    gl_request_t       *requests;     /* the requests on this connection */
    int                 nrequests;
    uint64_t            nbegun;       /* requests begun on it so far */

    gl_chain_t         *out;          /* output queue */
    gl_chain_t         *out_last;
    size_t              out_bytes;

    gl_request_t       *drain_waiters;   /* requests waiting for out_bytes
                                            to fall below GL_OUT_LOW */

    u_char             *gv;           /* a GET_VALUES record being read */
    size_t              gv_len;

    int                 linger_id;    /* closing waits for the end of this
                                         request's STDIN; -1: none */
    int                 abort_id;     /* a request cut short: its abort
                                         record waits until nginx has read
                                         what came before; -1: none */
    int                 abort_tries;
    ev_timer            abort_timer;

    ev_timer            timer;        /* client_timeout, keepalive_timeout:
                                         checked lazily (gl_conn_timer_cb) */
    ev_tstamp           last_active;  /* input came, or the connection
                                         went idle, or reading resumed */
    ev_tstamp           last_sent;    /* output went, or was queued on
                                         an empty queue */

    unsigned            reading:1;    /* rev started */
    unsigned            closing:1;    /* close once the output is written */
    unsigned            error:1;      /* dead: free on the way out */
    unsigned            shut:1;       /* shutdown(SHUT_WR) done */
    int                 busy;         /* callbacks inside this connection */

    u_char              ibuf[16384];
};

void gl_srv_init(gl_srv_t *s, struct ev_loop *loop, gl_conf_t *conf,
    const gl_request_handler_t *handler);

/* the worker stops: closes idle connections, takes no new ones */
void gl_srv_close_idle(gl_srv_t *s);

/* cancels every connection and detached request, frees the caches */
void gl_srv_free(gl_srv_t *s);

/* takes fd (non-blocking) and starts reading; on error closes fd */
void gl_conn_init(gl_srv_t *s, int fd);

/* queues a block; the connection owns it from now on */
void gl_conn_queue(gl_conn_t *c, gl_chain_t *cl);

/* writes what can be written now, without blocking */
void gl_conn_write(gl_conn_t *c);

/* marks an entry into the connection, and the way out of it */
#define gl_conn_hold(c)   ((c)->busy++)
void gl_conn_release(gl_conn_t *c);

/* a request is done with the connection (it has queued END_REQUEST) */
void gl_conn_request_done(gl_conn_t *c, gl_request_t *r);

/*
 * Request id's answer is cut short: once nginx has read what was sent
 * before (the kernel's queue is empty, or after 200 ms), a record nginx
 * refuses goes instead of END_REQUEST and the connection closes (see
 * gl_request_abort); the connection is held until then.
 */
void gl_conn_abort(gl_conn_t *c, uint16_t id);

#endif /* GL_CONN_H */
