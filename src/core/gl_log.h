/*
 * The error log: one file (or stderr) for the whole process, nginx-like
 * lines: "2026/11/23 19:04:00 [error] 1234#0: message".  Thread-safe: a
 * line is formatted in a local buffer and written with one write(2).
 */
#ifndef GL_LOG_H
#define GL_LOG_H

#include "gl_core.h"

enum {
    GL_LOG_STDERR = 0,
    GL_LOG_EMERG,
    GL_LOG_ALERT,
    GL_LOG_CRIT,
    GL_LOG_ERR,
    GL_LOG_WARN,
    GL_LOG_NOTICE,
    GL_LOG_INFO,
    GL_LOG_DEBUG
};

extern _Atomic int gl_log_level;

/* returns the level for a name ("error", ...), or -1 */
int gl_log_level_by_name(const char *name);

/* opens path ("stderr" for stderr, "syslog:server=..." for syslog,
   gl_syslog.h); on error returns GL_ERROR, errno set (EINVAL for a bad
   syslog target) */
int gl_log_open(const char *path, int level);

/* SIGUSR1: the error log and every gl_log_file_t are opened again (after
   a rotation); GL_ERROR if one could not be (logged, it stays as it was) */
int gl_log_reopen(void);

/* as root: 1 if path's directory is one only root can change, where a
   symlink as its last component may be followed; 0 if not (the file is
   then opened O_NOFOLLOW); not root: 1 */
int gl_log_follow_ok(const char *path);

/* a log file opened to append (created 0644), through a symlink only
   where gl_log_follow_ok() says so; -1 and errno otherwise */
int gl_log_open_file(const char *path);

/* as root, gives the log file at fd to uid/gid (USR1 reopens it as
   them): only a file root owns with one link; GL_OK, GL_DECLINED (not
   root, already theirs), GL_ERROR (errno: EPERM when it is another's) */
int gl_log_give(int fd, uid_t uid, gid_t gid);

/* the same for the error log's file (not stderr) */
int gl_log_give_error_log(uid_t uid, gid_t gid);

/* a value from a client (a path nginx decoded), for a log line: the
   bytes below 0x20, 0x7f, '"' and '\\' as \xHH, so that it cannot end
   the line or the quotes; cut with "..." to fit size (at least 16) */
const char *gl_log_escape(char *dst, size_t size, const char *src,
    size_t len);

/*
 * The other logs (access_log, slowlog): one gl_log_file_t per path,
 * shared by every config that names it and by all threads.  A file is
 * opened O_APPEND (created 0644) and written one line (or one entry) per
 * write(2), so the lines of different threads never interleave; a reopen
 * puts the new file behind the same descriptor number.  A path
 * "syslog:server=..." sends each line as a syslog message instead (with
 * the target's severity=).
 *
 * gl_log_file_open() takes a reference (the first opens it; as root, a
 * new regular file is given to uid:gid when they are not -1, so that a
 * reopen after privileges are dropped can open it); NULL on error, errno
 * set.  The last gl_log_file_close() closes it, in any thread.
 */
typedef struct gl_log_file_s  gl_log_file_t;

gl_log_file_t *gl_log_file_open(const char *path, uid_t uid, gid_t gid);

/* for golapis -t (a module's init_conf): can path be opened as a log
   file: it is there and writable, or its directory is (nothing is
   created); GL_ERROR with errno set if not.  A syslog target is GL_OK */
int gl_log_file_check(const char *path);
void gl_log_file_close(gl_log_file_t *f);
const char *gl_log_file_path(gl_log_file_t *f);

/* one write(2) (or syslog message, without the last newline); a failure
   is logged, at most once a second per file */
void gl_log_file_write(gl_log_file_t *f, const char *buf, size_t len);

/* the worker number printed after the pid; -1 for the main thread */
void gl_log_set_worker(int id);

/*
 * What the code that runs now adds at the end of its error lines, as
 * nginx's log handlers do (", context: ngx.timer", ", client: ...").
 * The handler writes at most size bytes into buf and returns how many.
 * One per thread: gl_log_set_ctx() sets it (NULL: none) and returns the
 * previous one, for the caller to put back.
 */
typedef struct gl_log_ctx_s  gl_log_ctx_t;

struct gl_log_ctx_s {
    size_t    (*handler)(gl_log_ctx_t *ctx, char *buf, size_t size);
    uint64_t    conn;       /* "*N " after "PID#W: ", as nginx's
                               connection number; 0: none */
};

gl_log_ctx_t *gl_log_set_ctx(gl_log_ctx_t *ctx);

/* the current context's text into buf; returns its length */
size_t gl_log_ctx_text(char *buf, size_t size);

void gl_log_error_core(int level, int err, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Writes one line: the usual "TIME [LEVEL] PID#W: " prefix, then msg as it
 * is (it may hold NULs; no format), cut so that the line with its newline
 * fits GL_LOG_LINE_MAX bytes.  No level check: the caller filters.
 */
#define GL_LOG_LINE_MAX  8192

void gl_log_write(int level, const char *msg, size_t len);

#define gl_log_error(level, err, ...)                                        \
    do {                                                                     \
        if ((level) <= gl_log_level) {                                       \
            gl_log_error_core(level, err, __VA_ARGS__);                      \
        }                                                                    \
    } while (0)

/* a line without the running code's context, as nginx's lines on the
   cycle's log (lua-nginx-module's regex compiler writes those) */
#define gl_log_error_cycle(level, err, ...)                                  \
    do {                                                                     \
        if ((level) <= gl_log_level) {                                       \
            gl_log_ctx_t  *gl_log_saved_ = gl_log_set_ctx(NULL);             \
            gl_log_error_core(level, err, __VA_ARGS__);                      \
            (void) gl_log_set_ctx(gl_log_saved_);                            \
        }                                                                    \
    } while (0)

/*
 * Rate-limited lines: a call site that can fire once per connection or
 * per event (accept failures, refused connections, timeouts) writes at
 * most GL_LOG_LIMIT_BURST lines a second; the first line it writes after
 * dropping some says how many: ", and 12345 more like it in the last 2 s".
 * Lines dropped by a burst that then stops are reported with the site's
 * next line, whenever that comes.
 *
 * One gl_log_limit_t per call site, shared by all threads: its counters
 * are atomics, and a race at a second's boundary lets at most a few lines
 * more through.  gl_log_error_limited() declares the site's own static
 * limit; gl_log_error_rl() takes one the caller keeps.
 */
#define GL_LOG_LIMIT_BURST  10

typedef struct {
    _Atomic long long        window;    /* the second being counted */
    _Atomic unsigned         count;     /* lines asked for in it */
    _Atomic unsigned long long  dropped;   /* since the last line written */
    _Atomic long long        first_drop;   /* the second of the first */
} gl_log_limit_t;

#define GL_LOG_LIMIT_INIT  { -1, 0, 0, 0 }

/*
 * Counts a line at second now: returns -1 to drop it, else how many were
 * dropped before it (0 or more), and *since the seconds they span.
 */
long long gl_log_limit_check(gl_log_limit_t *lim, long long now,
    int *since);

void gl_log_error_limited_core(gl_log_limit_t *lim, int level, int err,
    const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#define gl_log_error_rl(lim, level, err, ...)                                \
    do {                                                                     \
        if ((level) <= gl_log_level) {                                       \
            gl_log_error_limited_core(lim, level, err, __VA_ARGS__);         \
        }                                                                    \
    } while (0)

#define gl_log_error_limited(level, err, ...)                                \
    do {                                                                     \
        static gl_log_limit_t  gl_log_site_ = GL_LOG_LIMIT_INIT;             \
        gl_log_error_rl(&gl_log_site_, level, err, __VA_ARGS__);             \
    } while (0)

#if (GL_DEBUG)
#define gl_log_debug(...)  gl_log_error(GL_LOG_DEBUG, 0, __VA_ARGS__)
#else
#define gl_log_debug(...)
#endif

#endif /* GL_LOG_H */
