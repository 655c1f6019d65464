/*
 * ngx.socket.tcp: lua-nginx-module's TCP cosocket, its API, values and
 * error strings, on the coroutine core and the worker's libev loop.
 *
 * A socket object is a Lua table (its metatable is the registry's
 * "__tcp_cosocket_mt", as upstream's, so that lua-resty-core style code
 * finds it) holding in [1] a userdata gl_tcp_t, in [2], [4] and [5] the
 * connect, send and read timeouts given (ms) and in [3] its pool's key.
 * The gl_tcp_t is owned by the task that connected it: a coroutine of
 * another task gets "bad request"; when the task ends, what is still open
 * is closed (a task cleanup).  A socket has one wait on its read side
 * (receive, receiveuntil's iterator, receiveany) and one on its write side
 * (connect, sslhandshake, send), each its own coroutine, as upstream: a
 * light thread may read while another writes.
 *
 * Reads go through a buffer of lua_socket_buffer_size bytes; what a read
 * returns is gathered in a growing buffer of its own.  The read filters
 * are upstream's: a line ("*l", CRs dropped), everything ("*a"), a count,
 * any ("receiveany"), and receiveuntil's pattern, matched as a stream by a
 * KMP automaton so that a pattern split across reads is found and the
 * bytes returned by a sized iterator are those upstream returns.
 *
 * Connection pools (setkeepalive, connect's pool options) are per Lua
 * state, so per worker and per generation of code: a table in the
 * registry maps a key ("host:port", "unix:/path" or options.pool) to a
 * gl_tcp_pool_t userdata, whose idle connections are watched (a peer that
 * closes one, or sends on it, gets it dropped) and closed at their
 * keepalive timeout, when the worker stops, when a reload retires the
 * generation, and when the state is closed.
 *
 * TLS (sslhandshake, lua/golapis/socket.lua over the gl_ffi_tcp_* functions
 * below) is OpenSSL's, non-blocking, with one client SSL_CTX per worker
 * made from the lua_ssl_* directives.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_lua.h"
#include "gl_http.h"
#include "gl_request.h"
#include "gl_lua_lib.h"
#include "gl_module.h"
#include "gl_dns.h"
#include "gl_lua_resolver.h"
#include "gl_lua_socket_tcp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>


#define GL_FFI_OK          0
#define GL_FFI_ERROR      -1
#define GL_FFI_AGAIN      -2
#define GL_FFI_DONE       -4
#define GL_FFI_NO_REQ     -100

/* the slots of a socket object (upstream's) */
enum {
    GL_TCP_CTX = 1,
    GL_TCP_CONNECT_TIMEOUT = 2,
    GL_TCP_KEY = 3,
    GL_TCP_SEND_TIMEOUT = 4,
    GL_TCP_READ_TIMEOUT = 5,
    GL_TCP_BIND = 8
};

/* why an operation failed (upstream's ft_type) */
#define GL_TCP_FT_ERROR     0x01
#define GL_TCP_FT_TIMEOUT   0x02
#define GL_TCP_FT_CLOSED    0x04
#define GL_TCP_FT_NOMEM     0x08
#define GL_TCP_FT_RESOLVER  0x10
#define GL_TCP_FT_SSL       0x20
#define GL_TCP_FT_ABORT     0x40

/* what a read gathers */
enum {
    GL_TCP_READ_LINE = 1,
    GL_TCP_READ_ALL,
    GL_TCP_READ_CHUNK,
    GL_TCP_READ_ANY,
    GL_TCP_READ_UNTIL
};

/* where a connect is */
enum {
    GL_TCP_CONN_NONE = 0,
    GL_TCP_CONN_QUEUED,         /* waits for a free slot of its pool */
    GL_TCP_CONN_RESOLVING,
    GL_TCP_CONN_CONNECTING,
    GL_TCP_CONN_HANDSHAKE
};

typedef struct gl_tcp_s       gl_tcp_t;
typedef struct gl_tcp_pool_s  gl_tcp_pool_t;
typedef struct gl_tcp_idle_s  gl_tcp_idle_t;

/* receiveuntil's pattern and where its match is */
typedef struct {
    u_char             *pat;
    size_t              len;
    int                *fail;       /* KMP: the longest proper border of
                                       pat[0 .. s) */
    int                 state;      /* bytes of pat matched; -1: found by
                                       a sized read, the next call says
                                       so */
    unsigned            inclusive:1;
} gl_tcp_pattern_t;

/* a growing buffer: what a read returns */
typedef struct {
    u_char             *data;
    size_t              len;
    size_t              cap;
} gl_tcp_acc_t;

struct gl_tcp_pool_s {
    lua_State          *L;          /* the main state it is kept in */
    gl_queue_t          idle;       /* gl_tcp_idle_t, the last used first */
    gl_queue_t          waiting;    /* queued connects (gl_tcp_t) */
    struct ev_loop     *loop;
    int                 size;
    int                 nidle;
    int                 connections;    /* connected and idle, counted */
    int                 backlog;        /* -1: connects are not queued */
    int                 closed;         /* its state goes: no new idle */
    gl_posted_t         resume;         /* a queued connect may go on */
    gl_posted_t         release;        /* it may go (after a __gc) */
    gl_stat_worker_t   *stat;           /* its worker's counters */
    char                key[1];
};

struct gl_tcp_idle_s {
    gl_queue_t          link;
    gl_tcp_pool_t      *pool;
    int                 fd;
    SSL                *ssl;
    int                 reused;
    ev_io               io;
    ev_timer            timer;
};

struct gl_tcp_s {
    int                 fd;
    gl_task_t          *task;           /* the owner, while connected */
    uint64_t            serial;         /* its task's */
    struct ev_loop     *loop;
    gl_vm_t            *vm;

    int                 connect_timeout;    /* ms */
    int                 send_timeout;
    int                 read_timeout;

    ev_io               rev;
    ev_io               wev;
    ev_timer            rtimer;
    ev_timer            wtimer;
    int                 rwant;          /* EV_READ / EV_WRITE the read side
                                           waits for (TLS may want both) */
    int                 wwant;

    gl_co_t            *rco;            /* waits to read */
    gl_co_t            *wco;            /* waits to connect or write */

    unsigned            used:1;         /* was connected once */
    unsigned            read_closed:1;
    unsigned            write_closed:1;
    unsigned            eof:1;
    unsigned            conn_state:3;   /* GL_TCP_CONN_* */
    unsigned            body:1;         /* ngx.req.socket() */
    unsigned            ssl_verify:1;
    unsigned            ssl_reuse:1;    /* return the session */
    unsigned            nodelay:1;
    int                 ft;             /* GL_TCP_FT_* of the last failure */
    int                 err;            /* its errno */
    const char         *ssl_err;        /* sslhandshake's message */
    int                 ssl_code;       /* its verify result */
    SSL_SESSION        *ssl_session;    /* for the FFI side to take */
    char               *ssl_name;

    /* the read side */
    u_char             *buf;
    u_char             *pos;
    u_char             *last;
    size_t              bufsize;
    int                 rop;            /* GL_TCP_READ_* */
    size_t              rest;
    size_t              length;
    gl_tcp_pattern_t   *cp;
    gl_tcp_acc_t        acc;

    /* the write side */
    u_char             *wdata;          /* malloc'd */
    size_t              wlen;
    size_t              wsent;

    /* connecting */
    gl_tcp_pool_t      *pool;
    int                 reused;
    gl_dns_query_t     *dnsq;
    char               *host;           /* for queued connects and names */
    size_t              hostlen;
    int                 port;
    gl_socket_addr_t    addr;
    gl_socket_addr_t    local;          /* bind()'s, if socklen */

    SSL                *ssl;

    /* ngx.req.socket(): the request whose body it reads, and where */
    gl_http_t          *http;
    size_t              body_off;

    gl_task_cleanup_t   cleanup;
};

/* per worker */
typedef struct {
    SSL_CTX            *ssl_ctx;
    unsigned            ssl_conf;       /* the serial of the conf ssl_ctx
                                           was made of */
    unsigned            stopping:1;
} gl_tcp_worker_t;

/* the lua_ssl_* directives */
typedef struct {
    char               *trusted_certificate;
    char               *certificate;        /* the default client one */
    char               *certificate_key;
    char               *crl;
    int                 verify_depth;
    char               *ciphers;
    int                 protocols;      /* GL_TCP_SSL_* bits; 0: unset */
} gl_tcp_conf_t;

#define GL_TCP_SSL_SSLv2    0x01
#define GL_TCP_SSL_SSLv3    0x02
#define GL_TCP_SSL_TLSv1    0x04
#define GL_TCP_SSL_TLSv1_1  0x08
#define GL_TCP_SSL_TLSv1_2  0x10
#define GL_TCP_SSL_TLSv1_3  0x20

extern gl_module_t  gl_lua_socket_tcp_module;

static _Thread_local int  gl_tcp_in_gc;

static char  gl_tcp_pools_key;
static char  gl_tcp_udata_key;
static char  gl_tcp_pool_mt_key;
static char  gl_tcp_pattern_mt_key;
static char  gl_tcp_req_mt_key;

#define GL_TCP_MT  "__tcp_cosocket_mt"

/* connected: a socket, or a request body still there */
#define gl_tcp_open(u)  ((u)->fd != -1 || ((u)->body && (u)->http != NULL))

static void gl_tcp_finalize(gl_tcp_t *u);
static void gl_tcp_read_close(gl_tcp_t *u);
static void gl_tcp_write_close(gl_tcp_t *u);
static int gl_tcp_connect_go(gl_tcp_t *u);
static int gl_tcp_connect_addr(gl_tcp_t *u);
static void gl_tcp_conn_wake(gl_tcp_t *u);
static void gl_tcp_read_run(gl_tcp_t *u);
static void gl_tcp_write_run(gl_tcp_t *u);
static void gl_tcp_hs_run(gl_tcp_t *u);
static void gl_tcp_arm(gl_tcp_t *u);
static void gl_tcp_pool_resume(gl_tcp_pool_t *pool);
static int gl_socket_parse_ip(const char *a, gl_socket_addr_t *addr);
static void gl_tcp_pool_release(gl_tcp_pool_t *pool);
static void gl_tcp_idle_close(gl_tcp_idle_t *it);
static int gl_tcp_body_fill(gl_tcp_t *u);

static void gl_tcp_wait_cancel(gl_co_t *co);

static const gl_wait_ops_t  gl_tcp_read_ops = {
    "ngx.socket receive", gl_tcp_wait_cancel, NULL
};
static const gl_wait_ops_t  gl_tcp_write_ops = {
    "ngx.socket send", gl_tcp_wait_cancel, NULL
};
static const gl_wait_ops_t  gl_tcp_conn_ops = {
    "ngx.socket connect", gl_tcp_wait_cancel, NULL
};


static gl_tcp_worker_t *
gl_tcp_worker(void)
{
    gl_tcp_worker_t  **w;

    w = (gl_tcp_worker_t **) gl_vm_module_data(gl_vm_self,
                                               &gl_lua_socket_tcp_module);
    return *w;
}


static gl_tcp_conf_t *
gl_tcp_conf(gl_conf_t *conf)
{
    return gl_conf_module(conf, &gl_lua_socket_tcp_module);
}


static int
gl_tcp_log_errors(void)
{
    return gl_vm_self != NULL && gl_vm_self->conf->socket_log_errors;
}


/* errors */

void
gl_socket_push_errno(lua_State *L, int err)
{
    char        buf[128];
    const char *s;
    size_t      i, n;

    s = strerror(err);
    n = strlen(s);
    if (n >= sizeof(buf)) {
        n = sizeof(buf) - 1;
    }

    for (i = 0; i < n; i++) {
        buf[i] = (char) tolower((u_char) s[i]);
    }

    lua_pushlstring(L, buf, n);
}


/* pushes nil and the message of ft (upstream's prepare_error_retvals);
   returns 2 */
static int
gl_tcp_push_error(gl_tcp_t *u, lua_State *L, int ft)
{
    lua_pushnil(L);

    if (ft & GL_TCP_FT_TIMEOUT) {
        lua_pushliteral(L, "timeout");

    } else if (ft & GL_TCP_FT_CLOSED) {
        lua_pushliteral(L, "closed");

    } else if (ft & GL_TCP_FT_NOMEM) {
        lua_pushliteral(L, "no memory");

    } else if (ft & GL_TCP_FT_ABORT) {
        lua_pushliteral(L, "client aborted");

    } else if (u->err) {
        gl_socket_push_errno(L, u->err);

    } else {
        lua_pushliteral(L, "error");
    }

    return 2;
}


/* addresses */

void
gl_socket_addr_text(const gl_socket_addr_t *addr, char *buf, size_t size)
{
    char                       ip[INET6_ADDRSTRLEN];
    const struct sockaddr_in  *sin;
    const struct sockaddr_in6 *sin6;

    switch (addr->sa.ss_family) {

    case AF_UNIX:
        snprintf(buf, size, "unix:%s",
                 ((const struct sockaddr_un *) &addr->sa)->sun_path);
        break;

    case AF_INET6:
        sin6 = (const struct sockaddr_in6 *) &addr->sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%d", ip, ntohs(sin6->sin6_port));
        break;

    default:
        sin = (const struct sockaddr_in *) &addr->sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%d", ip, ntohs(sin->sin_port));
        break;
    }
}


static void
gl_socket_set_port(gl_socket_addr_t *addr, int port)
{
    if (addr->sa.ss_family == AF_INET6) {
        ((struct sockaddr_in6 *) &addr->sa)->sin6_port = htons(port);

    } else if (addr->sa.ss_family == AF_INET) {
        ((struct sockaddr_in *) &addr->sa)->sin_port = htons(port);
    }
}


int
gl_socket_pick(const char *host, size_t len, int port,
    const gl_dns_result_t *res, gl_socket_addr_t *addr, char *err,
    size_t size)
{
    int  i, n4;

    if (res->naddrs <= 0) {
        snprintf(err, size, "%.*s could not be resolved (%d: %s)",
                 (int) len, host, res->code,
                 res->err ? res->err : "Host not found");
        return GL_ERROR;
    }

    for (n4 = 0; n4 < res->naddrs; n4++) {
        if (res->addrs[n4].sa.ss_family != AF_INET) {
            break;
        }
    }

    if (n4 > 0) {
        i = n4 == 1 ? 0 : (int) (random() % n4);

    } else {
        i = res->naddrs == 1 ? 0 : (int) (random() % res->naddrs);
    }

    memcpy(&addr->sa, &res->addrs[i].sa, res->addrs[i].socklen);
    addr->socklen = res->addrs[i].socklen;
    gl_socket_set_port(addr, port);

    return GL_OK;
}


int
gl_socket_resolve(const char *host, size_t len, int port,
    gl_socket_addr_t *addr, gl_dns_handler_pt h, void *data,
    gl_dns_query_t **q, char *err, size_t size)
{
    int                  rc;
    gl_dns_t            *dns;
    gl_dns_result_t      res;
    struct sockaddr_un  *sun;

    memset(addr, 0, sizeof(gl_socket_addr_t));

    if (len == 0) {
        snprintf(err, size, "failed to parse host name \"\": no host");
        return GL_ERROR;
    }

    if (len >= 5 && strncasecmp(host, "unix:", 5) == 0) {
        sun = (struct sockaddr_un *) &addr->sa;

        if (len - 5 >= sizeof(sun->sun_path) || len == 5) {
            snprintf(err, size, "failed to parse host name \"%.*s\": %s",
                     (int) len, host, len == 5 ? "no path in the unix "
                     "domain socket" : "too long path in the unix domain "
                     "socket");
            return GL_ERROR;
        }

        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, host + 5, len - 5);
        addr->socklen = sizeof(struct sockaddr_un);

        return GL_OK;
    }

    dns = gl_resolver_worker(gl_vm_self);
    if (dns == NULL) {
        snprintf(err, size, "no resolver defined to resolve \"%.*s\"",
                 (int) len, host);
        return GL_ERROR;
    }

    rc = gl_dns_resolve(dns, host, len, &res, h, data, q);

    if (rc == GL_AGAIN) {
        return GL_AGAIN;
    }

    if (rc == GL_ERROR) {
        snprintf(err, size, "no memory");
        return GL_ERROR;
    }

    return gl_socket_pick(host, len, port, &res, addr, err, size);
}


/* the socket object */

static gl_tcp_t *
gl_tcp_get(lua_State *L, int idx)
{
    gl_tcp_t  *u;

    lua_rawgeti(L, idx, GL_TCP_CTX);
    u = lua_touserdata(L, -1);
    lua_pop(L, 1);

    return u;
}


/* the owner check: a coroutine of another task may not use it */
static void
gl_tcp_check_owner(lua_State *L, gl_tcp_t *u)
{
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL) {
        luaL_error(L, "no request found");
        return;
    }

    if (u->task != NULL && (u->task != t || u->serial != t->serial)) {
        luaL_error(L, "bad request");
    }
}


/* what an operation may not start during (upstream's check_busy):
   pushes nil and the message and returns 2, or returns 0 */
#define GL_TCP_BUSY_CONNECT  0x01
#define GL_TCP_BUSY_READ     0x02
#define GL_TCP_BUSY_WRITE    0x04
#define GL_TCP_BUSY_ALL      0x07

static int
gl_tcp_busy(lua_State *L, gl_tcp_t *u, int ops)
{
    const char  *msg;

    if ((ops & GL_TCP_BUSY_CONNECT) && u->conn_state != GL_TCP_CONN_NONE) {
        msg = "socket busy connecting";

    } else if ((ops & GL_TCP_BUSY_READ) && u->rco != NULL) {
        msg = "socket busy reading";

    } else if ((ops & GL_TCP_BUSY_WRITE) && u->wco != NULL) {
        msg = "socket busy writing";

    } else {
        return 0;
    }

    lua_pushnil(L);
    lua_pushstring(L, msg);

    return 2;
}


/* the coroutine that calls, which must be one the core runs */
static gl_co_t *
gl_tcp_co(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_self(L);
    if (co == NULL) {
        luaL_error(L, "cosocket used in a coroutine that golapis does not "
                   "run");
    }

    return co;
}


static void
gl_tcp_task_cleanup(gl_task_cleanup_t *c)
{
    gl_tcp_t  *u;

    u = (gl_tcp_t *) ((u_char *) c - offsetof(gl_tcp_t, cleanup));
    gl_tcp_finalize(u);
}


static int
gl_tcp_udata_gc(lua_State *L)
{
    gl_tcp_t  *u;

    u = lua_touserdata(L, 1);
    if (u != NULL) {
        gl_tcp_in_gc = 1;
        gl_tcp_finalize(u);
        gl_tcp_in_gc = 0;
        free(u->host);
        u->host = NULL;
        free(u->ssl_name);
        u->ssl_name = NULL;
    }

    return 0;
}


static void gl_tcp_rev_cb(struct ev_loop *loop, ev_io *w, int revents);
static void gl_tcp_wev_cb(struct ev_loop *loop, ev_io *w, int revents);
static void gl_tcp_rtimer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void gl_tcp_wtimer_cb(struct ev_loop *loop, ev_timer *w, int revents);


static void
gl_tcp_init(gl_tcp_t *u)
{
    memset(u, 0, sizeof(gl_tcp_t));

    u->fd = -1;
    u->vm = gl_vm_self;
    u->loop = gl_vm_self->loop;

    ev_init(&u->rev, gl_tcp_rev_cb);
    ev_init(&u->wev, gl_tcp_wev_cb);
    ev_init(&u->rtimer, gl_tcp_rtimer_cb);
    ev_init(&u->wtimer, gl_tcp_wtimer_cb);
    u->cleanup.handler = gl_tcp_task_cleanup;
    u->rev.data = u;
    u->wev.data = u;
    u->rtimer.data = u;
    u->wtimer.data = u;
}


/* closing */

/* the TLS connection goes without a close_notify, as nginx's cosockets
   (no_send_shutdown): marked shut down first, so that OpenSSL keeps its
   session resumable */
static void
gl_tcp_ssl_free(SSL *ssl)
{
    SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN | SSL_SENT_SHUTDOWN);
    SSL_free(ssl);
}


static void
gl_tcp_acc_free(gl_tcp_acc_t *a)
{
    free(a->data);
    a->data = NULL;
    a->len = 0;
    a->cap = 0;
}


static int
gl_tcp_acc_add(gl_tcp_acc_t *a, const u_char *p, size_t n)
{
    size_t   cap;
    u_char  *d;

    if (n == 0) {
        return GL_OK;
    }

    if (a->len + n > a->cap) {
        cap = a->cap ? a->cap * 2 : 256;
        while (cap < a->len + n) {
            cap *= 2;
        }

        d = realloc(a->data, cap);
        if (d == NULL) {
            return GL_ERROR;
        }

        a->data = d;
        a->cap = cap;
    }

    memcpy(a->data + a->len, p, n);
    a->len += n;

    return GL_OK;
}


static void
gl_tcp_read_close(gl_tcp_t *u)
{
    if (u->read_closed) {
        return;
    }

    u->read_closed = 1;
    u->rwant = 0;

    if (ev_is_active(&u->rtimer)) {
        ev_timer_stop(u->loop, &u->rtimer);
    }

    free(u->buf);
    u->buf = NULL;
    u->pos = NULL;
    u->last = NULL;
    gl_tcp_acc_free(&u->acc);

    gl_tcp_arm(u);
}


static void
gl_tcp_write_close(gl_tcp_t *u)
{
    if (u->write_closed) {
        return;
    }

    u->write_closed = 1;
    u->wwant = 0;

    if (ev_is_active(&u->wtimer)) {
        ev_timer_stop(u->loop, &u->wtimer);
    }

    free(u->wdata);
    u->wdata = NULL;
    u->wlen = 0;
    u->wsent = 0;

    gl_tcp_arm(u);
}


/* the connection goes (upstream's finalize): what waits on it is not
   woken (the caller does that, or the wait is being cancelled) */
static void
gl_tcp_finalize(gl_tcp_t *u)
{
    gl_tcp_pool_t  *pool;

    gl_task_cleanup_del(&u->cleanup);

    if (u->loop == NULL) {
        return;
    }

    gl_tcp_read_close(u);
    gl_tcp_write_close(u);

    if (ev_is_active(&u->rev)) {
        ev_io_stop(u->loop, &u->rev);
    }

    if (ev_is_active(&u->wev)) {
        ev_io_stop(u->loop, &u->wev);
    }

    if (u->dnsq != NULL) {
        gl_dns_cancel(u->dnsq);
        u->dnsq = NULL;
    }

    u->conn_state = GL_TCP_CONN_NONE;

    if (u->ssl != NULL) {
        gl_tcp_ssl_free(u->ssl);
        u->ssl = NULL;
    }

    if (u->ssl_session != NULL) {
        SSL_SESSION_free(u->ssl_session);
        u->ssl_session = NULL;
    }

    if (u->fd != -1) {
        close(u->fd);
        u->fd = -1;
    }

    pool = u->pool;
    u->pool = NULL;
    u->task = NULL;
    u->rco = NULL;
    u->wco = NULL;

    if (u->http != NULL) {
        u->http->stdin_handler = NULL;
        u->http->stdin_data = NULL;
        u->http = NULL;
    }

    if (pool != NULL) {
        pool->connections--;
        gl_tcp_pool_resume(pool);
        gl_tcp_pool_release(pool);
    }
}


/* a coroutine waiting on the socket is given up (its task ends, its
   thread is killed): the socket goes, as upstream's coctx cleanup */
static void
gl_tcp_wait_cancel(gl_co_t *co)
{
    gl_tcp_t  *u;

    u = co->wait.data;
    if (u == NULL) {
        return;
    }

    if (u->rco == co) {
        u->rco = NULL;
    }

    if (u->wco == co) {
        u->wco = NULL;
    }

    gl_tcp_finalize(u);
}


/* io */

/* the watchers follow what the waiting sides want */
static void
gl_tcp_arm(gl_tcp_t *u)
{
    int  want;

    if (u->loop == NULL) {
        return;
    }

    want = 0;

    if (u->rco != NULL || u->body) {
        want |= u->rwant;
    }

    if (u->wco != NULL) {
        want |= u->wwant;
    }

    if (u->fd == -1 || u->body) {
        want = 0;
    }

    if (want & EV_READ) {
        if (!ev_is_active(&u->rev)) {
            ev_io_set(&u->rev, u->fd, EV_READ);
            ev_io_start(u->loop, &u->rev);
        }

    } else if (ev_is_active(&u->rev)) {
        ev_io_stop(u->loop, &u->rev);
    }

    if (want & EV_WRITE) {
        if (!ev_is_active(&u->wev)) {
            ev_io_set(&u->wev, u->fd, EV_WRITE);
            ev_io_start(u->loop, &u->wev);
        }

    } else if (ev_is_active(&u->wev)) {
        ev_io_stop(u->loop, &u->wev);
    }
}


static void
gl_tcp_run_side(gl_tcp_t *u, int ev)
{
    if (u->rco != NULL && (u->rwant & ev)) {
        gl_tcp_read_run(u);
    }

    if (u->wco != NULL && (u->wwant & ev)) {
        switch (u->conn_state) {
        case GL_TCP_CONN_CONNECTING:
            gl_tcp_conn_wake(u);
            break;
        case GL_TCP_CONN_HANDSHAKE:
            gl_tcp_hs_run(u);
            break;
        case GL_TCP_CONN_NONE:
            gl_tcp_write_run(u);
            break;
        default:
            break;
        }
    }
}


static void
gl_tcp_rev_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;

    gl_tcp_run_side(w->data, EV_READ);
}


static void
gl_tcp_wev_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;

    gl_tcp_run_side(w->data, EV_WRITE);
}


static void
gl_tcp_timer_start(gl_tcp_t *u, ev_timer *t, int ms)
{
    if (ev_is_active(t)) {
        ev_timer_stop(u->loop, t);
    }

    ev_timer_set(t, ms / 1000.0, 0);
    ev_timer_start(u->loop, t);
}


/* reading */

static ssize_t
gl_tcp_recv(gl_tcp_t *u, u_char *p, size_t size)
{
    int      n, e;

    if (u->ssl == NULL) {
        for ( ;; ) {
            n = recv(u->fd, p, size, 0);
            if (n >= 0) {
                return n;
            }

            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                u->rwant = EV_READ;
                return GL_AGAIN;
            }

            u->err = errno;
            return GL_ERROR;
        }
    }

    ERR_clear_error();
    n = SSL_read(u->ssl, p, (int) size);
    if (n > 0) {
        return n;
    }

    e = SSL_get_error(u->ssl, n);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        u->rwant = EV_READ;
        return GL_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        u->rwant = EV_WRITE;
        return GL_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || ERR_peek_error() == 0) {
            if (errno != 0 && errno != EAGAIN) {
                u->err = errno;
                return GL_ERROR;
            }
            return 0;
        }
        /* fall through */
    default:
        u->err = 0;
        ERR_clear_error();
        return GL_ERROR;
    }
}


/*
 * receiveuntil's automaton on one byte boundary: the bytes known not to
 * start a match go to acc, as upstream's read_until returns them (with a
 * size, a read ends once that many went, or a bit after: a flushed partial
 * match goes whole).  GL_OK: the read is done; GL_AGAIN: more input.
 */
static int
gl_tcp_until(gl_tcp_t *u)
{
    int                b, state, pending;
    u_char             c;
    gl_tcp_pattern_t  *cp;

    cp = u->cp;
    state = cp->state;

    while (u->pos < u->last) {
        c = *u->pos;

        if (c == cp->pat[state]) {
            u->pos++;
            state++;

            if ((size_t) state == cp->len) {
                cp->state = u->length ? -1 : 0;

                if (cp->inclusive
                    && gl_tcp_acc_add(&u->acc, cp->pat, cp->len) != GL_OK)
                {
                    return GL_ERROR;
                }

                return GL_OK;
            }

            continue;
        }

        if (state == 0) {
            if (gl_tcp_acc_add(&u->acc, &c, 1) != GL_OK) {
                return GL_ERROR;
            }

            u->pos++;

            if (u->length && --u->rest == 0) {
                cp->state = 0;
                return GL_OK;
            }

            continue;
        }

        /* a mismatch after state bytes: the longest border of pat[0 ..
           state) that c extends, if any (upstream's recovering edges) */
        b = 0;

        if (state >= 2) {
            for (b = cp->fail[state]; b > 0; b = cp->fail[b]) {
                if (cp->pat[b] == c) {
                    break;
                }
            }
        }

        if (b == 0) {
            if (gl_tcp_acc_add(&u->acc, cp->pat, state) != GL_OK) {
                return GL_ERROR;
            }

            if (u->length) {
                if (u->rest <= (size_t) state) {
                    u->rest = 0;
                    cp->state = 0;
                    return GL_OK;
                }

                u->rest -= state;
            }

            state = 0;
            continue;
        }

        pending = state + 1 - (b + 1);

        if (gl_tcp_acc_add(&u->acc, cp->pat, pending) != GL_OK) {
            return GL_ERROR;
        }

        u->pos++;
        state = b + 1;

        if (u->length) {
            if (u->rest <= (size_t) pending) {
                u->rest = 0;
                cp->state = state;
                return GL_OK;
            }

            u->rest -= pending;
        }
    }

    cp->state = state;

    return GL_AGAIN;
}


/* the read's filter over the buffered bytes: GL_OK done, GL_AGAIN more,
   GL_ERROR ft set */
static int
gl_tcp_filter(gl_tcp_t *u)
{
    int      rc;
    u_char  *p, c;
    size_t   n;

    switch (u->rop) {

    case GL_TCP_READ_LINE:
        for (p = u->pos; p < u->last; p++) {
            c = *p;

            if (c == '\n') {
                if (gl_tcp_acc_add(&u->acc, u->pos, p - u->pos) != GL_OK) {
                    goto nomem;
                }
                u->pos = p + 1;
                return GL_OK;
            }

            if (c == '\r') {
                if (gl_tcp_acc_add(&u->acc, u->pos, p - u->pos) != GL_OK) {
                    goto nomem;
                }
                u->pos = p + 1;
            }
        }

        if (gl_tcp_acc_add(&u->acc, u->pos, p - u->pos) != GL_OK) {
            goto nomem;
        }
        u->pos = p;
        break;

    case GL_TCP_READ_ALL:
        if (gl_tcp_acc_add(&u->acc, u->pos, u->last - u->pos) != GL_OK) {
            goto nomem;
        }
        u->pos = u->last;

        if (u->eof) {
            return GL_OK;
        }

        return GL_AGAIN;

    case GL_TCP_READ_CHUNK:
        n = gl_min((size_t) (u->last - u->pos), u->rest);
        if (gl_tcp_acc_add(&u->acc, u->pos, n) != GL_OK) {
            goto nomem;
        }
        u->pos += n;
        u->rest -= n;

        if (u->rest == 0) {
            return GL_OK;
        }
        break;

    case GL_TCP_READ_ANY:
        n = gl_min((size_t) (u->last - u->pos), u->rest);
        if (n > 0) {
            if (gl_tcp_acc_add(&u->acc, u->pos, n) != GL_OK) {
                goto nomem;
            }
            u->pos += n;
            return GL_OK;
        }
        break;

    case GL_TCP_READ_UNTIL:
        rc = gl_tcp_until(u);
        if (rc == GL_ERROR) {
            goto nomem;
        }
        if (rc == GL_OK) {
            return GL_OK;
        }
        break;
    }

    if (u->eof) {
        u->ft |= GL_TCP_FT_CLOSED;
        return GL_ERROR;
    }

    return GL_AGAIN;

nomem:

    u->ft |= GL_TCP_FT_NOMEM;
    return GL_ERROR;
}


/* reads until the filter is done: GL_OK, GL_AGAIN (waits armed), GL_ERROR
   (ft set) */
static int
gl_tcp_read(gl_tcp_t *u)
{
    int      rc;
    ssize_t  n;

    if (u->buf == NULL) {
        u->bufsize = u->vm->conf->socket_buffer_size;
        u->buf = malloc(u->bufsize);
        if (u->buf == NULL) {
            u->ft |= GL_TCP_FT_NOMEM;
            return GL_ERROR;
        }
        u->pos = u->buf;
        u->last = u->buf;
    }

    for ( ;; ) {
        if (u->pos < u->last || u->eof) {
            rc = gl_tcp_filter(u);
            if (rc != GL_AGAIN) {
                return rc;
            }
        }

        /* everything buffered was taken */
        u->pos = u->buf;
        u->last = u->buf;

        if (u->body) {
            n = gl_tcp_body_fill(u);

        } else {
            n = gl_tcp_recv(u, u->buf, u->bufsize);
        }

        if (n == GL_AGAIN) {
            return GL_AGAIN;
        }

        if (n == GL_ERROR) {
            if (!(u->ft & (GL_TCP_FT_ABORT | GL_TCP_FT_CLOSED))) {
                u->ft |= GL_TCP_FT_ERROR;
            }
            return GL_ERROR;
        }

        if (n == 0) {
            u->eof = 1;
            continue;
        }

        u->last = u->buf + n;
    }
}


/* pushes what a read returns: the data, or nil, the error and the
   partial data (the connection's read side closed but for a timeout);
   returns how many */
static int
gl_tcp_read_result(gl_tcp_t *u, lua_State *L, int rc)
{
    int  ft;

    if (rc == GL_OK) {
        lua_pushlstring(L, (char *) u->acc.data, u->acc.len);
        u->acc.len = 0;
        return 1;
    }

    ft = u->ft;
    u->ft = 0;

    gl_tcp_push_error(u, L, ft);
    lua_pushlstring(L, (char *) u->acc.data, u->acc.len);
    u->acc.len = 0;

    if (!(ft & GL_TCP_FT_TIMEOUT)) {
        gl_tcp_read_close(u);
    }

    return 3;
}


static void
gl_tcp_read_wake(gl_tcp_t *u, int rc)
{
    int       n;
    gl_co_t  *co;

    co = u->rco;
    u->rco = NULL;
    u->rwant = 0;

    if (ev_is_active(&u->rtimer)) {
        ev_timer_stop(u->loop, &u->rtimer);
    }

    gl_tcp_arm(u);

    n = gl_tcp_read_result(u, co->L, rc);
    gl_co_wake(co, n);
}


static void
gl_tcp_read_run(gl_tcp_t *u)
{
    int  rc;

    rc = gl_tcp_read(u);

    if (rc == GL_AGAIN) {
        gl_tcp_timer_start(u, &u->rtimer, u->read_timeout);
        gl_tcp_arm(u);
        return;
    }

    gl_tcp_read_wake(u, rc);
}


static void
gl_tcp_rtimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gl_tcp_t  *u;

    (void) loop;
    (void) revents;

    u = w->data;

    if (u->rco == NULL) {
        return;
    }

    if (gl_tcp_log_errors()) {
        gl_log_error(GL_LOG_ERR, 0, "lua tcp socket read timed out");
    }

    u->ft |= GL_TCP_FT_TIMEOUT;
    gl_tcp_read_wake(u, GL_ERROR);
}


/* the start of every read: the checks, then a read now or a wait */
static int
gl_tcp_read_start(lua_State *L, gl_tcp_t *u)
{
    int       rc;
    gl_co_t  *co;

    co = gl_tcp_co(L);

    u->ft = 0;
    u->acc.len = 0;

    rc = gl_tcp_read(u);

    if (rc != GL_AGAIN) {
        return gl_tcp_read_result(u, L, rc);
    }

    u->rco = co;
    gl_co_wait(co, &gl_tcp_read_ops, -1);
    co->wait.data = u;

    gl_tcp_timer_start(u, &u->rtimer, u->read_timeout);

    gl_tcp_arm(u);

    return gl_co_yield(co);
}


/* what receive, receiveany and the iterator check first; returns the
   socket or NULL with nil, "closed" pushed */
static gl_tcp_t *
gl_tcp_check_read(lua_State *L, int idx)
{
    gl_tcp_t  *u;

    u = gl_tcp_get(L, idx);

    if (u == NULL || !gl_tcp_open(u) || u->read_closed) {
        if ((u == NULL || !u->body) && gl_tcp_log_errors()) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to receive data on a "
                         "closed socket: u:%p, c:%p, ft:%d eof:%d",
                         (void *) u, NULL, u ? u->ft : 0,
                         u ? (int) u->eof : 0);
        }

        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return NULL;
    }

    gl_tcp_check_owner(L, u);

    if (gl_tcp_busy(L, u, GL_TCP_BUSY_CONNECT | GL_TCP_BUSY_READ)) {
        return NULL;
    }

    return u;
}


static int
gl_tcp_receive(lua_State *L)
{
    int           n;
    size_t        len;
    const char   *pat;
    lua_Integer   bytes;
    gl_tcp_t     *u;

    n = lua_gettop(L);
    if (n != 1 && n != 2) {
        return luaL_error(L, "expecting 1 or 2 arguments (including the "
                          "object), but got %d", n);
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_check_read(L, 1);
    if (u == NULL) {
        return 2;
    }

    if (n == 1) {
        u->rop = GL_TCP_READ_LINE;

    } else if (lua_isnumber(L, 2)) {
        bytes = lua_tointeger(L, 2);
        if (bytes < 0) {
            return luaL_argerror(L, 2, "bad pattern argument");
        }

        if (bytes == 0) {
            lua_pushliteral(L, "");
            return 1;
        }

        u->rop = GL_TCP_READ_CHUNK;
        u->length = (size_t) bytes;
        u->rest = u->length;

    } else if (lua_type(L, 2) == LUA_TSTRING) {
        pat = lua_tolstring(L, 2, &len);

        if (len != 2 || pat[0] != '*') {
            return luaL_argerror(L, 2, lua_pushfstring(L, "bad pattern "
                                 "argument: %s", pat));
        }

        if (pat[1] == 'l') {
            u->rop = GL_TCP_READ_LINE;

        } else if (pat[1] == 'a') {
            u->rop = GL_TCP_READ_ALL;

        } else {
            return luaL_argerror(L, 2, "bad pattern argument");
        }

    } else {
        return luaL_argerror(L, 2, "bad pattern argument");
    }

    return gl_tcp_read_start(L, u);
}


static int
gl_tcp_receiveany(lua_State *L)
{
    int           n;
    lua_Integer   bytes;
    gl_tcp_t     *u;

    n = lua_gettop(L);
    if (n != 2) {
        return luaL_error(L, "expecting 2 arguments (including the "
                          "object), but got %d", n);
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_check_read(L, 1);
    if (u == NULL) {
        return 2;
    }

    if (!lua_isnumber(L, 2)) {
        return luaL_argerror(L, 2, "bad max argument");
    }

    bytes = lua_tointeger(L, 2);
    if (bytes <= 0) {
        return luaL_argerror(L, 2, "bad max argument");
    }

    u->rop = GL_TCP_READ_ANY;
    u->rest = (size_t) bytes;
    u->length = u->rest;

    return gl_tcp_read_start(L, u);
}


/* receiveuntil */

static int
gl_tcp_pattern_gc(lua_State *L)
{
    gl_tcp_pattern_t  *cp;

    cp = lua_touserdata(L, 1);
    if (cp != NULL) {
        free(cp->fail);
        cp->fail = NULL;
    }

    return 0;
}


static int
gl_tcp_until_iter(lua_State *L)
{
    int                 n;
    lua_Integer         bytes;
    gl_tcp_t           *u;
    gl_tcp_pattern_t   *cp;

    n = lua_gettop(L);
    if (n > 1) {
        return luaL_error(L, "expecting 0 or 1 arguments, but seen %d", n);
    }

    bytes = 0;

    if (n == 1) {
        bytes = luaL_checkinteger(L, 1);
        if (bytes < 0) {
            bytes = 0;
        }
    }

    u = gl_tcp_get(L, lua_upvalueindex(1));

    if (u == NULL || !gl_tcp_open(u) || u->read_closed) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    u = gl_tcp_check_read(L, lua_upvalueindex(1));
    if (u == NULL) {
        return 2;
    }

    cp = lua_touserdata(L, lua_upvalueindex(3));

    if (cp->state == -1) {
        cp->state = 0;
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushnil(L);
        return 3;
    }

    cp->pat = (u_char *) lua_tolstring(L, lua_upvalueindex(2), &cp->len);

    u->rop = GL_TCP_READ_UNTIL;
    u->cp = cp;
    u->length = (size_t) bytes;
    u->rest = u->length;

    /* the closure (and so the pattern) stays on the caller's stack while
       the read waits */
    return gl_tcp_read_start(L, u);
}


static int
gl_tcp_receiveuntil(lua_State *L)
{
    int                 n, inclusive, *fail, k;
    size_t              len, i;
    const char         *pat;
    gl_tcp_pattern_t   *cp;

    n = lua_gettop(L);
    if (n != 2 && n != 3) {
        return luaL_error(L, "expecting 2 or 3 arguments (including the "
                          "object), but got %d", n);
    }

    inclusive = 0;

    if (n == 3) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "inclusive");

        switch (lua_type(L, -1)) {
        case LUA_TNIL:
            break;
        case LUA_TBOOLEAN:
            inclusive = lua_toboolean(L, -1);
            break;
        default:
            return luaL_error(L, "bad \"inclusive\" option value type: %s",
                              luaL_typename(L, -1));
        }

        lua_pop(L, 2);
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    luaL_checktype(L, 1, LUA_TTABLE);
    pat = luaL_checklstring(L, 2, &len);

    if (len == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "pattern is empty");
        return 2;
    }

    cp = lua_newuserdata(L, sizeof(gl_tcp_pattern_t));
    memset(cp, 0, sizeof(gl_tcp_pattern_t));
    cp->inclusive = inclusive;

    lua_pushlightuserdata(L, &gl_tcp_pattern_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);

    /* KMP's failure function: fail[s], the longest proper border of the
       first s bytes */
    fail = malloc(sizeof(int) * (len + 1));
    if (fail == NULL) {
        return luaL_error(L, "no memory");
    }

    cp->fail = fail;
    fail[0] = 0;
    if (len >= 1) {
        fail[1] = 0;
    }

    k = 0;
    for (i = 1; i < len; i++) {
        while (k > 0 && pat[i] != pat[k]) {
            k = fail[k];
        }
        if (pat[i] == pat[k]) {
            k++;
        }
        fail[i + 1] = k;
    }

    /* upvalues: the socket, the pattern, its state */
    lua_pushcclosure(L, gl_tcp_until_iter, 3);

    return 1;
}


/* writing */

static ssize_t
gl_tcp_send_some(gl_tcp_t *u, const u_char *p, size_t size)
{
    int      e;
    ssize_t  n;

    if (u->ssl == NULL) {
        for ( ;; ) {
            n = send(u->fd, p, size, MSG_NOSIGNAL);
            if (n >= 0) {
                return n;
            }

            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                u->wwant = EV_WRITE;
                return GL_AGAIN;
            }

            u->err = errno;
            return GL_ERROR;
        }
    }

    ERR_clear_error();
    n = SSL_write(u->ssl, p, (int) gl_min(size, (size_t) INT_MAX));
    if (n > 0) {
        return n;
    }

    e = SSL_get_error(u->ssl, (int) n);

    switch (e) {
    case SSL_ERROR_WANT_WRITE:
        u->wwant = EV_WRITE;
        return GL_AGAIN;
    case SSL_ERROR_WANT_READ:
        u->wwant = EV_READ;
        return GL_AGAIN;
    default:
        u->err = (e == SSL_ERROR_SYSCALL) ? errno : 0;
        ERR_clear_error();
        return GL_ERROR;
    }
}


/* sends what is left: GL_OK, GL_AGAIN, GL_ERROR (ft set) */
static int
gl_tcp_send_now(gl_tcp_t *u)
{
    ssize_t  n;

    while (u->wsent < u->wlen) {
        n = gl_tcp_send_some(u, u->wdata + u->wsent, u->wlen - u->wsent);

        if (n == GL_AGAIN) {
            return GL_AGAIN;
        }

        if (n < 0) {
            u->ft |= GL_TCP_FT_ERROR;
            return GL_ERROR;
        }

        u->wsent += n;
    }

    return GL_OK;
}


static int
gl_tcp_send_result(gl_tcp_t *u, lua_State *L, int rc)
{
    int     ft;
    size_t  len;

    len = u->wlen;
    free(u->wdata);
    u->wdata = NULL;
    u->wlen = 0;
    u->wsent = 0;

    if (rc == GL_OK) {
        lua_pushinteger(L, (lua_Integer) len);
        return 1;
    }

    ft = u->ft;
    u->ft = 0;
    gl_tcp_push_error(u, L, ft);
    gl_tcp_write_close(u);

    return 2;
}


static void
gl_tcp_write_wake(gl_tcp_t *u, int rc)
{
    int       n;
    gl_co_t  *co;

    co = u->wco;
    u->wco = NULL;
    u->wwant = 0;

    if (ev_is_active(&u->wtimer)) {
        ev_timer_stop(u->loop, &u->wtimer);
    }

    gl_tcp_arm(u);

    n = gl_tcp_send_result(u, co->L, rc);
    gl_co_wake(co, n);
}


static void
gl_tcp_write_run(gl_tcp_t *u)
{
    int  rc;

    rc = gl_tcp_send_now(u);

    if (rc == GL_AGAIN) {
        /* as upstream's (ngx_add_timer at each NGX_AGAIN) and our reads:
           the send timeout is the time without progress, not a deadline
           for the whole send */
        gl_tcp_timer_start(u, &u->wtimer, u->send_timeout);
        gl_tcp_arm(u);
        return;
    }

    gl_tcp_write_wake(u, rc);
}


/* a number as upstream writes it: an integer with "%d", else "%.14g" */
size_t
gl_socket_num(lua_State *L, int idx, u_char *dst)
{
    int         len;
    char        buf[64];
    lua_Number  n;

    n = lua_tonumber(L, idx);

    if (n == (lua_Number) (int32_t) n) {
        len = snprintf(buf, sizeof(buf), "%d", (int) (int32_t) n);
    } else {
        len = snprintf(buf, sizeof(buf), "%.14g", (double) n);
    }

    if (dst != NULL) {
        memcpy(dst, buf, len);
    }

    return (size_t) len;
}


/* the size of what send sends (upstream's strict check of tables: only
   strings and numbers inside) */
static size_t
gl_socket_send_size(lua_State *L, int idx, int depth)
{
    int     i, n;
    size_t  len, size;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        lua_tolstring(L, idx, &len);
        return len;

    case LUA_TNUMBER:
        return gl_socket_num(L, idx, NULL);

    case LUA_TTABLE:
        if (depth > 100) {
            return luaL_argerror(L, 2, "table nested too deep");
        }

        n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TNUMBER
                || lua_tonumber(L, -1) != (lua_Number) lua_tointeger(L, -1)
                || lua_tointeger(L, -1) < 1)
            {
                lua_pop(L, 1);
                return luaL_argerror(L, 2, "non-array table found");
            }

            n = gl_max(n, (int) lua_tointeger(L, -1));
        }

        size = 0;

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);

            switch (lua_type(L, -1)) {
            case LUA_TSTRING:
            case LUA_TNUMBER:
            case LUA_TTABLE:
                size += gl_socket_send_size(L, lua_gettop(L), depth + 1);
                break;
            default:
                return luaL_argerror(L, 2, lua_pushfstring(L, "bad data "
                                     "type %s found",
                                     luaL_typename(L, -1)));
            }

            lua_pop(L, 1);
        }

        return size;

    default:
        return 0;
    }
}


static u_char *
gl_socket_send_copy(lua_State *L, int idx, u_char *dst)
{
    int          i, n;
    size_t       len;
    const char  *s;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        memcpy(dst, s, len);
        return dst + len;

    case LUA_TNUMBER:
        return dst + gl_socket_num(L, idx, dst);

    case LUA_TTABLE:
        n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            n = gl_max(n, (int) lua_tointeger(L, -1));
        }

        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            dst = gl_socket_send_copy(L, lua_gettop(L), dst);
            lua_pop(L, 1);
        }

        return dst;

    default:
        return dst;
    }
}


u_char *
gl_socket_send_data(lua_State *L, int idx, size_t *len)
{
    int          type;
    u_char      *buf;
    const char  *s;

    type = lua_type(L, idx);

    switch (type) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
    case LUA_TTABLE:
        *len = gl_socket_send_size(L, idx, 0);
        break;
    case LUA_TNIL:
        *len = 3;
        break;
    case LUA_TBOOLEAN:
        *len = lua_toboolean(L, idx) ? 4 : 5;
        break;
    default:
        luaL_argerror(L, idx, lua_pushfstring(L, "string, number, boolean, "
                      "nil, or array table expected, got %s",
                      lua_typename(L, type)));
        return NULL;
    }

    if (*len == 0) {
        return NULL;
    }

    buf = malloc(*len);
    if (buf == NULL) {
        luaL_error(L, "no memory");
        return NULL;
    }

    switch (type) {
    case LUA_TNIL:
        memcpy(buf, "nil", 3);
        break;
    case LUA_TBOOLEAN:
        s = lua_toboolean(L, idx) ? "true" : "false";
        memcpy(buf, s, *len);
        break;
    default:
        (void) gl_socket_send_copy(L, idx, buf);
        break;
    }

    return buf;
}


static int
gl_tcp_send(lua_State *L)
{
    int          rc, one;
    size_t       len;
    u_char      *buf;
    gl_co_t     *co;
    gl_tcp_t    *u;

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "expecting 2 arguments (including the object), "
                          "but got %d", lua_gettop(L));
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_get(L, 1);

    if (u == NULL || !gl_tcp_open(u) || u->write_closed) {
        if (gl_tcp_log_errors()) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to send data on a closed "
                         "socket: u:%p, c:%p, ft:%d eof:%d", (void *) u,
                         NULL, u ? u->ft : 0, u ? (int) u->eof : 0);
        }

        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    gl_tcp_check_owner(L, u);

    if (gl_tcp_busy(L, u, GL_TCP_BUSY_CONNECT | GL_TCP_BUSY_WRITE)) {
        return 2;
    }

    if (u->body) {
        return luaL_error(L, "attempt to write to request sockets");
    }

    buf = gl_socket_send_data(L, 2, &len);

    if (len == 0) {
        lua_pushinteger(L, 0);
        return 1;
    }

    if (!u->nodelay && u->addr.sa.ss_family != AF_UNIX) {
        one = 1;
        (void) setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one,
                          sizeof(one));
        u->nodelay = 1;
    }

    u->ft = 0;
    u->wdata = buf;
    u->wlen = len;
    u->wsent = 0;

    rc = gl_tcp_send_now(u);

    if (rc != GL_AGAIN) {
        return gl_tcp_send_result(u, L, rc);
    }

    co = gl_tcp_co(L);
    u->wco = co;
    gl_co_wait(co, &gl_tcp_write_ops, -1);
    co->wait.data = u;
    gl_tcp_timer_start(u, &u->wtimer, u->send_timeout);
    gl_tcp_arm(u);

    return gl_co_yield(co);
}


/* the write side's timer: connect, a queued connect, handshake, send */
static void
gl_tcp_wtimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    char       text[256];
    gl_tcp_t  *u;

    (void) loop;
    (void) revents;

    u = w->data;

    if (u->wco == NULL) {
        return;
    }

    u->ft |= GL_TCP_FT_TIMEOUT;

    switch (u->conn_state) {

    case GL_TCP_CONN_NONE:
        if (gl_tcp_log_errors()) {
            gl_log_error(GL_LOG_ERR, 0, "lua tcp socket write timed out");
        }
        gl_tcp_write_wake(u, GL_ERROR);
        return;

    case GL_TCP_CONN_QUEUED:
        if (gl_tcp_log_errors()) {
            gl_log_error(GL_LOG_ERR, 0, "lua tcp socket queued connect "
                         "timed out, when trying to connect to %.*s:%d",
                         (int) u->hostlen, u->host, u->port);
        }
        break;

    case GL_TCP_CONN_HANDSHAKE:
        u->ssl_err = "timeout";
        break;

    default:
        if (gl_tcp_log_errors()) {
            gl_socket_addr_text(&u->addr, text, sizeof(text));
            gl_log_error(GL_LOG_ERR, 0, "lua tcp socket connect timed out, "
                         "when connecting to %s", text);
        }
        break;
    }

    gl_tcp_conn_wake(u);
}


/* connecting */

static gl_tcp_pool_t *
gl_tcp_pool_find(lua_State *L, int key_idx)
{
    gl_tcp_pool_t  *pool;

    lua_pushlightuserdata(L, &gl_tcp_pools_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, key_idx);
    lua_rawget(L, -2);
    pool = lua_touserdata(L, -1);
    lua_pop(L, 2);

    return pool;
}


static void gl_tcp_pool_resume_handler(gl_posted_t *ev);
static void gl_tcp_pool_release_handler(gl_posted_t *ev);

static gl_tcp_pool_t *
gl_tcp_pool_new(lua_State *L, int key_idx, int size, int backlog)
{
    size_t          len;
    const char     *key;
    gl_tcp_pool_t  *pool;

    key = lua_tolstring(L, key_idx, &len);

    lua_pushlightuserdata(L, &gl_tcp_pools_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, key_idx);

    pool = lua_newuserdata(L, sizeof(gl_tcp_pool_t) + len);
    memset(pool, 0, sizeof(gl_tcp_pool_t));
    gl_queue_init(&pool->idle);
    gl_queue_init(&pool->waiting);
    pool->L = gl_lua_gen_of(L)->L;
    pool->loop = gl_vm_self->loop;
    pool->stat = gl_vm_self->stat;
    gl_stat_gauge_add(&pool->stat->tcp_pools, 1);
    pool->size = size;
    pool->backlog = backlog;
    pool->resume.handler = gl_tcp_pool_resume_handler;
    pool->resume.data = pool;
    pool->release.handler = gl_tcp_pool_release_handler;
    pool->release.data = pool;
    memcpy(pool->key, key, len);
    pool->key[len] = '\0';

    lua_pushlightuserdata(L, &gl_tcp_pool_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);

    lua_rawset(L, -3);
    lua_pop(L, 1);

    return pool;
}


/* a slot of the pool may be free: the first queued connect goes on, from
   the scheduler (as upstream's posted event) */
static void
gl_tcp_pool_resume(gl_tcp_pool_t *pool)
{
    if (pool->connections < 0) {
        pool->connections = 0;
    }

    if (gl_queue_empty(&pool->waiting) || gl_vm_self == NULL) {
        return;
    }

    if (!gl_posted(&pool->resume)) {
        gl_post(&gl_vm_self->sched, &pool->resume);
    }
}


/* a pool takes no more idle connections: it is no longer counted */
static void
gl_tcp_pool_set_closed(gl_tcp_pool_t *pool)
{
    if (!pool->closed) {
        pool->closed = 1;
        gl_stat_gauge_add(&pool->stat->tcp_pools, -1);
    }
}


/* a pool with no connection left goes, as upstream's (a later connect
   or setkeepalive makes it again, with its own size); not from a __gc:
   the state may be closing */

static void
gl_tcp_pool_release(gl_tcp_pool_t *pool)
{
    lua_State  *L;

    if (pool->connections > 0 || pool->nidle > 0 || pool->closed
        || !gl_queue_empty(&pool->waiting))
    {
        return;
    }

    if (gl_tcp_in_gc) {
        /* later, from the loop, if its state still stands (its __gc
           takes the event back) */
        if (!gl_posted(&pool->release) && gl_vm_self != NULL) {
            gl_post(&gl_vm_self->sched, &pool->release);
        }
        return;
    }

    gl_tcp_pool_set_closed(pool);

    L = pool->L;
    lua_pushlightuserdata(L, &gl_tcp_pools_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushstring(L, pool->key);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}


static void
gl_tcp_pool_release_handler(gl_posted_t *ev)
{
    gl_tcp_pool_release(ev->data);
}


static void
gl_tcp_pool_resume_handler(gl_posted_t *ev)
{
    int              rc;
    gl_tcp_t        *u;
    gl_queue_t      *q;
    gl_tcp_pool_t   *pool;

    pool = ev->data;

    if (gl_queue_empty(&pool->waiting)) {
        return;
    }

    q = gl_queue_head(&pool->waiting);
    gl_queue_remove(q);
    u = gl_queue_data(q, gl_tcp_t, cleanup.link);

    /* the queued connect no longer counts: it connects now */
    pool->connections--;

    if (ev_is_active(&u->wtimer)) {
        ev_timer_stop(u->loop, &u->wtimer);
    }

    /* back among the task's cleanups; still QUEUED for connect_go, which
       then does not queue it again */
    gl_task_cleanup_add(u->task, &u->cleanup);

    rc = gl_tcp_connect_go(u);

    if (rc != GL_AGAIN) {
        gl_tcp_conn_wake(u);
    }
}


/* takes an idle connection of the pool: GL_OK, or GL_DECLINED */
static int
gl_tcp_pool_take(gl_tcp_t *u)
{
    gl_queue_t      *q;
    gl_tcp_idle_t   *it;
    gl_tcp_pool_t   *pool;

    pool = u->pool;

    if (gl_queue_empty(&pool->idle)) {
        return GL_DECLINED;
    }

    q = gl_queue_head(&pool->idle);
    gl_queue_remove(q);
    it = gl_queue_data(q, gl_tcp_idle_t, link);
    pool->nidle--;
    gl_stat_gauge_add(&pool->stat->tcp_idle, -1);

    ev_io_stop(pool->loop, &it->io);
    ev_timer_stop(pool->loop, &it->timer);

    u->fd = it->fd;
    u->ssl = it->ssl;
    u->reused = it->reused + 1;
    u->nodelay = 1;

    free(it);

    return GL_OK;
}


/* the resolver answered */
static void
gl_tcp_resolved(void *data, const gl_dns_result_t *res)
{
    char       err[512];
    gl_tcp_t  *u;
    gl_co_t   *co;

    u = data;
    u->dnsq = NULL;

    if (gl_socket_pick(u->host, u->hostlen, u->port, res, &u->addr, err,
                       sizeof(err)) != GL_OK)
    {
        co = u->wco;
        u->wco = NULL;
        u->conn_state = GL_TCP_CONN_NONE;
        gl_tcp_finalize(u);
        lua_pushnil(co->L);
        lua_pushstring(co->L, err);
        gl_co_wake(co, 2);
        return;
    }

    u->conn_state = GL_TCP_CONN_NONE;

    /* the pool's part is done (counted, or waited for): on to connect() */
    if (gl_tcp_connect_addr(u) != GL_AGAIN) {
        gl_tcp_conn_wake(u);
    }
}


/* socket() and connect() to u->addr: GL_OK, GL_AGAIN (waits armed),
   GL_ERROR (ft, err set) */
static int
gl_tcp_connect_addr(gl_tcp_t *u)
{
    int   fd;

    fd = socket(u->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK
                | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        u->err = errno;
        u->ft |= GL_TCP_FT_ERROR;
        gl_log_error(GL_LOG_ALERT, errno, "socket() failed");
        return GL_ERROR;
    }

    u->fd = fd;

    if (u->local.socklen
        && u->local.sa.ss_family == u->addr.sa.ss_family
        && bind(fd, (struct sockaddr *) &u->local.sa, u->local.socklen) == -1)
    {
        u->err = errno;
        u->ft |= GL_TCP_FT_ERROR;
        gl_log_error(GL_LOG_ERR, errno, "bind() failed");
        return GL_ERROR;
    }

    if (connect(fd, (struct sockaddr *) &u->addr.sa, u->addr.socklen) == 0) {
        return GL_OK;
    }

    if (errno == EINPROGRESS || errno == EAGAIN) {
        u->conn_state = GL_TCP_CONN_CONNECTING;
        u->wwant = EV_WRITE;
        gl_tcp_timer_start(u, &u->wtimer, u->connect_timeout);
        gl_tcp_arm(u);
        return GL_AGAIN;
    }

    u->err = errno;
    u->ft |= GL_TCP_FT_ERROR;

    if (gl_tcp_log_errors()) {
        char  text[256];

        gl_socket_addr_text(&u->addr, text, sizeof(text));
        gl_log_error(GL_LOG_ERR, errno, "connect() to %s failed", text);
    }

    return GL_ERROR;
}


/*
 * A connect from where it stands: the pool (an idle connection, or a
 * queue), the name, the connect() itself.  GL_OK, GL_AGAIN (u->wco waits;
 * what ends the wait calls gl_tcp_conn_wake), GL_ERROR (ft/err or a
 * message in u->ssl_err... for a lookup: pushed by the caller).
 */
static int
gl_tcp_connect_go(gl_tcp_t *u)
{
    int               rc;
    char              err[512];
    gl_tcp_pool_t    *pool;

    pool = u->pool;

    if (pool != NULL) {
        if (gl_tcp_pool_take(u) == GL_OK) {
            return GL_OK;
        }

        pool->connections++;

        if (pool->backlog >= 0 && u->conn_state != GL_TCP_CONN_QUEUED) {

            if (pool->connections > pool->size + pool->backlog) {
                pool->connections--;
                u->pool = NULL;
                u->ssl_err = "too many waiting connect operations";
                return GL_ERROR;
            }

            if (pool->connections > pool->size) {
                u->conn_state = GL_TCP_CONN_QUEUED;
                gl_task_cleanup_del(&u->cleanup);
                gl_queue_insert_tail(&pool->waiting, &u->cleanup.link);
                gl_tcp_timer_start(u, &u->wtimer, u->connect_timeout);
                return GL_AGAIN;
            }
        }
    }

    if (u->addr.socklen == 0) {
        rc = gl_socket_resolve(u->host, u->hostlen, u->port, &u->addr,
                               gl_tcp_resolved, u, &u->dnsq, err,
                               sizeof(err));

        if (rc == GL_AGAIN) {
            u->conn_state = GL_TCP_CONN_RESOLVING;
            return GL_AGAIN;
        }

        if (rc == GL_ERROR) {
            u->ft |= GL_TCP_FT_RESOLVER;
            free(u->ssl_name);
            u->ssl_name = strdup(err);
            u->ssl_err = u->ssl_name;
            return GL_ERROR;
        }
    }

    return gl_tcp_connect_addr(u);
}


/* pushes connect's values; a failure closes the socket */
static int
gl_tcp_conn_result(gl_tcp_t *u, lua_State *L, int rc)
{
    int  ft;

    if (rc == GL_OK) {
        lua_pushinteger(L, 1);
        return 1;
    }

    ft = u->ft;
    u->ft = 0;

    if (u->ssl_err != NULL && !(ft & GL_TCP_FT_TIMEOUT)) {
        lua_pushnil(L);
        lua_pushstring(L, u->ssl_err);
        u->ssl_err = NULL;
        gl_tcp_finalize(u);
        return 2;
    }

    u->ssl_err = NULL;
    gl_tcp_finalize(u);

    return gl_tcp_push_error(u, L, ft);
}


/* a connect that waited is over: succeeded, failed or timed out (ft) */
static void
gl_tcp_conn_wake(gl_tcp_t *u)
{
    int        n, rc, err;
    socklen_t  len;
    gl_co_t   *co;

    co = u->wco;
    if (co == NULL) {
        return;
    }

    if (u->conn_state == GL_TCP_CONN_HANDSHAKE) {
        /* sslhandshake's end: the FFI side reads the result */
        u->wco = NULL;
        u->conn_state = GL_TCP_CONN_NONE;
        u->wwant = 0;
        if (ev_is_active(&u->wtimer)) {
            ev_timer_stop(u->loop, &u->wtimer);
        }
        if (u->ft && u->ssl_err == NULL) {
            u->ssl_err = (u->ft & GL_TCP_FT_TIMEOUT) ? "timeout" : "error";
        }
        if (u->ssl_err != NULL) {
            u->ft = 0;
            u->ssl_reuse = 0;
            /* the socket closes, but the message is the FFI side's */
            gl_tcp_finalize(u);
        }
        gl_tcp_arm(u);
        gl_co_wake(co, 0);
        return;
    }

    rc = GL_OK;

    if (u->ft) {
        rc = GL_ERROR;

    } else if (u->ssl_err != NULL) {
        rc = GL_ERROR;

    } else if (u->conn_state == GL_TCP_CONN_CONNECTING) {
        err = 0;
        len = sizeof(err);
        if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
            err = errno;
        }

        if (err) {
            u->err = err;
            u->ft |= GL_TCP_FT_ERROR;
            rc = GL_ERROR;

            if (gl_tcp_log_errors()) {
                char  text[256];

                gl_socket_addr_text(&u->addr, text, sizeof(text));
                gl_log_error(GL_LOG_ERR, err, "connect() to %s failed",
                             text);
            }
        }
    }

    u->wco = NULL;
    u->conn_state = GL_TCP_CONN_NONE;
    u->wwant = 0;

    if (ev_is_active(&u->wtimer)) {
        ev_timer_stop(u->loop, &u->wtimer);
    }

    gl_tcp_arm(u);

    n = gl_tcp_conn_result(u, co->L, rc);
    gl_co_wake(co, n);
}


static int
gl_tcp_connect(lua_State *L)
{
    int              n, port, key_idx, custom_pool, rc;
    size_t           len;
    const char      *host, *msg;
    lua_Integer      pool_size, backlog;
    gl_co_t         *co;
    gl_tcp_t        *u;
    gl_task_t       *t;
    gl_tcp_pool_t   *pool;
    gl_conf_t       *conf;

    n = lua_gettop(L);
    if (n != 2 && n != 3 && n != 4) {
        return luaL_error(L, "ngx.socket connect: expecting 2, 3, or 4 "
                          "arguments (including the object), but seen %d",
                          n);
    }

    t = gl_lua_check_context(L, GL_CTX_COSOCKET);

    luaL_checktype(L, 1, LUA_TTABLE);
    host = luaL_checklstring(L, 2, &len);

    conf = gl_vm_self->conf;
    backlog = -1;
    key_idx = 2;
    pool_size = 0;
    custom_pool = 0;

    if (lua_type(L, n) == LUA_TTABLE) {

        lua_getfield(L, n, "pool_size");

        if (lua_isnumber(L, -1)) {
            pool_size = lua_tointeger(L, -1);
            if (pool_size <= 0) {
                msg = lua_pushfstring(L, "bad \"pool_size\" option value: %d",
                                      (int) pool_size);
                return luaL_argerror(L, n, msg);
            }

        } else if (!lua_isnil(L, -1)) {
            msg = lua_pushfstring(L, "bad \"pool_size\" option type: %s",
                                  lua_typename(L, lua_type(L, -1)));
            return luaL_argerror(L, n, msg);
        }

        lua_pop(L, 1);

        lua_getfield(L, n, "backlog");

        if (lua_isnumber(L, -1)) {
            backlog = lua_tointeger(L, -1);
            if (backlog < 0) {
                msg = lua_pushfstring(L, "bad \"backlog\" option value: %d",
                                      (int) backlog);
                return luaL_argerror(L, n, msg);
            }

            if (pool_size == 0) {
                pool_size = conf->socket_pool_size;
            }
        }

        lua_pop(L, 1);

        lua_getfield(L, n, "pool");

        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:
            lua_tostring(L, -1);
            /* fall through */
        case LUA_TSTRING:
            custom_pool = 1;
            lua_pushvalue(L, -1);
            lua_rawseti(L, 1, GL_TCP_KEY);
            key_idx = n + 1;
            break;
        case LUA_TNIL:
            lua_pop(L, 2);
            break;
        default:
            msg = lua_pushfstring(L, "bad \"pool\" option type: %s",
                                  luaL_typename(L, -1));
            return luaL_argerror(L, n, msg);
        }

        n--;
    }

    if (n == 4) {
        lua_pop(L, 1);
        n--;
    }

    if (n == 3 && lua_isnumber(L, 3)) {
        port = (int) lua_tointeger(L, 3);

        if (port < 0 || port > 65535) {
            lua_pushnil(L);
            lua_pushfstring(L, "bad port number: %d", port);
            return 2;
        }

        if (!custom_pool) {
            lua_pushliteral(L, ":");
            lua_insert(L, 3);
            lua_concat(L, 3);
        }

    } else if (len >= 5 && strncasecmp(host, "unix:", 5) == 0) {
        port = 0;

    } else {
        lua_pushnil(L);
        lua_pushliteral(L, "missing the port number");
        return 2;
    }

    if (!custom_pool) {
        lua_pushvalue(L, 2);
        lua_rawseti(L, 1, GL_TCP_KEY);
    }

    u = gl_tcp_get(L, 1);

    if (u != NULL) {
        gl_tcp_check_owner(L, u);

        if (u->conn_state != GL_TCP_CONN_NONE) {
            lua_pushnil(L);
            lua_pushliteral(L, "socket busy connecting");
            return 2;
        }

        if (u->rco != NULL) {
            lua_pushnil(L);
            lua_pushliteral(L, "socket busy reading");
            return 2;
        }

        if (u->wco != NULL) {
            lua_pushnil(L);
            lua_pushliteral(L, "socket busy writing");
            return 2;
        }

        if (u->body) {
            return luaL_error(L, "attempt to re-connect a request socket");
        }

        gl_tcp_finalize(u);
        free(u->host);
        free(u->ssl_name);

    } else {
        u = lua_newuserdata(L, sizeof(gl_tcp_t));
        lua_pushlightuserdata(L, &gl_tcp_udata_key);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_setmetatable(L, -2);
        lua_rawseti(L, 1, GL_TCP_CTX);
    }

    gl_tcp_init(u);

    u->task = t;
    u->serial = t->serial;
    u->used = 1;

    lua_rawgeti(L, 1, GL_TCP_CONNECT_TIMEOUT);
    lua_rawgeti(L, 1, GL_TCP_SEND_TIMEOUT);
    lua_rawgeti(L, 1, GL_TCP_READ_TIMEOUT);
    u->read_timeout = (int) lua_tointeger(L, -1);
    u->send_timeout = (int) lua_tointeger(L, -2);
    u->connect_timeout = (int) lua_tointeger(L, -3);
    lua_pop(L, 3);

    if (u->connect_timeout <= 0) {
        u->connect_timeout = (int) (conf->socket_connect_timeout * 1000);
    }
    if (u->send_timeout <= 0) {
        u->send_timeout = (int) (conf->socket_send_timeout * 1000);
    }
    if (u->read_timeout <= 0) {
        u->read_timeout = (int) (conf->socket_read_timeout * 1000);
    }

    pool = gl_tcp_pool_find(L, key_idx);

    if (pool == NULL && pool_size > 0) {
        if (lua_type(L, key_idx) != LUA_TSTRING) {
            lua_pushvalue(L, key_idx);
            lua_tostring(L, -1);
            lua_replace(L, key_idx);
        }
        pool = gl_tcp_pool_new(L, key_idx, (int) pool_size, (int) backlog);
    }

    u->pool = pool;

    lua_rawgeti(L, 1, GL_TCP_BIND);
    if (lua_type(L, -1) == LUA_TSTRING) {
        const char  *a = lua_tostring(L, -1);

        if (gl_socket_parse_ip(a, &u->local) != GL_OK) {
            u->local.socklen = 0;
        }
    }
    lua_pop(L, 1);

    u->host = malloc(len + 1);
    if (u->host == NULL) {
        return luaL_error(L, "no memory");
    }
    memcpy(u->host, host, len);
    u->host[len] = '\0';
    u->hostlen = len;
    u->port = port;

    gl_task_cleanup_add(t, &u->cleanup);

    rc = gl_tcp_connect_go(u);

    if (rc != GL_AGAIN) {
        return gl_tcp_conn_result(u, L, rc);
    }

    co = gl_tcp_co(L);
    u->wco = co;
    gl_co_wait(co, &gl_tcp_conn_ops, -1);
    co->wait.data = u;
    gl_tcp_arm(u);

    return gl_co_yield(co);
}


/* an IPv4 or IPv6 address (no port) */
static int
gl_socket_parse_ip(const char *a, gl_socket_addr_t *addr)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    memset(addr, 0, sizeof(gl_socket_addr_t));

    sin = (struct sockaddr_in *) &addr->sa;
    if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        addr->socklen = sizeof(struct sockaddr_in);
        return GL_OK;
    }

    sin6 = (struct sockaddr_in6 *) &addr->sa;
    if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        addr->socklen = sizeof(struct sockaddr_in6);
        return GL_OK;
    }

    return GL_ERROR;
}


/* sock:bind(addr): the local address of the next connect */
static int
gl_tcp_bind(lua_State *L)
{
    gl_socket_addr_t  a;

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "expecting 2 arguments, but got %d",
                          lua_gettop(L));
    }

    (void) gl_lua_check_context(L, GL_CTX_COSOCKET);

    luaL_checktype(L, 1, LUA_TTABLE);

    if (gl_socket_parse_ip(luaL_checkstring(L, 2), &a) != GL_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "bad address");
        return 2;
    }

    lua_pushvalue(L, 2);
    lua_rawseti(L, 1, GL_TCP_BIND);

    lua_pushboolean(L, 1);
    return 1;
}


/* close, timeouts, options */

static int
gl_tcp_close(lua_State *L)
{
    gl_tcp_t  *u;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 argument (including the object) "
                          "but seen %d", lua_gettop(L));
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_get(L, 1);

    if (u == NULL || !gl_tcp_open(u)
        || (u->read_closed && u->write_closed))
    {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    gl_tcp_check_owner(L, u);

    if (gl_tcp_busy(L, u, GL_TCP_BUSY_ALL)) {
        return 2;
    }

    if (u->body) {
        lua_pushnil(L);
        lua_pushliteral(L, "attempt to close a request socket");
        return 2;
    }

    gl_tcp_finalize(u);

    lua_pushinteger(L, 1);
    return 1;
}


static int
gl_tcp_timeout_arg(lua_State *L, int idx)
{
    lua_Integer  t;

    t = (lua_Integer) lua_tonumber(L, idx);

    if (t < 0 || t > INT32_MAX) {
        return luaL_error(L, "bad timeout value");
    }

    return (int) t;
}


static void
gl_tcp_apply_timeouts(lua_State *L, int c, int s, int r)
{
    gl_tcp_t   *u;
    gl_conf_t  *conf;

    u = gl_tcp_get(L, 1);
    if (u == NULL || gl_vm_self == NULL) {
        return;
    }

    conf = gl_vm_self->conf;

    u->connect_timeout = c > 0 ? c : (int) (conf->socket_connect_timeout
                                            * 1000);
    u->send_timeout = s > 0 ? s : (int) (conf->socket_send_timeout * 1000);
    u->read_timeout = r > 0 ? r : (int) (conf->socket_read_timeout * 1000);
}


static int
gl_tcp_settimeout(lua_State *L)
{
    int  t;

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "ngx.socket settimeout: expecting 2 arguments "
                          "(including the object) but seen %d",
                          lua_gettop(L));
    }

    t = gl_tcp_timeout_arg(L, 2);

    lua_pushinteger(L, t);
    lua_rawseti(L, 1, GL_TCP_CONNECT_TIMEOUT);
    lua_pushinteger(L, t);
    lua_rawseti(L, 1, GL_TCP_SEND_TIMEOUT);
    lua_pushinteger(L, t);
    lua_rawseti(L, 1, GL_TCP_READ_TIMEOUT);

    gl_tcp_apply_timeouts(L, t, t, t);

    return 0;
}


static int
gl_tcp_settimeouts(lua_State *L)
{
    int  c, s, r;

    if (lua_gettop(L) != 4) {
        return luaL_error(L, "ngx.socket settimeout: expecting 4 arguments "
                          "(including the object) but seen %d",
                          lua_gettop(L));
    }

    c = gl_tcp_timeout_arg(L, 2);
    s = gl_tcp_timeout_arg(L, 3);
    r = gl_tcp_timeout_arg(L, 4);

    lua_pushinteger(L, r);
    lua_rawseti(L, 1, GL_TCP_READ_TIMEOUT);
    lua_pushinteger(L, s);
    lua_rawseti(L, 1, GL_TCP_SEND_TIMEOUT);
    lua_pushinteger(L, c);
    lua_rawseti(L, 1, GL_TCP_CONNECT_TIMEOUT);

    gl_tcp_apply_timeouts(L, c, s, r);

    return 0;
}


static int
gl_tcp_getreusedtimes(lua_State *L)
{
    gl_tcp_t  *u;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 argument (including the object), "
                          "but got %d", lua_gettop(L));
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_get(L, 1);

    if (u == NULL || u->fd == -1 || (u->read_closed && u->write_closed)) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    lua_pushinteger(L, u->reused);
    return 1;
}


static const struct {
    const char  *name;
    int          level;
    int          opt;
} gl_tcp_options[] = {
    { "keepalive", SOL_SOCKET, SO_KEEPALIVE },
    { "reuseaddr", SOL_SOCKET, SO_REUSEADDR },
    { "tcp-nodelay", IPPROTO_TCP, TCP_NODELAY },
    { "sndbuf", SOL_SOCKET, SO_SNDBUF },
    { "rcvbuf", SOL_SOCKET, SO_RCVBUF },
    { NULL, 0, 0 }
};


static int
gl_tcp_option(lua_State *L, int set)
{
    int          i, val;
    socklen_t    len;
    const char  *name;
    gl_tcp_t    *u;

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_get(L, 1);
    if (u == NULL) {
        return luaL_error(L, "socket is never created nor connected");
    }

    if (lua_isnoneornil(L, 2)) {
        lua_pushnil(L);
        lua_pushliteral(L, "missing the \"option\" argument");
        return 2;
    }

    if (set && lua_isnoneornil(L, 3)) {
        lua_pushnil(L);
        lua_pushliteral(L, "missing the \"value\" argument");
        return 2;
    }

    name = lua_tostring(L, 2);

    for (i = 0; gl_tcp_options[i].name != NULL; i++) {
        if (name != NULL && strcmp(name, gl_tcp_options[i].name) == 0) {
            break;
        }
    }

    if (gl_tcp_options[i].name == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "unsupported option %s",
                        name ? name : luaL_typename(L, 2));
        return 2;
    }

    if (set && lua_type(L, 3) != LUA_TNUMBER
        && lua_type(L, 3) != LUA_TBOOLEAN)
    {
        /* what LuaJIT's FFI says of lua-resty-core's call */
        return luaL_error(L, "bad argument #3 to "
                          "'ngx_http_lua_ffi_socket_tcp_setoption' (cannot "
                          "convert '%s' to 'int')", luaL_typename(L, 3));
    }

    if (u->fd == -1 || u->body) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    if (set) {
        val = lua_type(L, 3) == LUA_TBOOLEAN ? lua_toboolean(L, 3)
                                             : (int) lua_tointeger(L, 3);

        if (setsockopt(u->fd, gl_tcp_options[i].level,
                       gl_tcp_options[i].opt, &val, sizeof(val)) == -1)
        {
            lua_pushnil(L);
            gl_socket_push_errno(L, errno);
            return 2;
        }

        lua_pushboolean(L, 1);
        return 1;
    }

    len = sizeof(val);
    if (getsockopt(u->fd, gl_tcp_options[i].level, gl_tcp_options[i].opt,
                   &val, &len) == -1)
    {
        lua_pushnil(L);
        gl_socket_push_errno(L, errno);
        return 2;
    }

    lua_pushinteger(L, val);
    return 1;
}


static int
gl_tcp_setoption(lua_State *L)
{
    return gl_tcp_option(L, 1);
}


static int
gl_tcp_getoption(lua_State *L)
{
    return gl_tcp_option(L, 0);
}


/* pools */

static void
gl_tcp_idle_close(gl_tcp_idle_t *it)
{
    gl_tcp_pool_t  *pool;

    pool = it->pool;

    gl_queue_remove(&it->link);
    pool->nidle--;
    gl_stat_gauge_add(&pool->stat->tcp_idle, -1);
    pool->connections--;

    ev_io_stop(pool->loop, &it->io);
    ev_timer_stop(pool->loop, &it->timer);

    if (it->ssl != NULL) {
        gl_tcp_ssl_free(it->ssl);
    }

    close(it->fd);
    free(it);

    gl_tcp_pool_resume(pool);

    if (!pool->closed) {
        gl_tcp_pool_release(pool);
    }
}


/* the peer closed an idle connection, or sent on it: it goes */
static void
gl_tcp_idle_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char            c;
    ssize_t         n;
    gl_tcp_idle_t  *it;

    (void) loop;
    (void) revents;

    it = w->data;

    n = recv(it->fd, &c, 1, MSG_PEEK);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }

    gl_tcp_idle_close(it);
}


static void
gl_tcp_idle_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;

    gl_tcp_idle_close(w->data);
}


static void
gl_tcp_pool_close_idle(gl_tcp_pool_t *pool)
{
    gl_tcp_idle_t  *it;

    while (!gl_queue_empty(&pool->idle)) {
        it = gl_queue_data(gl_queue_head(&pool->idle), gl_tcp_idle_t, link);
        gl_tcp_idle_close(it);
    }
}


/* its Lua state is closed: the idle connections go; queued connects are
   cancelled with their tasks before */
static int
gl_tcp_pool_gc(lua_State *L)
{
    gl_tcp_pool_t  *pool;

    pool = lua_touserdata(L, 1);
    if (pool == NULL) {
        return 0;
    }

    gl_tcp_pool_set_closed(pool);
    gl_tcp_pool_close_idle(pool);

    if (gl_posted(&pool->resume)) {
        gl_post_delete(&pool->resume);
    }

    if (gl_posted(&pool->release)) {
        gl_post_delete(&pool->release);
    }

    return 0;
}


/* every pool of a state: their idle connections go (a stop, a retired
   generation); close: no new idle connection either */
static void
gl_tcp_pools_close(lua_State *L, int close)
{
    gl_tcp_pool_t  *pool;

    lua_pushlightuserdata(L, &gl_tcp_pools_key);
    lua_rawget(L, LUA_REGISTRYINDEX);

    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }

    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        pool = lua_touserdata(L, -1);
        if (pool != NULL) {
            if (close) {
                gl_tcp_pool_set_closed(pool);
            }
            gl_tcp_pool_close_idle(pool);
        }
        lua_pop(L, 1);
    }

    lua_pop(L, 1);
}


static int
gl_tcp_setkeepalive(lua_State *L)
{
    int               n, dubious;
    char              c;
    ssize_t           rc;
    lua_Integer       size, timeout;
    const char       *msg;
    gl_tcp_t         *u;
    gl_conf_t        *conf;
    gl_tcp_idle_t    *it;
    gl_tcp_pool_t    *pool;
    gl_tcp_worker_t  *w;

    n = lua_gettop(L);
    if (n < 1 || n > 3) {
        return luaL_error(L, "expecting 1 to 3 arguments (including the "
                          "object), but got %d", n);
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    u = gl_tcp_get(L, 1);

    if (u == NULL || u->fd == -1 || u->read_closed || u->write_closed
        || u->eof)
    {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    gl_tcp_check_owner(L, u);

    if (gl_tcp_busy(L, u, GL_TCP_BUSY_ALL)) {
        return 2;
    }

    if (u->body) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    if (u->buf != NULL && u->pos < u->last) {
        lua_pushnil(L);
        lua_pushliteral(L, "unread data in buffer");
        return 2;
    }

    if (u->ssl != NULL && SSL_pending(u->ssl) > 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "unread data in buffer");
        return 2;
    }

    /* the peer may have closed it already (upstream sees the FIN), or
       sent what nobody read */
    dubious = 0;
    rc = recv(u->fd, &c, 1, MSG_PEEK);
    if (rc == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    if ((rc == -1 && errno != EAGAIN && errno != EINTR)
        || (rc > 0 && u->ssl == NULL))
    {
        dubious = 1;
    }

    w = gl_tcp_worker();
    conf = gl_vm_self->conf;

    if (w->stopping) {
        gl_tcp_finalize(u);
        lua_pushinteger(L, 1);
        return 1;
    }

    lua_rawgeti(L, 1, GL_TCP_KEY);
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushliteral(L, "key not found");
        return 2;
    }

    pool = gl_tcp_pool_find(L, lua_gettop(L));

    if (pool == NULL) {
        if (n >= 3 && !lua_isnil(L, 3)) {
            size = luaL_checkinteger(L, 3);
        } else {
            size = conf->socket_pool_size;
        }

        if (size <= 0) {
            msg = lua_pushfstring(L, "bad \"pool_size\" option value: %d",
                                  (int) size);
            return luaL_argerror(L, n, msg);
        }

        pool = gl_tcp_pool_new(L, lua_gettop(L), (int) size, -1);
    }

    if (dubious) {
        gl_tcp_finalize(u);
        gl_tcp_pool_release(pool);
        lua_pushnil(L);
        lua_pushliteral(L, "connection in dubious state");
        return 2;
    }

    if (pool->closed) {
        gl_tcp_finalize(u);
        lua_pushinteger(L, 1);
        return 1;
    }

    it = malloc(sizeof(gl_tcp_idle_t));
    if (it == NULL) {
        return luaL_error(L, "no memory");
    }

    it->pool = pool;
    it->fd = u->fd;
    it->ssl = u->ssl;
    it->reused = u->reused;

    ev_io_init(&it->io, gl_tcp_idle_io_cb, it->fd, EV_READ);
    it->io.data = it;
    ev_io_start(pool->loop, &it->io);
    ev_init(&it->timer, gl_tcp_idle_timer_cb);
    it->timer.data = it;

    gl_queue_insert_head(&pool->idle, &it->link);
    pool->nidle++;
    gl_stat_gauge_add(&pool->stat->tcp_idle, 1);

    /* counted by the pool from now on if it was not */
    if (u->pool == NULL) {
        pool->connections++;
    }

    u->fd = -1;
    u->ssl = NULL;
    u->pool = NULL;
    gl_tcp_finalize(u);

    if (pool->nidle > pool->size) {
        /* full: the least recently used goes */
        gl_tcp_idle_close(gl_queue_data(gl_queue_last(&pool->idle),
                                        gl_tcp_idle_t, link));
    }

    /* as upstream, a bad timeout raises with the connection kept */
    if (n >= 2 && !lua_isnil(L, 2)) {
        timeout = luaL_checkinteger(L, 2);
    } else {
        timeout = (lua_Integer) (conf->socket_keepalive_timeout * 1000);
    }

    if (timeout > 0) {
        ev_timer_set(&it->timer, timeout / 1000.0, 0);
        ev_timer_start(pool->loop, &it->timer);
    }

    gl_tcp_pool_resume(pool);

    lua_pushinteger(L, 1);
    return 1;
}


/* TLS */

/* the chain is checked, its result kept for sslhandshake to look at: the
   handshake itself goes on, as nginx's verify callback */
static int
gl_tcp_ssl_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    (void) ok;
    (void) ctx;

    return 1;
}


static int
gl_tcp_ssl_version(int bit)
{
    switch (bit) {
    case GL_TCP_SSL_SSLv3:
        return SSL3_VERSION;
    case GL_TCP_SSL_TLSv1:
        return TLS1_VERSION;
    case GL_TCP_SSL_TLSv1_1:
        return TLS1_1_VERSION;
    case GL_TCP_SSL_TLSv1_2:
        return TLS1_2_VERSION;
    default:
        return TLS1_3_VERSION;
    }
}


/* a client SSL_CTX of the lua_ssl_* directives; NULL with err */
static SSL_CTX *
gl_tcp_ssl_ctx_new(gl_tcp_conf_t *tcf, char *err, size_t size)
{
    int              bit, lo, hi;
    SSL_CTX         *ctx;
    X509_STORE      *store;

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, size, "SSL_CTX_new() failed");
        return NULL;
    }

    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                     | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);

#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* as nginx's ngx_ssl_create: a peer that closes without close_notify
       (many HTTPS servers) ends the stream ("closed"), not an error */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif

    lo = 0;
    hi = 0;
    for (bit = GL_TCP_SSL_SSLv3; bit <= GL_TCP_SSL_TLSv1_3; bit <<= 1) {
        if (tcf->protocols & bit) {
            if (lo == 0) {
                lo = gl_tcp_ssl_version(bit);
            }
            hi = gl_tcp_ssl_version(bit);
        }
    }

    if (lo != 0) {
        SSL_CTX_set_min_proto_version(ctx, lo);
        SSL_CTX_set_max_proto_version(ctx, hi);
    }

    if (tcf->ciphers != NULL
        && SSL_CTX_set_cipher_list(ctx, tcf->ciphers) == 0)
    {
        snprintf(err, size, "SSL_CTX_set_cipher_list(\"%s\") failed",
                 tcf->ciphers);
        goto failed;
    }

    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, gl_tcp_ssl_verify_cb);
    SSL_CTX_set_verify_depth(ctx, tcf->verify_depth);

    if (tcf->trusted_certificate != NULL
        && SSL_CTX_load_verify_locations(ctx, tcf->trusted_certificate,
                                         NULL) == 0)
    {
        snprintf(err, size, "SSL_CTX_load_verify_locations(\"%s\") failed",
                 tcf->trusted_certificate);
        goto failed;
    }

    if (tcf->certificate != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, tcf->certificate)
            == 0)
        {
            snprintf(err, size, "SSL_CTX_use_certificate_chain_file(\"%s\") "
                     "failed", tcf->certificate);
            goto failed;
        }

        if (SSL_CTX_use_PrivateKey_file(ctx, tcf->certificate_key,
                                        SSL_FILETYPE_PEM) == 0)
        {
            snprintf(err, size, "SSL_CTX_use_PrivateKey_file(\"%s\") failed",
                     tcf->certificate_key);
            goto failed;
        }
    }

    if (tcf->crl != NULL) {
        store = SSL_CTX_get_cert_store(ctx);
        if (X509_STORE_load_file(store, tcf->crl) == 0) {
            snprintf(err, size, "X509_STORE_load_file(\"%s\") failed",
                     tcf->crl);
            goto failed;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK
                             | X509_V_FLAG_CRL_CHECK_ALL);
    }

    ERR_clear_error();

    return ctx;

failed:

    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}


static SSL_CTX *
gl_tcp_ssl_ctx(void)
{
    char              err[512];
    SSL_CTX          *ctx;
    gl_tcp_worker_t  *w;

    w = gl_tcp_worker();

    if (w->ssl_ctx != NULL && w->ssl_conf == gl_vm_self->conf->serial) {
        return w->ssl_ctx;
    }

    ctx = gl_tcp_ssl_ctx_new(gl_tcp_conf(gl_vm_self->conf), err,
                             sizeof(err));
    if (ctx == NULL) {
        gl_log_error(GL_LOG_ERR, 0, "lua ssl: %s", err);
        return NULL;
    }

    if (w->ssl_ctx != NULL) {
        SSL_CTX_free(w->ssl_ctx);
    }

    w->ssl_ctx = ctx;
    w->ssl_conf = gl_vm_self->conf->serial;

    return ctx;
}


/* after the handshake: the verify result and the host name */
static void
gl_tcp_hs_done(gl_tcp_t *u)
{
    long   rc;
    X509  *cert;

    if (u->ssl_verify) {
        rc = SSL_get_verify_result(u->ssl);

        if (rc != X509_V_OK) {
            u->ssl_err = X509_verify_cert_error_string(rc);
            u->ssl_code = (int) rc;

            if (gl_tcp_log_errors()) {
                gl_log_error(GL_LOG_ERR, 0, "lua ssl certificate verify "
                             "error: (%ld: %s)", rc, u->ssl_err);
            }
            return;
        }

        if (u->ssl_name != NULL) {
            cert = SSL_get1_peer_certificate(u->ssl);

            if (cert == NULL
                || X509_check_host(cert, u->ssl_name, strlen(u->ssl_name),
                                   0, NULL) != 1)
            {
                u->ssl_err = "certificate host mismatch";

                if (gl_tcp_log_errors()) {
                    gl_log_error(GL_LOG_ERR, 0, "lua ssl certificate does "
                                 "not match host \"%s\"", u->ssl_name);
                }
            }

            if (cert != NULL) {
                X509_free(cert);
            }

            if (u->ssl_err != NULL) {
                return;
            }
        }
    }

    if (u->ssl_reuse) {
        u->ssl_session = SSL_get1_session(u->ssl);
    }
}


/* one step of the handshake: GL_OK, GL_AGAIN (wwant set), GL_ERROR
   (ssl_err set) */
static int
gl_tcp_hs_step(gl_tcp_t *u)
{
    int  n, e;

    ERR_clear_error();
    n = SSL_connect(u->ssl);

    if (n == 1) {
        gl_tcp_hs_done(u);
        return u->ssl_err != NULL ? GL_ERROR : GL_OK;
    }

    e = SSL_get_error(u->ssl, n);

    if (e == SSL_ERROR_WANT_READ) {
        u->wwant = EV_READ;
        return GL_AGAIN;
    }

    if (e == SSL_ERROR_WANT_WRITE) {
        u->wwant = EV_WRITE;
        return GL_AGAIN;
    }

    if (gl_tcp_log_errors()) {
        gl_log_error(GL_LOG_ERR, 0, "SSL_do_handshake() failed (SSL: %s)",
                     ERR_reason_error_string(ERR_peek_error())
                     ? ERR_reason_error_string(ERR_peek_error()) : "error");
    }

    ERR_clear_error();
    u->ssl_err = "handshake failed";

    return GL_ERROR;
}


static void
gl_tcp_hs_run(gl_tcp_t *u)
{
    if (gl_tcp_hs_step(u) == GL_AGAIN) {
        gl_tcp_arm(u);
        return;
    }

    gl_tcp_conn_wake(u);
}


int gl_ffi_tcp_sslhandshake(gl_tcp_t *u, SSL_SESSION *sess, int reuse,
    const char *name, size_t len, int verify, int status_req,
    STACK_OF(X509) *chain, EVP_PKEY *pkey, const char **errmsg);
int gl_ffi_tcp_sslhandshake_result(gl_tcp_t *u, SSL_SESSION **sess,
    const char **errmsg, int *code);
void gl_ffi_ssl_free_session(SSL_SESSION *sess);


int
gl_ffi_tcp_sslhandshake(gl_tcp_t *u, SSL_SESSION *sess, int reuse,
    const char *name, size_t len, int verify, int status_req,
    STACK_OF(X509) *chain, EVP_PKEY *pkey, const char **errmsg)
{
    int         rc, i;
    SSL_CTX    *ctx;
    gl_co_t    *co;
    gl_task_t  *t;

    t = gl_task_current();
    if (t == NULL) {
        return GL_FFI_NO_REQ;
    }

    if (u == NULL || u->fd == -1 || u->read_closed || u->write_closed) {
        *errmsg = "closed";
        return GL_FFI_ERROR;
    }

    if (u->task != t || u->serial != t->serial) {
        *errmsg = "bad request";
        return GL_FFI_ERROR;
    }

    if (u->conn_state != GL_TCP_CONN_NONE) {
        *errmsg = "socket busy connecting";
        return GL_FFI_ERROR;
    }

    if (u->rco != NULL) {
        *errmsg = "socket busy reading";
        return GL_FFI_ERROR;
    }

    if (u->wco != NULL) {
        *errmsg = "socket busy writing";
        return GL_FFI_ERROR;
    }

    if (u->body) {
        *errmsg = "not supported for downstream sockets";
        return GL_FFI_ERROR;
    }

    u->ssl_err = NULL;
    u->ssl_code = 0;
    u->ssl_reuse = 1;

    if (u->ssl != NULL && SSL_is_init_finished(u->ssl)) {
        /* a connection from the pool: already done */
        if (sess != NULL) {
            return GL_FFI_DONE;
        }

        u->ssl_reuse = reuse ? 1 : 0;
        if (u->ssl_reuse) {
            u->ssl_session = SSL_get1_session(u->ssl);
        }

        return GL_FFI_OK;
    }

    if (status_req) {
        *errmsg = "no OCSP support";
        return GL_FFI_ERROR;
    }

    ctx = gl_tcp_ssl_ctx();
    if (ctx == NULL) {
        *errmsg = "failed to create ssl connection";
        return GL_FFI_ERROR;
    }

    if (u->ssl != NULL) {
        gl_tcp_ssl_free(u->ssl);
    }

    u->ssl = SSL_new(ctx);
    if (u->ssl == NULL || SSL_set_fd(u->ssl, u->fd) == 0) {
        ERR_clear_error();
        *errmsg = "failed to create ssl connection";
        return GL_FFI_ERROR;
    }

    if (chain != NULL) {
        /* setclientcert's: the certificate, its chain, its key */
        if (sk_X509_num(chain) < 1) {
            *errmsg = "invalid client certificate chain";
            return GL_FFI_ERROR;
        }

        if (SSL_use_certificate(u->ssl, sk_X509_value(chain, 0)) == 0) {
            ERR_clear_error();
            *errmsg = "ssl set client certificate failed";
            return GL_FFI_ERROR;
        }

        for (i = 1; i < sk_X509_num(chain); i++) {
            if (SSL_add1_chain_cert(u->ssl, sk_X509_value(chain, i)) == 0) {
                ERR_clear_error();
                *errmsg = "ssl set client intermediate certificate failed";
                return GL_FFI_ERROR;
            }
        }

        if (pkey == NULL || SSL_use_PrivateKey(u->ssl, pkey) == 0) {
            ERR_clear_error();
            *errmsg = "ssl set client private key failed";
            return GL_FFI_ERROR;
        }
    }

    if (sess != NULL) {
        if (SSL_set_session(u->ssl, sess) == 0) {
            ERR_clear_error();
            *errmsg = "ssl set session failed";
            return GL_FFI_ERROR;
        }

    } else {
        u->ssl_reuse = reuse ? 1 : 0;
    }

    free(u->ssl_name);
    u->ssl_name = NULL;

    if (name != NULL && len > 0) {
        u->ssl_name = malloc(len + 1);
        if (u->ssl_name == NULL) {
            *errmsg = "no memory";
            return GL_FFI_ERROR;
        }
        memcpy(u->ssl_name, name, len);
        u->ssl_name[len] = '\0';

        if (SSL_set_tlsext_host_name(u->ssl, u->ssl_name) == 0) {
            ERR_clear_error();
            *errmsg = "SSL_set_tlsext_host_name failed";
            return GL_FFI_ERROR;
        }
    }

    u->ssl_verify = verify ? 1 : 0;

    rc = gl_tcp_hs_step(u);

    if (rc == GL_OK) {
        return GL_FFI_OK;
    }

    if (rc == GL_ERROR) {
        /* the result (gl_ffi_tcp_sslhandshake_result) says what failed */
        u->ssl_reuse = 0;
        gl_tcp_finalize(u);
        return GL_FFI_OK;
    }

    co = gl_co_current();
    if (co == NULL) {
        *errmsg = "no coroutine";
        return GL_FFI_ERROR;
    }

    u->conn_state = GL_TCP_CONN_HANDSHAKE;
    u->wco = co;
    gl_co_wait(co, &gl_tcp_conn_ops, -1);
    co->wait.data = u;
    gl_co_yielding(co);
    gl_tcp_timer_start(u, &u->wtimer, u->connect_timeout);
    gl_tcp_arm(u);

    return GL_FFI_AGAIN;
}


int
gl_ffi_tcp_sslhandshake_result(gl_tcp_t *u, SSL_SESSION **sess,
    const char **errmsg, int *code)
{
    *code = 0;

    if (u->ssl_err != NULL) {
        *errmsg = u->ssl_err;
        *code = u->ssl_code;
        u->ssl_err = NULL;
        u->ssl_code = 0;
        return GL_FFI_ERROR;
    }

    *sess = u->ssl_session;
    u->ssl_session = NULL;

    return GL_FFI_OK;
}


void
gl_ffi_ssl_free_session(SSL_SESSION *sess)
{
    SSL_SESSION_free(sess);
}


/* ngx.req.socket(): the request body as a stream, from what FastCGI's
   STDIN brought (kept in memory or in a file by the request) */

static int
gl_tcp_body_fill(gl_tcp_t *u)
{
    size_t          n;
    ssize_t         rc;
    gl_request_t   *r;

    if (u->http == NULL) {
        u->ft |= GL_TCP_FT_CLOSED;
        return GL_ERROR;
    }

    r = &u->http->r;

    if (r->body_error) {
        u->ft |= GL_TCP_FT_ERROR;
        return GL_ERROR;
    }

    if (u->body_off >= r->body_total) {
        if (r->stdin_done) {
            return 0;
        }

        u->rwant = EV_READ;
        return GL_AGAIN;
    }

    n = gl_min(r->body_total - u->body_off, u->bufsize);

    if (r->body_fd != -1) {
        rc = pread(r->body_fd, u->buf, n, (off_t) u->body_off);
        if (rc <= 0) {
            u->err = rc == 0 ? 0 : errno;
            u->ft |= GL_TCP_FT_ERROR;
            return GL_ERROR;
        }
        n = (size_t) rc;

    } else {
        memcpy(u->buf, r->body + u->body_off, n);
    }

    u->body_off += n;

    return (int) n;
}


static void
gl_tcp_body_stdin(void *data)
{
    gl_tcp_t  *u;

    u = data;

    if (u->rco != NULL) {
        gl_tcp_read_run(u);
    }
}


static int
gl_tcp_req_socket(lua_State *L)
{
    int                 n, raw;
    gl_tcp_t           *u;
    gl_http_t          *h;
    gl_conf_t          *conf;
    gl_request_t       *r;
    const gl_param_t   *p;

    n = lua_gettop(L);

    if (n == 0) {
        raw = 0;

    } else if (n == 1) {
        raw = lua_toboolean(L, 1);
        lua_pop(L, 1);

    } else {
        return luaL_error(L, "expecting zero arguments, but got %d", n);
    }

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT);
    r = &h->r;

    if (raw) {
        /* the client's connection is nginx's: FastCGI hands over the
           body, not the socket */
        lua_pushnil(L);
        lua_pushliteral(L, "raw request socket not supported over FastCGI");
        return 2;
    }

    if (r->body_read || h->req_socket) {
        lua_pushnil(L);
        lua_pushliteral(L, "request body already exists");
        return 2;
    }

    if (r->body_discard) {
        lua_pushnil(L);
        lua_pushliteral(L, "request body discarded");
        return 2;
    }

    p = gl_request_param(r, "HTTP_TRANSFER_ENCODING", 22);

    if (p != NULL && p->value_len == 7
        && strncasecmp(p->value, "chunked", 7) == 0)
    {
        lua_pushnil(L);
        lua_pushliteral(L, "chunked request bodies not supported yet");
        return 2;
    }

    p = gl_request_param(r, "CONTENT_LENGTH", 14);

    if (p == NULL || p->value_len == 0 || strtoll(p->value, NULL, 10) <= 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "no body");
        return 2;
    }

    h->req_socket = 1;

    lua_createtable(L, 2, 3);
    lua_pushlightuserdata(L, &gl_tcp_req_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);

    u = lua_newuserdata(L, sizeof(gl_tcp_t));
    lua_pushlightuserdata(L, &gl_tcp_udata_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);
    lua_rawseti(L, -2, GL_TCP_CTX);

    gl_tcp_init(u);

    conf = gl_vm_self->conf;

    u->body = 1;
    u->used = 1;
    u->http = h;
    u->task = &h->task;
    u->serial = h->task.serial;
    u->connect_timeout = (int) (conf->socket_connect_timeout * 1000);
    u->send_timeout = (int) (conf->socket_send_timeout * 1000);
    u->read_timeout = (int) (conf->socket_read_timeout * 1000);

    h->stdin_handler = gl_tcp_body_stdin;
    h->stdin_data = u;

    gl_task_cleanup_add(&h->task, &u->cleanup);

    return 1;
}


/* ngx.socket.tcp() */

static int
gl_tcp_new(lua_State *L)
{
    if (lua_gettop(L) != 0) {
        return luaL_error(L, "expecting zero arguments, but got %d",
                          lua_gettop(L));
    }

    (void) gl_lua_check_context(L, GL_CTX_COSOCKET);

    lua_createtable(L, 5, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, GL_TCP_MT);
    lua_setmetatable(L, -2);

    return 1;
}


static void
gl_tcp_inject(lua_State *L)
{
    const luaL_Reg  *f;

    static const luaL_Reg  tcp_methods[] = {
        { "bind", gl_tcp_bind },
        { "connect", gl_tcp_connect },
        { "receive", gl_tcp_receive },
        { "receiveany", gl_tcp_receiveany },
        { "receiveuntil", gl_tcp_receiveuntil },
        { "send", gl_tcp_send },
        { "close", gl_tcp_close },
        { "settimeout", gl_tcp_settimeout },
        { "settimeouts", gl_tcp_settimeouts },
        { "getreusedtimes", gl_tcp_getreusedtimes },
        { "setkeepalive", gl_tcp_setkeepalive },
        { "setoption", gl_tcp_setoption },
        { "getoption", gl_tcp_getoption },
        { NULL, NULL }
    };

    static const luaL_Reg  req_methods[] = {
        { "receive", gl_tcp_receive },
        { "receiveany", gl_tcp_receiveany },
        { "receiveuntil", gl_tcp_receiveuntil },
        { "settimeout", gl_tcp_settimeout },
        { "settimeouts", gl_tcp_settimeouts },
        { NULL, NULL }
    };

    /* ngx.socket */
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, gl_tcp_new);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "tcp");
    lua_setfield(L, -2, "stream");
    lua_setfield(L, -2, "socket");

    /* the object's metatable, also for lua/golapis/socket.lua */
    lua_createtable(L, 0, 16);
    for (f = tcp_methods; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_setfield(L, LUA_REGISTRYINDEX, GL_TCP_MT);

    lua_pushlightuserdata(L, &gl_tcp_req_mt_key);
    lua_createtable(L, 0, 6);
    for (f = req_methods; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_tcp_udata_key);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_tcp_udata_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_tcp_pool_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_tcp_pool_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_tcp_pattern_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_tcp_pattern_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_tcp_pools_key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);

    /* ngx.req.socket */
    lua_getfield(L, -1, "req");
    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, gl_tcp_req_socket);
        lua_setfield(L, -2, "socket");
    }
    lua_pop(L, 1);

    /* ngx.socket.connect: one line of Lua, named as upstream's, so that
       its errors carry the same position */
    lua_getfield(L, -1, "socket");
    if (luaL_loadbuffer(L, "local s = ngx.socket.tcp() local ok, err = "
                        "s:connect(...) if not ok then return nil, err end "
                        "return s", sizeof("local s = ngx.socket.tcp() "
                        "local ok, err = s:connect(...) if not ok then "
                        "return nil, err end return s") - 1,
                        "=ngx.socket.connect") == 0)
    {
        lua_setfield(L, -2, "connect");

    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    /* the TLS methods, in Lua */
    if (gl_lua_lib_load(L, "golapis.socket", NULL) != GL_OK) {
        gl_log_error(GL_LOG_ALERT, 0, "socket api: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }

    lua_getfield(L, -2, "socket");
    lua_getfield(L, LUA_REGISTRYINDEX, GL_TCP_MT);

    if (lua_pcall(L, 2, 0, 0) != 0) {
        gl_log_error(GL_LOG_ALERT, 0, "socket api: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}


/* the module */

static int
gl_tcp_init_worker(gl_vm_t *vm)
{
    gl_tcp_worker_t  **slot, *w;

    w = calloc(1, sizeof(gl_tcp_worker_t));
    if (w == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "calloc() failed");
        return GL_ERROR;
    }

    slot = (gl_tcp_worker_t **) gl_vm_module_data(vm,
                                                  &gl_lua_socket_tcp_module);
    *slot = w;

    return GL_OK;
}


static void
gl_tcp_exit_worker(gl_vm_t *vm)
{
    gl_tcp_worker_t  **slot, *w;

    slot = (gl_tcp_worker_t **) gl_vm_module_data(vm,
                                                  &gl_lua_socket_tcp_module);
    w = *slot;
    if (w == NULL) {
        return;
    }

    if (w->ssl_ctx != NULL) {
        SSL_CTX_free(w->ssl_ctx);
    }

    free(w);
    *slot = NULL;
}


static void
gl_tcp_stop(gl_vm_t *vm)
{
    gl_tcp_worker_t  **slot;

    slot = (gl_tcp_worker_t **) gl_vm_module_data(vm,
                                                  &gl_lua_socket_tcp_module);
    if (*slot != NULL) {
        (*slot)->stopping = 1;
    }

    gl_tcp_pools_close(gl_vm_state(vm), 1);
}


static void
gl_tcp_retire(gl_vm_t *vm, void *gen)
{
    (void) vm;

    gl_tcp_pools_close(((gl_lua_gen_t *) gen)->L, 1);
}


static int
gl_tcp_set_protocols(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int             i, j;
    gl_tcp_conf_t  *tcf;

    static const struct {
        const char  *name;
        int          bit;
    } protos[] = {
        { "SSLv2", GL_TCP_SSL_SSLv2 },
        { "SSLv3", GL_TCP_SSL_SSLv3 },
        { "TLSv1", GL_TCP_SSL_TLSv1 },
        { "TLSv1.1", GL_TCP_SSL_TLSv1_1 },
        { "TLSv1.2", GL_TCP_SSL_TLSv1_2 },
        { "TLSv1.3", GL_TCP_SSL_TLSv1_3 },
        { NULL, 0 }
    };

    (void) cmd;
    tcf = conf;

    if (tcf->protocols != 0) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate",
                             cp->args[0]);
    }

    for (i = 1; i < cp->nargs; i++) {
        for (j = 0; protos[j].name != NULL; j++) {
            if (strcmp(cp->args[i], protos[j].name) == 0) {
                tcf->protocols |= protos[j].bit;
                break;
            }
        }

        if (protos[j].name == NULL) {
            return gl_conf_error(cp, "invalid value \"%s\" in \"%s\"",
                                 cp->args[i], cp->args[0]);
        }
    }

    return GL_OK;
}


/* the defaults; and the lua_ssl_* files are read now, so that a bad one
   refuses the config (at start, at SIGHUP, and golapis -t) rather than
   failing each handshake */
static const char *
gl_tcp_init_conf(gl_conf_t *conf, void *mconf)
{
    char            err[512];
    SSL_CTX        *ctx;
    gl_tcp_conf_t  *tcf = mconf;

    (void) conf;

    gl_conf_init_value(tcf->verify_depth, 1);

    if (tcf->protocols == 0) {
        /* lua-nginx-module 0.10.23's default: no TLSv1.3 */
        tcf->protocols = GL_TCP_SSL_TLSv1 | GL_TCP_SSL_TLSv1_1
                         | GL_TCP_SSL_TLSv1_2;
    }

    if ((tcf->certificate == NULL) != (tcf->certificate_key == NULL)) {
        return "lua_ssl_certificate and lua_ssl_certificate_key go together";
    }

    ctx = gl_tcp_ssl_ctx_new(tcf, err, sizeof(err));
    if (ctx == NULL) {
        return gl_conf_errf("lua ssl: %s", err);
    }

    SSL_CTX_free(ctx);

    return NULL;
}


static const gl_conf_bounds_t  gl_tcp_depth_bounds = { 0, 100, NULL };

static const gl_command_t  gl_tcp_commands[] = {

    { "lua_ssl_trusted_certificate", GL_CONF_TAKE1, gl_conf_set_path_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, trusted_certificate), NULL },

    { "lua_ssl_certificate", GL_CONF_TAKE1, gl_conf_set_path_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, certificate), NULL },

    { "lua_ssl_certificate_key", GL_CONF_TAKE1, gl_conf_set_path_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, certificate_key), NULL },

    { "lua_ssl_crl", GL_CONF_TAKE1, gl_conf_set_path_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, crl), NULL },

    { "lua_ssl_verify_depth", GL_CONF_TAKE1, gl_conf_set_num_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, verify_depth),
      &gl_tcp_depth_bounds },

    { "lua_ssl_ciphers", GL_CONF_TAKE1, gl_conf_set_str_slot,
      GL_CONF_MODULE, offsetof(gl_tcp_conf_t, ciphers), NULL },

    { "lua_ssl_protocols", GL_CONF_1MORE, gl_tcp_set_protocols,
      GL_CONF_MODULE, 0, NULL },

    gl_null_command
};


gl_module_t  gl_lua_socket_tcp_module = {
    .name = "socket_tcp",
    .commands = gl_tcp_commands,
    .conf_size = sizeof(gl_tcp_conf_t),
    .init_conf = gl_tcp_init_conf,
    .inject = gl_tcp_inject,
    .init_worker = gl_tcp_init_worker,
    .exit_worker = gl_tcp_exit_worker,
    .stop = gl_tcp_stop,
    .retire = gl_tcp_retire,
};
