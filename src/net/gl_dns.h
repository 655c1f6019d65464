/*
 * The non-blocking resolver: a name to its addresses, on c-ares and a
 * worker's libev loop, for the cosockets.  docs/dns.md says how names are
 * resolved and how that differs from nginx's resolver.
 *
 * A gl_dns_t belongs to one thread and one loop: its channel, its sockets
 * and its cache are that thread's; no function here may be called from
 * another thread.  Answers are cached by name (per gl_dns_t, bounded, LRU),
 * and the callers that ask for one name at once share one c-ares lookup.
 * No Lua, no config file: the caller fills a gl_dns_conf_t.
 */
#ifndef GL_DNS_H
#define GL_DNS_H

#include "gl_core.h"

#include <ev.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define GL_DNS_MAX_ADDRS    16
#define GL_DNS_MAX_SERVERS  16
#define GL_DNS_CACHE_NAMES  1024        /* the default of max_names */

/* nginx's resolver codes (ngx_resolver.h), in gl_dns_result_t.code */
#define GL_DNS_FORMERR      1           /* "Format error" */
#define GL_DNS_SERVFAIL     2           /* "Server failure" */
#define GL_DNS_NXDOMAIN     3           /* "Host not found" */
#define GL_DNS_NOTIMP       4           /* "Unimplemented" */
#define GL_DNS_REFUSED      5           /* "Operation refused" */
#define GL_DNS_TIMEDOUT     110         /* "Operation timed out" (ETIMEDOUT) */

/* a name server of the resolver directive */
typedef struct {
    int                      family;    /* AF_INET or AF_INET6 */
    union {
        struct in_addr       v4;
        struct in6_addr      v6;
    } addr;
    int                      port;      /* 1 .. 65535 */
} gl_dns_server_t;

/* what a resolver does: gl_dns_new() copies it */
typedef struct {
    /* 0: the servers, search domains and options of /etc/resolv.conf;
       else these servers, no search domains (as nginx) */
    int                      nservers;
    gl_dns_server_t          servers[GL_DNS_MAX_SERVERS];
    double                   timeout;   /* a lookup's limit, seconds;
                                           <= 0: 30 */
    double                   valid;     /* how long answers are kept,
                                           seconds; 0: each answer's TTL */
    int                      ipv4;      /* A records */
    int                      ipv6;      /* AAAA records */
    int                      max_names; /* the cache; 0: GL_DNS_CACHE_NAMES */
} gl_dns_conf_t;

typedef struct {
    socklen_t                socklen;
    struct sockaddr_storage  sa;        /* AF_INET or AF_INET6, port 0 */
} gl_dns_addr_t;

typedef struct {
    int                      naddrs;    /* > 0 on success */
    gl_dns_addr_t            addrs[GL_DNS_MAX_ADDRS];   /* IPv4 first */
    int                      code;      /* on failure: GL_DNS_FORMERR .. */
    const char              *err;       /* on failure: "Host not found"
                                           (a static string) */
} gl_dns_result_t;

typedef struct gl_dns_s        gl_dns_t;
typedef struct gl_dns_query_s  gl_dns_query_t;

/* res is the caller's only during the call: copy what is kept */
typedef void (*gl_dns_handler_pt)(void *data, const gl_dns_result_t *res);

/*
 * c-ares's process-wide set-up, once (gl_dns_new() does it too): for the
 * main thread at start.  GL_ERROR: logged.
 */
int gl_dns_init(void);

/*
 * A resolver on loop with a copy of conf (its servers, timeout, valid,
 * families).  Reads /etc/resolv.conf (no servers given) and arms nothing
 * until the first lookup.  NULL on error (logged).  The caller frees it
 * with gl_dns_free() in the loop's thread.
 */
gl_dns_t *gl_dns_new(struct ev_loop *loop, const gl_dns_conf_t *conf);

/*
 * Frees dns: its cache, its channel and its sockets; its pending queries
 * end without their handlers being called (the gl_dns_query_t handles are
 * freed too).  May be called from one of its handlers.  NULL is fine.
 */
void gl_dns_free(gl_dns_t *dns);

/*
 * Resolves name (len bytes, not NUL-terminated, case-insensitive; an IPv6
 * literal may be in brackets).
 *   GL_OK:    *res is filled now: an IPv4 or IPv6 literal, a cached
 *             answer, an /etc/hosts entry, or a failure known now (a name
 *             that cannot be asked: code 3).
 *   GL_AGAIN: h(data, res) will be called later from the loop, never from
 *             inside this call, unless gl_dns_cancel(*q) comes first; *q
 *             is valid until then.  *res is not touched.
 *   GL_ERROR: no memory (logged).
 */
int gl_dns_resolve(gl_dns_t *dns, const char *name, size_t len,
    gl_dns_result_t *res, gl_dns_handler_pt h, void *data,
    gl_dns_query_t **q);

/* a GL_AGAIN query whose handler has not run: it never will; q is freed.
   The lookup goes on for the others asking, and for the cache. */
void gl_dns_cancel(gl_dns_query_t *q);

/* 1 if dns was made with a conf equal to conf (a reload that changed
   nothing of the resolver keeps it, and its cache) */
int gl_dns_conf_same(const gl_dns_t *dns, const gl_dns_conf_t *conf);

/* the queries whose handlers are still to run */
size_t gl_dns_pending(const gl_dns_t *dns);

/*
 * Once dns has no pending query, idle(data, dns) is called from the loop
 * (soon after this call if there is none now); it may gl_dns_free(dns).
 * For a resolver that a reload replaced.  NULL idle: none.
 */
void gl_dns_on_idle(gl_dns_t *dns, void (*idle)(void *data, gl_dns_t *dns),
    void *data);

/* the nginx message of a code: "Host not found" */
const char *gl_dns_strerror(int code);

#endif /* GL_DNS_H */
