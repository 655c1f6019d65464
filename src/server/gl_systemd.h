/*
 * What golapis does for a service manager: systemd's readiness protocol
 * (sd_notify: READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 on the
 * datagram socket $NOTIFY_SOCKET names) and listening sockets passed by
 * socket activation ($LISTEN_FDS, $LISTEN_PID: fds 3, 4, ...), which is
 * also how golapis hands its sockets to a new binary (SIGUSR2).
 *
 * Both protocols are small and documented as stable for programs to
 * speak themselves (sd_notify(3), sd_listen_fds(3)); golapis does, so as
 * not to link libsystemd into a program that also runs on the BSDs.
 */
#ifndef GL_SYSTEMD_H
#define GL_SYSTEMD_H

#include "gl_core.h"

#define GL_SD_LISTEN_FDS_START  3

#define GL_SD_LISTEN_FDS_MAX    1024

/* the names (LISTEN_FDNAMES) golapis gives the sockets it passes to a new
   binary (SIGUSR2): "golapis", a socket whose file it made, the new
   binary's to remove at its stop; "golapis-kept", one it was given (by
   systemd), whose file stays */
#define GL_SD_OURS  "golapis"
#define GL_SD_KEPT  "golapis-kept"

/*
 * Reads and removes from the environment $NOTIFY_SOCKET,
 * $WATCHDOG_USEC/$WATCHDOG_PID and $LISTEN_FDS/$LISTEN_PID/
 * $LISTEN_FDNAMES (the latter two only when meant for this process).
 * Call once, at start-up, before any thread starts.
 */
void gl_sd_init(void);

/* the sockets passed to this process (fds 3 ... 3 + n - 1): n, 0 if none */
int gl_sd_listen_fds(void);

/* for the passed socket i (fd 3 + i): 1 if it was a golapis's (SIGUSR2)
   that made its socket file, ours now; 0 if a service manager's, which
   keeps its file */
int gl_sd_listen_owned(int i);

/* 1 while the golapis that passed us its sockets (SIGUSR2) runs: it
   still serves on them, its files and its signals are its own */
int gl_sd_old_binary_alive(void);

/* its pid; 0 if we were not started by a SIGUSR2 */
pid_t gl_sd_old_binary(void);

/* sends state ("READY=1\nSTATUS=...") to the service manager, if one
   listens; GL_OK also when none does */
int gl_sd_notify(const char *fmt, ...);

/* 1 when a service manager listens for notifications */
int gl_sd_notifying(void);

/* WatchdogSec: how often to send WATCHDOG=1, in seconds; 0: never */
double gl_sd_watchdog_interval(void);

#endif /* GL_SYSTEMD_H */
