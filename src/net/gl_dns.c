/*
 * The resolver: c-ares's ares_getaddrinfo() on a worker's libev loop, with
 * a cache by name in front of it.
 *
 * c-ares tells us which sockets to watch (its sock_state_cb: an ev_io per
 * socket) and when to call it back (ares_timeout(): one ev_timer); both
 * call ares_process_fd().  A name is a node: in the hash, in the LRU, and
 * while c-ares looks it up, with the queries that wait for it.  When the
 * answer comes (inside ares_process_fd(), or inside ares_getaddrinfo() for
 * an /etc/hosts entry), the node goes on the done queue, and its waiters'
 * handlers run only once c-ares has returned: a handler may then resolve
 * again, cancel, or free the whole resolver.  Each query has its own timer
 * (the resolver timeout); a query that ends before its lookup leaves the
 * lookup running, whose answer still fills the cache.
 */
#include "gl_core.h"
#include "gl_dns.h"
#include "gl_log.h"
#include "gl_queue.h"

#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>

typedef struct gl_dns_node_s  gl_dns_node_t;
typedef struct gl_dns_io_s    gl_dns_io_t;

/* a name: a cached answer, or a lookup under way, or both */
struct gl_dns_node_s {
    gl_dns_t        *dns;
    gl_dns_node_t   *next;          /* in its hash chain */
    gl_queue_t       lru;           /* every node; the oldest first */
    gl_queue_t       done;          /* in dns->done: waiters to tell */
    gl_queue_t       waiters;       /* gl_dns_query_t */
    uint32_t         hash;
    double           expire;        /* the loop's time */
    int              code;          /* 0: addrs */
    int              naddrs;
    gl_dns_addr_t   *addrs;         /* malloc()ed, naddrs */
    unsigned         resolving:1;   /* c-ares has it */
    size_t           len;
    char             name[];        /* lowercase, NUL-terminated */
};

struct gl_dns_query_s {
    gl_dns_t           *dns;
    gl_queue_t          link;       /* in its node's waiters, or ready */
    ev_timer            timer;      /* the resolver timeout */
    gl_dns_handler_pt   handler;
    void               *data;
};

/* a socket of c-ares, watched */
struct gl_dns_io_s {
    ev_io            io;
    gl_dns_t        *dns;
    gl_dns_io_t     *next;
};

struct gl_dns_s {
    struct ev_loop  *loop;
    ares_channel     channel;
    gl_dns_conf_t    conf;
    ev_timer         timer;         /* c-ares's next timeout */
    ev_timer         defer;         /* done nodes and idle, from the loop */
    gl_dns_io_t     *ios;

    gl_dns_node_t  **hash;
    uint32_t         hash_mask;
    int              nnodes;
    gl_queue_t       lru;
    gl_queue_t       done;          /* nodes answered, waiters not told */
    gl_queue_t       ready;         /* queries being told */
    size_t           npending;

    void           (*idle)(void *data, gl_dns_t *dns);
    void            *idle_data;

    /* for the tests */
    unsigned         stat_lookups;  /* ares_getaddrinfo() calls */
    unsigned         stat_hits;     /* answers from the cache */

    unsigned         delivering:1;
    unsigned         dead:1;        /* freed while delivering */
    unsigned         destroying:1;  /* in ares_destroy() */
};

/* how long a "Host not found" is kept without valid=, seconds */
#define GL_DNS_NEGATIVE_TTL  1.0

static pthread_once_t  gl_dns_once = PTHREAD_ONCE_INIT;
static int             gl_dns_lib_status = ARES_ENOTINITIALIZED;

static void gl_dns_deliver(gl_dns_t *dns);
static void gl_dns_destroy(gl_dns_t *dns);


const char *
gl_dns_strerror(int code)
{
    switch (code) {
    case GL_DNS_FORMERR:
        return "Format error";
    case GL_DNS_SERVFAIL:
        return "Server failure";
    case GL_DNS_NXDOMAIN:
        return "Host not found";
    case GL_DNS_NOTIMP:
        return "Unimplemented";
    case GL_DNS_REFUSED:
        return "Operation refused";
    case GL_DNS_TIMEDOUT:
        return "Operation timed out";
    default:
        return "Unknown error";
    }
}


/* a c-ares status as nginx's resolver code */
static int
gl_dns_code(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_EBADNAME:
        return GL_DNS_NXDOMAIN;
    case ARES_EFORMERR:
        return GL_DNS_FORMERR;
    case ARES_ENOTIMP:
        return GL_DNS_NOTIMP;
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED:
        /* c-ares 1.18 ends a lookup that every server refused (REFUSED,
           or ICMP port unreachable) with ECONNREFUSED */
        return GL_DNS_REFUSED;
    case ARES_ETIMEOUT:
        return GL_DNS_TIMEDOUT;
    default:
        return GL_DNS_SERVFAIL;
    }
}


static void
gl_dns_fail(gl_dns_result_t *res, int code)
{
    res->naddrs = 0;
    res->code = code;
    res->err = gl_dns_strerror(code);
}


static void
gl_dns_library_init(void)
{
    gl_dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}


int
gl_dns_init(void)
{
    (void) pthread_once(&gl_dns_once, gl_dns_library_init);

    if (gl_dns_lib_status != ARES_SUCCESS) {
        gl_log_error(GL_LOG_EMERG, 0, "resolver: ares_library_init() "
                     "failed: %s", ares_strerror(gl_dns_lib_status));
        return GL_ERROR;
    }

    return GL_OK;
}


/* the defaults of what conf leaves out, into out */
static void
gl_dns_conf_norm(gl_dns_conf_t *out, const gl_dns_conf_t *conf)
{
    *out = *conf;

    if (out->nservers < 0 || out->nservers > GL_DNS_MAX_SERVERS) {
        out->nservers = 0;
    }

    if (out->timeout <= 0) {
        out->timeout = 30;
    }

    if (out->valid < 0) {
        out->valid = 0;
    }

    if (!out->ipv4 && !out->ipv6) {
        out->ipv4 = 1;
    }

    out->ipv4 = out->ipv4 ? 1 : 0;
    out->ipv6 = out->ipv6 ? 1 : 0;

    if (out->max_names <= 0) {
        out->max_names = GL_DNS_CACHE_NAMES;
    }
}


int
gl_dns_conf_same(const gl_dns_t *dns, const gl_dns_conf_t *conf)
{
    int                     i;
    gl_dns_conf_t           c;
    const gl_dns_server_t  *a, *b;

    gl_dns_conf_norm(&c, conf);

    if (c.nservers != dns->conf.nservers || c.timeout != dns->conf.timeout
        || c.valid != dns->conf.valid || c.ipv4 != dns->conf.ipv4
        || c.ipv6 != dns->conf.ipv6 || c.max_names != dns->conf.max_names)
    {
        return 0;
    }

    for (i = 0; i < c.nservers; i++) {
        a = &c.servers[i];
        b = &dns->conf.servers[i];

        if (a->family != b->family || a->port != b->port) {
            return 0;
        }

        if (a->family == AF_INET
            ? memcmp(&a->addr.v4, &b->addr.v4, sizeof(struct in_addr)) != 0
            : memcmp(&a->addr.v6, &b->addr.v6, sizeof(struct in6_addr)) != 0)
        {
            return 0;
        }
    }

    return 1;
}


size_t
gl_dns_pending(const gl_dns_t *dns)
{
    return dns->npending;
}


/* ---- c-ares on the loop ------------------------------------------------ */

/* arms the timer for c-ares's next timeout, or stops it */
static void
gl_dns_arm(gl_dns_t *dns)
{
    struct timeval   tv, *tvp;

    ev_timer_stop(dns->loop, &dns->timer);

    if (dns->destroying) {
        return;
    }

    tvp = ares_timeout(dns->channel, NULL, &tv);
    if (tvp == NULL) {
        return;
    }

    ev_timer_set(&dns->timer, tvp->tv_sec + tvp->tv_usec / 1e6, 0);
    ev_timer_start(dns->loop, &dns->timer);
}


static void
gl_dns_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    int             fd;
    gl_dns_t       *dns;
    gl_dns_io_t    *io;

    (void) loop;

    io = (gl_dns_io_t *) w;
    dns = io->dns;
    fd = w->fd;

    /* io may be freed in there (c-ares closes the socket) */
    ares_process_fd(dns->channel,
                    (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);

    gl_dns_arm(dns);
    gl_dns_deliver(dns);
}


static void
gl_dns_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gl_dns_t  *dns;

    (void) loop;
    (void) revents;

    dns = w->data;

    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);

    gl_dns_arm(dns);
    gl_dns_deliver(dns);
}


/* c-ares opens, changes or closes a socket (readable and writable 0) */
static void
gl_dns_sock_state_cb(void *data, ares_socket_t fd, int readable,
    int writable)
{
    gl_dns_t      *dns;
    gl_dns_io_t   *io, **pio;

    dns = data;

    for (pio = &dns->ios; *pio != NULL; pio = &(*pio)->next) {
        if ((*pio)->io.fd == fd) {
            break;
        }
    }

    io = *pio;

    if (!readable && !writable) {
        if (io != NULL) {
            ev_io_stop(dns->loop, &io->io);
            *pio = io->next;
            free(io);
        }

        return;
    }

    if (io == NULL) {
        io = malloc(sizeof(gl_dns_io_t));
        if (io == NULL) {
            /* its lookups end with c-ares's timeout */
            gl_log_error(GL_LOG_ERR, errno, "resolver: no memory to watch "
                         "socket %d", (int) fd);
            return;
        }

        ev_io_init(&io->io, gl_dns_io_cb, fd, 0);
        io->dns = dns;
        io->next = dns->ios;
        dns->ios = io;

    } else {
        ev_io_stop(dns->loop, &io->io);
    }

    ev_io_set(&io->io, fd, (readable ? EV_READ : 0)
                           | (writable ? EV_WRITE : 0));
    ev_io_start(dns->loop, &io->io);
}


/* ---- the cache ----------------------------------------------------------- */

static uint32_t
gl_dns_hash(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a */
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (u_char) s[i];
        h *= 16777619u;
    }

    return h;
}


static gl_dns_node_t *
gl_dns_find(gl_dns_t *dns, const char *name, size_t len, uint32_t hash)
{
    gl_dns_node_t  *node;

    for (node = dns->hash[hash & dns->hash_mask]; node; node = node->next) {
        if (node->hash == hash && node->len == len
            && memcmp(node->name, name, len) == 0)
        {
            return node;
        }
    }

    return NULL;
}


static void
gl_dns_node_free(gl_dns_t *dns, gl_dns_node_t *node)
{
    gl_dns_node_t  **p;

    for (p = &dns->hash[node->hash & dns->hash_mask]; *p != node;
         p = &(*p)->next)
    {
        /* void */
    }

    *p = node->next;
    gl_queue_remove(&node->lru);
    dns->nnodes--;

    free(node->addrs);
    free(node);
}


/* makes room for one more name: the oldest that nobody waits for goes */
static void
gl_dns_evict(gl_dns_t *dns)
{
    gl_queue_t     *x;
    gl_dns_node_t  *node;

    if (dns->nnodes < dns->conf.max_names) {
        return;
    }

    for (x = gl_queue_head(&dns->lru); x != gl_queue_sentinel(&dns->lru);
         x = gl_queue_next(x))
    {
        node = gl_queue_data(x, gl_dns_node_t, lru);

        if (!node->resolving && !gl_queue_linked(&node->done)) {
            gl_dns_node_free(dns, node);
            return;
        }
    }

    /* every name is being looked up: the cache grows for a while */
}


static gl_dns_node_t *
gl_dns_node_new(gl_dns_t *dns, const char *name, size_t len, uint32_t hash)
{
    gl_dns_node_t  *node;

    gl_dns_evict(dns);

    node = calloc(1, sizeof(gl_dns_node_t) + len + 1);
    if (node == NULL) {
        return NULL;
    }

    node->dns = dns;
    node->hash = hash;
    node->len = len;
    memcpy(node->name, name, len);
    node->name[len] = '\0';
    gl_queue_init(&node->waiters);

    node->next = dns->hash[hash & dns->hash_mask];
    dns->hash[hash & dns->hash_mask] = node;
    gl_queue_insert_tail(&dns->lru, &node->lru);
    dns->nnodes++;

    return node;
}


static void
gl_dns_node_result(gl_dns_node_t *node, gl_dns_result_t *res)
{
    if (node->code != 0) {
        gl_dns_fail(res, node->code);
        return;
    }

    res->naddrs = node->naddrs;
    memcpy(res->addrs, node->addrs, node->naddrs * sizeof(gl_dns_addr_t));
    res->code = 0;
    res->err = NULL;
}


/* the addresses of ai into node, IPv4 first; returns the lowest TTL */
static int
gl_dns_node_set(gl_dns_node_t *node, struct ares_addrinfo *ai)
{
    int                         i, pass, n, ttl, family;
    size_t                      len;
    gl_dns_addr_t               addrs[GL_DNS_MAX_ADDRS];
    struct sockaddr_in         *sin;
    struct sockaddr_in6        *sin6;
    struct ares_addrinfo_node  *an;

    n = 0;
    ttl = -1;

    for (pass = 0; pass < 2; pass++) {
        family = (pass == 0) ? AF_INET : AF_INET6;

        if ((family == AF_INET && !node->dns->conf.ipv4)
            || (family == AF_INET6 && !node->dns->conf.ipv6))
        {
            continue;
        }

        for (an = ai->nodes; an != NULL && n < GL_DNS_MAX_ADDRS;
             an = an->ai_next)
        {
            if (an->ai_family != family || an->ai_addr == NULL) {
                continue;
            }

            len = (family == AF_INET) ? sizeof(struct sockaddr_in)
                                      : sizeof(struct sockaddr_in6);
            if ((size_t) an->ai_addrlen < len) {
                continue;
            }

            memset(&addrs[n], 0, sizeof(gl_dns_addr_t));
            memcpy(&addrs[n].sa, an->ai_addr, len);
            addrs[n].socklen = len;

            if (family == AF_INET) {
                sin = (struct sockaddr_in *) &addrs[n].sa;
                sin->sin_port = 0;

            } else {
                sin6 = (struct sockaddr_in6 *) &addrs[n].sa;
                sin6->sin6_port = 0;
                sin6->sin6_flowinfo = 0;
            }

            /* /etc/hosts may say an address twice */
            for (i = 0; i < n; i++) {
                if (addrs[i].socklen == addrs[n].socklen
                    && memcmp(&addrs[i].sa, &addrs[n].sa, len) == 0)
                {
                    break;
                }
            }

            if (i < n) {
                continue;
            }

            if (ttl < 0 || an->ai_ttl < ttl) {
                ttl = an->ai_ttl;
            }

            n++;
        }
    }

    free(node->addrs);
    node->addrs = NULL;
    node->naddrs = 0;

    if (n == 0) {
        node->code = GL_DNS_NXDOMAIN;
        return -1;
    }

    node->addrs = malloc(n * sizeof(gl_dns_addr_t));
    if (node->addrs == NULL) {
        gl_log_error(GL_LOG_ERR, errno, "resolver: no memory for the "
                     "answer of \"%s\"", node->name);
        node->code = GL_DNS_SERVFAIL;
        return -1;
    }

    memcpy(node->addrs, addrs, n * sizeof(gl_dns_addr_t));
    node->naddrs = n;
    node->code = 0;

    return ttl < 0 ? 0 : ttl;
}


/* the answer of a lookup (inside ares_process_fd() or ares_getaddrinfo()) */
static void
gl_dns_ares_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    int             ttl;
    double          keep;
    gl_dns_t       *dns;
    gl_dns_node_t  *node;

    (void) timeouts;

    node = arg;
    dns = node->dns;

    if (dns->destroying) {
        /* ARES_EDESTRUCTION: gl_dns_destroy() frees the node */
        if (ai != NULL) {
            ares_freeaddrinfo(ai);
        }
        return;
    }

    node->resolving = 0;

    if (status == ARES_SUCCESS && ai != NULL) {
        ttl = gl_dns_node_set(node, ai);

    } else {
        free(node->addrs);
        node->addrs = NULL;
        node->naddrs = 0;
        node->code = gl_dns_code(status);
        ttl = -1;
    }

    if (ai != NULL) {
        ares_freeaddrinfo(ai);
    }

    if (node->code == 0) {
        keep = dns->conf.valid > 0 ? dns->conf.valid : ttl;

    } else if (node->code == GL_DNS_NXDOMAIN) {
        keep = dns->conf.valid > 0 ? dns->conf.valid : GL_DNS_NEGATIVE_TTL;

    } else {
        /* a server failure, a timeout: asked again next time */
        keep = 0;
    }

    node->expire = ev_now(dns->loop) + keep;

    if (!gl_queue_empty(&node->waiters)) {
        gl_queue_insert_tail(&dns->done, &node->done);
        ev_timer_start(dns->loop, &dns->defer);
    }
}


/* ---- queries ------------------------------------------------------------- */

static void
gl_dns_check_idle(gl_dns_t *dns)
{
    if (dns->idle != NULL && dns->npending == 0) {
        ev_timer_start(dns->loop, &dns->defer);
    }
}


/*
 * Tells the waiters of the answered nodes, outside of any c-ares call.
 * A handler may free dns: then dns is gone when this returns, and the
 * caller must not touch it.
 */
static void
gl_dns_deliver(gl_dns_t *dns)
{
    void               *data;
    gl_queue_t         *x;
    gl_dns_node_t      *node;
    gl_dns_query_t     *q;
    gl_dns_result_t     res;
    gl_dns_handler_pt   h;

    if (dns->delivering) {
        return;
    }

    dns->delivering = 1;

    while (!dns->dead && !gl_queue_empty(&dns->done)) {
        x = gl_queue_head(&dns->done);
        gl_queue_remove(x);
        node = gl_queue_data(x, gl_dns_node_t, done);

        /* the node may go while its waiters are told (a handler's lookup
           evicts it): they are told from a copy */
        gl_dns_node_result(node, &res);
        gl_queue_move(&dns->ready, &node->waiters);

        while (!dns->dead && !gl_queue_empty(&dns->ready)) {
            x = gl_queue_head(&dns->ready);
            gl_queue_remove(x);
            q = gl_queue_data(x, gl_dns_query_t, link);

            ev_timer_stop(dns->loop, &q->timer);
            h = q->handler;
            data = q->data;
            free(q);
            dns->npending--;

            h(data, &res);
        }
    }

    dns->delivering = 0;

    if (dns->dead) {
        gl_dns_destroy(dns);
        return;
    }

    if (gl_queue_empty(&dns->done)) {
        ev_timer_stop(dns->loop, &dns->defer);
    }

    gl_dns_check_idle(dns);
}


static void
gl_dns_defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gl_dns_t  *dns;

    (void) loop;
    (void) revents;

    dns = w->data;

    if (!gl_queue_empty(&dns->done)) {
        /* dns may be gone after it; if not, defer comes again for the
           idle call */
        gl_dns_deliver(dns);
        return;
    }

    if (dns->idle != NULL && dns->npending == 0) {
        dns->idle(dns->idle_data, dns);
    }
}


static void
gl_dns_query_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    void               *data;
    gl_dns_t           *dns;
    gl_dns_query_t     *q;
    gl_dns_result_t     res;
    gl_dns_handler_pt   h;

    (void) loop;
    (void) revents;

    q = w->data;
    dns = q->dns;

    gl_queue_remove(&q->link);
    h = q->handler;
    data = q->data;
    free(q);
    dns->npending--;

    gl_dns_check_idle(dns);

    gl_dns_fail(&res, GL_DNS_TIMEDOUT);
    h(data, &res);
}


void
gl_dns_cancel(gl_dns_query_t *q)
{
    gl_dns_t  *dns;

    if (q == NULL) {
        return;
    }

    dns = q->dns;

    gl_queue_remove(&q->link);
    ev_timer_stop(dns->loop, &q->timer);
    free(q);
    dns->npending--;

    gl_dns_check_idle(dns);
}


void
gl_dns_on_idle(gl_dns_t *dns, void (*idle)(void *data, gl_dns_t *dns),
    void *data)
{
    dns->idle = idle;
    dns->idle_data = data;

    gl_dns_check_idle(dns);
}


/* name as an IP address into res: GL_OK, or GL_DECLINED if it is none */
static int
gl_dns_literal(const char *name, size_t len, gl_dns_result_t *res)
{
    char                  buf[INET6_ADDRSTRLEN + 1];
    struct in_addr        a4;
    struct in6_addr       a6;
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    }

    if (len == 0 || len >= sizeof(buf)) {
        return GL_DECLINED;
    }

    memcpy(buf, name, len);
    buf[len] = '\0';

    memset(&res->addrs[0], 0, sizeof(gl_dns_addr_t));

    if (inet_pton(AF_INET, buf, &a4) == 1) {
        sin = (struct sockaddr_in *) &res->addrs[0].sa;
        sin->sin_family = AF_INET;
        sin->sin_addr = a4;
        res->addrs[0].socklen = sizeof(struct sockaddr_in);

    } else if (inet_pton(AF_INET6, buf, &a6) == 1) {
        sin6 = (struct sockaddr_in6 *) &res->addrs[0].sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = a6;
        res->addrs[0].socklen = sizeof(struct sockaddr_in6);

    } else {
        return GL_DECLINED;
    }

    res->naddrs = 1;
    res->code = 0;
    res->err = NULL;

    return GL_OK;
}


/* a name that can be put in a query: lowercased into buf (256 bytes) */
static int
gl_dns_name(const char *name, size_t len, char *buf)
{
    size_t  i;
    u_char  c;

    /* 253 and a trailing dot */
    if (len == 0 || len > 254) {
        return GL_ERROR;
    }

    for (i = 0; i < len; i++) {
        c = (u_char) name[i];

        if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == '/'
            || c == '\\')
        {
            return GL_ERROR;
        }

        buf[i] = (char) tolower(c);
    }

    buf[len] = '\0';

    return GL_OK;
}


int
gl_dns_resolve(gl_dns_t *dns, const char *name, size_t len,
    gl_dns_result_t *res, gl_dns_handler_pt h, void *data,
    gl_dns_query_t **qp)
{
    char                        buf[256];
    uint32_t                    hash;
    gl_dns_node_t              *node;
    gl_dns_query_t             *q;
    struct ares_addrinfo_hints  hints;

    if (gl_dns_literal(name, len, res) == GL_OK) {
        return GL_OK;
    }

    if (gl_dns_name(name, len, buf) != GL_OK) {
        gl_dns_fail(res, GL_DNS_NXDOMAIN);
        return GL_OK;
    }

    hash = gl_dns_hash(buf, len);
    node = gl_dns_find(dns, buf, len, hash);

    if (node != NULL) {
        gl_queue_remove(&node->lru);
        gl_queue_insert_tail(&dns->lru, &node->lru);

        if (!node->resolving && !gl_queue_linked(&node->done)
            && ev_now(dns->loop) < node->expire)
        {
            dns->stat_hits++;
            gl_dns_node_result(node, res);
            return GL_OK;
        }

    } else {
        node = gl_dns_node_new(dns, buf, len, hash);
        if (node == NULL) {
            gl_log_error(GL_LOG_ERR, errno, "resolver: no memory to resolve "
                         "\"%s\"", buf);
            return GL_ERROR;
        }
    }

    if (!node->resolving && !gl_queue_linked(&node->done)) {
        /* a new name, or an answer that expired: ask */
        memset(&hints, 0, sizeof(hints));
        hints.ai_flags = ARES_AI_NOSORT;
        hints.ai_family = dns->conf.ipv6
                          ? (dns->conf.ipv4 ? AF_UNSPEC : AF_INET6)
                          : AF_INET;

        node->resolving = 1;
        dns->stat_lookups++;

        ares_getaddrinfo(dns->channel, node->name, NULL, &hints,
                         gl_dns_ares_cb, node);

        gl_dns_arm(dns);

        if (!node->resolving) {
            /* /etc/hosts, or a failure: known now (nobody waited) */
            gl_dns_node_result(node, res);
            return GL_OK;
        }
    }

    q = malloc(sizeof(gl_dns_query_t));
    if (q == NULL) {
        gl_log_error(GL_LOG_ERR, errno, "resolver: no memory to resolve "
                     "\"%s\"", buf);
        return GL_ERROR;
    }

    q->dns = dns;
    q->handler = h;
    q->data = data;
    ev_timer_init(&q->timer, gl_dns_query_timeout_cb, dns->conf.timeout, 0);
    q->timer.data = q;
    ev_timer_start(dns->loop, &q->timer);

    gl_queue_insert_tail(&node->waiters, &q->link);
    dns->npending++;

    *qp = q;

    return GL_AGAIN;
}


/* ---- a resolver ---------------------------------------------------------- */

gl_dns_t *
gl_dns_new(struct ev_loop *loop, const gl_dns_conf_t *conf)
{
    int                          i, rc, optmask, tries;
    double                       try_ms, total;
    uint32_t                     size;
    gl_dns_t                    *dns;
    gl_dns_server_t             *s;
    struct ares_options          opts;
    struct ares_addr_port_node   nodes[GL_DNS_MAX_SERVERS];

    if (gl_dns_init() != GL_OK) {
        return NULL;
    }

    dns = calloc(1, sizeof(gl_dns_t));
    if (dns == NULL) {
        gl_log_error(GL_LOG_ERR, errno, "resolver: no memory");
        return NULL;
    }

    dns->loop = loop;
    gl_dns_conf_norm(&dns->conf, conf);

    for (size = 16; size < (uint32_t) dns->conf.max_names; size <<= 1) {
        /* void */
    }

    dns->hash = calloc(size, sizeof(gl_dns_node_t *));
    if (dns->hash == NULL) {
        gl_log_error(GL_LOG_ERR, errno, "resolver: no memory");
        free(dns);
        return NULL;
    }

    dns->hash_mask = size - 1;
    gl_queue_init(&dns->lru);
    gl_queue_init(&dns->done);
    gl_queue_init(&dns->ready);

    ev_timer_init(&dns->timer, gl_dns_timer_cb, 0, 0);
    dns->timer.data = dns;
    ev_timer_init(&dns->defer, gl_dns_defer_cb, 0, 0);
    dns->defer.data = dns;

    /*
     * a try waits 1 s (less for a short timeout), and c-ares doubles it
     * each round of the servers: enough tries that c-ares does not give
     * up before the resolver timeout, which ends a lookup
     */
    try_ms = gl_min(1000, dns->conf.timeout * 1000 / 2);
    try_ms = gl_max(try_ms, 50);

    for (tries = 1, total = try_ms; total < dns->conf.timeout * 1000
         && tries < 8; tries++)
    {
        total += try_ms * (1 << tries);
    }

    memset(&opts, 0, sizeof(opts));
    optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    opts.sock_state_cb = gl_dns_sock_state_cb;
    opts.sock_state_cb_data = dns;
    opts.timeout = (int) try_ms;
    opts.tries = tries;

    if (dns->conf.nservers > 0) {
        /* as nginx's resolver: the name as it is, the servers in turn;
           /etc/hosts first all the same */
        optmask |= ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_ROTATE;
        opts.flags = ARES_FLAG_NOSEARCH;
        opts.lookups = "fb";
    }

    rc = ares_init_options(&dns->channel, &opts, optmask);
    if (rc != ARES_SUCCESS) {
        gl_log_error(GL_LOG_ERR, 0, "resolver: ares_init_options() failed: "
                     "%s", ares_strerror(rc));
        free(dns->hash);
        free(dns);
        return NULL;
    }

    if (dns->conf.nservers > 0) {
        memset(nodes, 0, sizeof(nodes));

        for (i = 0; i < dns->conf.nservers; i++) {
            s = &dns->conf.servers[i];
            nodes[i].next = (i + 1 < dns->conf.nservers) ? &nodes[i + 1]
                                                         : NULL;
            nodes[i].family = s->family;

            if (s->family == AF_INET) {
                memcpy(&nodes[i].addr.addr4, &s->addr.v4,
                       sizeof(struct in_addr));

            } else {
                memcpy(&nodes[i].addr.addr6, &s->addr.v6,
                       sizeof(struct in6_addr));
            }

            nodes[i].udp_port = s->port;
            nodes[i].tcp_port = s->port;
        }

        rc = ares_set_servers_ports(dns->channel, nodes);
        if (rc != ARES_SUCCESS) {
            gl_log_error(GL_LOG_ERR, 0, "resolver: ares_set_servers_ports() "
                         "failed: %s", ares_strerror(rc));
            ares_destroy(dns->channel);
            free(dns->hash);
            free(dns);
            return NULL;
        }
    }

    return dns;
}


static void
gl_dns_destroy(gl_dns_t *dns)
{
    gl_queue_t      *x;
    gl_dns_io_t     *io;
    gl_dns_node_t   *node;
    gl_dns_query_t  *q;

    /* the queries: in the nodes, and in ready if freed while they were
       being told */
    for (x = gl_queue_head(&dns->lru); x != gl_queue_sentinel(&dns->lru);
         x = gl_queue_next(x))
    {
        node = gl_queue_data(x, gl_dns_node_t, lru);
        gl_queue_move(&dns->ready, &node->waiters);
    }

    while (!gl_queue_empty(&dns->ready)) {
        x = gl_queue_head(&dns->ready);
        gl_queue_remove(x);
        q = gl_queue_data(x, gl_dns_query_t, link);
        ev_timer_stop(dns->loop, &q->timer);
        free(q);
    }

    dns->npending = 0;

    ev_timer_stop(dns->loop, &dns->timer);
    ev_timer_stop(dns->loop, &dns->defer);

    /* c-ares ends its lookups (gl_dns_ares_cb() ignores them) and closes
       its sockets (gl_dns_sock_state_cb() stops their watchers) */
    dns->destroying = 1;
    ares_destroy(dns->channel);

    while (dns->ios != NULL) {
        io = dns->ios;
        dns->ios = io->next;
        ev_io_stop(dns->loop, &io->io);
        free(io);
    }

    while (!gl_queue_empty(&dns->lru)) {
        x = gl_queue_head(&dns->lru);
        gl_dns_node_free(dns, gl_queue_data(x, gl_dns_node_t, lru));
    }

    free(dns->hash);
    free(dns);
}


void
gl_dns_free(gl_dns_t *dns)
{
    if (dns == NULL) {
        return;
    }

    if (dns->delivering) {
        /* from a handler: gl_dns_deliver() frees it on its way out */
        dns->dead = 1;
        return;
    }

    gl_dns_destroy(dns);
}
