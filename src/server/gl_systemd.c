/*
 * systemd's readiness and socket-passing protocols (gl_systemd.h).
 */
#include "gl_core.h"
#include "gl_log.h"
#include "gl_systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un  gl_sd_addr;
static socklen_t           gl_sd_addrlen;
static int                 gl_sd_fd = -1;
static double              gl_sd_watchdog;
static int                 gl_sd_nfds;
static unsigned char       gl_sd_owned[GL_SD_LISTEN_FDS_MAX];
static pid_t               gl_sd_parent;    /* the old binary that
                                               passed them (SIGUSR2) */


/* a decimal number made of the whole string, in [min, max]; -1 if not */
static long long
gl_sd_number(const char *s, long long min, long long max)
{
    char       *end;
    long long   n;

    if (s == NULL || *s == '\0') {
        return -1;
    }

    errno = 0;
    n = strtoll(s, &end, 10);

    if (errno != 0 || *end != '\0' || n < min || n > max) {
        return -1;
    }

    return n;
}


static void
gl_sd_init_notify(void)
{
    size_t       len;
    long long    usec, pid;
    const char  *path;

    path = getenv("NOTIFY_SOCKET");

    if (path != NULL && path[0] != '\0') {
        len = strlen(path);

        if ((path[0] != '/' && path[0] != '@')
            || len >= sizeof(gl_sd_addr.sun_path))
        {
            gl_log_error(GL_LOG_WARN, 0, "NOTIFY_SOCKET \"%s\" is not a unix "
                         "socket path golapis can use: no notifications",
                         path);

        } else {
            memset(&gl_sd_addr, 0, sizeof(gl_sd_addr));
            gl_sd_addr.sun_family = AF_UNIX;
            memcpy(gl_sd_addr.sun_path, path, len);

            /* "@name": the abstract namespace, without a trailing NUL */
            if (path[0] == '@') {
                gl_sd_addr.sun_path[0] = '\0';
            }

            gl_sd_addrlen = (socklen_t) (offsetof(struct sockaddr_un,
                                                  sun_path) + len
                                         + (path[0] == '/'));

            gl_sd_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (gl_sd_fd == -1) {
                gl_log_error(GL_LOG_WARN, errno, "socket() failed: no "
                             "notifications to the service manager");
            }
        }
    }

    usec = gl_sd_number(getenv("WATCHDOG_USEC"), 1, LLONG_MAX);
    pid = gl_sd_number(getenv("WATCHDOG_PID"), 1, INT_MAX);

    if (usec > 0 && (pid == -1 || pid == (long long) getpid())) {
        gl_sd_watchdog = (double) usec / 1e6;
    }

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}


/* LISTEN_FDNAMES: "golapis" for each socket whose file the golapis that
   passed it (SIGUSR2) made, "golapis-kept" for one it was given; 1 if
   any of them is a golapis's */
static int
gl_sd_names(const char *names, int n)
{
    int          i, upgrade;
    size_t       len;
    const char  *p, *colon;

    upgrade = 0;
    p = names;

    for (i = 0; p != NULL && i < n; i++) {
        colon = strchr(p, ':');
        len = colon ? (size_t) (colon - p) : strlen(p);

        if (len == sizeof(GL_SD_OURS) - 1
            && memcmp(p, GL_SD_OURS, len) == 0)
        {
            gl_sd_owned[i] = 1;
            upgrade = 1;

        } else if (len == sizeof(GL_SD_KEPT) - 1
                   && memcmp(p, GL_SD_KEPT, len) == 0)
        {
            upgrade = 1;
        }

        p = colon ? colon + 1 : NULL;
    }

    return upgrade;
}


static void
gl_sd_init_listen(void)
{
    int          fd, flags;
    long long    n, pid;

    pid = gl_sd_number(getenv("LISTEN_PID"), 1, INT_MAX);
    n = gl_sd_number(getenv("LISTEN_FDS"), 0, GL_SD_LISTEN_FDS_MAX);

    if (pid == -1 || pid != (long long) getpid()) {
        /* not for us (a parent's): left as it is, but never passed on */
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return;
    }

    if (n > 0 && gl_sd_names(getenv("LISTEN_FDNAMES"), (int) n)) {
        gl_sd_parent = getppid();
    }

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");

    if (n <= 0) {
        return;
    }

    for (fd = GL_SD_LISTEN_FDS_START; fd < GL_SD_LISTEN_FDS_START + n; fd++) {
        flags = fcntl(fd, F_GETFD);

        if (flags == -1) {
            gl_log_error(GL_LOG_EMERG, errno, "LISTEN_FDS=%lld, but fd %d is "
                         "not open", n, fd);
            gl_sd_nfds = 0;
            gl_sd_parent = 0;
            return;
        }

        (void) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }

    gl_sd_nfds = (int) n;
}


void
gl_sd_init(void)
{
    gl_sd_init_notify();
    gl_sd_init_listen();
}


int
gl_sd_listen_fds(void)
{
    return gl_sd_nfds;
}


int
gl_sd_listen_owned(int i)
{
    return i >= 0 && i < gl_sd_nfds && gl_sd_owned[i];
}


int
gl_sd_old_binary_alive(void)
{
    /* a process whose parent exits is given another one */
    return gl_sd_parent > 1 && getppid() == gl_sd_parent;
}


pid_t
gl_sd_old_binary(void)
{
    return gl_sd_parent;
}


int
gl_sd_notifying(void)
{
    return gl_sd_fd != -1;
}


double
gl_sd_watchdog_interval(void)
{
    return gl_sd_fd != -1 ? gl_sd_watchdog : 0;
}


int
gl_sd_notify(const char *fmt, ...)
{
    int       n;
    char      buf[512];
    va_list   args;

    if (gl_sd_fd == -1) {
        return GL_OK;
    }

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= sizeof(buf)) {
        return GL_ERROR;
    }

    if (sendto(gl_sd_fd, buf, (size_t) n, MSG_NOSIGNAL,
               (struct sockaddr *) &gl_sd_addr, gl_sd_addrlen) == -1)
    {
        gl_log_error_limited(GL_LOG_WARN, errno, "sendto() to NOTIFY_SOCKET "
                             "failed (\"%.*s\")", (int) strcspn(buf, "\n"),
                             buf);
        return GL_ERROR;
    }

    return GL_OK;
}
