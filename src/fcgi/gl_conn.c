/*
 * A connection: reads records, hands them to requests by id, and writes
 * the output queue with writev, never blocking.  Reading pauses while the
 * queue is longer than GL_OUT_HIGH, so a slow reader on the other side
 * bounds the memory a connection holds.
 */
#include "gl_core.h"
#include "gl_conn.h"
#include "gl_conf.h"
#include "gl_fcgi.h"
#include "gl_log.h"
#include "gl_request.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif
#include <unistd.h>

#define GL_CONN_MAX_REQS    1024
#define GL_CONN_GV_MAX      4096
#define GL_CACHE_MAX        64

static atomic_ullong  gl_conn_number;

static void gl_conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void gl_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void gl_conn_process(gl_conn_t *c, const u_char *buf, size_t len);
static void gl_conn_free(gl_conn_t *c);
static void gl_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static gl_conn_t *gl_conn_find_idle(gl_srv_t *s);

/* what a connection waits for (gl_conn_waits) */
enum {
    GL_CONN_BUSY = 0,     /* its requests run, or its output waits */
    GL_CONN_IDLE,         /* nothing: keepalive_timeout */
    GL_CONN_RECORD,       /* the rest of a record: client_timeout */
    GL_CONN_PARAMS,       /* the rest of a request's params */
    GL_CONN_BODY,         /* the rest of a request's body */
    GL_CONN_LINGER,       /* the rest of a finished request's body */
    GL_CONN_SEND          /* nginx to take the output it has queued */
};

static const char  *gl_conn_wait_text[] = {
    "", "", "a record", "the params", "the body", "the rest of a body", ""
};


void
gl_chain_free(gl_srv_t *s, gl_chain_t *cl)
{
    if (cl->size == GL_CHAIN_BLOCK && s->nchain_cache < GL_CACHE_MAX) {
        cl->next = s->chain_cache;
        s->chain_cache = cl;
        s->nchain_cache++;
        return;
    }

    free(cl);
}


/*
 * Output blocks of the common size, and connections, are kept on small
 * per-worker free lists: without them, every request malloc()s and frees
 * 16 KB, which makes glibc trim and grow its heap over and over.
 */
gl_chain_t *
gl_chain_alloc(gl_srv_t *s, size_t size)
{
    gl_chain_t   *cl;

    if (size == GL_CHAIN_BLOCK && s->chain_cache != NULL) {
        cl = s->chain_cache;
        s->chain_cache = cl->next;
        s->nchain_cache--;

    } else {
        cl = malloc(sizeof(gl_chain_t) + size);
        if (cl == NULL) {
            return NULL;
        }
    }

    cl->next = NULL;
    cl->pos = 0;
    cl->last = 0;
    cl->size = size;

    return cl;
}


void
gl_srv_init(gl_srv_t *s, struct ev_loop *loop, gl_conf_t *conf,
    const gl_request_handler_t *handler)
{
    memset(s, 0, sizeof(gl_srv_t));

    s->loop = loop;
    s->conf = conf;
    s->handler = handler;
    s->stat = gl_stat_worker(-1);
}


void
gl_srv_free(gl_srv_t *s)
{
    gl_conn_t     *c;
    gl_chain_t    *cl;
    gl_request_t  *r;

    s->freeing = 1;

    while (s->conns) {
        c = s->conns;
        gl_conn_hold(c);
        c->error = 1;
        gl_conn_release(c);
    }

    while (s->detached) {
        r = s->detached;
        s->detached = r->next;
        s->ndetached--;
        gl_request_cancel(r, 0);
    }

    while (s->conn_cache) {
        c = s->conn_cache;
        s->conn_cache = c->next;
        free(c);
    }

    while (s->chain_cache) {
        cl = s->chain_cache;
        s->chain_cache = cl->next;
        free(cl);
    }
}


void
gl_conn_init(gl_srv_t *s, int fd)
{
    gl_conn_t  *c;

    if (!s->exiting && s->nconns >= s->conf->worker_connections) {
        /* make room: an idle connection goes first (nginx, when it gets
           it on a kept connection, retries on a new one) */
        c = gl_conn_find_idle(s);

        if (c != NULL) {
            gl_log_error_limited(GL_LOG_WARN, 0, "%d worker_connections "
                                 "are not enough, closing an idle "
                                 "connection", s->conf->worker_connections);
            gl_conn_hold(c);
            c->error = 1;
            gl_conn_release(c);
        }
    }

    if (s->exiting || s->nconns >= s->conf->worker_connections) {
        gl_log_error_limited(GL_LOG_WARN, 0, "%d worker_connections are not "
                             "enough, closing a new connection",
                             s->conf->worker_connections);
        gl_stat_add(&s->stat->conns_refused, 1);
        close(fd);
        return;
    }

    if (s->conn_cache != NULL) {
        c = s->conn_cache;
        s->conn_cache = c->next;
        s->nconn_cache--;

    } else {
        c = malloc(sizeof(gl_conn_t));
        if (c == NULL) {
            gl_log_error(GL_LOG_ALERT, errno, "cannot allocate a "
                         "connection");
            close(fd);
            return;
        }
    }

    /* all but the input buffer */
    memset(c, 0, offsetof(gl_conn_t, ibuf));

    c->srv = s;
    c->fd = fd;
    c->number = atomic_fetch_add(&gl_conn_number, 1) + 1;
    c->linger_id = -1;
    c->abort_id = -1;
    gl_fcgi_parser_init(&c->parser);

    ev_io_init(&c->rev, gl_conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wev, gl_conn_write_cb, fd, EV_WRITE);
    c->rev.data = c;
    c->wev.data = c;

    c->last_active = ev_now(s->loop);
    ev_timer_init(&c->timer, gl_conn_timer_cb,
                  gl_min(s->conf->client_timeout,
                         s->conf->keepalive_timeout), 0);
    c->timer.data = c;
    ev_timer_start(s->loop, &c->timer);

    if (s->on_conn != NULL) {
        s->on_conn(s, fd, 1);
    }

    c->next = s->conns;
    if (s->conns) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->nconns++;
    s->stat_conns++;
    gl_stat_add(&s->stat->conns, 1);
    gl_stat_gauge_add(&s->stat->conns_open, 1);

    ev_io_start(s->loop, &c->rev);
    c->reading = 1;

    gl_log_debug("conn %d: new", fd);
}


void
gl_conn_queue(gl_conn_t *c, gl_chain_t *cl)
{
    if (c->error) {
        gl_chain_free(c->srv, cl);
        return;
    }

    cl->next = NULL;

    if (c->out_last) {
        c->out_last->next = cl;
    } else {
        c->out = cl;
        /* the wait for nginx to take it starts now */
        c->last_sent = ev_now(c->srv->loop);
    }

    c->out_last = cl;
    c->out_bytes += cl->last - cl->pos;

    if (c->reading && c->out_bytes > GL_OUT_HIGH) {
        ev_io_stop(c->srv->loop, &c->rev);
        c->reading = 0;
    }
}


static void
gl_conn_queue_record(gl_conn_t *c, const u_char *data, size_t len)
{
    gl_chain_t  *cl;

    cl = gl_chain_alloc(c->srv, len);
    if (cl == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "cannot allocate a record");
        c->error = 1;
        return;
    }

    memcpy(cl->data, data, len);
    cl->last = len;
    gl_conn_queue(c, cl);
}


void
gl_conn_write(gl_conn_t *c)
{
    int           n;
    ssize_t       sent;
    gl_chain_t   *cl;
    struct iovec  iov[64];

    while (c->out != NULL && !c->error) {
        n = 0;

        for (cl = c->out; cl && n < (int) gl_nelems(iov); cl = cl->next) {
            iov[n].iov_base = cl->data + cl->pos;
            iov[n].iov_len = cl->last - cl->pos;
            n++;
        }

        sent = writev(c->fd, iov, n);

        if (sent == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }

            if (errno == EINTR) {
                continue;
            }

            gl_log_error(errno == EPIPE || errno == ECONNRESET
                         ? GL_LOG_INFO : GL_LOG_ERR, errno,
                         "writev() to connection %d failed", c->fd);
            c->error = 1;
            return;
        }

        c->out_bytes -= sent;

        if (sent > 0) {
            c->last_sent = ev_now(c->srv->loop);
        }

        while (sent > 0) {
            cl = c->out;
            if ((size_t) sent < cl->last - cl->pos) {
                cl->pos += sent;
                break;
            }

            sent -= cl->last - cl->pos;
            c->out = cl->next;
            gl_chain_free(c->srv, cl);
        }

        if (c->out == NULL) {
            c->out_last = NULL;
            /* the wait for input, if any, starts now */
            c->last_active = ev_now(c->srv->loop);
        }
    }

    if (c->out != NULL || c->drain_waiters != NULL) {
        /* the write callback writes the rest, or tells the waiters that
           the queue drained (maybe here, by another writer) */
        if (!ev_is_active(&c->wev)) {
            ev_io_start(c->srv->loop, &c->wev);
        }

    } else if (ev_is_active(&c->wev)) {
        ev_io_stop(c->srv->loop, &c->wev);
    }

    if (c->out == NULL) {
        if ((c->closing || c->linger_id != -1) && c->nrequests == 0
            && !c->shut && c->abort_id == -1)
        {
            /*
             * without FCGI_KEEP_CONN nginx takes the end of the connection
             * as the end of the answer: say it now, before a log handler
             * or a body still arriving keeps the socket open
             */
            c->shut = 1;
            shutdown(c->fd, SHUT_WR);
        }
    }

    if (!c->reading && c->out_bytes < GL_OUT_LOW && !c->closing) {
        ev_io_start(c->srv->loop, &c->rev);
        c->reading = 1;
        c->last_active = ev_now(c->srv->loop);
    }
}


/* bytes written to the socket that the peer has not read yet; 0 where the
   system cannot tell */
static int
gl_conn_unread(gl_conn_t *c)
{
#ifdef SIOCOUTQ
    int  n;

    if (ioctl(c->fd, SIOCOUTQ, &n) == 0) {
        return n;
    }
#endif

    (void) c;

    return 0;
}


static void
gl_conn_abort_now(gl_conn_t *c)
{
    u_char  rec[FCGI_HEADER_LEN];

    gl_fcgi_header(rec, FCGI_UNKNOWN_TYPE, (uint16_t) c->abort_id, 0, 0);
    gl_conn_queue_record(c, rec, FCGI_HEADER_LEN);
    c->abort_id = -1;
    c->closing = 1;
    gl_conn_write(c);
}


static void
gl_conn_abort_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gl_conn_t  *c;

    (void) loop;
    (void) revents;

    c = w->data;

    if (!c->error && c->out == NULL && gl_conn_unread(c) > 0
        && ++c->abort_tries < 200)
    {
        ev_timer_again(c->srv->loop, w);
        return;
    }

    ev_timer_stop(c->srv->loop, w);

    if (!c->error) {
        gl_conn_abort_now(c);
    }

    gl_conn_release(c);
}


void
gl_conn_abort(gl_conn_t *c, uint16_t id)
{
    if (c->error || c->abort_id != -1) {
        c->error = 1;
        return;
    }

    c->abort_id = id;
    c->abort_tries = 0;
    gl_conn_write(c);

    /* held until the record goes: the connection must not close first */
    gl_conn_hold(c);
    ev_init(&c->abort_timer, gl_conn_abort_cb);
    c->abort_timer.repeat = 0.001;
    c->abort_timer.data = c;
    ev_timer_again(c->srv->loop, &c->abort_timer);
}


static gl_request_t *
gl_conn_find(gl_conn_t *c, uint16_t id)
{
    gl_request_t  *r;

    for (r = c->requests; r; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }

    return NULL;
}


static void
gl_conn_unlink_request(gl_conn_t *c, gl_request_t *r)
{
    gl_request_t  **pr;

    for (pr = &c->requests; *pr; pr = &(*pr)->next) {
        if (*pr == r) {
            *pr = r->next;
            c->nrequests--;
            break;
        }
    }

    for (pr = &c->drain_waiters; *pr; pr = &(*pr)->next_waiter) {
        if (*pr == r) {
            *pr = r->next_waiter;
            break;
        }
    }
}


void
gl_conn_request_done(gl_conn_t *c, gl_request_t *r)
{
    if (!r->keep_conn) {
        /*
         * the web server closes nothing: we do, once it has the answer;
         * but not before it has sent the whole body, or it would get a
         * reset while sending it and cut the answer short
         */
        if (r->stdin_done) {
            c->closing = 1;
        } else {
            c->linger_id = r->id;
        }
    }

    gl_conn_unlink_request(c, r);

    c->last_active = ev_now(c->srv->loop);
}


static void
gl_conn_end_request(gl_conn_t *c, uint16_t id, uint8_t protocol_status)
{
    u_char  buf[16];

    gl_conn_queue_record(c, buf, gl_fcgi_end_request(buf, id, 0,
                                                     protocol_status));
}


static void
gl_conn_get_values(gl_conn_t *c)
{
    int              rc;
    u_char           arena[GL_CONN_GV_MAX + 2], out[256];
    size_t           n, len;
    char             value[32];
    const char      *err;
    gl_fcgi_nv_t     nv;
    const u_char    *p;
    gl_fcgi_pair_t   pair;
    gl_conf_t       *conf;

    conf = c->srv->conf;
    gl_fcgi_nv_init(&nv, arena, sizeof(arena));
    p = c->gv;
    len = FCGI_HEADER_LEN;

    for ( ;; ) {
        rc = gl_fcgi_nv_parse(&nv, &p, c->gv + c->gv_len, &pair, &err);
        if (rc != GL_OK) {
            break;
        }

        if (strcmp((char *) pair.name, FCGI_MAX_CONNS) == 0) {
            snprintf(value, sizeof(value), "%d", conf->worker_connections);

        } else if (strcmp((char *) pair.name, FCGI_MAX_REQS) == 0) {
            snprintf(value, sizeof(value), "%d",
                     conf->worker_connections * GL_CONN_MAX_REQS);

        } else if (strcmp((char *) pair.name, FCGI_MPXS_CONNS) == 0) {
            snprintf(value, sizeof(value), "1");

        } else {
            continue;
        }

        n = gl_fcgi_nv_encode(out + len, sizeof(out) - 8 - len, pair.name,
                              pair.name_len, (u_char *) value, strlen(value));
        len += n;
    }

    if (rc == GL_ERROR || gl_fcgi_nv_done(&nv) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "closing connection %d: bad "
                     "FCGI_GET_VALUES record", c->fd);
        c->error = 1;
        return;
    }

    n = len - FCGI_HEADER_LEN;
    gl_fcgi_header(out, FCGI_GET_VALUES_RESULT, 0, (uint16_t) n,
                   gl_fcgi_padding(n));
    memset(out + len, 0, gl_fcgi_padding(n));
    gl_conn_queue_record(c, out, len + gl_fcgi_padding(n));
}


static void
gl_conn_begin(gl_conn_t *c, gl_fcgi_event_t *ev)
{
    gl_request_t  *r;

    if (ev->role != FCGI_RESPONDER) {
        gl_log_error(GL_LOG_WARN, 0, "connection %d: request %d has role %d, "
                     "only the responder role is supported", c->fd, ev->id,
                     ev->role);
        gl_conn_end_request(c, ev->id, FCGI_UNKNOWN_ROLE);
        return;
    }

    if (gl_conn_find(c, ev->id) != NULL) {
        gl_log_error(GL_LOG_ERR, 0, "closing connection %d: "
                     "FCGI_BEGIN_REQUEST for request %d, which is active",
                     c->fd, ev->id);
        c->error = 1;
        return;
    }

    if (c->nrequests >= GL_CONN_MAX_REQS) {
        gl_log_error(GL_LOG_WARN, 0, "connection %d: too many requests at "
                     "once", c->fd);
        gl_conn_end_request(c, ev->id, FCGI_OVERLOADED);
        return;
    }

    r = gl_request_create(c, ev->id, ev->flags & FCGI_KEEP_CONN);
    if (r == NULL) {
        gl_conn_end_request(c, ev->id, FCGI_OVERLOADED);
        return;
    }

    r->next = c->requests;
    c->requests = r;
    c->nrequests++;
}


static void
gl_conn_process(gl_conn_t *c, const u_char *buf, size_t len)
{
    int               keep;
    size_t            n;
    u_char            rec[16];
    gl_request_t     *r;
    gl_fcgi_event_t   ev;

    while (len > 0 && !c->error && !c->closing) {
        n = gl_fcgi_parse(&c->parser, buf, len, &ev);
        buf += n;
        len -= n;

        switch (ev.type) {

        case GL_FCGI_EV_NONE:
            break;

        case GL_FCGI_EV_BEGIN:
            gl_conn_begin(c, &ev);
            break;

        case GL_FCGI_EV_ABORT:
            r = gl_conn_find(c, ev.id);
            if (r != NULL) {
                gl_log_error(GL_LOG_INFO, 0, "connection %d: request %d "
                             "aborted by the web server", c->fd, ev.id);
                /* the request may be gone after cancel */
                keep = r->keep_conn;
                gl_conn_unlink_request(c, r);
                gl_request_cancel(r, 1);
                gl_conn_end_request(c, ev.id, FCGI_REQUEST_COMPLETE);

                if (!keep) {
                    /* as at the end of the request: the connection
                       closes once END_REQUEST is written */
                    c->closing = 1;
                }
            }
            break;

        case GL_FCGI_EV_PARAMS:
            r = gl_conn_find(c, ev.id);
            if (r != NULL && !r->params_done
                && gl_request_params(r, ev.data, ev.len, ev.eos) != GL_OK)
            {
                c->error = 1;
            }
            break;

        case GL_FCGI_EV_STDIN:
            r = gl_conn_find(c, ev.id);
            if (r != NULL && !r->stdin_done) {
                /* this may run the request's script */
                gl_request_stdin(r, ev.data, ev.len, ev.eos);

            } else if (r == NULL && ev.eos && ev.id == c->linger_id) {
                c->linger_id = -1;
                c->closing = 1;
            }
            break;

        case GL_FCGI_EV_DATA:
            /* the responder role has no use for it */
            break;

        case GL_FCGI_EV_GET_VALUES:
            if (c->gv_len + ev.len > GL_CONN_GV_MAX) {
                gl_log_error(GL_LOG_ERR, 0, "closing connection %d: "
                             "FCGI_GET_VALUES record is too long", c->fd);
                c->error = 1;
                break;
            }

            if (c->gv == NULL) {
                c->gv = malloc(GL_CONN_GV_MAX);
                if (c->gv == NULL) {
                    c->error = 1;
                    break;
                }
            }

            memcpy(c->gv + c->gv_len, ev.data, ev.len);
            c->gv_len += ev.len;

            if (ev.last) {
                gl_conn_get_values(c);
                c->gv_len = 0;
            }
            break;

        case GL_FCGI_EV_UNKNOWN_TYPE:
            gl_log_error(GL_LOG_INFO, 0, "connection %d: unknown record "
                         "type %d", c->fd, ev.rtype);
            gl_conn_queue_record(c, rec, gl_fcgi_unknown_type(rec, ev.rtype));
            break;

        case GL_FCGI_EV_ERROR:
            gl_log_error(GL_LOG_ERR, 0, "closing connection %d: bad FastCGI "
                         "input: %s", c->fd, ev.err);
            c->error = 1;
            break;
        }
    }
}


static void
gl_conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ssize_t     n;
    gl_conn_t  *c;

    (void) revents;

    c = w->data;
    gl_conn_hold(c);

    n = read(c->fd, c->ibuf, sizeof(c->ibuf));

    if (n > 0) {
        /* no timer restarts per read: the timer looks at this when it
           fires, and waits on if it came since */
        c->last_active = ev_now(loop);
        gl_conn_process(c, c->ibuf, n);

    } else if (n == 0) {
        if (c->nrequests) {
            gl_log_error(GL_LOG_INFO, 0, "connection %d closed by the web "
                         "server with %d requests in flight", c->fd,
                         c->nrequests);
        }
        c->error = 1;

    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        gl_log_error(GL_LOG_INFO, errno, "read() from connection %d failed",
                     c->fd);
        c->error = 1;
    }

    gl_conn_write(c);
    gl_conn_release(c);
}


static void
gl_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    gl_conn_t     *c;
    gl_request_t  *r, *waiters;

    (void) loop;
    (void) revents;

    c = w->data;
    gl_conn_hold(c);

    gl_conn_write(c);

    if (!c->error && c->out_bytes < GL_OUT_LOW && c->drain_waiters) {
        /* each waiter once: those still waiting put themselves back */
        waiters = c->drain_waiters;
        c->drain_waiters = NULL;

        while (waiters && !c->error) {
            r = waiters;
            waiters = r->next_waiter;
            r->want_drain = 0;
            c->srv->handler->drained(r);
            gl_conn_write(c);
        }

        /* on error the connection cancels its requests; just unlink */
        while (waiters) {
            r = waiters;
            waiters = r->next_waiter;
            r->next_waiter = NULL;
        }
    }

    gl_conn_release(c);
}


void
gl_conn_release(gl_conn_t *c)
{
    if (--c->busy > 0) {
        return;
    }

    if (!c->error && c->closing && c->nrequests == 0 && c->out == NULL) {
        c->error = 1;
    }

    if (!c->error && c->srv->exiting && c->nrequests == 0
        && c->out == NULL)
    {
        c->error = 1;
    }

    if (c->error) {
        gl_conn_free(c);
    }
}


static void
gl_conn_free(gl_conn_t *c)
{
    gl_srv_t      *s;
    gl_chain_t    *cl;
    gl_request_t  *r;

    s = c->srv;

    gl_log_debug("conn %d: close", c->fd);

    while (c->requests) {
        r = c->requests;
        c->requests = r->next;
        gl_request_cancel(r, !s->freeing);
    }

    ev_io_stop(s->loop, &c->rev);
    ev_io_stop(s->loop, &c->wev);
    ev_timer_stop(s->loop, &c->abort_timer);
    ev_timer_stop(s->loop, &c->timer);

    if (s->on_conn != NULL) {
        s->on_conn(s, c->fd, 0);
    }

    close(c->fd);

    while (c->out) {
        cl = c->out;
        c->out = cl->next;
        gl_chain_free(s, cl);
    }

    free(c->gv);

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }

    if (c->next) {
        c->next->prev = c->prev;
    }

    s->nconns--;
    gl_stat_gauge_add(&s->stat->conns_open, -1);

    if (s->nconn_cache < GL_CACHE_MAX) {
        c->next = s->conn_cache;
        s->conn_cache = c;
        s->nconn_cache++;
    } else {
        free(c);
    }

    if (s->on_idle != NULL) {
        s->on_idle(s);
    }
}


void
gl_srv_close_idle(gl_srv_t *s)
{
    gl_conn_t  *c, *next;

    s->exiting = 1;

    for (c = s->conns; c; c = next) {
        next = c->next;

        if (c->nrequests == 0 && c->out == NULL && c->busy == 0) {
            gl_conn_hold(c);
            c->error = 1;
            gl_conn_release(c);
        }
    }
}


/*
 * What the connection waits for: the web server's input that it needs
 * (the rest of a record, of a request's params or body), nothing at all
 * (idle), or neither: its requests run (their scripts may sleep or wait
 * on sockets for long) or its output waits for the web server to read.
 */
static int
gl_conn_waits(gl_conn_t *c, gl_request_t **rp)
{
    gl_request_t  *r;

    *rp = NULL;

    if (c->error || c->closing || c->abort_id != -1) {
        return GL_CONN_BUSY;
    }

    if (c->out != NULL) {
        /* nginx takes none of it: that is a stalled client too */
        return GL_CONN_SEND;
    }

    if (!c->reading) {
        return GL_CONN_BUSY;
    }

    for (r = c->requests; r; r = r->next) {
        if (!r->params_done) {
            *rp = r;
            return GL_CONN_PARAMS;
        }

        if (!r->stdin_done) {
            *rp = r;
            return GL_CONN_BODY;
        }
    }

    /* gl_fcgi.c's parser is between records in its first state (0) with
       no header byte read */
    if (c->parser.state != 0 || c->parser.hdr_n != 0 || c->gv_len != 0) {
        return GL_CONN_RECORD;
    }

    if (c->linger_id != -1) {
        return GL_CONN_LINGER;
    }

    return c->nrequests == 0 ? GL_CONN_IDLE : GL_CONN_BUSY;
}


static size_t
gl_conn_log_ctx(gl_log_ctx_t *ctx, char *buf, size_t size)
{
    (void) ctx;
    (void) buf;
    (void) size;

    return 0;
}


/*
 * One timer per connection, set for the earliest time it could expire,
 * never restarted on input: when it fires, it looks at what the
 * connection waits for and since when (last_active), and either closes
 * it or sets itself for the rest (libev's "be smart about timeouts").
 * A busy connection is looked at again after the shorter timeout.
 */
static void
gl_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    int            wait;
    double         timeout, left, shortest;
    gl_conn_t     *c;
    gl_conf_t     *conf;
    gl_request_t  *r;
    gl_log_ctx_t   ctx, *saved;

    (void) revents;

    c = w->data;
    conf = c->srv->conf;

    wait = gl_conn_waits(c, &r);
    shortest = gl_min(conf->client_timeout, conf->keepalive_timeout);

    if (wait == GL_CONN_BUSY) {
        c->last_active = ev_now(loop);
        timeout = shortest;
        left = timeout;

    } else if (wait == GL_CONN_SEND) {
        timeout = conf->client_timeout;
        left = c->last_sent + timeout - ev_now(loop);

    } else {
        timeout = (wait == GL_CONN_IDLE) ? conf->keepalive_timeout
                                         : conf->client_timeout;
        left = c->last_active + timeout - ev_now(loop);
    }

    if (left > 0.0005) {
        /*
         * what the connection waits for may change before then (input
         * starts a record), and the new wait may be shorter; but it
         * starts no earlier than now, so looking again after the
         * shortest timeout is soon enough
         */
        ev_timer_set(w, gl_min(left, shortest), 0);
        ev_timer_start(loop, w);
        return;
    }

    gl_conn_hold(c);

    if (wait == GL_CONN_IDLE) {
        gl_log_debug("conn %d: keepalive timeout", c->fd);
        gl_stat_add(&c->srv->stat->keepalive_closes, 1);

    } else {
        gl_stat_add(&c->srv->stat->client_timeouts, 1);
        ctx.handler = gl_conn_log_ctx;
        ctx.conn = c->number;
        saved = gl_log_set_ctx(&ctx);

        if (wait == GL_CONN_SEND) {
            gl_log_error_limited(GL_LOG_INFO, 0, "client timed out (%gs) "
                                 "while sending the answer (%zu bytes "
                                 "queued), closing connection %d", timeout,
                                 c->out_bytes, c->fd);

        } else if (r != NULL) {
            gl_log_error_limited(GL_LOG_INFO, 0, "client timed out (%gs) "
                                 "while reading %s of request %d, closing "
                                 "connection %d", timeout,
                                 gl_conn_wait_text[wait], r->id, c->fd);
        } else {
            gl_log_error_limited(GL_LOG_INFO, 0, "client timed out (%gs) "
                                 "while reading %s, closing connection %d",
                                 timeout, gl_conn_wait_text[wait], c->fd);
        }

        (void) gl_log_set_ctx(saved);
    }

    c->error = 1;
    gl_conn_release(c);
}


/* the idle connection that has been idle the longest; NULL: none */
static gl_conn_t *
gl_conn_find_idle(gl_srv_t *s)
{
    gl_conn_t     *c, *idle;
    gl_request_t  *r;

    idle = NULL;

    for (c = s->conns; c; c = c->next) {
        if (c->busy == 0 && gl_conn_waits(c, &r) == GL_CONN_IDLE
            && (idle == NULL || c->last_active < idle->last_active))
        {
            idle = c;
        }
    }

    return idle;
}
