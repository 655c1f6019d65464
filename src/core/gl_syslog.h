/*
 * Syslog, as nginx sends it (ngx_syslog.c): "error_log syslog:server=..."
 * and "access_log syslog:server=...".  One datagram per line, RFC 3164's
 * header as nginx writes it ("<PRI>MMM dd hh:mm:ss HOST TAG: message"),
 * over UDP or a unix datagram socket (server=unix:/dev/log).
 *
 * Sending never blocks: a message the socket cannot take at once (a full
 * buffer, no syslog daemon behind a unix socket) is dropped.  A peer is
 * shared by all threads: its socket's descriptor number never changes
 * while the peer lives (a reconnect puts the new socket behind it), and
 * nothing else of it changes after gl_syslog_open().
 */
#ifndef GL_SYSLOG_H
#define GL_SYSLOG_H

#include "gl_core.h"

typedef struct gl_syslog_s  gl_syslog_t;

/* the prefix of a syslog target in error_log and access_log */
#define GL_SYSLOG_PREFIX      "syslog:"
#define gl_syslog_is(s)       (strncmp(s, GL_SYSLOG_PREFIX, 7) == 0)

/*
 * Checks a target ("syslog:server=...,facility=local7,severity=info,
 * tag=golapis,nohostname"): GL_OK, or GL_ERROR with nginx's message in
 * err ("no server specified", "unknown syslog facility \"x\"", ...).  The
 * server's name is resolved here, as nginx does at config time.
 */
int gl_syslog_check(const char *target, char *err, size_t size);

/* a peer for target: parsed, resolved, its socket made; NULL on error,
   with the reason in err */
gl_syslog_t *gl_syslog_open(const char *target, char *err, size_t size);
void gl_syslog_close(gl_syslog_t *s);

/* the target it was made from */
const char *gl_syslog_target(gl_syslog_t *s);

/* the severity= of the target (info by default): 0 emerg ... 7 debug */
int gl_syslog_severity(gl_syslog_t *s);

/*
 * Sends msg (without its newline) with the header for severity (0
 * emerg ... 7 debug), cut to GL_SYSLOG_MAX bytes in all; from any thread,
 * never blocking.
 */
#define GL_SYSLOG_MAX  8192

void gl_syslog_send(gl_syslog_t *s, int severity, const char *msg,
    size_t len);

#endif /* GL_SYSLOG_H */
