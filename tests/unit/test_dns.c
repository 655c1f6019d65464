/*
 * Unit tests of the resolver (src/net/gl_dns.c) and of its module
 * (src/api/gl_lua_resolver.c: the directives, a worker's resolver), both
 * included for their statics.  A
 * real dnsmasq on 127.0.0.1 and a free port answers from a hosts file of
 * the test's own (TTL 1 s, NXDOMAIN for other *.test names, REFUSED for
 * the rest); a UDP socket that never answers plays a dead server.  Only
 * loopback addresses; /etc/hosts's "localhost" for the default resolver.
 */
#include "../../src/net/gl_dns.c"
#include "../../src/api/gl_lua_resolver.c"

#include "gl_modules.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


#include "gl_test.h"


static struct ev_loop  *gl_t_loop;
static char             gl_t_dir[64];
static pid_t            gl_t_dnsmasq = -1;
static int              gl_t_port;          /* dnsmasq's */
static int              gl_t_dead_fd = -1;  /* a server that never answers */
static int              gl_t_dead_port;
static int              gl_t_in_resolve;    /* inside gl_dns_resolve() */

/* a handler's record */
typedef struct {
    int               called;
    int               in_resolve;           /* called from inside: a bug */
    gl_dns_result_t   res;
    double            at;
    gl_dns_t         *free_dns;             /* frees it when called */
    gl_dns_query_t   *cancel;               /* cancels it when called */
} gl_t_wait_t;


/* ---- dnsmasq ------------------------------------------------------------- */

static void
gl_t_write(const char *name, const char *text)
{
    FILE  *f;
    char   path[256];

    snprintf(path, sizeof(path), "%s/%s", gl_t_dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(1);
    }

    fputs(text, f);
    fclose(f);
    chmod(path, 0644);
}


/* a port free for UDP and TCP on 127.0.0.1 */
static int
gl_t_free_port(void)
{
    int                 u, t, port;
    socklen_t           len;
    struct sockaddr_in  sin;

    for ( ;; ) {
        u = socket(AF_INET, SOCK_DGRAM, 0);
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(sin);

        if (u < 0 || bind(u, (struct sockaddr *) &sin, sizeof(sin)) != 0
            || getsockname(u, (struct sockaddr *) &sin, &len) != 0)
        {
            perror("udp socket");
            exit(1);
        }

        port = ntohs(sin.sin_port);

        t = socket(AF_INET, SOCK_STREAM, 0);
        if (t >= 0 && bind(t, (struct sockaddr *) &sin, sizeof(sin)) == 0) {
            close(t);
            close(u);
            return port;
        }

        if (t >= 0) {
            close(t);
        }
        close(u);
    }
}


/* a UDP socket on 127.0.0.1 that reads nothing: a stalled server */
static void
gl_t_dead_server(void)
{
    socklen_t           len;
    struct sockaddr_in  sin;

    gl_t_dead_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sin);

    if (gl_t_dead_fd < 0
        || bind(gl_t_dead_fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || getsockname(gl_t_dead_fd, (struct sockaddr *) &sin, &len) != 0)
    {
        perror("dead server");
        exit(1);
    }

    gl_t_dead_port = ntohs(sin.sin_port);
}


/* one A query for a.test to dnsmasq: 1 if it answers within 100 ms */
static int
gl_t_probe(void)
{
    int                 fd, ok;
    u_char              buf[512];
    struct pollfd       pfd;
    struct sockaddr_in  sin;
    static const u_char q[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1
    };

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return 0;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(gl_t_port);

    ok = 0;

    if (sendto(fd, q, sizeof(q), 0, (struct sockaddr *) &sin, sizeof(sin))
        == (ssize_t) sizeof(q))
    {
        pfd.fd = fd;
        pfd.events = POLLIN;
        ok = poll(&pfd, 1, 100) == 1 && recv(fd, buf, sizeof(buf), 0) > 0;
    }

    close(fd);

    return ok;
}


static void
gl_t_stop_dnsmasq(void)
{
    int  status;

    if (gl_t_dnsmasq > 0) {
        kill(gl_t_dnsmasq, SIGKILL);
        waitpid(gl_t_dnsmasq, &status, 0);
        gl_t_dnsmasq = -1;
    }
}


static void
gl_t_start_dnsmasq(void)
{
    int    i, fd;
    char   port[32], hosts[128], log[128];
    char  *argv[16];

    gl_t_port = gl_t_free_port();

    snprintf(port, sizeof(port), "--port=%d", gl_t_port);
    snprintf(hosts, sizeof(hosts), "--addn-hosts=%s/hosts", gl_t_dir);
    snprintf(log, sizeof(log), "%s/dnsmasq.log", gl_t_dir);

    i = 0;
    argv[i++] = "dnsmasq";
    argv[i++] = "--no-daemon";
    argv[i++] = "--conf-file=/dev/null";
    argv[i++] = "--no-resolv";
    argv[i++] = "--no-hosts";
    argv[i++] = port;
    argv[i++] = "--listen-address=127.0.0.1";
    argv[i++] = "--bind-interfaces";
    argv[i++] = hosts;
    argv[i++] = "--pid-file=";
    argv[i++] = "--local-ttl=1";
    argv[i++] = "--local=/test/";
    argv[i++] = "--cache-size=0";
    argv[i] = NULL;

    gl_t_dnsmasq = fork();

    if (gl_t_dnsmasq < 0) {
        perror("fork");
        exit(1);
    }

    if (gl_t_dnsmasq == 0) {
        /* it dies with the test, whatever happens to the test */
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }

        execv("/usr/sbin/dnsmasq", argv);
        execvp("dnsmasq", argv);
        _exit(127);
    }

    atexit(gl_t_stop_dnsmasq);

    for (i = 0; i < 50; i++) {
        if (gl_t_probe()) {
            return;
        }
    }

    printf("dnsmasq does not answer on 127.0.0.1:%d (see %s)\n", gl_t_port,
           log);
    exit(1);
}


/* ---- the loop ------------------------------------------------------------ */

static int  gl_t_guard_fired;

static void
gl_t_guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;

    gl_t_guard_fired = 1;
}


/* runs the loop for secs, or until *flag (if flag) */
static double
gl_t_run(double secs, int *flag)
{
    double    start;
    ev_timer  guard;

    ev_now_update(gl_t_loop);
    start = ev_now(gl_t_loop);

    gl_t_guard_fired = 0;
    ev_timer_init(&guard, gl_t_guard_cb, secs, 0);
    ev_timer_start(gl_t_loop, &guard);

    while (!gl_t_guard_fired && (flag == NULL || !*flag)) {
        ev_run(gl_t_loop, EVRUN_ONCE);
    }

    ev_timer_stop(gl_t_loop, &guard);
    ev_now_update(gl_t_loop);

    return ev_now(gl_t_loop) - start;
}


static void
gl_t_handler(void *data, const gl_dns_result_t *res)
{
    gl_t_wait_t  *w = data;

    w->called++;
    w->in_resolve = gl_t_in_resolve;
    w->res = *res;
    w->at = ev_time();

    if (w->cancel != NULL) {
        gl_dns_cancel(w->cancel);
    }

    if (w->free_dns != NULL) {
        gl_dns_free(w->free_dns);
    }
}


static int
gl_t_resolve(gl_dns_t *dns, const char *name, gl_dns_result_t *res,
    gl_t_wait_t *w, gl_dns_query_t **q)
{
    int              rc;
    gl_dns_query_t  *dummy;

    memset(w, 0, sizeof(gl_t_wait_t));

    gl_t_in_resolve = 1;
    rc = gl_dns_resolve(dns, name, strlen(name), res, gl_t_handler, w,
                        q ? q : &dummy);
    gl_t_in_resolve = 0;

    return rc;
}


/* res holds exactly one address of family, text */
static int
gl_t_is(const gl_dns_result_t *res, int i, const char *text)
{
    char                       buf[INET6_ADDRSTRLEN];
    const struct sockaddr_in  *sin;
    const struct sockaddr_in6 *sin6;

    if (i >= res->naddrs) {
        return 0;
    }

    if (res->addrs[i].sa.ss_family == AF_INET) {
        sin = (const struct sockaddr_in *) &res->addrs[i].sa;
        if (res->addrs[i].socklen != sizeof(struct sockaddr_in)
            || sin->sin_port != 0)
        {
            return 0;
        }
        inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));

    } else if (res->addrs[i].sa.ss_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *) &res->addrs[i].sa;
        if (res->addrs[i].socklen != sizeof(struct sockaddr_in6)
            || sin6->sin6_port != 0)
        {
            return 0;
        }
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));

    } else {
        return 0;
    }

    return strcmp(buf, text) == 0;
}


static int
gl_t_count_fds(void)
{
    int             n;
    DIR            *d;
    struct dirent  *e;

    d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }

    n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }

    closedir(d);

    return n;
}


/* a resolver asking dnsmasq (port 0: the dead server) */
static gl_dns_t *
gl_t_dns(int port, double timeout, double valid, int ipv4, int ipv6)
{
    gl_dns_t       *dns;
    gl_dns_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.nservers = 1;
    conf.servers[0].family = AF_INET;
    conf.servers[0].addr.v4.s_addr = htonl(INADDR_LOOPBACK);
    conf.servers[0].port = port ? port : gl_t_dead_port;
    conf.timeout = timeout;
    conf.valid = valid;
    conf.ipv4 = ipv4;
    conf.ipv6 = ipv6;

    dns = gl_dns_new(gl_t_loop, &conf);
    if (dns == NULL) {
        printf("gl_dns_new failed\n");
        exit(1);
    }

    return dns;
}


/* ---- the tests ----------------------------------------------------------- */

static void
test_literals(void)
{
    int               fds;
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_result_t   res;

    dns = gl_t_dns(0, 0.3, 0, 1, 0);
    fds = gl_t_count_fds();

    CHECK(gl_t_resolve(dns, "127.0.0.1", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 1 && gl_t_is(&res, 0, "127.0.0.1"));

    /* a literal is an address even with ipv6=off, as in nginx */
    CHECK(gl_t_resolve(dns, "::1", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 1 && gl_t_is(&res, 0, "::1"));

    CHECK(gl_t_resolve(dns, "[::1]", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 1 && gl_t_is(&res, 0, "::1"));

    /* names that cannot be asked: known now */
    CHECK(gl_t_resolve(dns, "", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 0 && res.code == 3
          && strcmp(res.err, "Host not found") == 0);
    CHECK(gl_t_resolve(dns, "[nope]", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 0 && res.code == 3);
    CHECK(gl_t_resolve(dns, "a b", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 0 && res.code == 3);

    /* nothing asked, nothing opened */
    CHECK(dns->stat_lookups == 0);
    CHECK(gl_t_count_fds() == fds);
    CHECK(w.called == 0);

    gl_dns_free(dns);
}


static void
test_server_name(void)
{
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_result_t   res;

    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);

    res.naddrs = -7;
    CHECK(gl_t_resolve(dns, "a.test", &res, &w, NULL) == GL_AGAIN);
    CHECK(res.naddrs == -7);          /* untouched */
    CHECK(w.called == 0);

    gl_t_run(2, &w.called);
    CHECK(w.called == 1);
    CHECK(!w.in_resolve);
    CHECK(w.res.naddrs == 1 && gl_t_is(&w.res, 0, "127.0.0.5"));
    CHECK(w.res.code == 0 && w.res.err == NULL);

    /* cached (TTL 1 s), whatever the case */
    CHECK(gl_t_resolve(dns, "A.Test", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 1 && gl_t_is(&res, 0, "127.0.0.5"));
    CHECK(dns->stat_lookups == 1 && dns->stat_hits == 1);

    gl_dns_free(dns);
}


static void
test_hosts(void)
{
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_conf_t     conf;
    gl_dns_result_t   res;

    /* no resolver directive: /etc/hosts (and resolv.conf, not asked) */
    memset(&conf, 0, sizeof(conf));
    conf.ipv4 = 1;
    conf.ipv6 = 1;
    dns = gl_dns_new(gl_t_loop, &conf);
    CHECK(dns != NULL);

    CHECK(gl_t_resolve(dns, "localhost", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs >= 1 && gl_t_is(&res, 0, "127.0.0.1"));
    CHECK(dns->stat_lookups == 1);
    gl_dns_free(dns);

    /* with a resolver (here a dead one), /etc/hosts still first */
    dns = gl_t_dns(0, 0.3, 0, 1, 1);
    CHECK(gl_t_resolve(dns, "LocalHost", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs >= 1 && gl_t_is(&res, 0, "127.0.0.1"));
    gl_t_run(0.05, NULL);
    CHECK(w.called == 0);
    gl_dns_free(dns);
}


static void
test_failures(void)
{
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_result_t   res;

    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);

    CHECK(gl_t_resolve(dns, "nope.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1);
    CHECK(w.res.naddrs == 0 && w.res.code == 3);
    CHECK(w.res.err != NULL && strcmp(w.res.err, "Host not found") == 0);

    /* kept a second */
    CHECK(gl_t_resolve(dns, "nope.test", &res, &w, NULL) == GL_OK);
    CHECK(res.naddrs == 0 && res.code == 3);

    /* dnsmasq refuses what is not its own: not kept */
    CHECK(gl_t_resolve(dns, "nope.example", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && w.res.naddrs == 0 && w.res.code == 5);
    CHECK(w.res.err != NULL && strcmp(w.res.err, "Operation refused") == 0);
    CHECK(gl_t_resolve(dns, "nope.example", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && w.res.code == 5);

    gl_dns_free(dns);
}


static void
test_timeout(void)
{
    double            t0;
    gl_dns_t         *dns;
    gl_t_wait_t       w, w2;
    gl_dns_result_t   res;

    dns = gl_t_dns(0, 0.3, 0, 1, 1);

    t0 = ev_time();
    CHECK(gl_t_resolve(dns, "slow.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(3, &w.called);
    CHECK(w.called == 1);
    CHECK(w.res.naddrs == 0 && w.res.code == 110);
    CHECK(w.res.err != NULL
          && strcmp(w.res.err, "Operation timed out") == 0);
    CHECK(w.at - t0 >= 0.25 && w.at - t0 < 1.0);

    /* a second caller while c-ares still tries joins that lookup: 110
       when it ends, within the caller's own timeout */
    gl_t_run(0.1, NULL);
    t0 = ev_time();
    CHECK(gl_t_resolve(dns, "slow.test", &res, &w2, NULL) == GL_AGAIN);
    CHECK(dns->stat_lookups == 1);
    gl_t_run(3, &w2.called);
    CHECK(w2.called == 1 && w2.res.code == 110);
    CHECK(w2.at - t0 < 0.4);
    CHECK(w.called == 1);

    /* then a new lookup, with a full timeout */
    t0 = ev_time();
    CHECK(gl_t_resolve(dns, "slow.test", &res, &w2, NULL) == GL_AGAIN);
    CHECK(dns->stat_lookups == 2);
    gl_t_run(3, &w2.called);
    CHECK(w2.called == 1 && w2.res.code == 110);
    CHECK(w2.at - t0 >= 0.25 && w2.at - t0 < 1.0);

    gl_dns_free(dns);
}


static void
test_ttl_and_valid(void)
{
    gl_dns_t         *dns, *dns_short, *dns_long;
    gl_t_wait_t       w, ws, wl;
    gl_dns_result_t   res;

    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);           /* the TTL: 1 s */
    dns_short = gl_t_dns(gl_t_port, 5, 0.3, 1, 1);   /* valid=300ms */
    dns_long = gl_t_dns(gl_t_port, 5, 60, 1, 1);     /* valid=60s */

    CHECK(gl_t_resolve(dns, "ttl.test", &res, &w, NULL) == GL_AGAIN);
    CHECK(gl_t_resolve(dns_short, "ttl.test", &res, &ws, NULL) == GL_AGAIN);
    CHECK(gl_t_resolve(dns_long, "ttl.test", &res, &wl, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    gl_t_run(2, &ws.called);
    gl_t_run(2, &wl.called);
    CHECK(w.called && ws.called && wl.called);
    CHECK(gl_t_is(&w.res, 0, "127.0.0.8"));

    CHECK(gl_t_resolve(dns, "ttl.test", &res, &w, NULL) == GL_OK);
    CHECK(gl_t_is(&res, 0, "127.0.0.8"));
    CHECK(gl_t_resolve(dns_short, "ttl.test", &res, &ws, NULL) == GL_OK);
    CHECK(gl_t_resolve(dns_long, "ttl.test", &res, &wl, NULL) == GL_OK);

    /* past valid=300ms, within the TTL */
    gl_t_run(0.4, NULL);
    CHECK(gl_t_resolve(dns, "ttl.test", &res, &w, NULL) == GL_OK);
    CHECK(gl_t_resolve(dns_short, "ttl.test", &res, &ws, NULL)
          == GL_AGAIN);
    CHECK(dns_short->stat_lookups == 2);

    /* past the TTL */
    gl_t_run(0.8, NULL);
    CHECK(ws.called == 1);
    CHECK(gl_t_resolve(dns, "ttl.test", &res, &w, NULL) == GL_AGAIN);
    CHECK(dns->stat_lookups == 2);
    CHECK(gl_t_resolve(dns_long, "ttl.test", &res, &wl, NULL) == GL_OK);
    CHECK(gl_t_is(&res, 0, "127.0.0.8"));
    CHECK(dns_long->stat_lookups == 1);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && gl_t_is(&w.res, 0, "127.0.0.8"));

    gl_dns_free(dns);
    gl_dns_free(dns_short);
    gl_dns_free(dns_long);
}


static void
test_families(void)
{
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_result_t   res;

    /* ipv6=on: A and AAAA, IPv4 first */
    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);
    CHECK(gl_t_resolve(dns, "both.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.res.naddrs == 2);
    CHECK(gl_t_is(&w.res, 0, "127.0.0.6"));
    CHECK(gl_t_is(&w.res, 1, "::1"));
    gl_dns_free(dns);

    /* ipv6=off: A only */
    dns = gl_t_dns(gl_t_port, 5, 0, 1, 0);
    CHECK(gl_t_resolve(dns, "both.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.res.naddrs == 1 && gl_t_is(&w.res, 0, "127.0.0.6"));
    gl_dns_free(dns);

    /* ipv4=off: AAAA only */
    dns = gl_t_dns(gl_t_port, 5, 0, 0, 1);
    CHECK(gl_t_resolve(dns, "both.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.res.naddrs == 1 && gl_t_is(&w.res, 0, "::1"));
    gl_dns_free(dns);

    /* a v4-only name with ipv6=off and ipv4=off... is not asked: A only
       is the fallback of a conf that turns both off */
    dns = gl_t_dns(gl_t_port, 5, 0, 0, 0);
    CHECK(dns->conf.ipv4 == 1 && dns->conf.ipv6 == 0);
    gl_dns_free(dns);
}


static void
test_cancel(void)
{
    gl_dns_t         *dns;
    gl_t_wait_t       w, w2;
    gl_dns_query_t   *q;
    gl_dns_node_t    *node;
    gl_dns_result_t   res;

    /* cancelled before the answer: never called, not even the timeout */
    dns = gl_t_dns(0, 0.2, 0, 1, 1);
    CHECK(gl_t_resolve(dns, "x.test", &res, &w, &q) == GL_AGAIN);
    CHECK(gl_dns_pending(dns) == 1);
    gl_dns_cancel(q);
    CHECK(gl_dns_pending(dns) == 0);
    gl_t_run(0.4, NULL);
    CHECK(w.called == 0);
    gl_dns_free(dns);

    /* the lookup goes on for the cache */
    dns = gl_t_dns(gl_t_port, 5, 60, 1, 1);
    CHECK(gl_t_resolve(dns, "cancel.test", &res, &w, &q) == GL_AGAIN);
    gl_dns_cancel(q);
    node = gl_dns_find(dns, "cancel.test", 11, gl_dns_hash("cancel.test", 11));
    CHECK(node != NULL && node->resolving);
    gl_t_run(1, NULL);
    CHECK(w.called == 0);
    CHECK(node->resolving == 0);
    CHECK(gl_t_resolve(dns, "cancel.test", &res, &w2, NULL) == GL_OK);
    CHECK(gl_t_is(&res, 0, "127.0.0.10"));
    gl_dns_free(dns);
}


static void
test_shared(void)
{
    int               i;
    gl_dns_t         *dns;
    gl_t_wait_t       w[4];
    gl_dns_query_t   *q[4];
    gl_dns_result_t   res;

    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);

    for (i = 0; i < 4; i++) {
        CHECK(gl_t_resolve(dns, "share.test", &res, &w[i], &q[i])
              == GL_AGAIN);
    }

    CHECK(dns->stat_lookups == 1);
    CHECK(gl_dns_pending(dns) == 4);

    /* the first one cancels the third as it is told */
    w[0].cancel = q[2];

    gl_t_run(2, &w[3].called);
    CHECK(w[0].called == 1 && w[1].called == 1 && w[2].called == 0
          && w[3].called == 1);
    CHECK(gl_t_is(&w[0].res, 0, "127.0.0.9"));
    CHECK(gl_t_is(&w[1].res, 0, "127.0.0.9"));
    CHECK(gl_t_is(&w[3].res, 0, "127.0.0.9"));
    CHECK(w[1].at >= w[0].at && w[3].at >= w[1].at);
    CHECK(gl_dns_pending(dns) == 0);

    gl_dns_free(dns);

    /* a handler frees the resolver: the others are not told */
    dns = gl_t_dns(gl_t_port, 5, 0, 1, 1);

    for (i = 0; i < 3; i++) {
        CHECK(gl_t_resolve(dns, "share.test", &res, &w[i], &q[i])
              == GL_AGAIN);
    }

    w[0].free_dns = dns;
    gl_t_run(0.5, NULL);
    CHECK(w[0].called == 1 && w[1].called == 0 && w[2].called == 0);
}


static void
test_free_pending(void)
{
    int               fds;
    gl_dns_t         *dns;
    gl_t_wait_t       w, w2;
    gl_dns_result_t   res;

    fds = gl_t_count_fds();

    dns = gl_t_dns(0, 0.2, 0, 1, 1);
    CHECK(gl_t_resolve(dns, "p1.test", &res, &w, NULL) == GL_AGAIN);
    CHECK(gl_t_resolve(dns, "p2.test", &res, &w2, NULL) == GL_AGAIN);
    gl_t_run(0.05, NULL);

    /* c-ares has a socket open, watched */
    CHECK(gl_t_count_fds() > fds);
    CHECK(dns->ios != NULL);

    gl_dns_free(dns);
    gl_t_run(0.4, NULL);
    CHECK(w.called == 0 && w2.called == 0);
    CHECK(gl_t_count_fds() == fds);
}


static void
test_evict(void)
{
    int               i;
    char              name[32];
    gl_dns_t         *dns;
    gl_t_wait_t       w;
    gl_dns_conf_t     conf;
    gl_dns_result_t   res;

    memset(&conf, 0, sizeof(conf));
    conf.nservers = 1;
    conf.servers[0].family = AF_INET;
    conf.servers[0].addr.v4.s_addr = htonl(INADDR_LOOPBACK);
    conf.servers[0].port = gl_t_port;
    conf.timeout = 5;
    conf.valid = 60;
    conf.ipv4 = 1;
    conf.max_names = 4;

    dns = gl_dns_new(gl_t_loop, &conf);
    CHECK(dns != NULL);

    for (i = 1; i <= 5; i++) {
        snprintf(name, sizeof(name), "e%d.test", i);
        CHECK(gl_t_resolve(dns, name, &res, &w, NULL) == GL_AGAIN);
        gl_t_run(2, &w.called);
        CHECK(w.called == 1 && w.res.naddrs == 1);
    }

    CHECK(dns->nnodes == 4);
    CHECK(gl_t_resolve(dns, "e5.test", &res, &w, NULL) == GL_OK);
    CHECK(gl_t_resolve(dns, "e2.test", &res, &w, NULL) == GL_OK);
    /* the least recently used went */
    CHECK(gl_t_resolve(dns, "e1.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && gl_t_is(&w.res, 0, "127.0.1.1"));
    CHECK(dns->nnodes == 4);
    CHECK(gl_t_resolve(dns, "e2.test", &res, &w, NULL) == GL_OK);

    gl_dns_free(dns);
}


/* ---- the module ---------------------------------------------------------- */

static char  gl_t_err[4096];


static gl_conf_t *
gl_t_load(const char *text)
{
    char  path[128];

    gl_t_write("golapis.conf", text);
    snprintf(path, sizeof(path), "%s/golapis.conf", gl_t_dir);
    gl_t_err[0] = '\0';

    return gl_conf_load(path, gl_modules, gl_t_err, sizeof(gl_t_err));
}


/* text fails with "DIR/golapis.conf:LINE: want" */
static void
gl_t_check_fails(int at, const char *text, int line, const char *want)
{
    char        full[1024];
    gl_conf_t  *conf;

    conf = gl_t_load(text);
    snprintf(full, sizeof(full), "%s/golapis.conf:%d: %s", gl_t_dir, line,
             want);

    if (conf == NULL && strcmp(gl_t_err, full) == 0) {
        gl_t_passed++;
        return;
    }

    gl_t_failed++;
    printf("FAIL %s:%d: the config\n  got:  %s\n  want: %s\n", __FILE__, at,
           conf ? "(loaded)" : gl_t_err, full);
    gl_conf_free(conf);
}

#define LISTEN  "listen unix:s.sock; document_root .;\n"
#define CHECK_FAILS(text, line, want)                                        \
    gl_t_check_fails(__LINE__, LISTEN text, line, want)


static void
test_directives(void)
{
    gl_conf_t           *conf;
    gl_resolver_conf_t  *rcf;

    conf = gl_t_load(LISTEN);
    CHECK(conf != NULL);
    rcf = gl_conf_module(conf, &gl_lua_resolver_module);
    CHECK(rcf != NULL && !rcf->resolver && rcf->dns.nservers == 0);
    CHECK(rcf != NULL && rcf->dns.timeout == 30 && rcf->dns.valid == 0);
    CHECK(rcf != NULL && rcf->dns.ipv4 == 1 && rcf->dns.ipv6 == 1);
    gl_conf_free(conf);

    conf = gl_t_load(LISTEN "resolver 127.0.0.1 [::1]:5353 127.0.0.2:54 ::1 "
                     "valid=30s ipv6=off;\nresolver_timeout 500ms;\n");
    CHECK(conf != NULL);
    rcf = conf ? gl_conf_module(conf, &gl_lua_resolver_module) : NULL;
    CHECK(rcf != NULL && rcf->dns.nservers == 4);
    if (rcf != NULL && rcf->dns.nservers == 4) {
        CHECK(rcf->dns.servers[0].family == AF_INET
              && rcf->dns.servers[0].port == 53
              && rcf->dns.servers[0].addr.v4.s_addr
                 == htonl(INADDR_LOOPBACK));
        CHECK(rcf->dns.servers[1].family == AF_INET6
              && rcf->dns.servers[1].port == 5353
              && IN6_IS_ADDR_LOOPBACK(&rcf->dns.servers[1].addr.v6));
        CHECK(rcf->dns.servers[2].family == AF_INET
              && rcf->dns.servers[2].port == 54);
        CHECK(rcf->dns.servers[3].family == AF_INET6
              && rcf->dns.servers[3].port == 53);
        CHECK(rcf->dns.valid == 30 && rcf->dns.ipv6 == 0
              && rcf->dns.ipv4 == 1 && rcf->dns.timeout == 0.5);
    }
    gl_conf_free(conf);

    CHECK_FAILS("resolver dns.example.com;\n", 2,
                "\"resolver\" takes IP addresses, not names (nginx resolves "
                "them at start, golapis does not): \"dns.example.com\"");
    CHECK_FAILS("resolver 127.0.0.1:0;\n", 2,
                "invalid port in \"127.0.0.1:0\" of \"resolver\"");
    CHECK_FAILS("resolver [::1]:x;\n", 2,
                "invalid port in \"[::1]:x\" of \"resolver\"");
    CHECK_FAILS("resolver [::1;\n", 2,
                "invalid address \"[::1\" in \"resolver\"");
    CHECK_FAILS("resolver 1.2.3.4:53:53;\n", 2,
                "invalid address \"1.2.3.4:53:53\" in \"resolver\"");
    CHECK_FAILS("resolver valid=1s;\n", 2, "no name server in \"resolver\"");
    CHECK_FAILS("resolver 127.0.0.1 valid=soon;\n", 2,
                "invalid parameter \"valid=soon\" in \"resolver\"");
    CHECK_FAILS("resolver 127.0.0.1 ipv6=maybe;\n", 2,
                "invalid parameter \"ipv6=maybe\" in \"resolver\", it must "
                "be \"on\" or \"off\"");
    CHECK_FAILS("resolver 127.0.0.1 ipv4=off ipv6=off;\n", 2,
                "\"resolver\" cannot have both ipv4=off and ipv6=off");
    CHECK_FAILS("resolver 127.0.0.1 status_zone=x;\n", 2,
                "invalid parameter \"status_zone=x\" in \"resolver\"");
    CHECK_FAILS("resolver 127.0.0.1;\nresolver 127.0.0.1;\n", 3,
                "\"resolver\" directive is duplicate");
    CHECK_FAILS("resolver_timeout 0;\n", 2,
                "\"resolver_timeout\" must be at least 1ms");
    CHECK_FAILS("resolver_timeout soon;\n", 2,
                "invalid time \"soon\" in \"resolver_timeout\"");
}


static void
test_worker(void)
{
    char                   text[256];
    gl_vm_t                vm;
    gl_dns_t              *dns1, *dns2;
    gl_conf_t             *conf1, *conf2, *conf3;
    gl_t_wait_t            w;
    gl_dns_result_t        res;
    gl_resolver_worker_t  *rw;

    snprintf(text, sizeof(text), LISTEN "resolver 127.0.0.1:%d;\n"
             "resolver_timeout 5s;\n", gl_t_port);
    conf1 = gl_t_load(text);
    conf2 = gl_t_load(text);
    snprintf(text, sizeof(text), LISTEN "resolver 127.0.0.1:%d valid=60;\n",
             gl_t_port);
    conf3 = gl_t_load(text);
    CHECK(conf1 != NULL && conf2 != NULL && conf3 != NULL);
    if (conf1 == NULL || conf2 == NULL || conf3 == NULL) {
        return;
    }

    memset(&vm, 0, sizeof(vm));
    vm.loop = gl_t_loop;
    vm.conf = conf1;

    dns1 = gl_resolver_worker(&vm);
    CHECK(dns1 != NULL);
    CHECK(gl_resolver_worker(&vm) == dns1);

    CHECK(gl_t_resolve(dns1, "a.test", &res, &w, NULL) == GL_AGAIN);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && gl_t_is(&w.res, 0, "127.0.0.5"));

    /* a reload with the same resolver lines keeps it, and its cache */
    vm.conf = conf2;
    CHECK(gl_resolver_worker(&vm) == dns1);
    CHECK(gl_t_resolve(dns1, "a.test", &res, &w, NULL) == GL_OK);

    /* a reload that changes them: a new one; the old one answers what it
       has, then goes */
    CHECK(gl_t_resolve(dns1, "both.test", &res, &w, NULL) == GL_AGAIN);
    vm.conf = conf3;
    dns2 = gl_resolver_worker(&vm);
    CHECK(dns2 != NULL && dns2 != dns1);
    CHECK(dns2 != NULL && dns2->conf.valid == 60);
    rw = *gl_vm_module_data(&vm, &gl_lua_resolver_module);
    CHECK(rw->nold == 1 && rw->old[0] == dns1);
    gl_t_run(2, &w.called);
    CHECK(w.called == 1 && w.res.naddrs == 2);
    gl_t_run(0.05, NULL);
    CHECK(rw->nold == 0);
    CHECK(gl_resolver_worker(&vm) == dns2);

    /* an idle old one goes at once (from the loop) */
    vm.conf = conf1;
    CHECK(gl_resolver_worker(&vm) != dns2);
    CHECK(rw->nold == 1);
    gl_t_run(0.05, NULL);
    CHECK(rw->nold == 0);

    /* exit_worker frees the current one and the old ones */
    CHECK(gl_t_resolve(gl_resolver_worker(&vm), "slow.test", &res, &w, NULL)
          == GL_AGAIN);
    vm.conf = conf3;
    CHECK(gl_resolver_worker(&vm) != NULL);
    CHECK(rw->nold == 1);
    gl_lua_resolver_module.exit_worker(&vm);
    CHECK(*gl_vm_module_data(&vm, &gl_lua_resolver_module) == NULL);
    gl_t_run(0.05, NULL);

    gl_conf_free(conf1);
    gl_conf_free(conf2);
    gl_conf_free(conf3);
}


int
main(void)
{
    int  fds;

    signal(SIGPIPE, SIG_IGN);

    snprintf(gl_t_dir, sizeof(gl_t_dir), "/tmp/gl-test-dns-XXXXXX");
    if (mkdtemp(gl_t_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    /* dnsmasq may read it as nobody */
    chmod(gl_t_dir, 0755);

    gl_t_write("hosts",
               "127.0.0.5 a.test\n"
               "127.0.0.6 both.test\n"
               "::1 both.test\n"
               "127.0.0.8 ttl.test\n"
               "127.0.0.9 share.test\n"
               "127.0.0.10 cancel.test\n"
               "127.0.1.1 e1.test\n"
               "127.0.1.2 e2.test\n"
               "127.0.1.3 e3.test\n"
               "127.0.1.4 e4.test\n"
               "127.0.1.5 e5.test\n");

    gl_t_loop = ev_loop_new(EVFLAG_AUTO);
    if (gl_t_loop == NULL) {
        printf("ev_loop_new failed\n");
        return 1;
    }

    gl_t_start_dnsmasq();
    gl_t_dead_server();

    fds = gl_t_count_fds();

    test_literals();
    test_server_name();
    test_hosts();
    test_failures();
    test_timeout();
    test_ttl_and_valid();
    test_families();
    test_cancel();
    test_shared();
    test_free_pending();
    test_evict();
    test_directives();
    test_worker();

    /* every resolver freed: no socket of c-ares left */
    CHECK(gl_t_count_fds() == fds);

    gl_t_stop_dnsmasq();
    close(gl_t_dead_fd);
    ev_loop_destroy(gl_t_loop);

    {
        char  cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", gl_t_dir);
        if (system(cmd) != 0) {
            printf("could not remove %s\n", gl_t_dir);
        }
    }

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
