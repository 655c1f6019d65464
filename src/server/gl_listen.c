/*
 * Listening sockets and the acceptor.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_listen.h"
#include "gl_watch.h"
#include "gl_log.h"
#include "gl_stat.h"
#include "gl_worker.h"
#include "gl_systemd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GL_LISTEN_BACKLOG   4096

/* out of descriptors or memory: accepting stops for this long, doubling
   while it lasts, up to the max (docs/limits.md) */
#define GL_LISTEN_RETRY_MIN   0.1
#define GL_LISTEN_RETRY_MAX   1.0

static gl_worker_t  *gl_listen_workers;
static int           gl_listen_nworkers;
static unsigned      gl_listen_next;
static ev_timer      gl_listen_retry;
static double        gl_listen_delay = GL_LISTEN_RETRY_MIN;
static gl_listening_t *gl_listen_ls;
static int           gl_listen_n;
static gl_conf_t    *gl_listen_conf;      /* its allow and deny rules */
static int           gl_listen_keep;


/* GL_OK if path is free to bind (a stale socket file is removed) */
static int
gl_listen_check_unix(const char *path)
{
    int                 fd, rc;
    struct stat         st;
    struct sockaddr_un  sun;

    if (lstat(path, &st) == -1) {
        if (errno == ENOENT) {
            return GL_OK;
        }

        gl_log_error(GL_LOG_EMERG, errno, "stat(\"%s\") failed", path);
        return GL_ERROR;
    }

    if (!S_ISSOCK(st.st_mode)) {
        gl_log_error(GL_LOG_EMERG, 0, "\"%s\" exists and is not a socket; "
                     "not replacing it", path);
        return GL_ERROR;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "socket() failed");
        return GL_ERROR;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);

    rc = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
    close(fd);

    if (rc == 0) {
        gl_log_error(GL_LOG_EMERG, 0, "another server is listening on "
                     "unix:%s; not starting", path);
        return GL_ERROR;
    }

    if (errno != ECONNREFUSED) {
        gl_log_error(GL_LOG_EMERG, errno, "cannot tell whether unix:%s is "
                     "in use", path);
        return GL_ERROR;
    }

    gl_log_error(GL_LOG_NOTICE, 0, "removing the stale socket file \"%s\"",
                 path);

    if (unlink(path) == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "unlink(\"%s\") failed", path);
        return GL_ERROR;
    }

    return GL_OK;
}


static int
gl_listen_open_unix(gl_listen_conf_t *lc)
{
    int                 fd, rc;
    mode_t              old;
    struct sockaddr_un  sun;

    if (gl_listen_check_unix(lc->path) != GL_OK) {
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "socket() failed");
        return -1;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", lc->path);

    /* the file is made with its mode (the umask's complement), not
       chmod'ed after: the directory may be the user's, who could put a
       symlink in its place between the two, and root's chmod would
       follow it (start-up, the main thread alone makes files now) */
    old = umask(~(mode_t) (lc->mode == -1 ? 0660 : lc->mode) & 0777);
    rc = bind(fd, (struct sockaddr *) &sun, sizeof(sun));
    (void) umask(old);

    if (rc == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "bind() to unix:%s failed",
                     lc->path);
        close(fd);
        return -1;
    }

    /* owner=, group=, or as root the "user": nginx's user must connect,
       ours remove the file at exit; lchown, for the same reason */
    if ((lc->uid != (uid_t) -1 || lc->gid != (gid_t) -1)
        && lchown(lc->path, lc->uid, lc->gid) == -1)
    {
        gl_log_error(GL_LOG_EMERG, errno, "chown(\"%s\", %ld, %ld) failed",
                     lc->path, (long) (int) lc->uid, (long) (int) lc->gid);
        unlink(lc->path);
        close(fd);
        return -1;
    }

    return fd;
}


static int
gl_listen_open_tcp(gl_listen_conf_t *lc)
{
    int               fd, rc, on;
    char              port[16];
    struct addrinfo   hints, *res, *ai;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", lc->port);

    rc = getaddrinfo(lc->host, port, &hints, &res);
    if (rc != 0) {
        gl_log_error(GL_LOG_EMERG, 0, "listen %s: %s", lc->text,
                     gai_strerror(rc));
        return -1;
    }

    fd = -1;

    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            continue;
        }

        on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));

        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }

        gl_log_error(GL_LOG_EMERG, errno, "bind() to %s failed", lc->text);
        close(fd);
        fd = -1;
    }

    freeaddrinfo(res);

    return fd;
}


/*
 * The allow and deny rules of conf for the peer of a TCP connection:
 * the first that matches decides, none allows.  Unix sockets have their
 * file permissions instead.
 */
static int
gl_listen_allowed(gl_conf_t *conf, int fd, char *text, size_t size)
{
    int                       i, j, family;
    socklen_t                 len;
    const unsigned char      *a;
    gl_access_rule_t         *rule;
    struct sockaddr_storage   ss;
    struct sockaddr_in       *sin;
    struct sockaddr_in6      *sin6;

    len = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *) &ss, &len) == -1) {
        snprintf(text, size, "?");
        return conf->naccess == 0;
    }

    if (ss.ss_family == AF_INET) {
        sin = (struct sockaddr_in *) &ss;
        a = (const unsigned char *) &sin->sin_addr;
        family = AF_INET;
        inet_ntop(AF_INET, a, text, size);

    } else if (ss.ss_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) &ss;
        a = sin6->sin6_addr.s6_addr;
        family = AF_INET6;
        inet_ntop(AF_INET6, a, text, size);

        /* a dual-stack listen: ::ffff:10.1.2.3 is 10.1.2.3 to the rules */
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            a += 12;
            family = AF_INET;
        }

    } else {
        return 1;
    }

    for (i = 0; i < conf->naccess; i++) {
        rule = &conf->access[i];

        if (rule->family != 0) {
            if (rule->family != family) {
                continue;
            }

            for (j = 0; j < (family == AF_INET ? 4 : 16); j++) {
                if ((a[j] & rule->mask[j]) != rule->addr[j]) {
                    break;
                }
            }

            if (j < (family == AF_INET ? 4 : 16)) {
                continue;
            }
        }

        return !rule->deny;
    }

    return 1;
}


/*
 * GL_OK if the new connection fd on ls may go on; else it logs, closes fd
 * and returns GL_DECLINED.
 */
static int
gl_listen_access(gl_listening_t *ls, int fd)
{
    char  text[INET6_ADDRSTRLEN];

    if (ls->conf->path != NULL || gl_listen_conf == NULL
        || gl_listen_conf->naccess == 0
        || gl_listen_allowed(gl_listen_conf, fd, text, sizeof(text)))
    {
        return GL_OK;
    }

    gl_log_error(GL_LOG_INFO, 0, "access forbidden by rule, client %s on %s",
                 text, ls->conf->text);
    close(fd);

    return GL_DECLINED;
}


void
gl_listen_set_conf(gl_conf_t *conf)
{
    gl_listen_conf = conf;
}


/* an address and the one of a listen line are the same */
static int
gl_listen_same(gl_listen_conf_t *lc, struct sockaddr *sa, socklen_t len)
{
    int                   same;
    char                  port[16];
    struct addrinfo       hints, *res, *ai;
    struct sockaddr_un   *sun;
    struct sockaddr_in   *a4, *b4;
    struct sockaddr_in6  *a6, *b6;

    if (lc->path != NULL) {
        sun = (struct sockaddr_un *) sa;
        return sa->sa_family == AF_UNIX
               && len > offsetof(struct sockaddr_un, sun_path)
               && strncmp(sun->sun_path, lc->path, sizeof(sun->sun_path))
                  == 0;
    }

    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        return 0;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = sa->sa_family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", lc->port);

    if (getaddrinfo(lc->host, port, &hints, &res) != 0) {
        return 0;
    }

    same = 0;

    for (ai = res; ai != NULL && !same; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            a4 = (struct sockaddr_in *) ai->ai_addr;
            b4 = (struct sockaddr_in *) sa;
            same = a4->sin_port == b4->sin_port
                   && a4->sin_addr.s_addr == b4->sin_addr.s_addr;

        } else if (ai->ai_family == AF_INET6) {
            a6 = (struct sockaddr_in6 *) ai->ai_addr;
            b6 = (struct sockaddr_in6 *) sa;
            same = a6->sin6_port == b6->sin6_port
                   && memcmp(&a6->sin6_addr, &b6->sin6_addr,
                             sizeof(struct in6_addr)) == 0;
        }
    }

    freeaddrinfo(res);

    return same;
}


/* the passed socket (fds[0..n-1], -1 once taken) that is lc's: taken and
   returned non-blocking; -1 if none is */
static int
gl_listen_take(gl_listen_conf_t *lc, int *fds, int n)
{
    int                      i, fd, on, type;
    socklen_t                len;
    struct sockaddr_storage  ss;

    for (i = 0; i < n; i++) {
        fd = fds[i];
        if (fd == -1) {
            continue;
        }

        len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) == -1
            || !gl_listen_same(lc, (struct sockaddr *) &ss, len))
        {
            continue;
        }

        len = sizeof(on);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == -1
            || !on)
        {
            gl_log_error(GL_LOG_WARN, 0, "the socket passed as fd %d for "
                         "%s does not listen: not used", fd, lc->text);
            continue;
        }

        len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1
            || type != SOCK_STREAM)
        {
            continue;
        }

        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
            gl_log_error(GL_LOG_EMERG, errno, "fcntl(O_NONBLOCK) failed on "
                         "the socket passed for %s", lc->text);
            continue;
        }

        fds[i] = -1;

        gl_log_error(GL_LOG_NOTICE, 0, "using the socket passed as fd %d "
                     "for %s", fd, lc->text);

        return fd;
    }

    return -1;
}


void
gl_listen_keep_files(int keep)
{
    gl_listen_keep = keep;
}


gl_listening_t *
gl_listen_open(gl_conf_t *conf, int ninherited)
{
    int              i, j, *fds;
    gl_listening_t  *ls;

    ls = calloc(conf->nlisten, sizeof(gl_listening_t));
    fds = calloc(ninherited > 0 ? ninherited : 1, sizeof(int));

    if (ls == NULL || fds == NULL) {
        free(ls);
        free(fds);
        return NULL;
    }

    for (i = 0; i < ninherited; i++) {
        fds[i] = GL_SD_LISTEN_FDS_START + i;
    }

    for (i = 0; i < conf->nlisten; i++) {
        ls[i].conf = &conf->listen[i];
        ls[i].fd = gl_listen_take(&conf->listen[i], fds, ninherited);

        if (ls[i].fd != -1) {
            ls[i].inherited = 1;
            ls[i].keep_file = !gl_sd_listen_owned(ls[i].fd
                                                  - GL_SD_LISTEN_FDS_START);
            continue;
        }

        ls[i].fd = conf->listen[i].path
                   ? gl_listen_open_unix(&conf->listen[i])
                   : gl_listen_open_tcp(&conf->listen[i]);

        if (ls[i].fd == -1) {
            goto failed;
        }

        if (listen(ls[i].fd, GL_LISTEN_BACKLOG) == -1) {
            gl_log_error(GL_LOG_EMERG, errno, "listen() on %s failed",
                         conf->listen[i].text);
            i++;
            goto failed;
        }
    }

    for (i = 0; i < ninherited; i++) {
        if (fds[i] != -1) {
            gl_log_error(GL_LOG_WARN, 0, "the socket passed as fd %d is no "
                         "listen line's: closed", fds[i]);
            close(fds[i]);
        }
    }

    free(fds);

    return ls;

failed:

    for (j = 0; j < i; j++) {
        if (ls[j].fd != -1) {
            close(ls[j].fd);
            if (ls[j].conf->path && !ls[j].inherited) {
                unlink(ls[j].conf->path);
            }
        }
    }

    free(fds);
    free(ls);

    return NULL;
}


static gl_worker_t *gl_listen_pick(void);


static void
gl_listen_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    int              fd, i, j;
    gl_listening_t  *ls;

    (void) revents;

    ls = io->data;

    for (i = 0; i < 64; i++) {
        fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                || errno == ECONNABORTED)
            {
                return;
            }

            if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS
                && errno != ENOMEM)
            {
                gl_log_error_limited(GL_LOG_ALERT, errno, "accept4() on %s "
                                     "failed", ls->conf->text);
                return;
            }

            /*
             * out of descriptors (or memory): the connection waits in the
             * backlog; stop accepting for a while rather than spin, and
             * wait longer while it lasts.  A timer that fired must be set
             * again before it starts, or it fires at once.
             */
            gl_stat_add(&gl_stat.accept_errors, 1);
            gl_log_error_limited(GL_LOG_ALERT, errno, "accept4() on %s "
                                 "failed, accepting again in %d ms",
                                 ls->conf->text,
                                 (int) (gl_listen_delay * 1000));

            for (j = 0; j < gl_listen_n; j++) {
                ev_io_stop(loop, &gl_listen_ls[j].io);
            }

            ev_timer_stop(loop, &gl_listen_retry);
            ev_timer_set(&gl_listen_retry, gl_listen_delay, 0);
            ev_timer_start(loop, &gl_listen_retry);

            gl_listen_delay = gl_min(gl_listen_delay * 2,
                                     GL_LISTEN_RETRY_MAX);
            return;
        }

        gl_listen_delay = GL_LISTEN_RETRY_MIN;
        gl_stat_add(&gl_stat.accepted, 1);

        if (gl_listen_access(ls, fd) != GL_OK) {
            gl_stat_add(&gl_stat.denied, 1);
            continue;
        }

        gl_worker_post_conn(gl_listen_pick(), fd);
    }
}


/* the next worker, in turn, passing by those the watchdog says are stuck
   (if all are, the next one all the same) */
static gl_worker_t *
gl_listen_pick(void)
{
    int           k;
    gl_worker_t  *w;

    w = &gl_listen_workers[gl_listen_next++ % gl_listen_nworkers];

    for (k = 1; k < gl_listen_nworkers && gl_watch_stuck(w->id); k++) {
        w = &gl_listen_workers[gl_listen_next++ % gl_listen_nworkers];
    }

    return w;
}


static void
gl_listen_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    int  i;

    (void) t;
    (void) revents;

    for (i = 0; i < gl_listen_n; i++) {
        if (gl_listen_ls[i].fd != -1) {
            ev_io_start(loop, &gl_listen_ls[i].io);
        }
    }
}


void
gl_listen_set_workers(gl_worker_t *workers, int nworkers)
{
    gl_listen_workers = workers;
    gl_listen_nworkers = nworkers;
}


void
gl_listen_start(struct ev_loop *loop, gl_listening_t *ls, int n,
    gl_worker_t *workers, int nworkers)
{
    int  i;

    gl_listen_workers = workers;
    gl_listen_nworkers = nworkers;
    gl_listen_ls = ls;
    gl_listen_n = n;

    ev_timer_init(&gl_listen_retry, gl_listen_retry_cb, GL_LISTEN_RETRY_MIN, 0);

    for (i = 0; i < n; i++) {
        ev_io_init(&ls[i].io, gl_listen_accept_cb, ls[i].fd, EV_READ);
        ls[i].io.data = &ls[i];
        ev_io_start(loop, &ls[i].io);
    }
}


void
gl_listen_close(struct ev_loop *loop, gl_listening_t *ls, int n)
{
    int  i;

    if (loop != NULL) {
        ev_timer_stop(loop, &gl_listen_retry);
    }

    for (i = 0; i < n; i++) {
        if (ls[i].fd == -1) {
            continue;
        }

        if (loop != NULL) {
            ev_io_stop(loop, &ls[i].io);
        }

        close(ls[i].fd);
        ls[i].fd = -1;

        /* a passed socket's file is its maker's; a new golapis (SIGUSR2)
           goes on with ours; and a new golapis that stops while the old
           one it came from runs (a roll-back, a failed start) leaves
           the old one its files, as nginx's */
        if (ls[i].conf->path == NULL || ls[i].keep_file || gl_listen_keep
            || (ls[i].inherited && gl_sd_old_binary_alive()))
        {
            continue;
        }

        if (unlink(ls[i].conf->path) == -1) {
            gl_log_error(GL_LOG_ERR, errno, "unlink(\"%s\") failed",
                         ls[i].conf->path);
        }
    }
}
