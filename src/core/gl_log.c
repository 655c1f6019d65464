/*
 * The error log, and the other log files (gl_log_file_t).  The fd is
 * swapped atomically on reopen; a line is written with a single write(2)
 * so lines from different threads never interleave.  With error_log
 * syslog:server=..., lines go to a syslog peer (gl_syslog.c) instead.
 */
#include "gl_core.h"
#include "gl_log.h"
#include "gl_syslog.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

_Atomic int gl_log_level = GL_LOG_ERR;

static atomic_int          gl_log_fd = 2;
static char                gl_log_path[4096];
/* error_log syslog:...: the peer lines go to, or NULL; one replaced may
   still be in use by another thread: it is kept (gl_log_retired) */
static _Atomic(gl_syslog_t *)  gl_log_syslog;
static gl_syslog_t       **gl_log_retired;
static size_t              gl_log_nretired;
static _Thread_local int   gl_log_worker = -1;
static _Thread_local gl_log_ctx_t  *gl_log_ctx;

static const char *gl_log_names[] = {
    "stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info",
    "debug"
};


int
gl_log_level_by_name(const char *name)
{
    size_t  i;

    for (i = 1; i < gl_nelems(gl_log_names); i++) {
        if (strcmp(name, gl_log_names[i]) == 0) {
            return (int) i;
        }
    }

    return -1;
}


/*
 * Whether path's last component may be a symlink root follows: started
 * as root, golapis opens its logs and pid file before it becomes
 * "user", often in a directory that user owns (for the socket, USR1's
 * reopen); a symlink that user put there must not have root write to
 * another file (nginx's CVE-2016-1247).  A directory only root can
 * change (/dev for /dev/stderr, /var/log) is trusted; any other is
 * not, and there the file is opened O_NOFOLLOW.  Not root: nothing to
 * fear.
 */
int
gl_log_follow_ok(const char *path)
{
    char         dir[4096], *slash;
    struct stat  st;

    if (geteuid() != 0) {
        return 1;
    }

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int) sizeof(dir)) {
        return 0;
    }

    slash = strrchr(dir, '/');

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }

    return stat(dir, &st) == 0 && st.st_uid == 0
           && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}


/*
 * A log file, opened for appending (created 0644): a regular file, a
 * FIFO, a device (/dev/null, /dev/stderr); through a symlink only where
 * gl_log_follow_ok() says so.  A FIFO with no reader is an error
 * (ENXIO), not a start that waits; writes then block as on any file.
 */
int
gl_log_open_file(const char *path)
{
    int  fd, flags;

    flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;

    if (!gl_log_follow_ok(path)) {
        flags |= O_NOFOLLOW;
    }

    fd = open(path, flags, 0644);
    if (fd == -1) {
        return -1;
    }

    flags = fcntl(fd, F_GETFL);
    if (flags != -1) {
        (void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }

    return fd;
}


/*
 * As root, a log file opened at fd is given to uid (and gid), so that
 * uid can reopen it at USR1: only a file root owns (made now, or
 * earlier by root) and with no other name, never one that another user
 * owns or that a hard link could make another file's.  GL_OK, or
 * GL_DECLINED when it is left as it is.
 */
int
gl_log_give(int fd, uid_t uid, gid_t gid)
{
    struct stat  st;

    if (geteuid() != 0 || uid == (uid_t) -1) {
        return GL_DECLINED;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid == uid) {
        return GL_DECLINED;
    }

    if (st.st_uid != 0 || st.st_nlink != 1) {
        errno = EPERM;
        return GL_ERROR;
    }

    return fchown(fd, uid, gid) == 0 ? GL_OK : GL_ERROR;
}


const char *
gl_log_escape(char *dst, size_t size, const char *src, size_t len)
{
    size_t          i, n;
    unsigned char   c;

    static const char  hex[] = "0123456789ABCDEF";

    n = 0;

    for (i = 0; i < len && n + 8 < size; i++) {
        c = (unsigned char) src[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 0xf];
        } else {
            dst[n++] = (char) c;
        }
    }

    if (i < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }

    dst[n] = '\0';

    return dst;
}


int
gl_log_give_error_log(uid_t uid, gid_t gid)
{
    int  fd;

    fd = atomic_load(&gl_log_fd);

    if (gl_log_path[0] == '\0' || fd == 2) {
        return GL_DECLINED;
    }

    return gl_log_give(fd, uid, gid);
}


static int
gl_log_open_path(const char *path)
{
    if (strcmp(path, "stderr") == 0) {
        return 2;
    }

    return gl_log_open_file(path);
}


/* the error log no longer sends to s (main thread) */
static void
gl_log_retire_syslog(gl_syslog_t *s)
{
    gl_syslog_t  **r;

    if (s == NULL) {
        return;
    }

    r = realloc(gl_log_retired, (gl_log_nretired + 1) * sizeof(*r));
    if (r == NULL) {
        return;         /* leaked: another thread may still use it */
    }

    gl_log_retired = r;
    gl_log_retired[gl_log_nretired++] = s;
}


static int
gl_log_open_syslog(const char *path, int level)
{
    char          err[256];
    gl_syslog_t  *s, *old;

    old = atomic_load(&gl_log_syslog);

    if (old != NULL && strcmp(gl_syslog_target(old), path) == 0) {
        /* a reopen: nothing to open again */
        atomic_store(&gl_log_level, level);
        return GL_OK;
    }

    s = gl_syslog_open(path, err, sizeof(err));
    if (s == NULL) {
        errno = EINVAL;
        return GL_ERROR;
    }

    /* path may be gl_log_path itself (a reopen) */
    if (path != gl_log_path) {
        snprintf(gl_log_path, sizeof(gl_log_path), "%s", path);
    }

    atomic_store(&gl_log_level, level);

    gl_log_retire_syslog(atomic_exchange(&gl_log_syslog, s));

    return GL_OK;
}


int
gl_log_open(const char *path, int level)
{
    int  fd, old;

    if (gl_syslog_is(path)) {
        return gl_log_open_syslog(path, level);
    }

    fd = gl_log_open_path(path);
    if (fd == -1) {
        return GL_ERROR;
    }

    /* path may be gl_log_path itself (a reopen) */
    if (path != gl_log_path) {
        snprintf(gl_log_path, sizeof(gl_log_path), "%s", path);
    }

    atomic_store(&gl_log_level, level);

    old = atomic_load(&gl_log_fd);

    if (old > 2 && fd > 2) {
        /*
         * another thread may be writing to old right now: put the new
         * file behind the same descriptor number instead of closing it,
         * so that number never goes to someone else's socket
         */
        if (dup2(fd, old) == -1) {
            close(fd);
            return GL_ERROR;
        }

        close(fd);

    } else {
        /* from or to stderr: the old descriptor stays open (a rare leak
           of one descriptor, rather than a race) */
        atomic_store(&gl_log_fd, fd);
    }

    /* from syslog: the file is in place before lines go there */
    gl_log_retire_syslog(atomic_exchange(&gl_log_syslog, NULL));

    return GL_OK;
}


static int gl_log_files_reopen(void);


int
gl_log_reopen(void)
{
    int  rc;

    rc = GL_OK;

    if (gl_log_path[0] != '\0'
        && gl_log_open(gl_log_path, gl_log_level) != GL_OK)
    {
        gl_log_error(GL_LOG_ALERT, errno, "reopening the error log \"%s\" "
                     "failed, it stays as it was", gl_log_path);
        rc = GL_ERROR;
    }

    if (gl_log_files_reopen() != GL_OK) {
        rc = GL_ERROR;
    }

    return rc;
}


void
gl_log_set_worker(int id)
{
    gl_log_worker = id;
}


gl_log_ctx_t *
gl_log_set_ctx(gl_log_ctx_t *ctx)
{
    gl_log_ctx_t  *prev;

    prev = gl_log_ctx;
    gl_log_ctx = ctx;

    return prev;
}


size_t
gl_log_ctx_text(char *buf, size_t size)
{
    if (gl_log_ctx == NULL || size == 0) {
        return 0;
    }

    return gl_min(gl_log_ctx->handler(gl_log_ctx, buf, size), size);
}


/* "2026/11/23 19:04:00 [error] 1234#0: *5 " into buf; returns its
   length */
static int
gl_log_prefix(char *buf, size_t size, int level)
{
    int        n, m;
    time_t     now;
    struct tm  tm;

    now = time(NULL);
    localtime_r(&now, &tm);

    if (gl_log_worker >= 0) {
        n = snprintf(buf, size, "%04d/%02d/%02d %02d:%02d:%02d [%s] %d#%d: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, gl_log_names[level],
                     (int) getpid(), gl_log_worker);

    } else {
        n = snprintf(buf, size, "%04d/%02d/%02d %02d:%02d:%02d [%s] %d#m: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, gl_log_names[level],
                     (int) getpid());
    }

    if (n < 0 || (size_t) n >= size) {
        return n;
    }

    if (gl_log_ctx != NULL && gl_log_ctx->conn != 0) {
        m = snprintf(buf + n, size - n, "*%llu ",
                     (unsigned long long) gl_log_ctx->conn);
        n = (m > 0) ? gl_min(n + m, (int) size - 1) : n;
    }

    return n;
}


/* a line (without its newline, which buf has room for) to the error log */
static void
gl_log_out(int level, char *buf, size_t len)
{
    gl_syslog_t  *s;

    s = atomic_load_explicit(&gl_log_syslog, memory_order_acquire);

    if (s != NULL) {
        /* emerg 0 ... debug 7 (the "[stderr]" lines as errors) */
        gl_syslog_send(s, level == GL_LOG_STDERR ? 3 : level - 1, buf, len);
        return;
    }

    buf[len++] = '\n';

    if (write(atomic_load(&gl_log_fd), buf, len) < 0) {
        /* nowhere left to report it */
    }
}


static void
gl_log_vline(int level, int err, const char *suffix, const char *fmt,
    va_list args)
{
    int        n, len;
    char       buf[8192], ebuf[128];

    len = gl_log_prefix(buf, sizeof(buf), level);

    n = vsnprintf(buf + len, sizeof(buf) - len, fmt, args);

    /* leave room for the errno text, the suffix and the newline */
    len = (n < 0) ? len : gl_min(len + n, (int) sizeof(buf) - 256);

    if (err) {
        n = snprintf(buf + len, sizeof(buf) - len, " (%d: %s)", err,
                     strerror_r(err, ebuf, sizeof(ebuf)));
        len = gl_min(len + gl_max(n, 0), (int) sizeof(buf) - 129);
    }

    if (suffix != NULL) {
        n = snprintf(buf + len, sizeof(buf) - len, "%s", suffix);
        len = gl_min(len + gl_max(n, 0), (int) sizeof(buf) - 1);
    }

    len += gl_log_ctx_text(buf + len, sizeof(buf) - 1 - len);

    gl_log_out(level, buf, len);
}


void
gl_log_error_core(int level, int err, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    gl_log_vline(level, err, NULL, fmt, args);
    va_end(args);
}


long long
gl_log_limit_check(gl_log_limit_t *lim, long long now, int *since)
{
    long long           w;
    unsigned long long  dropped;

    w = atomic_load_explicit(&lim->window, memory_order_relaxed);

    if (w != now
        && atomic_compare_exchange_strong(&lim->window, &w, now))
    {
        /* the first line of a new second: counting starts again */
        atomic_store(&lim->count, 0);
    }

    if (atomic_fetch_add(&lim->count, 1) >= GL_LOG_LIMIT_BURST) {
        if (atomic_fetch_add(&lim->dropped, 1) == 0) {
            atomic_store(&lim->first_drop, now);
        }

        return -1;
    }

    dropped = atomic_exchange(&lim->dropped, 0);

    if (dropped > 0) {
        *since = (int) gl_max(now - atomic_load(&lim->first_drop) + 1, 1);
    }

    return (long long) dropped;
}


void
gl_log_error_limited_core(gl_log_limit_t *lim, int level, int err,
    const char *fmt, ...)
{
    int              since;
    char             suffix[96];
    va_list          args;
    long long        dropped;
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);

    since = 0;
    dropped = gl_log_limit_check(lim, (long long) ts.tv_sec, &since);

    if (dropped < 0) {
        return;
    }

    if (dropped > 0) {
        snprintf(suffix, sizeof(suffix), ", and %lld more like it in the "
                 "last %d s", dropped, since);
    }

    va_start(args, fmt);
    gl_log_vline(level, err, dropped > 0 ? suffix : NULL, fmt, args);
    va_end(args);
}


void
gl_log_write(int level, const char *msg, size_t len)
{
    int           n;
    char          prefix[128];
    char          line[GL_LOG_LINE_MAX];
    struct iovec  iov[3];

    n = gl_log_prefix(prefix, sizeof(prefix), level);

    n = gl_min(gl_max(n, 0), (int) sizeof(prefix) - 1);

    /* one writev(2): lines of different threads never interleave */
    len = gl_min(len, GL_LOG_LINE_MAX - 1 - (size_t) n);

    if (atomic_load_explicit(&gl_log_syslog, memory_order_relaxed) != NULL) {
        memcpy(line, prefix, n);
        memcpy(line + n, msg, len);
        gl_log_out(level, line, n + len);
        return;
    }

    iov[0].iov_base = prefix;
    iov[0].iov_len = n;
    iov[1].iov_base = (void *) msg;
    iov[1].iov_len = len;
    iov[2].iov_base = "\n";
    iov[2].iov_len = 1;

    if (writev(atomic_load(&gl_log_fd), iov, 3) < 0) {
        /* nowhere left to report it */
    }
}


/* the other log files */

struct gl_log_file_s {
    gl_log_file_t      *next;
    char               *path;
    int                 fd;             /* its number never changes; -1
                                           for syslog */
    gl_syslog_t        *syslog;
    int                 refs;           /* under gl_log_files_lock */
    gl_log_limit_t      limit;          /* of its write error lines */
};

static pthread_mutex_t  gl_log_files_lock = PTHREAD_MUTEX_INITIALIZER;
static gl_log_file_t   *gl_log_files;


static int
gl_log_file_fd(const char *path)
{
    return gl_log_open_file(path);
}


gl_log_file_t *
gl_log_file_open(const char *path, uid_t uid, gid_t gid)
{
    char            err[256];
    gl_log_file_t  *f;

    pthread_mutex_lock(&gl_log_files_lock);

    for (f = gl_log_files; f != NULL; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            f->refs++;
            pthread_mutex_unlock(&gl_log_files_lock);
            return f;
        }
    }

    f = calloc(1, sizeof(gl_log_file_t));
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        pthread_mutex_unlock(&gl_log_files_lock);
        errno = ENOMEM;
        return NULL;
    }

    f->fd = -1;

    if (gl_syslog_is(path)) {
        f->syslog = gl_syslog_open(path, err, sizeof(err));
        if (f->syslog == NULL) {
            free(f->path);
            free(f);
            pthread_mutex_unlock(&gl_log_files_lock);
            errno = EINVAL;
            return NULL;
        }

    } else {
        f->fd = gl_log_file_fd(path);
        if (f->fd == -1) {
            free(f->path);
            free(f);
            pthread_mutex_unlock(&gl_log_files_lock);
            return NULL;
        }

        /* as root, the user golapis becomes must be able to reopen it */
        if (gl_log_give(f->fd, uid, gid) == GL_ERROR) {
            gl_log_error(GL_LOG_WARN, errno, "\"%s\" is not given to the "
                         "user golapis becomes: USR1 will not reopen it",
                         path);
        }
    }

    f->refs = 1;
    f->limit = (gl_log_limit_t) GL_LOG_LIMIT_INIT;
    f->next = gl_log_files;
    gl_log_files = f;

    pthread_mutex_unlock(&gl_log_files_lock);

    return f;
}


int
gl_log_file_check(const char *path)
{
    char   dir[4096], *slash;

    if (gl_syslog_is(path)) {
        return GL_OK;
    }

    /* nothing is created: golapis -s loads the config too, as root, and
       a file it made would not be the user's */
    if (access(path, F_OK) == 0) {
        return access(path, W_OK) == 0 ? GL_OK : GL_ERROR;
    }

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');

    if (slash == NULL) {
        return access(".", W_OK | X_OK) == 0 ? GL_OK : GL_ERROR;
    }

    *(slash == dir ? slash + 1 : slash) = '\0';

    return access(dir, W_OK | X_OK) == 0 ? GL_OK : GL_ERROR;
}


void
gl_log_file_close(gl_log_file_t *f)
{
    gl_log_file_t  **pf;

    if (f == NULL) {
        return;
    }

    pthread_mutex_lock(&gl_log_files_lock);

    if (--f->refs > 0) {
        pthread_mutex_unlock(&gl_log_files_lock);
        return;
    }

    for (pf = &gl_log_files; *pf != NULL; pf = &(*pf)->next) {
        if (*pf == f) {
            *pf = f->next;
            break;
        }
    }

    pthread_mutex_unlock(&gl_log_files_lock);

    if (f->fd != -1) {
        close(f->fd);
    }

    gl_syslog_close(f->syslog);
    free(f->path);
    free(f);
}


const char *
gl_log_file_path(gl_log_file_t *f)
{
    return f->path;
}


static int
gl_log_files_reopen(void)
{
    int             fd, rc;
    gl_log_file_t  *f;

    rc = GL_OK;

    pthread_mutex_lock(&gl_log_files_lock);

    for (f = gl_log_files; f != NULL; f = f->next) {
        if (f->fd == -1) {
            continue;
        }

        fd = gl_log_file_fd(f->path);

        if (fd == -1) {
            gl_log_error(GL_LOG_ALERT, errno, "reopening \"%s\" failed, it "
                         "stays as it was", f->path);
            rc = GL_ERROR;
            continue;
        }

        /* a writer in another thread writes to the old file or the new
           one, never to a descriptor someone else got */
        if (dup2(fd, f->fd) == -1) {
            gl_log_error(GL_LOG_ALERT, errno, "dup2() for \"%s\" failed, "
                         "it stays as it was", f->path);
            rc = GL_ERROR;
        }

        close(fd);
    }

    pthread_mutex_unlock(&gl_log_files_lock);

    return rc;
}


void
gl_log_file_write(gl_log_file_t *f, const char *buf, size_t len)
{
    ssize_t  n;

    if (f->syslog != NULL) {
        if (len > 0 && buf[len - 1] == '\n') {
            len--;
        }

        gl_syslog_send(f->syslog, gl_syslog_severity(f->syslog), buf, len);
        return;
    }

    n = write(f->fd, buf, len);

    if (n == -1) {
        gl_log_error_rl(&f->limit, GL_LOG_ALERT, errno, "write() to \"%s\" "
                        "failed", f->path);

    } else if ((size_t) n != len) {
        gl_log_error_rl(&f->limit, GL_LOG_ALERT, 0, "write() to \"%s\" was "
                        "incomplete: %zd of %zu", f->path, n, len);
    }
}
