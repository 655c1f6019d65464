/*
 * The status page and ping: status_uri and ping_uri, answered before any
 * Lua runs for the request, and ngx.server_status() (golapis.server_status)
 * for Lua code.  docs/status.md has the fields and formats.
 *
 * Everything shown comes from the counters of gl_stat.h (each worker's
 * slot, read with relaxed loads: a worker's values may be a few events
 * old, never torn), from the shared dicts (one shard lock at a time) and
 * from the kernel (the listen sockets' queues, through sock_diag).
 * A snapshot is taken once per answer, then written out as plain text,
 * JSON, Prometheus text or a Lua table; JSON and the Lua table come from
 * one walk of it (gl_status_walk), so they have the same structure.
 *
 * The Lua function is not ngx.status: that is the response status, a
 * number that scripts read and set.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_http.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_request.h"
#include "gl_shdict.h"
#include "gl_stat.h"
#include "gl_watch.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

typedef struct {
    char               *status_uri;
    char               *ping_uri;
} gl_status_conf_t;

extern gl_module_t  gl_lua_status_module;


/* a worker's metrics, as one table drives every format */

typedef struct {
    const char         *name;       /* JSON, Lua, text */
    const char         *prom;       /* Prometheus, "_total" left out */
    const char         *help;
    size_t              offset;     /* in gl_stat_worker_t */
    unsigned            counter:1;  /* else a gauge */
    unsigned            total:1;    /* summed over the workers */
} gl_status_metric_t;

#define gl_status_field(f)  offsetof(gl_stat_worker_t, f)

static const gl_status_metric_t  gl_status_metrics[] = {
    { "starts", "golapis_worker_starts",
      "Workers started in the slot (more than one: replaced after a panic)",
      gl_status_field(starts), 1, 1 },
    { "connections", "golapis_connections",
      "FastCGI connections taken by the worker",
      gl_status_field(conns), 1, 1 },
    { "connections_open", "golapis_connections_open",
      "FastCGI connections open",
      gl_status_field(conns_open), 0, 1 },
    { "connections_refused", "golapis_connections_refused",
      "Connections closed at once because worker_connections was reached",
      gl_status_field(conns_refused), 1, 1 },
    { "client_timeouts", "golapis_client_timeouts",
      "Connections closed by client_timeout",
      gl_status_field(client_timeouts), 1, 1 },
    { "keepalive_timeouts", "golapis_keepalive_timeouts",
      "Idle connections closed by keepalive_timeout",
      gl_status_field(keepalive_closes), 1, 1 },
    { "requests", "golapis_requests",
      "Requests received",
      gl_status_field(requests), 1, 1 },
    { "requests_active", "golapis_requests_active",
      "Requests in flight",
      gl_status_field(requests_active), 0, 1 },
    { "lua_generation", "golapis_lua_generation",
      "Generation of the worker's Lua state (1, then one more per reload)",
      gl_status_field(lua_gen), 0, 0 },
    { "lua_reloads", "golapis_lua_reloads",
      "Reloads of the Lua code",
      gl_status_field(lua_reloads), 1, 1 },
    { "lua_reloads_failed", "golapis_lua_reloads_failed",
      "Reloads of the Lua code that failed (the old code went on)",
      gl_status_field(lua_reloads_failed), 1, 1 },
    { "lua_heap_bytes", "golapis_lua_heap_bytes",
      "Bytes of the worker's Lua heaps, as of its last run of Lua code",
      gl_status_field(lua_heap), 0, 1 },
    { "lua_interrupted", "golapis_lua_interrupted",
      "Runs of Lua code interrupted by lua_max_run_time",
      gl_status_field(lua_interrupted), 1, 1 },
    { "lua_block_warnings", "golapis_lua_block_warnings",
      "Runs of Lua code that went past lua_block_warn_time",
      gl_status_field(lua_block_warnings), 1, 1 },
    { "timers_pending", "golapis_timers_pending",
      "Timers waiting to run (ngx.timer.at, ngx.timer.every)",
      gl_status_field(timers_pending), 0, 1 },
    { "timers_running", "golapis_timers_running",
      "Timer handlers running",
      gl_status_field(timers_running), 0, 1 },
    { "tcp_pools", "golapis_tcp_pools",
      "Connection pools of the cosockets",
      gl_status_field(tcp_pools), 0, 1 },
    { "tcp_pool_idle", "golapis_tcp_pool_idle_connections",
      "Idle connections kept in the cosocket pools",
      gl_status_field(tcp_idle), 0, 1 },
};

#define GL_STATUS_METRICS  gl_nelems(gl_status_metrics)

static const char  *gl_status_classes[GL_STAT_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"
};


/* a snapshot */

typedef struct {
    int                 id;
    const char         *state;
    int64_t             v[GL_STATUS_METRICS];
} gl_status_worker_t;

typedef struct {
    const char         *name;
    size_t              name_len;
    size_t              capacity;
    size_t              free_space;
    size_t              keys;
} gl_status_dict_t;

/* a listen socket's queue of connections not accepted yet: the kernel's
   sock_diag knows it (Linux); -1: not known */
typedef struct {
    const char         *text;
    uint64_t            ino;
    int64_t             queue;
    int64_t             backlog;
} gl_status_listen_t;

typedef struct {
    double              start_time;
    double              uptime;
    long                pid;
    int                 workers_conf;
    uint64_t            accepted;
    uint64_t            denied;
    uint64_t            accept_errors;
    uint64_t            stuck;
    uint64_t            retired;

    int64_t             total[GL_STATUS_METRICS];
    uint64_t            responses[GL_STAT_CLASSES];
    uint64_t            latency[GL_STAT_LATENCY_BOUNDS + 1];   /* per
                                                   bucket, not cumulative */
    uint64_t            latency_count;
    double              latency_sum;

    gl_status_worker_t *workers;
    int                 nworkers;
    gl_status_dict_t   *dicts;
    size_t              ndicts;
    gl_status_listen_t  listen[GL_CONF_MAX_LISTEN];
    int                 nlisten;
} gl_status_t;


static const char *
gl_status_state(int id, int state)
{
    switch (state) {
    case GL_STAT_RETIRED:
        return "retired";
    case GL_STAT_EXITED:
        return "exited";
    case GL_STAT_UNUSED:
        return "unused";
    default:
        break;
    }

    if (gl_watch_stuck(id)) {
        return "stuck";
    }

    return state == GL_STAT_EXITING ? "exiting" : "running";
}


#ifdef __linux__

/*
 * One sock_diag dump: req (len bytes) goes to the kernel, each answer
 * to fn.  A few listening sockets of the host, answered at once: the
 * worker waits microseconds.
 */
static void
gl_status_diag(void *req, size_t len,
    void (*fn)(gl_status_t *s, struct nlmsghdr *h), gl_status_t *s)
{
    int                 fd, done;
    char                buf[16384];
    ssize_t             n;
    struct nlmsghdr    *h;
    struct sockaddr_nl  nl;
    struct timeval      tv;

    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd == -1) {
        return;
    }

    tv.tv_sec = 0;
    tv.tv_usec = 100000;
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    memset(&nl, 0, sizeof(nl));
    nl.nl_family = AF_NETLINK;

    if (sendto(fd, req, len, 0, (struct sockaddr *) &nl, sizeof(nl))
        != (ssize_t) len)
    {
        close(fd);
        return;
    }

    for (done = 0; !done; ) {
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }

        for (h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n);
             h = NLMSG_NEXT(h, n))
        {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = 1;
                break;
            }

            fn(s, h);
        }
    }

    close(fd);
}


/* a listening socket of the kernel's: ours if its inode is one of our
   sockets' (an address or a path alone could be another process's) */
static void
gl_status_diag_found(gl_status_t *s, uint64_t ino, int64_t queue,
    int64_t backlog)
{
    int  i;

    for (i = 0; i < s->nlisten; i++) {
        if (s->listen[i].ino == ino && ino != 0) {
            s->listen[i].queue = queue;
            s->listen[i].backlog = backlog;
        }
    }
}


static void
gl_status_diag_unix(gl_status_t *s, struct nlmsghdr *h)
{
    int                      len;
    struct rtattr           *a;
    struct unix_diag_msg    *m;
    struct unix_diag_rqlen  *rq;

    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m))) {
        return;
    }

    m = NLMSG_DATA(h);
    len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
    rq = NULL;

    for (a = (struct rtattr *) (m + 1); RTA_OK(a, len);
         a = RTA_NEXT(a, len))
    {
        if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(*rq)) {
            rq = RTA_DATA(a);
        }
    }

    if (rq != NULL) {
        gl_status_diag_found(s, m->udiag_ino, rq->udiag_rqueue,
                             rq->udiag_wqueue);
    }
}


static void
gl_status_diag_tcp(gl_status_t *s, struct nlmsghdr *h)
{
    struct inet_diag_msg  *m;

    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m))) {
        return;
    }

    m = NLMSG_DATA(h);
    gl_status_diag_found(s, m->idiag_inode, m->idiag_rqueue,
                         m->idiag_wqueue);
}


static void
gl_status_diag_listen(gl_status_t *s)
{
    int  family;
    struct {
        struct nlmsghdr          h;
        struct unix_diag_req     r;
    } ureq;
    struct {
        struct nlmsghdr          h;
        struct inet_diag_req_v2  r;
    } ireq;

    memset(&ureq, 0, sizeof(ureq));
    ureq.h.nlmsg_len = sizeof(ureq);
    ureq.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    ureq.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    ureq.r.sdiag_family = AF_UNIX;
    ureq.r.udiag_states = 1 << TCP_LISTEN;
    ureq.r.udiag_show = UDIAG_SHOW_RQLEN;

    gl_status_diag(&ureq, sizeof(ureq), gl_status_diag_unix, s);

    for (family = 0; family < 2; family++) {
        memset(&ireq, 0, sizeof(ireq));
        ireq.h.nlmsg_len = sizeof(ireq);
        ireq.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        ireq.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        ireq.r.sdiag_family = family ? AF_INET6 : AF_INET;
        ireq.r.sdiag_protocol = IPPROTO_TCP;
        ireq.r.idiag_states = 1 << TCP_LISTEN;

        gl_status_diag(&ireq, sizeof(ireq), gl_status_diag_tcp, s);
    }
}

#endif


/* each listen socket's queue: the sockets open (a reload cannot change
   them, whatever its config's listen lines say) */
static void
gl_status_listen(gl_status_t *s)
{
    int  i;

    s->nlisten = gl_min(gl_stat.nlisten, GL_CONF_MAX_LISTEN);

    for (i = 0; i < s->nlisten; i++) {
        s->listen[i].text = gl_stat.listen[i].text;
        s->listen[i].ino = gl_stat.listen[i].ino;
        s->listen[i].queue = -1;
        s->listen[i].backlog = -1;
    }

#ifdef __linux__
    gl_status_diag_listen(s);
#endif
}


/* GL_ERROR on no memory (nothing to free then) */
static int
gl_status_collect(gl_status_t *s, gl_conf_t *conf)
{
    int                  i, j;
    char                *field;
    size_t               k;
    int64_t              v;
    uint64_t             us;
    gl_shdict_t         *d;
    gl_stat_worker_t    *st;
    gl_status_worker_t  *w;

    memset(s, 0, sizeof(gl_status_t));

    s->start_time = gl_stat.start_time;
    s->uptime = gl_stat_now() - gl_stat.start_mono;
    s->pid = (long) getpid();
    s->workers_conf = conf->workers;
    s->accepted = gl_stat_get(&gl_stat.accepted);
    s->denied = gl_stat_get(&gl_stat.denied);
    s->accept_errors = gl_stat_get(&gl_stat.accept_errors);
    s->stuck = gl_stat_get(&gl_stat.workers_stuck);
    s->retired = gl_stat_get(&gl_stat.workers_retired);

    s->nworkers = atomic_load(&gl_stat.nworkers);
    s->ndicts = gl_shdict_count();

    s->workers = calloc(s->nworkers + 1, sizeof(gl_status_worker_t));
    s->dicts = calloc(s->ndicts + 1, sizeof(gl_status_dict_t));

    if (s->workers == NULL || s->dicts == NULL) {
        free(s->workers);
        free(s->dicts);
        return GL_ERROR;
    }

    us = 0;

    for (i = 0; i < s->nworkers; i++) {
        st = gl_stat_worker(i);
        w = &s->workers[i];
        w->id = i;
        w->state = gl_status_state(i, atomic_load_explicit(&st->state,
                                                memory_order_relaxed));

        for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
            field = (char *) st + gl_status_metrics[j].offset;
            v = gl_status_metrics[j].counter
                ? (int64_t) gl_stat_get((gl_stat_counter_t *) field)
                : gl_stat_get((gl_stat_gauge_t *) field);
            w->v[j] = v;

            if (gl_status_metrics[j].total) {
                s->total[j] += v;
            }
        }

        for (j = 0; j < GL_STAT_CLASSES; j++) {
            s->responses[j] += gl_stat_get(&st->responses[j]);
        }

        for (j = 0; j <= GL_STAT_LATENCY_BOUNDS; j++) {
            s->latency[j] += gl_stat_get(&st->latency[j]);
            s->latency_count += gl_stat_get(&st->latency[j]);
        }

        us += gl_stat_get(&st->latency_us);
    }

    s->latency_sum = us / 1e6;

    /* this worker's own heap is known to the byte now */
    if (gl_vm_self != NULL && gl_vm_self->id >= 0
        && gl_vm_self->id < s->nworkers)
    {
        for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
            if (gl_status_metrics[j].offset == gl_status_field(lua_heap)) {
                v = (int64_t) gl_vm_self->stat->lua_heap_own;
                s->total[j] += v - s->workers[gl_vm_self->id].v[j];
                s->workers[gl_vm_self->id].v[j] = v;
            }
        }
    }

    for (k = 0; k < s->ndicts; k++) {
        d = gl_shdict_nth(k);
        if (d == NULL) {
            s->ndicts = k;
            break;
        }

        s->dicts[k].name = gl_shdict_name(d, &s->dicts[k].name_len);
        s->dicts[k].capacity = gl_shdict_capacity(d);
        s->dicts[k].free_space = gl_shdict_free_space(d);
        s->dicts[k].keys = gl_shdict_nkeys(d);
    }

    gl_status_listen(s);

    return GL_OK;
}


static void
gl_status_free(gl_status_t *s)
{
    free(s->workers);
    free(s->dicts);
}


/* an output buffer */

typedef struct {
    char               *data;
    size_t              len;
    size_t              cap;
    int                 nomem;
} gl_status_buf_t;


static void
gl_status_grow(gl_status_buf_t *b, size_t need)
{
    char    *p;
    size_t   cap;

    if (b->nomem || b->len + need < b->cap) {
        return;
    }

    cap = gl_max(b->cap * 2, b->len + need + 4096);
    p = realloc(b->data, cap);

    if (p == NULL) {
        b->nomem = 1;
        return;
    }

    b->data = p;
    b->cap = cap;
}


static void
gl_status_add(gl_status_buf_t *b, const char *s, size_t len)
{
    gl_status_grow(b, len + 1);

    if (b->nomem) {
        return;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
}


static void gl_status_printf(gl_status_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gl_status_printf(gl_status_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0) {
        return;
    }

    gl_status_grow(b, (size_t) n + 1);

    if (b->nomem) {
        return;
    }

    va_start(ap, fmt);
    (void) vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);

    b->len += n;
}


/* "1.0", "0.005", "2.5", "10.0": a float as Prometheus's clients write
   a bucket's bound */
static void
gl_status_float(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%g", v);

    if (strpbrk(buf, ".e") == NULL) {
        strncat(buf, ".0", size - strlen(buf) - 1);
    }
}


/* the walk that JSON and the Lua table share */

typedef struct gl_status_out_s  gl_status_out_t;

struct gl_status_out_s {
    /* a table (array or not) under key (NULL in an array), and its end */
    void              (*open)(gl_status_out_t *o, const char *key,
                              size_t klen, int array);
    void              (*close)(gl_status_out_t *o);
    void              (*integer)(gl_status_out_t *o, const char *key,
                                 int64_t v);
    void              (*number)(gl_status_out_t *o, const char *key,
                                double v);
    void              (*string)(gl_status_out_t *o, const char *key,
                                const char *s);

    int                 depth;
    int                 array[8];
    int                 n[8];
    const char         *key[8];     /* the Lua tables' keys in their
                                       parents */
    size_t              klen[8];
    gl_status_buf_t    *buf;
    lua_State          *L;
};


static void
gl_status_walk(gl_status_out_t *o, gl_status_t *s)
{
    int      i, j;
    size_t   k;
    uint64_t cum;

    o->open(o, NULL, 0, 0);

    o->string(o, "version", GL_VERSION);
    o->integer(o, "pid", s->pid);
    o->number(o, "start_time", s->start_time);
    o->number(o, "uptime", s->uptime);
    o->integer(o, "workers_configured", s->workers_conf);
    o->integer(o, "workers_stuck", (int64_t) s->stuck);
    o->integer(o, "workers_retired", (int64_t) s->retired);
    o->integer(o, "connections_accepted", (int64_t) s->accepted);
    o->integer(o, "connections_denied", (int64_t) s->denied);
    o->integer(o, "accept_errors", (int64_t) s->accept_errors);

    for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
        if (gl_status_metrics[j].total) {
            o->integer(o, gl_status_metrics[j].name, s->total[j]);
        }
    }

    o->open(o, "responses", 9, 0);
    for (j = 0; j < GL_STAT_CLASSES; j++) {
        o->integer(o, gl_status_classes[j], (int64_t) s->responses[j]);
    }
    o->close(o);

    o->open(o, "latency", 7, 0);
    o->open(o, "buckets", 7, 1);
    cum = 0;
    for (j = 0; j < GL_STAT_LATENCY_BOUNDS; j++) {
        cum += s->latency[j];
        o->open(o, NULL, 0, 0);
        o->number(o, "le", gl_stat_latency_le[j]);
        o->integer(o, "count", (int64_t) cum);
        o->close(o);
    }
    o->close(o);
    o->integer(o, "count", (int64_t) s->latency_count);
    o->number(o, "sum", s->latency_sum);
    o->close(o);

    o->open(o, "listen", 6, 1);
    for (i = 0; i < s->nlisten; i++) {
        o->open(o, NULL, 0, 0);
        o->string(o, "address", s->listen[i].text);
        if (s->listen[i].queue >= 0) {
            o->integer(o, "queue", s->listen[i].queue);
            o->integer(o, "backlog", s->listen[i].backlog);
        }
        o->close(o);
    }
    o->close(o);

    o->open(o, "shared_dicts", 12, 0);
    for (k = 0; k < s->ndicts; k++) {
        o->open(o, s->dicts[k].name, s->dicts[k].name_len, 0);
        o->integer(o, "capacity", (int64_t) s->dicts[k].capacity);
        o->integer(o, "free_space", (int64_t) s->dicts[k].free_space);
        o->integer(o, "keys", (int64_t) s->dicts[k].keys);
        o->close(o);
    }
    o->close(o);

    o->open(o, "workers", 7, 1);
    for (i = 0; i < s->nworkers; i++) {
        o->open(o, NULL, 0, 0);
        o->integer(o, "id", s->workers[i].id);
        o->string(o, "state", s->workers[i].state);
        for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
            o->integer(o, gl_status_metrics[j].name, s->workers[i].v[j]);
        }
        o->close(o);
    }
    o->close(o);

    o->close(o);
}


/* JSON */

static void
gl_status_json_str(gl_status_buf_t *b, const char *s, size_t len)
{
    size_t          i;
    unsigned char   c;

    gl_status_add(b, "\"", 1);

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            gl_status_printf(b, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            gl_status_printf(b, "\\u%04x", c);
        } else {
            gl_status_add(b, (char *) &s[i], 1);
        }
    }

    gl_status_add(b, "\"", 1);
}


/* a comma and the key, before a value */
static void
gl_status_json_key(gl_status_out_t *o, const char *key, size_t klen)
{
    if (o->depth == 0) {
        return;
    }

    if (o->n[o->depth - 1]++ > 0) {
        gl_status_add(o->buf, ",", 1);
    }

    if (!o->array[o->depth - 1]) {
        gl_status_json_str(o->buf, key, klen);
        gl_status_add(o->buf, ":", 1);
    }
}


static void
gl_status_json_open(gl_status_out_t *o, const char *key, size_t klen,
    int array)
{
    gl_status_json_key(o, key, klen);
    gl_status_add(o->buf, array ? "[" : "{", 1);

    o->array[o->depth] = array;
    o->n[o->depth] = 0;
    o->depth++;
}


static void
gl_status_json_close(gl_status_out_t *o)
{
    o->depth--;
    gl_status_add(o->buf, o->array[o->depth] ? "]" : "}", 1);
}


static void
gl_status_json_integer(gl_status_out_t *o, const char *key, int64_t v)
{
    gl_status_json_key(o, key, key ? strlen(key) : 0);
    gl_status_printf(o->buf, "%lld", (long long) v);
}


static void
gl_status_json_number(gl_status_out_t *o, const char *key, double v)
{
    gl_status_json_key(o, key, key ? strlen(key) : 0);
    gl_status_printf(o->buf, "%.15g", v);
}


static void
gl_status_json_string(gl_status_out_t *o, const char *key, const char *s)
{
    gl_status_json_key(o, key, key ? strlen(key) : 0);
    gl_status_json_str(o->buf, s, strlen(s));
}


static void
gl_status_json(gl_status_buf_t *b, gl_status_t *s)
{
    gl_status_out_t  o;

    memset(&o, 0, sizeof(o));
    o.open = gl_status_json_open;
    o.close = gl_status_json_close;
    o.integer = gl_status_json_integer;
    o.number = gl_status_json_number;
    o.string = gl_status_json_string;
    o.buf = b;

    gl_status_walk(&o, s);
    gl_status_add(b, "\n", 1);
}


/* the Lua table: each value goes into the table under it as it is made */

static void
gl_status_lua_set(gl_status_out_t *o, const char *key, size_t klen)
{
    if (o->depth == 0) {
        return;
    }

    if (o->array[o->depth - 1]) {
        lua_rawseti(o->L, -2, ++o->n[o->depth - 1]);
        return;
    }

    lua_pushlstring(o->L, key, klen);
    lua_insert(o->L, -2);
    lua_rawset(o->L, -3);
}


static void
gl_status_lua_open(gl_status_out_t *o, const char *key, size_t klen,
    int array)
{
    lua_createtable(o->L, 0, array ? 0 : 8);

    o->key[o->depth] = key;
    o->klen[o->depth] = klen;
    o->array[o->depth] = array;
    o->n[o->depth] = 0;
    o->depth++;
}


static void
gl_status_lua_close(gl_status_out_t *o)
{
    o->depth--;
    gl_status_lua_set(o, o->key[o->depth], o->klen[o->depth]);
}


static void
gl_status_lua_integer(gl_status_out_t *o, const char *key, int64_t v)
{
    lua_pushnumber(o->L, (lua_Number) v);
    gl_status_lua_set(o, key, key ? strlen(key) : 0);
}


static void
gl_status_lua_number(gl_status_out_t *o, const char *key, double v)
{
    lua_pushnumber(o->L, v);
    gl_status_lua_set(o, key, key ? strlen(key) : 0);
}


static void
gl_status_lua_string(gl_status_out_t *o, const char *key, const char *s)
{
    lua_pushstring(o->L, s);
    gl_status_lua_set(o, key, key ? strlen(key) : 0);
}


/* the plain text */

static void
gl_status_text_duration(gl_status_buf_t *b, double secs)
{
    long  t;

    t = (long) secs;

    if (t >= 86400) {
        gl_status_printf(b, "%ldd ", t / 86400);
    }

    if (t >= 3600) {
        gl_status_printf(b, "%ldh ", t / 3600 % 24);
    }

    if (t >= 60) {
        gl_status_printf(b, "%ldm ", t / 60 % 60);
    }

    gl_status_printf(b, "%lds", t % 60);
}


static void
gl_status_text(gl_status_buf_t *b, gl_status_t *s)
{
    int         i, j;
    char        when[64], le[32];
    size_t      k;
    time_t      t;
    uint64_t    cum;
    struct tm   tm;

    t = (time_t) s->start_time;
    if (gmtime_r(&t, &tm) == NULL
        || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
    {
        snprintf(when, sizeof(when), "%.0f", s->start_time);
    }

    gl_status_printf(b, "golapis %s, pid %ld\n", GL_VERSION, s->pid);
    gl_status_printf(b, "started %s, up ", when);
    gl_status_text_duration(b, s->uptime);
    gl_status_printf(b, " (%.0fs)\n", s->uptime);
    gl_status_printf(b, "workers: %d; found stuck: %llu; retired after a "
                     "panic: %llu\n", s->workers_conf,
                     (unsigned long long) s->stuck,
                     (unsigned long long) s->retired);
    gl_status_printf(b, "connections accepted: %llu; denied: %llu; accept "
                     "errors: %llu\n", (unsigned long long) s->accepted,
                     (unsigned long long) s->denied,
                     (unsigned long long) s->accept_errors);

    /* a table: the total, then a column per worker */
    gl_status_printf(b, "\n%-22s %12s", "", "total");
    for (i = 0; i < s->nworkers; i++) {
        snprintf(le, sizeof(le), "worker %d", s->workers[i].id);
        gl_status_printf(b, " %12s", le);
    }
    gl_status_printf(b, "\n%-22s %12s", "state", "");
    for (i = 0; i < s->nworkers; i++) {
        gl_status_printf(b, " %12s", s->workers[i].state);
    }
    gl_status_add(b, "\n", 1);

    for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
        gl_status_printf(b, "%-22s", gl_status_metrics[j].name);

        if (gl_status_metrics[j].total) {
            gl_status_printf(b, " %12lld", (long long) s->total[j]);
        } else {
            gl_status_printf(b, " %12s", "");
        }

        for (i = 0; i < s->nworkers; i++) {
            gl_status_printf(b, " %12lld", (long long) s->workers[i].v[j]);
        }

        gl_status_add(b, "\n", 1);
    }

    gl_status_add(b, "\nresponses:", 11);
    for (j = 0; j < GL_STAT_CLASSES; j++) {
        gl_status_printf(b, " %s %llu%s", gl_status_classes[j],
                         (unsigned long long) s->responses[j],
                         j + 1 < GL_STAT_CLASSES ? "," : "\n");
    }

    gl_status_printf(b, "latency: %llu requests ended, %.3fs in all\n",
                     (unsigned long long) s->latency_count, s->latency_sum);
    cum = 0;
    for (j = 0; j < GL_STAT_LATENCY_BOUNDS; j++) {
        cum += s->latency[j];
        gl_status_float(le, sizeof(le), gl_stat_latency_le[j]);
        strncat(le, "s", sizeof(le) - strlen(le) - 1);
        gl_status_printf(b, "  <= %-8s %12llu\n", le,
                         (unsigned long long) cum);
    }
    gl_status_printf(b, "  all         %12llu\n",
                     (unsigned long long) s->latency_count);

    gl_status_add(b, "\n", 1);
    for (i = 0; i < s->nlisten; i++) {
        if (s->listen[i].queue >= 0) {
            gl_status_printf(b, "listen %s: %lld waiting to be accepted, "
                             "backlog %lld\n", s->listen[i].text,
                             (long long) s->listen[i].queue,
                             (long long) s->listen[i].backlog);
        } else {
            gl_status_printf(b, "listen %s: queue not known\n",
                             s->listen[i].text);
        }
    }

    gl_status_printf(b, "\nshared dicts: %zu\n", s->ndicts);
    if (s->ndicts) {
        gl_status_printf(b, "  %-20s %12s %12s %12s\n", "name", "capacity",
                         "free_space", "keys");
    }
    for (k = 0; k < s->ndicts; k++) {
        gl_status_printf(b, "  %-20.*s %12zu %12zu %12zu\n",
                         (int) s->dicts[k].name_len, s->dicts[k].name,
                         s->dicts[k].capacity, s->dicts[k].free_space,
                         s->dicts[k].keys);
    }
}


/* Prometheus's text format (0.0.4), or OpenMetrics 1.0 (om): they differ
   in a counter's family name (OpenMetrics leaves "_total" out of HELP and
   TYPE) and in the "# EOF" at the end */

static void
gl_status_prom_family(gl_status_buf_t *b, const char *name, int counter,
    const char *type, const char *help, int om)
{
    const char  *suffix;

    suffix = (counter && !om) ? "_total" : "";

    gl_status_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix,
                     help, name, suffix, type);
}


/* a label value: \, " and newline escaped */
static void
gl_status_prom_label(gl_status_buf_t *b, const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '\\':
            gl_status_add(b, "\\\\", 2);
            break;
        case '"':
            gl_status_add(b, "\\\"", 2);
            break;
        case '\n':
            gl_status_add(b, "\\n", 2);
            break;
        default:
            gl_status_add(b, &s[i], 1);
        }
    }
}


static void
gl_status_prom_one(gl_status_buf_t *b, const char *name, int counter,
    const char *type, const char *help, int om, double v)
{
    gl_status_prom_family(b, name, counter, type, help, om);
    gl_status_printf(b, "%s%s %.17g\n", name, counter ? "_total" : "", v);
}


static void
gl_status_prom(gl_status_buf_t *b, gl_status_t *s, int om)
{
    int          i, j;
    char         le[32];
    size_t       k;
    uint64_t     cum;
    const char  *name;

    gl_status_prom_family(b, "golapis_build_info", 0, "gauge",
                          "Version of golapis, in the label", om);
    gl_status_printf(b, "golapis_build_info{version=\"%s\"} 1\n",
                     GL_VERSION);

    gl_status_prom_one(b, "golapis_start_time_seconds", 0, "gauge",
                       "Start time of the process, in seconds since the "
                       "epoch", om, s->start_time);
    gl_status_prom_one(b, "golapis_uptime_seconds", 0, "gauge",
                       "Seconds since the process started", om, s->uptime);
    gl_status_prom_one(b, "golapis_workers", 0, "gauge",
                       "Workers configured", om, s->workers_conf);
    gl_status_prom_one(b, "golapis_workers_stuck", 1, "counter",
                       "Workers found stuck in Lua code that cannot be "
                       "interrupted", om, (double) s->stuck);
    gl_status_prom_one(b, "golapis_workers_retired", 1, "counter",
                       "Workers retired after a panic of their Lua state",
                       om, (double) s->retired);
    gl_status_prom_one(b, "golapis_connections_accepted", 1, "counter",
                       "Connections accepted on the listen sockets", om,
                       (double) s->accepted);
    gl_status_prom_one(b, "golapis_connections_denied", 1, "counter",
                       "Connections closed by the allow and deny rules",
                       om, (double) s->denied);
    gl_status_prom_one(b, "golapis_accept_errors", 1, "counter",
                       "accept() failures for want of descriptors or "
                       "memory (accepting pauses)", om,
                       (double) s->accept_errors);

    gl_status_prom_family(b, "golapis_worker_state", 0, "gauge",
                          "State of each worker: running, exiting, exited, "
                          "stuck or retired", om);
    for (i = 0; i < s->nworkers; i++) {
        gl_status_printf(b, "golapis_worker_state{worker=\"%d\","
                         "state=\"%s\"} 1\n", s->workers[i].id,
                         s->workers[i].state);
    }

    for (j = 0; j < (int) GL_STATUS_METRICS; j++) {
        name = gl_status_metrics[j].prom;

        gl_status_prom_family(b, name, gl_status_metrics[j].counter,
                              gl_status_metrics[j].counter ? "counter"
                                                           : "gauge",
                              gl_status_metrics[j].help, om);

        for (i = 0; i < s->nworkers; i++) {
            gl_status_printf(b, "%s%s{worker=\"%d\"} %lld\n", name,
                             gl_status_metrics[j].counter ? "_total" : "",
                             s->workers[i].id,
                             (long long) s->workers[i].v[j]);
        }
    }

    gl_status_prom_family(b, "golapis_responses", 1, "counter",
                          "Responses by status class (other: none was "
                          "sent)", om);
    for (j = 0; j < GL_STAT_CLASSES; j++) {
        gl_status_printf(b, "golapis_responses_total{code=\"%s\"} %llu\n",
                         gl_status_classes[j],
                         (unsigned long long) s->responses[j]);
    }

    gl_status_prom_family(b, "golapis_request_duration_seconds", 0,
                          "histogram", "Time from a request's first record "
                          "to its end", om);
    cum = 0;
    for (j = 0; j < GL_STAT_LATENCY_BOUNDS; j++) {
        cum += s->latency[j];
        gl_status_float(le, sizeof(le), gl_stat_latency_le[j]);
        gl_status_printf(b, "golapis_request_duration_seconds_bucket"
                         "{le=\"%s\"} %llu\n", le, (unsigned long long) cum);
    }
    gl_status_printf(b, "golapis_request_duration_seconds_bucket"
                     "{le=\"+Inf\"} %llu\n"
                     "golapis_request_duration_seconds_sum %.6f\n"
                     "golapis_request_duration_seconds_count %llu\n",
                     (unsigned long long) s->latency_count, s->latency_sum,
                     (unsigned long long) s->latency_count);

    for (j = 0; j < 2; j++) {
        for (i = 0; i < s->nlisten && s->listen[i].queue < 0; i++) {
            /* void */
        }

        if (i == s->nlisten) {
            break;
        }

        name = j == 0 ? "golapis_listen_queue" : "golapis_listen_backlog";

        gl_status_prom_family(b, name, 0, "gauge",
                              j == 0 ? "Connections waiting in a listen "
                                       "socket's queue to be accepted"
                                     : "Length of a listen socket's queue",
                              om);

        for (i = 0; i < s->nlisten; i++) {
            if (s->listen[i].queue < 0) {
                continue;
            }

            gl_status_printf(b, "%s{listen=\"", name);
            gl_status_prom_label(b, s->listen[i].text,
                                 strlen(s->listen[i].text));
            gl_status_printf(b, "\"} %lld\n", (long long)
                             (j == 0 ? s->listen[i].queue
                                     : s->listen[i].backlog));
        }
    }

    if (s->ndicts) {
        for (j = 0; j < 3; j++) {
            name = j == 0 ? "golapis_shared_dict_capacity_bytes"
                 : j == 1 ? "golapis_shared_dict_free_bytes"
                 : "golapis_shared_dict_keys";

            gl_status_prom_family(b, name, 0, "gauge",
                                  j == 0 ? "Size of the shared dict"
                                  : j == 1 ? "Bytes of the shared dict not "
                                             "used by entries"
                                  : "Entries in the shared dict (expired "
                                    "ones not yet freed included)", om);

            for (k = 0; k < s->ndicts; k++) {
                gl_status_printf(b, "%s{dict=\"", name);
                gl_status_prom_label(b, s->dicts[k].name,
                                     s->dicts[k].name_len);
                gl_status_printf(b, "\"} %zu\n",
                                 j == 0 ? s->dicts[k].capacity
                                 : j == 1 ? s->dicts[k].free_space
                                 : s->dicts[k].keys);
            }
        }
    }

    if (om) {
        gl_status_add(b, "# EOF\n", 6);
    }
}


/* the endpoints */

#define GL_STATUS_TEXT        0
#define GL_STATUS_JSON        1
#define GL_STATUS_PROMETHEUS  2
#define GL_STATUS_OPENMETRICS 3


/* the param's value is s (exactly) */
static int
gl_status_param_is(gl_request_t *r, const char *name, const char *s)
{
    const gl_param_t  *p;

    p = gl_request_param(r, name, strlen(name));

    return p != NULL && p->value_len == strlen(s)
           && memcmp(p->value, s, p->value_len) == 0;
}


/*
 * The format the query string asks for: an argument "json" or
 * "prometheus" (with a value or not: Prometheus's "params" send
 * "prometheus="), or "format=json", "format=prometheus".  Prometheus
 * gets OpenMetrics when the Accept header names it, as Prometheus's client
 * libraries decide.
 */
static int
gl_status_format(gl_request_t *r)
{
    size_t             n, klen;
    const char        *p, *end, *amp, *eq, *word;
    const gl_param_t  *args, *accept;

    args = gl_request_param(r, "QUERY_STRING", 12);
    if (args == NULL) {
        return GL_STATUS_TEXT;
    }

    p = args->value;
    end = p + args->value_len;

    for ( /* void */ ; p < end; p += n + 1) {
        amp = memchr(p, '&', end - p);
        n = (amp ? amp : end) - p;
        eq = memchr(p, '=', n);
        klen = eq ? (size_t) (eq - p) : n;

        word = p;

        if (klen == 6 && memcmp(p, "format", 6) == 0 && eq != NULL) {
            word = eq + 1;
            klen = n - 7;
        }

        if (klen == 4 && memcmp(word, "json", 4) == 0) {
            return GL_STATUS_JSON;
        }

        if (klen == 10 && memcmp(word, "prometheus", 10) == 0) {
            accept = gl_request_param(r, "HTTP_ACCEPT", 11);

            if (accept != NULL
                && memmem(accept->value, accept->value_len,
                          "application/openmetrics-text", 28) != NULL)
            {
                return GL_STATUS_OPENMETRICS;
            }

            return GL_STATUS_PROMETHEUS;
        }
    }

    return GL_STATUS_TEXT;
}


static void
gl_status_send(gl_request_t *r, const char *type, const char *body,
    size_t len)
{
    char  n[32];

    r->status = 200;

    if (gl_request_set_header(r, "Content-Type", 12, type, strlen(type), 1)
           != GL_OK
        || gl_request_set_header(r, "Cache-Control", 13, "no-cache", 8, 1)
           != GL_OK
        || gl_request_set_header(r, "Content-Length", 14, n,
                                 snprintf(n, sizeof(n), "%zu", len), 1)
           != GL_OK)
    {
        gl_request_error_page(r, 500);
        return;
    }

    if (gl_request_is_head(r)) {
        (void) gl_request_send_header_now(r);
        return;
    }

    (void) gl_request_output(r, (const u_char *) body, len);
}


static void
gl_status_page(gl_http_t *h)
{
    int               format;
    const char       *type;
    gl_status_t       s;
    gl_request_t     *r;
    gl_status_buf_t   b;

    r = &h->r;

    if (gl_status_collect(&s, r->conf) != GL_OK) {
        gl_log_error(GL_LOG_ALERT, errno, "no memory for the status page");
        gl_request_error_page(r, 500);
        return;
    }

    memset(&b, 0, sizeof(b));
    format = gl_status_format(r);

    switch (format) {
    case GL_STATUS_JSON:
        type = "application/json";
        gl_status_json(&b, &s);
        break;
    case GL_STATUS_PROMETHEUS:
        type = "text/plain; version=0.0.4; charset=utf-8";
        gl_status_prom(&b, &s, 0);
        break;
    case GL_STATUS_OPENMETRICS:
        type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        gl_status_prom(&b, &s, 1);
        break;
    default:
        type = "text/plain; charset=utf-8";
        gl_status_text(&b, &s);
    }

    gl_status_free(&s);

    if (b.nomem) {
        gl_log_error(GL_LOG_ALERT, errno, "no memory for the status page");
        gl_request_error_page(r, 500);
    } else {
        gl_status_send(r, type, b.data, b.len);
    }

    free(b.data);
}


/*
 * status_uri, ping_uri: matched on the URI nginx resolved (DOCUMENT_URI,
 * or SCRIPT_NAME without it), before any script is looked for.
 */
static int
gl_status_request_start(gl_http_t *h)
{
    int                status;
    const char        *name;
    gl_request_t      *r;
    gl_status_conf_t  *scf;

    r = &h->r;
    scf = gl_conf_module(r->conf, &gl_lua_status_module);

    if (scf == NULL || (scf->status_uri == NULL && scf->ping_uri == NULL)) {
        return GL_DECLINED;
    }

    name = gl_request_param(r, "DOCUMENT_URI", 12) ? "DOCUMENT_URI"
                                                   : "SCRIPT_NAME";

    if (scf->status_uri != NULL
        && gl_status_param_is(r, name, scf->status_uri))
    {
        status = 1;

    } else if (scf->ping_uri != NULL
               && gl_status_param_is(r, name, scf->ping_uri))
    {
        status = 0;

    } else {
        return GL_DECLINED;
    }

    if (!gl_status_param_is(r, "REQUEST_METHOD", "GET")
        && !gl_status_param_is(r, "REQUEST_METHOD", "HEAD"))
    {
        (void) gl_request_set_header(r, "Allow", 5, "GET, HEAD", 9, 1);
        gl_request_error_page(r, 405);
        return GL_OK;
    }

    if (status) {
        gl_status_page(h);
    } else {
        gl_status_send(r, "text/plain", "pong\n", 5);
    }

    return GL_OK;
}


/* where gl_status_lua_walk leaves its table (lua_cpcall returns none) */
static char  gl_status_lua_key;


static int
gl_status_lua_walk(lua_State *L)
{
    gl_status_t      *s;
    gl_status_out_t   o;

    s = lua_touserdata(L, 1);

    memset(&o, 0, sizeof(o));
    o.open = gl_status_lua_open;
    o.close = gl_status_lua_close;
    o.integer = gl_status_lua_integer;
    o.number = gl_status_lua_number;
    o.string = gl_status_lua_string;
    o.L = L;

    lua_checkstack(L, 20);
    gl_status_walk(&o, s);

    lua_pushlightuserdata(L, &gl_status_lua_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    return 0;
}


/* ngx.server_status(): the status as a Lua table, the JSON's structure */
static int
gl_lua_server_status(lua_State *L)
{
    gl_conf_t        *conf;
    gl_status_t       s;

    conf = gl_vm_self != NULL ? gl_vm_self->conf : NULL;

    if (conf == NULL) {
        /* init_by_lua at -t has no worker; its config is not at hand */
        lua_pushnil(L);
        lua_pushliteral(L, "no worker");
        return 2;
    }

    if (gl_status_collect(&s, conf) != GL_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "no memory");
        return 2;
    }

    /* the table is made in a protected call: a memory error there (say
       under lua_max_memory) must not skip the snapshot's free */
    if (lua_cpcall(L, gl_status_lua_walk, &s) != 0) {
        gl_status_free(&s);
        return lua_error(L);
    }

    gl_status_free(&s);

    lua_pushlightuserdata(L, &gl_status_lua_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &gl_status_lua_key);
    lua_pushnil(L);
    lua_rawset(L, LUA_REGISTRYINDEX);

    return 1;
}


static void
gl_lua_status_inject(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_server_status);
    lua_setfield(L, -2, "server_status");
}


/* the directives */

static const char *
gl_status_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_status_conf_t  *scf = mconf;

    (void) conf;

    if (scf->status_uri != NULL && scf->status_uri[0] != '/') {
        return gl_conf_errf("\"status_uri\" must begin with \"/\": \"%s\"",
                            scf->status_uri);
    }

    if (scf->ping_uri != NULL && scf->ping_uri[0] != '/') {
        return gl_conf_errf("\"ping_uri\" must begin with \"/\": \"%s\"",
                            scf->ping_uri);
    }

    if (scf->status_uri != NULL && scf->ping_uri != NULL
        && strcmp(scf->status_uri, scf->ping_uri) == 0)
    {
        return gl_conf_errf("\"status_uri\" and \"ping_uri\" are the same: "
                            "\"%s\"", scf->ping_uri);
    }

    return NULL;
}


static const gl_command_t  gl_status_commands[] = {

    { "status_uri", GL_CONF_TAKE1, gl_conf_set_str_slot, GL_CONF_MODULE,
      offsetof(gl_status_conf_t, status_uri), NULL },

    { "ping_uri", GL_CONF_TAKE1, gl_conf_set_str_slot, GL_CONF_MODULE,
      offsetof(gl_status_conf_t, ping_uri), NULL },

    gl_null_command
};


gl_module_t  gl_lua_status_module = {
    .name = "status",
    .inject = gl_lua_status_inject,
    .request_start = gl_status_request_start,
    .commands = gl_status_commands,
    .conf_size = sizeof(gl_status_conf_t),
    .init_conf = gl_status_init_conf,
};
