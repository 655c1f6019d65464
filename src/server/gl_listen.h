/*
 * Listening sockets and the acceptor.  The main thread owns them: it
 * accepts in its own loop and hands each connection to a worker.
 */
#ifndef GL_LISTEN_H
#define GL_LISTEN_H

#include "gl_core.h"
#include "gl_conf.h"

#include <ev.h>

typedef struct {
    int                 fd;
    gl_listen_conf_t   *conf;
    ev_io               io;
    unsigned            inherited:1;    /* passed to us, not made */
    unsigned            keep_file:1;    /* its unix socket file is not
                                           ours to remove */
} gl_listening_t;

/*
 * Opens every listen socket of conf.  A socket passed to golapis (fds
 * GL_SD_LISTEN_FDS_START ... + ninherited - 1: systemd's socket
 * activation, or the golapis that started this binary) whose address is
 * that of a listen line is taken for it; the others are made.  A unix
 * socket where a live server listens, or a path that is not a socket, is
 * refused; a stale socket file is replaced.  Passed sockets no line wants
 * are closed.  Their socket files are left at the end, unless owned (the
 * sockets the golapis this one replaces made: gl_sd_listen_owned), and
 * even those while that golapis runs.  On error logs, closes what
 * it opened and returns NULL.
 */
gl_listening_t *gl_listen_open(gl_conf_t *conf, int ninherited);

/* while set, closing the sockets leaves their unix socket files (another
   golapis, started by SIGUSR2, accepts on them) */
void gl_listen_keep_files(int keep);

/* starts accepting, handing connections round robin to the workers */
/* the workers connections go to changed (one was added): main thread */
void gl_listen_set_workers(gl_worker_t *workers, int nworkers);

void gl_listen_start(struct ev_loop *loop, gl_listening_t *ls, int n,
    gl_worker_t *workers, int nworkers);

/*
 * The config whose allow and deny rules the TCP listens apply from now
 * on (set before gl_listen_start, and at each reload).
 */
void gl_listen_set_conf(gl_conf_t *conf);

/* stops accepting, closes the sockets and removes the unix socket files */
void gl_listen_close(struct ev_loop *loop, gl_listening_t *ls, int n);

#endif /* GL_LISTEN_H */
