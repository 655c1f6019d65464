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

/* the name (LISTEN_FDNAMES) golapis gives the sockets it passes to a new
   binary */
#define GL_SD_OURS  "golapis"

/*
 * Reads and removes from the environment $NOTIFY_SOCKET,
 * $WATCHDOG_USEC/$WATCHDOG_PID and $LISTEN_FDS/$LISTEN_PID/
 * $LISTEN_FDNAMES (the latter two only when meant for this process).
 * Call once, at start-up, before any thread starts.
 */
void gl_sd_init(void);

/* the sockets passed to this process (fds 3 ... 3 + n - 1): n, 0 if none */
int gl_sd_listen_fds(void);

/* 1: they were a golapis's (SIGUSR2), whose socket files are ours now;
   0: a service manager's, which keeps its files */
int gl_sd_listen_owned(void);

/* sends state ("READY=1\nSTATUS=...") to the service manager, if one
   listens; GL_OK also when none does */
int gl_sd_notify(const char *fmt, ...);

/* 1 when a service manager listens for notifications */
int gl_sd_notifying(void);

/* WatchdogSec: how often to send WATCHDOG=1, in seconds; 0: never */
double gl_sd_watchdog_interval(void);

#endif /* GL_SYSTEMD_H */
