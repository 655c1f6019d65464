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

/* opens path ("stderr" for stderr); on error returns GL_ERROR, errno set */
int gl_log_open(const char *path, int level);
int gl_log_reopen(void);

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

#if (GL_DEBUG)
#define gl_log_debug(...)  gl_log_error(GL_LOG_DEBUG, 0, __VA_ARGS__)
#else
#define gl_log_debug(...)
#endif

#endif /* GL_LOG_H */
