/*
 * Syslog peers (gl_syslog.h), as nginx's ngx_syslog.c: its parameters,
 * their defaults (facility local7, severity info) and its header.  The
 * tag defaults to "golapis".
 *
 * Nothing here writes to the error log: the error log itself sends
 * through it.
 */
#include "gl_core.h"
#include "gl_syslog.h"

#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GL_SYSLOG_PORT     "514"
#define GL_SYSLOG_TAG_MAX  32

struct gl_syslog_s {
    char                     *target;
    int                       facility;
    int                       severity;
    unsigned                  nohostname:1;
    char                      tag[GL_SYSLOG_TAG_MAX + 1];

    struct sockaddr_storage   addr;
    socklen_t                 addrlen;
    int                       fd;           /* its number never changes */
    _Atomic long long         retried;      /* the second of the last
                                               reconnect */
    pthread_mutex_t           lock;         /* one reconnect at a time */
};

static const char  *gl_syslog_facilities[] = {
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news",
    "uucp", "clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7"
};

static const char  *gl_syslog_severities[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};

static pthread_once_t  gl_syslog_once = PTHREAD_ONCE_INIT;
static char            gl_syslog_hostname[256];


/* nginx sends its host name lower-cased */
static void
gl_syslog_init_hostname(void)
{
    char  *p;

    if (gethostname(gl_syslog_hostname, sizeof(gl_syslog_hostname) - 1)
        == -1)
    {
        snprintf(gl_syslog_hostname, sizeof(gl_syslog_hostname),
                 "localhost");
    }

    for (p = gl_syslog_hostname; *p; p++) {
        *p = (char) tolower((unsigned char) *p);
    }
}


static int
gl_syslog_find(const char **names, size_t n, const char *v, size_t len)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], v, len) == 0) {
            return (int) i;
        }
    }

    return -1;
}


/* "unix:/path", "HOST", "HOST:PORT", "[IPV6]", "[IPV6]:PORT" */
static int
gl_syslog_resolve(gl_syslog_t *s, const char *v, size_t len, char *err,
    size_t size)
{
    int                  rc;
    char                 host[256], port[16];
    const char          *p, *colon;
    struct addrinfo      hints, *res;
    struct sockaddr_un  *sun;

    if (len > 5 && memcmp(v, "unix:", 5) == 0) {
        sun = (struct sockaddr_un *) &s->addr;

        if (len - 5 >= sizeof(sun->sun_path)) {
            snprintf(err, size, "syslog server path \"%.*s\" is too long",
                     (int) (len - 5), v + 5);
            return GL_ERROR;
        }

        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, v + 5, len - 5);
        sun->sun_path[len - 5] = '\0';
        s->addrlen = sizeof(struct sockaddr_un);

        return GL_OK;
    }

    if (len > 0 && v[0] == '[') {
        p = memchr(v, ']', len);
        if (p == NULL || p - v - 1 >= (long) sizeof(host) || p == v + 1) {
            snprintf(err, size, "invalid syslog server \"%.*s\"", (int) len,
                     v);
            return GL_ERROR;
        }

        memcpy(host, v + 1, p - v - 1);
        host[p - v - 1] = '\0';
        p++;
        colon = (p < v + len && *p == ':') ? p : NULL;

        if (colon == NULL && p != v + len) {
            snprintf(err, size, "invalid syslog server \"%.*s\"", (int) len,
                     v);
            return GL_ERROR;
        }

    } else {
        colon = memchr(v, ':', len);
        p = colon ? colon : v + len;

        if (p == v || p - v >= (long) sizeof(host)) {
            snprintf(err, size, "invalid syslog server \"%.*s\"", (int) len,
                     v);
            return GL_ERROR;
        }

        memcpy(host, v, p - v);
        host[p - v] = '\0';
    }

    if (colon != NULL) {
        len -= colon + 1 - v;

        if (len == 0 || len >= sizeof(port)
            || strspn(colon + 1, "0123456789") < len)
        {
            snprintf(err, size, "invalid port in syslog server \"%.*s\"",
                     (int) len, colon + 1);
            return GL_ERROR;
        }

        memcpy(port, colon + 1, len);
        port[len] = '\0';

        /* at most 5 digits: atoi() of more could wrap into range */
        if (len > 5 || atoi(port) < 1 || atoi(port) > 65535) {
            snprintf(err, size, "invalid port in syslog server \"%s\"", port);
            return GL_ERROR;
        }

    } else {
        snprintf(port, sizeof(port), "%s", GL_SYSLOG_PORT);
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, size, "host not found in syslog server \"%s\": %s",
                 host, gai_strerror(rc));
        return GL_ERROR;
    }

    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    freeaddrinfo(res);

    return GL_OK;
}


/* the parameters after "syslog:", as ngx_syslog_parse_args() */
static int
gl_syslog_parse(gl_syslog_t *s, const char *target, char *err, size_t size)
{
    int          server, n;
    size_t       len, vlen;
    const char  *p, *end, *v, *comma;

    if (!gl_syslog_is(target)) {
        snprintf(err, size, "\"%s\" is not a syslog target", target);
        return GL_ERROR;
    }

    s->facility = -1;
    s->severity = -1;
    s->tag[0] = '\0';
    server = 0;

    p = target + 7;
    end = p + strlen(p);

    while (p < end) {
        comma = memchr(p, ',', end - p);
        len = (comma ? comma : end) - p;

        v = memchr(p, '=', len);
        v = v ? v + 1 : NULL;
        vlen = v ? len - (size_t) (v - p) : 0;

#define gl_syslog_param(name)                                                \
        (v != NULL && (size_t) (v - p) == sizeof(name)                       \
         && memcmp(p, name "=", sizeof(name)) == 0)

        if (gl_syslog_param("server")) {
            if (server) {
                snprintf(err, size, "duplicate syslog \"server\"");
                return GL_ERROR;
            }

            if (gl_syslog_resolve(s, v, vlen, err, size) != GL_OK) {
                return GL_ERROR;
            }

            server = 1;

        } else if (gl_syslog_param("facility")) {
            if (s->facility != -1) {
                snprintf(err, size, "duplicate syslog \"facility\"");
                return GL_ERROR;
            }

            s->facility = gl_syslog_find(gl_syslog_facilities,
                                         gl_nelems(gl_syslog_facilities), v,
                                         vlen);
            if (s->facility == -1) {
                snprintf(err, size, "unknown syslog facility \"%.*s\"",
                         (int) vlen, v);
                return GL_ERROR;
            }

        } else if (gl_syslog_param("severity")) {
            if (s->severity != -1) {
                snprintf(err, size, "duplicate syslog \"severity\"");
                return GL_ERROR;
            }

            s->severity = gl_syslog_find(gl_syslog_severities,
                                         gl_nelems(gl_syslog_severities), v,
                                         vlen);
            if (s->severity == -1) {
                snprintf(err, size, "unknown syslog severity \"%.*s\"",
                         (int) vlen, v);
                return GL_ERROR;
            }

        } else if (gl_syslog_param("tag")) {
            if (s->tag[0] != '\0') {
                snprintf(err, size, "duplicate syslog \"tag\"");
                return GL_ERROR;
            }

            if (vlen == 0 || vlen > GL_SYSLOG_TAG_MAX) {
                snprintf(err, size, "syslog tag length exceeds %d",
                         GL_SYSLOG_TAG_MAX);
                return GL_ERROR;
            }

            for (n = 0; n < (int) vlen; n++) {
                if (!isalnum((unsigned char) v[n]) && v[n] != '_') {
                    snprintf(err, size, "syslog \"tag\" only allows "
                             "alphanumeric characters and underscore");
                    return GL_ERROR;
                }
            }

            memcpy(s->tag, v, vlen);
            s->tag[vlen] = '\0';

        } else if (len == 10 && memcmp(p, "nohostname", 10) == 0) {
            s->nohostname = 1;

        } else {
            snprintf(err, size, "unknown syslog parameter \"%.*s\"",
                     (int) len, p);
            return GL_ERROR;
        }

#undef gl_syslog_param

        p += len + (comma ? 1 : 0);
    }

    if (!server) {
        snprintf(err, size, "no server specified");
        return GL_ERROR;
    }

    if (s->facility == -1) {
        s->facility = 23;                   /* local7 */
    }

    if (s->severity == -1) {
        s->severity = 6;                    /* info */
    }

    if (s->tag[0] == '\0') {
        snprintf(s->tag, sizeof(s->tag), "golapis");
    }

    return GL_OK;
}


int
gl_syslog_check(const char *target, char *err, size_t size)
{
    gl_syslog_t  s;

    memset(&s, 0, sizeof(s));

    return gl_syslog_parse(&s, target, err, size);
}


/* a new socket for s, connected if the peer is there (a unix socket's
   daemon may come later); -1 on error */
static int
gl_syslog_socket(gl_syslog_t *s)
{
    int  fd;

    fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        return -1;
    }

    (void) connect(fd, (struct sockaddr *) &s->addr, s->addrlen);

    return fd;
}


gl_syslog_t *
gl_syslog_open(const char *target, char *err, size_t size)
{
    gl_syslog_t  *s;

    pthread_once(&gl_syslog_once, gl_syslog_init_hostname);

    s = calloc(1, sizeof(gl_syslog_t));
    if (s == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    s->fd = -1;

    if (gl_syslog_parse(s, target, err, size) != GL_OK) {
        free(s);
        return NULL;
    }

    s->target = strdup(target);
    s->fd = gl_syslog_socket(s);

    if (s->target == NULL || s->fd == -1) {
        snprintf(err, size, "cannot make a socket for \"%s\": %s", target,
                 strerror(errno));
        free(s->target);
        free(s);
        return NULL;
    }

    pthread_mutex_init(&s->lock, NULL);

    return s;
}


void
gl_syslog_close(gl_syslog_t *s)
{
    if (s == NULL) {
        return;
    }

    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s->target);
    free(s);
}


const char *
gl_syslog_target(gl_syslog_t *s)
{
    return s->target;
}


int
gl_syslog_severity(gl_syslog_t *s)
{
    return s->severity;
}


/* "Nov  3 19:04:00", as nginx's ngx_cached_syslog_time; per thread, made
   once a second */
static size_t
gl_syslog_time(char *buf, size_t size)
{
    time_t     now;
    struct tm  tm;

    static _Thread_local time_t  cached = -1;
    static _Thread_local char    text[32];
    static _Thread_local size_t  len;

    static const char  *months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };

    now = time(NULL);

    if (now != cached) {
        localtime_r(&now, &tm);
        len = (size_t) snprintf(text, sizeof(text), "%s %2d %02d:%02d:%02d",
                                months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec);
        cached = now;
    }

    len = gl_min(len, size);
    memcpy(buf, text, len);

    return len;
}


/* the socket lost its peer (a syslog daemon restarted behind a unix
   socket): a new one goes behind the same number, at most once a second */
static void
gl_syslog_reconnect(gl_syslog_t *s)
{
    int              fd;
    long long        last;
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);

    last = atomic_load_explicit(&s->retried, memory_order_relaxed);

    if (last == (long long) ts.tv_sec
        || !atomic_compare_exchange_strong(&s->retried, &last,
                                           (long long) ts.tv_sec))
    {
        return;
    }

    if (pthread_mutex_trylock(&s->lock) != 0) {
        return;
    }

    fd = gl_syslog_socket(s);

    if (fd != -1) {
        (void) dup2(fd, s->fd);
        close(fd);
    }

    pthread_mutex_unlock(&s->lock);
}


void
gl_syslog_send(gl_syslog_t *s, int severity, const char *msg, size_t len)
{
    int      n, saved;
    char     buf[GL_SYSLOG_MAX];
    size_t   hlen;
    ssize_t  rc;

    saved = errno;

    severity = (severity < 0 || severity > 7) ? 3 : severity;

    n = snprintf(buf, sizeof(buf), "<%d>", s->facility * 8 + severity);
    hlen = (size_t) n;
    hlen += gl_syslog_time(buf + hlen, sizeof(buf) - hlen);

    if (s->nohostname) {
        n = snprintf(buf + hlen, sizeof(buf) - hlen, " %s: ", s->tag);
    } else {
        n = snprintf(buf + hlen, sizeof(buf) - hlen, " %s %s: ",
                     gl_syslog_hostname, s->tag);
    }

    hlen = gl_min(hlen + (size_t) gl_max(n, 0), sizeof(buf));

    len = gl_min(len, sizeof(buf) - hlen);
    memcpy(buf + hlen, msg, len);

    rc = send(s->fd, buf, hlen + len, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (rc == -1 && errno != EAGAIN && errno != EWOULDBLOCK
        && errno != ENOBUFS)
    {
        /* a UDP peer's ICMP error is reported once: the next send goes;
           a unix socket's daemon went away, or the socket was never
           connected (no route to the server when golapis started):
           connect again */
        if (s->addr.ss_family == AF_UNIX || errno == ENOTCONN
            || errno == EDESTADDRREQ)
        {
            gl_syslog_reconnect(s);
        }

        (void) send(s->fd, buf, hlen + len, MSG_DONTWAIT | MSG_NOSIGNAL);
    }

    errno = saved;
}
