/*
 * golapis: command line, start-up, signals and shutdown.
 *
 * The main thread runs its own libev loop: it accepts connections and
 * hands them to the workers, and it takes the signals (the workers block
 * them all).
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_listen.h"
#include "gl_house.h"
#include "gl_log.h"
#include "gl_shdict.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_modules.h"
#include "gl_worker.h"
#include "gl_watch.h"
#include "gl_systemd.h"

#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <luajit.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static gl_conf_t       *gl_conf;
/* the config golapis started with: its listening sockets and pid file
   stay until the end (a reload cannot change them) */
static gl_conf_t       *gl_conf_first;
static gl_worker_t     *gl_workers;
static int              gl_nworkers;
static int              gl_workers_cap;     /* room for replacements */
static int              gl_workers_want;    /* the configured number */
static ev_async         gl_stuck_async;
static ev_timer         gl_replace_timer;   /* dead slots, tried later */
static double           gl_replace_delay = 1;
static double           gl_replace_last = -100;

static void gl_stuck_cb(struct ev_loop *loop, ev_async *a, int revents);
static int gl_worker_restart(gl_worker_t *w, int id, int *fds, size_t nfds);
static void gl_replace_later(void);
static ev_async         gl_reload_async;
static gl_listening_t  *gl_listening;
static int              gl_stopping;
static int              gl_pid_written;
static ev_async         gl_worker_done;
static ev_timer         gl_shutdown_timer;
static ev_signal        gl_signals[6];
static ev_timer         gl_sd_watchdog_timer;

/* SIGUSR2: the binary and arguments to start again, and the environment
   golapis was started with (scripts see another: "env") */
static char             gl_exe[PATH_MAX];
static char           **gl_argv;
static char           **gl_os_env;
static char           **gl_env_kept;    /* the strings putenv() holds */
static pid_t            gl_new_binary;
static ev_signal        gl_sigchld;
static struct ev_loop  *gl_main_loop;


static void
gl_usage(FILE *f)
{
    fprintf(f,
        "usage: golapis [-c file] [-t] [-s signal] [-v] [-h]\n"
        "\n"
        "  -c file    the config file (default: " GL_CONF_PATH ")\n"
        "  -t         test the config file (and that its log files can be\n"
        "             opened) and exit\n"
        "  -s signal  send signal to the golapis of the config's pid file:\n"
        "             stop, quit, reload, reopen\n"
        "  -v         show the version and how golapis was built, and exit\n"
        "  -h         show this help and exit\n"
        "\n"
        "golapis runs in the foreground.  Signals: TERM or QUIT stop it\n"
        "gracefully, INT at once; HUP reloads the config and the Lua code;\n"
        "USR1 reopens the log files; USR2 starts a new binary on the same\n"
        "sockets (docs/operations.md).\n");
}


/*
 * golapis -s NAME: as nginx -s, to the pid in the config's pid file:
 * stop (TERM), quit (QUIT; both stop gracefully here), reload (HUP),
 * reopen (USR1).
 */
static int
gl_send_signal(gl_conf_t *conf, const char *name)
{
    int        fd, sig;
    long       pid;
    char       buf[32], *end;
    ssize_t    n;

    if (strcmp(name, "stop") == 0) {
        sig = SIGTERM;
    } else if (strcmp(name, "quit") == 0) {
        sig = SIGQUIT;
    } else if (strcmp(name, "reload") == 0) {
        sig = SIGHUP;
    } else if (strcmp(name, "reopen") == 0) {
        sig = SIGUSR1;
    } else {
        fprintf(stderr, "golapis: invalid option: \"-s %s\" (stop, quit, "
                "reload or reopen)\n", name);
        return 1;
    }

    if (conf->pid == NULL) {
        fprintf(stderr, "golapis: no \"pid\" directive in %s: cannot find "
                "the process\n", conf->file);
        return 1;
    }

    fd = open(conf->pid, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        fprintf(stderr, "golapis: open(\"%s\") failed (%d: %s)\n",
                conf->pid, errno, strerror(errno));
        return 1;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        fprintf(stderr, "golapis: invalid pid file \"%s\"\n", conf->pid);
        return 1;
    }

    buf[n] = '\0';
    errno = 0;
    pid = strtol(buf, &end, 10);

    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0')
        || pid <= 1 || pid > INT_MAX)
    {
        fprintf(stderr, "golapis: invalid PID number \"%.*s\" in \"%s\"\n",
                (int) strcspn(buf, "\n"), buf, conf->pid);
        return 1;
    }

    if (kill((pid_t) pid, sig) == -1) {
        fprintf(stderr, "golapis: kill(%ld, %d) failed (%d: %s)\n", pid,
                sig, errno, strerror(errno));
        return 1;
    }

    return 0;
}


/* -t: the log files must open, as they will at start */
static int
gl_test_logs(gl_conf_t *conf)
{
    int  fd;

    if (conf->error_log == NULL || strcmp(conf->error_log, "stderr") == 0
        || strncmp(conf->error_log, "syslog:", 7) == 0)
    {
        return GL_OK;
    }

    fd = open(conf->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
              0644);
    if (fd == -1) {
        fprintf(stderr, "golapis: cannot open the error log \"%s\" (%d: "
                "%s)\n", conf->error_log, errno, strerror(errno));
        return GL_ERROR;
    }

    close(fd);

    return GL_OK;
}


static void
gl_version(void)
{
    printf("golapis version: golapis/" GL_VERSION "\n"
           "built with: " GL_CC "\n"
           "LuaJIT: " GL_LUAJIT_VERSION " (running " LUAJIT_VERSION ")\n"
           "libev: %d.%d\n"
           "sanitizer: %s\n"
           "debug: %s\n"
           "configure arguments: " GL_CONFIGURE_ARGS "\n",
           ev_version_major(), ev_version_minor(),
           GL_SANITIZER[0] ? GL_SANITIZER : "none",
           GL_DEBUG ? "yes" : "no");
}


/* "PID.oldbin": the pid file of a golapis that started a new binary */
static void
gl_oldbin_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s.oldbin", gl_conf_first->pid);
}


static void
gl_remove_pid(void)
{
    char  old[PATH_MAX];

    if (!gl_pid_written) {
        return;
    }

    gl_pid_written = 0;

    /* the pid file is the new binary's now */
    if (gl_new_binary != 0) {
        gl_oldbin_path(old, sizeof(old));

        if (unlink(old) == -1) {
            gl_log_error(GL_LOG_ERR, errno, "unlink(\"%s\") failed", old);
        }

        return;
    }

    if (unlink(gl_conf_first->pid) == -1) {
        gl_log_error(GL_LOG_ERR, errno, "unlink(\"%s\") failed",
                     gl_conf_first->pid);
    }
}


static int
gl_write_pid(void)
{
    int          fd, n;
    char         buf[32];
    struct stat  st;

    if (gl_conf->pid == NULL) {
        return GL_OK;
    }

    /* as for the logs (gl_log_open_file): root writes it, maybe in the
       user's directory, so no symlink there, a regular file with one
       name, truncated only once it is known to be that */
    fd = open(gl_conf->pid, O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK
                            | (gl_log_follow_ok(gl_conf->pid) ? 0
                                                              : O_NOFOLLOW),
              0644);
    if (fd == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "open(\"%s\") failed",
                     gl_conf->pid);
        return GL_ERROR;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1
        || ftruncate(fd, 0) == -1)
    {
        gl_log_error(GL_LOG_EMERG, errno, "the pid file \"%s\" is not a "
                     "regular file with one name, or cannot be truncated",
                     gl_conf->pid);
        close(fd);
        return GL_ERROR;
    }

    n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());

    if (write(fd, buf, n) != n) {
        gl_log_error(GL_LOG_EMERG, errno, "write(\"%s\") failed",
                     gl_conf->pid);
        close(fd);
        return GL_ERROR;
    }

    close(fd);
    gl_pid_written = 1;

    return GL_OK;
}


/*
 * As root: becomes conf->run_user (and its group, its supplementary
 * groups), for good, before any Lua code runs.  The listen sockets, the
 * error log and the pid file are open already; the error log file is
 * given to the user, so that USR1 can reopen it.  Not root: a notice if
 * "user" was given.  On error logs and returns GL_ERROR.
 */
static int
gl_drop_privileges(void)
{
    int          i;
    char         dir[PATH_MAX], *slash;

    if (geteuid() != 0) {
        if (gl_conf->user != NULL) {
            gl_log_error(GL_LOG_NOTICE, 0, "the \"user\" directive is "
                         "ignored: golapis is not running as root");
        }
        return GL_OK;
    }

    if (gl_conf->run_user == NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "running as root with no user to "
                     "become");
        return GL_ERROR;
    }

    /* by its descriptor: the path could be a symlink by now */
    if (gl_log_give_error_log(gl_conf->uid, (gid_t) -1) == GL_ERROR) {
        gl_log_error(GL_LOG_WARN, errno, "\"%s\" is not given to the user "
                     "golapis becomes: USR1 will not reopen it",
                     gl_conf->error_log);
    }

    if (initgroups(gl_conf->run_user, gl_conf->gid) == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "initgroups(\"%s\", %ld) failed",
                     gl_conf->run_user, (long) gl_conf->gid);
        return GL_ERROR;
    }

    /* glibc applies these to every thread of the process */
    if (setgid(gl_conf->gid) == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "setgid(%ld) failed",
                     (long) gl_conf->gid);
        return GL_ERROR;
    }

    if (setuid(gl_conf->uid) == -1) {
        gl_log_error(GL_LOG_EMERG, errno, "setuid(%ld) failed",
                     (long) gl_conf->uid);
        return GL_ERROR;
    }

    if (gl_conf->uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
        gl_log_error(GL_LOG_EMERG, 0, "root privileges could be regained "
                     "after setuid(%ld)", (long) gl_conf->uid);
        return GL_ERROR;
    }

    gl_log_error(GL_LOG_NOTICE, 0, "running as user \"%s\" (uid %ld, "
                 "gid %ld)", gl_conf->run_user, (long) gl_conf->uid,
                 (long) gl_conf->gid);

    /* what the user cannot remove at exit: say so now */
    for (i = 0; i < gl_conf->nlisten; i++) {
        if (gl_conf->listen[i].path == NULL) {
            continue;
        }

        snprintf(dir, sizeof(dir), "%s", gl_conf->listen[i].path);
        slash = strrchr(dir, '/');
        *(slash == dir ? slash + 1 : slash) = '\0';

        if (access(dir, W_OK | X_OK) == -1) {
            gl_log_error(GL_LOG_WARN, errno, "user \"%s\" cannot remove "
                         "the socket file \"%s\" at exit: its directory "
                         "is not writable", gl_conf->run_user,
                         gl_conf->listen[i].path);
        }
    }

    return GL_OK;
}


static void
gl_worker_exited(gl_worker_t *w)
{
    /* runs in the worker thread: wake the main loop */
    ev_async_send(gl_main_loop, &gl_worker_done);

    if (atomic_load(&w->dead)) {
        ev_async_send(gl_main_loop, &gl_stuck_async);
    }
}


/* what retired workers held, kept to the end (see gl_worker_retire) */
static gl_worker_t  **gl_retired;
static int            gl_nretired;


/*
 * A worker retired after a panic of its Lua state: its thread has ended;
 * another starts in its slot, with its number.  0: not replaced.
 */
static int
gl_worker_replace(gl_worker_t *w)
{
    int           *fds, id;
    size_t         nfds;
    gl_worker_t   *copy, **r;

    id = w->id;

    if (!w->started) {
        /* a replacement that could not start (gl_worker_start failed):
           what it made is dropped, the slot tried again */
        memset(w, 0, sizeof(gl_worker_t));
        w->on_exit = gl_worker_exited;
        return gl_worker_restart(w, id, NULL, 0);
    }

    pthread_join(w->tid, NULL);

    /* connections handed to it after it ended go to the new one */
    fds = gl_worker_take_pending(w, &nfds);

    copy = malloc(sizeof(gl_worker_t));
    r = realloc(gl_retired, (gl_nretired + 1) * sizeof(gl_worker_t *));

    if (copy == NULL || r == NULL) {
        free(copy);
        gl_log_error(GL_LOG_ALERT, errno, "no memory to replace worker %d",
                     id);
        w->pending = fds;
        w->npending = nfds;
        w->pending_cap = nfds;
        return 0;
    }

    gl_retired = r;
    gl_worker_free(w);
    memcpy(copy, w, sizeof(gl_worker_t));
    gl_retired[gl_nretired++] = copy;

    memset(w, 0, sizeof(gl_worker_t));
    w->on_exit = gl_worker_exited;

    return gl_worker_restart(w, id, fds, nfds);
}


/*
 * Starts a worker in slot w (zeroed) with number id, and hands it the
 * connections fds.  If it cannot start (an init_worker_by_lua that now
 * fails, no memory), the slot stays dead: the acceptor passes it by (its
 * stuck flag stays), it counts for no stop, and gl_stuck_cb tries it
 * again after a delay.  0: not started.
 */
static int
gl_worker_restart(gl_worker_t *w, int id, int *fds, size_t nfds)
{
    size_t  i;

    if (gl_worker_start(w, id, gl_conf) != GL_OK) {
        gl_log_error(GL_LOG_ALERT, 0, "cannot start worker %d again: its "
                     "slot is tried again in %.0fs", id, gl_replace_delay);
        w->id = id;
        w->started = 0;
        atomic_store(&w->dead, 1);
        atomic_store(&w->done, 1);

        for (i = 0; i < nfds; i++) {
            close(fds[i]);
        }

        free(fds);
        gl_replace_later();
        return 0;
    }

    /* the acceptor may give it connections again */
    gl_watch_unstick(id);

    gl_log_error(GL_LOG_NOTICE, 0, "worker %d starts again", id);

    for (i = 0; i < nfds; i++) {
        gl_worker_post_conn(w, fds[i]);
    }

    free(fds);

    return 1;
}


/* the slots of workers that could not start again, or that panicked again
   and again, are tried after a delay: 1s, doubling up to a minute */
static void
gl_replace_later(void)
{
    if (!ev_is_active(&gl_replace_timer)) {
        ev_timer_set(&gl_replace_timer, gl_replace_delay, 0);
        ev_timer_start(gl_main_loop, &gl_replace_timer);
    }

    gl_replace_delay = gl_min(gl_replace_delay * 2, 60);
}


static void
gl_replace_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) t;
    (void) revents;

    gl_stuck_cb(loop, &gl_stuck_async, 0);
}


/* the watchdog found a worker stuck (its thread): wake the main loop */
static void
gl_worker_stuck(void)
{
    ev_async_send(gl_main_loop, &gl_stuck_async);
}


/*
 * A worker is stuck in Lua code that cannot be interrupted: as many new
 * workers start as it takes for the configured number to be free again,
 * within a room of as many again; past that, the watchdog ends golapis
 * when every worker is stuck.  A worker retired after a panic has ended:
 * a new one takes its slot.
 */
static void
gl_stuck_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    int           i, free_ones;
    double        now;
    gl_worker_t  *w;

    (void) loop;
    (void) a;
    (void) revents;

    if (gl_stopping) {
        return;
    }

    now = ev_now(gl_main_loop);

    for (i = 0; i < gl_nworkers; i++) {
        w = &gl_workers[i];

        if (!atomic_load(&w->dead)) {
            continue;
        }

        /* a worker that panics as soon as it starts (init_worker_by_lua,
           its first timer) would be replaced without end, each keeping
           its Lua state: after a replacement less than a second ago,
           wait */
        if (now - gl_replace_last < 1 || ev_is_active(&gl_replace_timer)) {
            gl_replace_later();
            continue;
        }

        if (now - gl_replace_last > 60) {
            gl_replace_delay = 1;
        }

        gl_replace_last = now;
        (void) gl_worker_replace(w);
    }

    /* a dead worker's slot is replaced in place: not a stuck one to make
       room for */
    free_ones = 0;
    for (i = 0; i < gl_nworkers; i++) {
        if (atomic_load(&gl_workers[i].dead)
            || !gl_watch_stuck(gl_workers[i].id))
        {
            free_ones++;
        }
    }

    while (free_ones < gl_workers_want && gl_nworkers < gl_workers_cap) {
        w = &gl_workers[gl_nworkers];
        w->on_exit = gl_worker_exited;

        if (gl_worker_start(w, gl_nworkers, gl_conf) != GL_OK) {
            gl_log_error(GL_LOG_ALERT, 0, "cannot start worker %d in place "
                         "of a stuck one", gl_nworkers);
            return;
        }

        gl_log_error(GL_LOG_WARN, 0, "worker %d starts in place of a stuck "
                     "one (%d of %d workers free)", gl_nworkers,
                     free_ones + 1, gl_workers_want);

        gl_nworkers++;
        free_ones++;
        gl_listen_set_workers(gl_workers, gl_nworkers);
    }

    if (free_ones == 0) {
        gl_log_error(GL_LOG_CRIT, 0, "every worker is stuck in lua code that "
                     "cannot be interrupted: exiting with status 1 (the "
                     "service manager restarts golapis)");
        _exit(EXIT_FAILURE);
    }
}


static void
gl_worker_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    int  i;

    (void) a;
    (void) revents;

    if (!gl_stopping) {
        /* a worker that ended by itself ends golapis; one retired after a
           panic is replaced instead (gl_stuck_cb) */
        for (i = 0; i < gl_nworkers; i++) {
            if (atomic_load(&gl_workers[i].done)
                && !atomic_load(&gl_workers[i].dead))
            {
                ev_break(loop, EVBREAK_ALL);
                return;
            }
        }

        return;
    }

    for (i = 0; i < gl_nworkers; i++) {
        if (!atomic_load(&gl_workers[i].done)) {
            return;
        }
    }

    ev_break(loop, EVBREAK_ALL);
}


static void
gl_shutdown_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) t;
    (void) revents;

    gl_log_error(GL_LOG_WARN, 0, "worker_shutdown_timeout (%gs) expired, "
                 "exiting with requests in flight (exit status 1)",
                 gl_conf->shutdown_timeout);

    ev_break(loop, EVBREAK_ALL);
}


/* the housekeeping thread saw changed code: every worker reloads (the
   main thread posts it: it alone touches the workers' slots) */
static void
gl_reload_workers(void)
{
    ev_async_send(gl_main_loop, &gl_reload_async);
}


static void
gl_reload_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    int  i;

    (void) loop;
    (void) a;
    (void) revents;

    for (i = 0; i < gl_nworkers; i++) {
        gl_worker_post_reload(&gl_workers[i]);
    }
}


/* the same "env" lines, in the same order */
static int
gl_env_same(gl_conf_t *a, gl_conf_t *b)
{
    int  i;

    if (a->nenv != b->nenv) {
        return 0;
    }

    for (i = 0; i < a->nenv; i++) {
        if (strcmp(a->env[i], b->env[i]) != 0) {
            return 0;
        }
    }

    return 1;
}


/* two strings, either of which may be NULL, are the same */
static int
gl_str_same(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}




/*
 * SIGHUP: read the config file again; if it is good, every worker moves
 * to a new generation of its Lua state with it.  The listen sockets and
 * the number of workers stay (they need a restart).
 */
static void
gl_reload_conf(void)
{
    int           i;
    char          err[4096];
    gl_conf_t    *conf, *old;
    gl_module_t  *m;

    if (gl_stopping) {
        return;
    }

    gl_log_error(GL_LOG_NOTICE, 0, "SIGHUP received, reloading \"%s\"",
                 gl_conf->file);

    conf = gl_conf_load(gl_conf->file, gl_modules, err, sizeof(err));

    if (conf == NULL || gl_lua_check_conf(conf, err, sizeof(err)) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "reload failed, the old configuration "
                     "stays: %s", err);
        gl_conf_free(conf);
        return;
    }

    /* against what golapis started with: a reload cannot change it */
    if (conf->nlisten != gl_conf_first->nlisten) {
        gl_log_error(GL_LOG_WARN, 0, "\"listen\" changes need a restart; "
                     "the old sockets stay");
    } else {
        for (i = 0; i < conf->nlisten; i++) {
            if (strcmp(conf->listen[i].text, gl_conf_first->listen[i].text)
                != 0)
            {
                gl_log_error(GL_LOG_WARN, 0, "\"listen\" changes need a "
                             "restart; the old sockets stay");
                break;
            }
        }
    }

    if (!gl_str_same(conf->user, gl_conf_first->user)
        || !gl_str_same(conf->group, gl_conf_first->group))
    {
        gl_log_error(GL_LOG_WARN, 0, "\"user\" changes need a restart; "
                     "golapis stays uid %ld gid %ld", (long) getuid(),
                     (long) getgid());
    }

    if (!gl_env_same(conf, gl_conf_first)) {
        gl_log_error(GL_LOG_WARN, 0, "\"env\" changes need a restart; "
                     "scripts see the environment golapis started with");
    }

    if (!gl_str_same(conf->pid, gl_conf_first->pid)) {
        gl_log_error(GL_LOG_WARN, 0, "\"pid\" changes need a restart; the "
                     "pid file stays \"%s\"",
                     gl_conf_first->pid ? gl_conf_first->pid : "(none)");
    }

    /* the configured number, not the threads started: those include
       the ones started in place of stuck workers */
    if (conf->workers != 0 && conf->workers != gl_workers_want) {
        gl_log_error(GL_LOG_WARN, 0, "\"workers\" changes need a restart; "
                     "%d workers stay", gl_workers_want);
    }

    conf->workers = gl_workers_want;

    m = gl_conf_init_main(conf);

    if (m != NULL) {
        gl_log_error(GL_LOG_ERR, 0, "reload failed, the old configuration "
                     "stays: the \"%s\" module refused the new one",
                     m->name);
        gl_conf_free(conf);
        return;
    }

    /* only once the new config is taken: a refused one changes nothing,
       its error log included */
    if (gl_log_open(conf->error_log, conf->log_level) != GL_OK) {
        gl_log_error(GL_LOG_ERR, errno, "cannot open the error log \"%s\", "
                     "the old one stays", conf->error_log);
    }

    old = gl_conf;
    gl_conf = conf;

    gl_house_set_conf(conf);
    gl_listen_set_conf(conf);

    for (i = 0; i < gl_nworkers; i++) {
        gl_worker_post_conf(&gl_workers[i], conf);
    }

    /* the old config goes when its last worker, request and generation of
       Lua code let go of it */
    gl_conf_unref(old);
}

/*
 * The environment scripts see, as nginx's "env": only the variables the
 * config lists (their inherited values, or those it gives) and TZ.  Set
 * once, before any worker starts (a reload cannot change it: setenv is
 * not safe while threads read the environment).
 */
static void
gl_free_environment(void)
{
    int  i;

    if (gl_env_kept == NULL) {
        return;
    }

    (void) clearenv();

    for (i = 0; gl_env_kept[i] != NULL; i++) {
        free(gl_env_kept[i]);
    }

    free(gl_env_kept);
    gl_env_kept = NULL;
}


static int
gl_set_environment(gl_conf_t *conf)
{
    int          i, n;
    char        *e, **keep;
    size_t       len;
    const char  *v, *eq;

    keep = calloc(conf->nenv + 2, sizeof(char *));
    if (keep == NULL) {
        return GL_ERROR;
    }

    n = 0;

    for (i = 0; i < conf->nenv; i++) {
        eq = strchr(conf->env[i], '=');

        if (eq != NULL) {
            e = strdup(conf->env[i]);

        } else {
            v = getenv(conf->env[i]);
            if (v == NULL) {
                continue;
            }

            len = strlen(conf->env[i]) + strlen(v) + 2;
            e = malloc(len);
            if (e != NULL) {
                snprintf(e, len, "%s=%s", conf->env[i], v);
            }
        }

        if (e == NULL) {
            goto failed;
        }

        keep[n++] = e;
    }

    v = getenv("TZ");

    for (i = 0; i < conf->nenv && v != NULL; i++) {
        if (strncmp(conf->env[i], "TZ", 2) == 0
            && (conf->env[i][2] == '\0' || conf->env[i][2] == '='))
        {
            v = NULL;
        }
    }

    if (v != NULL) {
        len = strlen(v) + 4;
        e = malloc(len);
        if (e == NULL) {
            goto failed;
        }

        snprintf(e, len, "TZ=%s", v);
        keep[n++] = e;
    }

    if (clearenv() != 0) {
        goto failed;
    }

    /* putenv keeps the strings: they live until gl_free_environment() */
    for (i = 0; i < n; i++) {
        if (putenv(keep[i]) != 0) {
            gl_log_error(GL_LOG_EMERG, errno, "putenv() failed");
            return GL_ERROR;
        }
    }

    gl_env_kept = keep;

    return GL_OK;

failed:

    gl_log_error(GL_LOG_EMERG, errno, "cannot set the environment");

    for (i = 0; i < n; i++) {
        free(keep[i]);
    }

    free(keep);

    return GL_ERROR;
}


/*
 * WatchdogSec: WATCHDOG=1 only when every worker that should answer has
 * answered the last check (its loop runs), never from the timer alone.
 * Workers the watchdog of Lua runs found stuck, or that a panic retired,
 * are being replaced and do not count.
 */
static void
gl_sd_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    int            i, late;
    unsigned       beat;
    gl_worker_t   *w;
    static int     checked;

    (void) loop;
    (void) t;
    (void) revents;

    late = -1;

    for (i = 0; i < gl_nworkers; i++) {
        w = &gl_workers[i];

        if (atomic_load(&w->done) || gl_watch_stuck(w->id)) {
            continue;
        }

        beat = atomic_load(&w->beat);

        /* a worker started since the last tick (in place of a stuck or
           retired one) was not asked yet */
        if (checked && w->pinged && beat == w->beat_seen && late == -1) {
            late = w->id;
        }

        w->beat_seen = beat;
    }

    if (late == -1) {
        (void) gl_sd_notify("WATCHDOG=1");

    } else {
        gl_log_error_limited(GL_LOG_WARN, 0, "worker %d did not answer the "
                             "service manager's watchdog check in %.3gs: "
                             "no WATCHDOG=1", late,
                             gl_sd_watchdog_interval() / 2);
    }

    checked = 1;

    for (i = 0; i < gl_nworkers; i++) {
        w = &gl_workers[i];

        if (!atomic_load(&w->done)) {
            gl_worker_post_ping(w);
            w->pinged = 1;
        }
    }
}


static void
gl_sd_status(const char *state)
{
    (void) gl_sd_notify("%s\nSTATUS=%s, %d workers\nMAINPID=%ld", state,
                        gl_stopping ? "stopping" : "serving", gl_nworkers,
                        (long) getpid());
}


/*
 * The service stops, unless this is a new binary (SIGUSR2) stopped while
 * the old one runs (a roll-back, a failed start): that one goes on and
 * is the service's main process again.
 */
static void
gl_sd_stopping(void)
{
    pid_t  old;

    if (gl_sd_old_binary_alive()) {
        old = gl_sd_old_binary();
        (void) gl_sd_notify("MAINPID=%ld\nREADY=1\nSTATUS=the new binary "
                            "stops, the old one (pid %ld) goes on",
                            (long) old, (long) old);
        return;
    }

    gl_sd_status("STOPPING=1");
}


/* the sockets the status page shows: these, whatever a reload says */
static void
gl_stat_listen(gl_listening_t *ls, gl_conf_t *conf)
{
    int          i, n;
    struct stat  st;

    n = gl_min(conf->nlisten, GL_STAT_LISTEN_MAX);

    for (i = 0; i < n; i++) {
        gl_stat.listen[i].text = conf->listen[i].text;
        gl_stat.listen[i].ino = fstat(ls[i].fd, &st) == 0
                                ? (uint64_t) st.st_ino : 0;
    }

    gl_stat.nlisten = n;
}


static unsigned long long
gl_monotonic_usec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (unsigned long long) ts.tv_sec * 1000000
           + (unsigned long long) ts.tv_nsec / 1000;
}


/* SIGCHLD: the new binary of a SIGUSR2 ended (it failed to start, or was
   stopped)?  Only its pid is waited for: the scripts' children are
   theirs */
static void
gl_sigchld_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    int    status;
    char   old[PATH_MAX];
    pid_t  pid, child;

    (void) loop;
    (void) s;
    (void) revents;

    if (gl_new_binary == 0) {
        return;
    }

    child = gl_new_binary;
    pid = waitpid(child, &status, WNOHANG);

    if (pid == 0 || (pid == -1 && errno == EINTR)) {
        return;
    }

    if (pid == -1) {
        gl_log_error(GL_LOG_ALERT, errno, "waitpid(%d) failed: the new "
                     "binary is taken for gone", (int) child);
        status = 0;
    }

    gl_new_binary = 0;
    gl_listen_keep_files(0);

    /* the pid file is ours again */
    if (gl_pid_written) {
        gl_oldbin_path(old, sizeof(old));

        if (rename(old, gl_conf_first->pid) == -1) {
            gl_log_error(GL_LOG_ALERT, errno, "rename(\"%s\", \"%s\") "
                         "failed", old, gl_conf_first->pid);
        }
    }

    gl_log_error(GL_LOG_ALERT, 0, "the new binary (pid %d) exited with "
                 "status %d%s", (int) child,
                 WIFEXITED(status) ? WEXITSTATUS(status)
                                   : 128 + WTERMSIG(status),
                 gl_stopping ? "" : ": this golapis goes on");

    /* the service's main process again (the new one handed it back as
       it stopped, unless it died) */
    if (!gl_stopping) {
        gl_sd_status("READY=1");
    }
}


/*
 * SIGUSR2, as nginx: the binary golapis was started from is started
 * again with the same arguments and the environment golapis was started
 * with, its listening sockets passed as systemd passes them (fds 3...,
 * LISTEN_FDS, LISTEN_PID); the pid file becomes PID.oldbin, and the new
 * process writes its own.  Both accept until this one is stopped (QUIT or
 * TERM: it finishes its requests, and leaves the socket files and the new
 * pid file in place).  If the new one exits first, this one takes its
 * pid file back.
 */
static void
gl_upgrade(struct ev_loop *loop)
{
    int          i, n, fd, envc;
    char         old[PATH_MAX], **env, nfds[32], pidv[32];
    char         names[GL_CONF_MAX_LISTEN * sizeof(GL_SD_KEPT) + 32];
    pid_t        pid;
    sigset_t     none;
    const char  *errstr;

    if (gl_stopping) {
        return;
    }

    if (gl_new_binary != 0) {
        gl_log_error(GL_LOG_WARN, 0, "SIGUSR2: a new binary (pid %d) runs "
                     "already", (int) gl_new_binary);
        return;
    }

    /* as nginx's: a third binary would take the pid file the old one
       keeps as .oldbin */
    if (gl_sd_old_binary_alive()) {
        gl_log_error(GL_LOG_WARN, 0, "SIGUSR2 ignored: the old binary (pid "
                     "%d) still runs; stop either one first",
                     (int) gl_sd_old_binary());
        return;
    }

    if (gl_os_env == NULL) {
        gl_log_error(GL_LOG_ALERT, 0, "SIGUSR2: the environment golapis "
                     "started with was not kept (no memory then)");
        return;
    }

    n = gl_conf_first->nlisten;

    for (envc = 0; gl_os_env[envc] != NULL; envc++) { /* void */ }

    env = calloc(envc + 4, sizeof(char *));
    if (env == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "SIGUSR2: no memory");
        return;
    }

    memcpy(env, gl_os_env, envc * sizeof(char *));
    snprintf(nfds, sizeof(nfds), "LISTEN_FDS=%d", n);
    env[envc] = nfds;
    env[envc + 1] = pidv;       /* written by the child: its own pid */
    env[envc + 2] = names;
    env[envc + 3] = NULL;
    memcpy(pidv, "LISTEN_PID=", 11);

    /* LISTEN_FDNAMES=golapis:golapis-kept...: the new one owns the files
       this one made, not those systemd's socket unit made */
    snprintf(names, sizeof(names), "LISTEN_FDNAMES=");
    for (i = 0; i < n; i++) {
        if (i > 0) {
            strcat(names, ":");
        }
        strcat(names, gl_listening[i].keep_file ? GL_SD_KEPT : GL_SD_OURS);
    }

    if (gl_pid_written) {
        gl_oldbin_path(old, sizeof(old));

        if (rename(gl_conf_first->pid, old) == -1) {
            gl_log_error(GL_LOG_ALERT, errno, "SIGUSR2: rename(\"%s\", "
                         "\"%s\") failed", gl_conf_first->pid, old);
            free(env);
            return;
        }
    }

    sigemptyset(&none);

    pid = fork();

    if (pid == 0) {
        /* the child of a threaded process: async-signal-safe calls only */
        errstr = "dup";

        for (i = 0; i < n; i++) {
            /* out of the way of fds 3 .. 3 + n - 1 first */
            fd = fcntl(gl_listening[i].fd, F_DUPFD_CLOEXEC,
                       GL_SD_LISTEN_FDS_START + n);
            if (fd == -1) {
                goto child_failed;
            }
            gl_listening[i].fd = fd;
        }

        for (i = 0; i < n; i++) {
            /* dup2 clears FD_CLOEXEC on the copy */
            if (dup2(gl_listening[i].fd, GL_SD_LISTEN_FDS_START + i) == -1) {
                goto child_failed;
            }
        }

        /* LISTEN_PID=<our pid> */
        {
            char  digits[16];
            int   k, len;
            long  p;

            p = (long) getpid();
            len = 0;
            do {
                digits[len++] = (char) ('0' + p % 10);
                p /= 10;
            } while (p > 0 && len < 15);

            for (k = 0; k < len; k++) {
                pidv[11 + k] = digits[len - 1 - k];
            }
            pidv[11 + len] = '\0';
        }

        sigprocmask(SIG_SETMASK, &none, NULL);

        execve(gl_exe, gl_argv, env);
        errstr = "execve";

    child_failed:
        (void) write(STDERR_FILENO, "golapis: SIGUSR2: ", 18);
        (void) write(STDERR_FILENO, errstr, strlen(errstr));
        (void) write(STDERR_FILENO, "() failed in the new process\n", 29);
        _exit(127);
    }

    free(env);

    if (pid == -1) {
        gl_log_error(GL_LOG_ALERT, errno, "SIGUSR2: fork() failed");

        if (gl_pid_written && rename(old, gl_conf_first->pid) == -1) {
            gl_log_error(GL_LOG_ALERT, errno, "rename(\"%s\", \"%s\") "
                         "failed", old, gl_conf_first->pid);
        }

        return;
    }

    gl_new_binary = pid;
    gl_listen_keep_files(1);

    (void) loop;

    gl_log_error(GL_LOG_NOTICE, 0, "SIGUSR2: started the new binary \"%s\" "
                 "(pid %d) on the listening sockets; stop this one (pid %d) "
                 "with QUIT when it serves", gl_exe, (int) pid,
                 (int) getpid());
}


/* keeps argv and a copy of the environment golapis was started with
   (less what was meant for this process alone), for SIGUSR2 */
static void
gl_save_start(char **argv)
{
    int          i, n;
    ssize_t      len;
    extern char  **environ;

    gl_argv = argv;

    len = readlink("/proc/self/exe", gl_exe, sizeof(gl_exe) - 1);

    if (len > 0) {
        gl_exe[len] = '\0';

    } else if (realpath(argv[0], gl_exe) == NULL) {
        snprintf(gl_exe, sizeof(gl_exe), "%s", argv[0]);
    }

    for (n = 0; environ[n] != NULL; n++) { /* void */ }

    gl_os_env = calloc(n + 1, sizeof(char *));
    if (gl_os_env == NULL) {
        return;
    }

    for (i = 0, n = 0; environ[i] != NULL; i++) {
        if (strncmp(environ[i], "LISTEN_PID=", 11) == 0
            || strncmp(environ[i], "LISTEN_FDS=", 11) == 0
            || strncmp(environ[i], "LISTEN_FDNAMES=", 15) == 0
            || strncmp(environ[i], "WATCHDOG_PID=", 13) == 0)
        {
            continue;
        }

        gl_os_env[n] = strdup(environ[i]);
        if (gl_os_env[n] != NULL) {
            n++;
        }
    }
}


static void
gl_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    int  i;

    (void) revents;

    switch (s->signum) {

    case SIGTERM:
    case SIGQUIT:
        if (gl_stopping) {
            return;
        }

        gl_log_error(GL_LOG_NOTICE, 0, "signal %d received, shutting down "
                     "gracefully", s->signum);
        gl_stopping = 1;

        /* after a SIGUSR2 the new binary is the service now */
        if (gl_new_binary == 0) {
            gl_sd_stopping();
        }

        ev_timer_stop(loop, &gl_sd_watchdog_timer);

        gl_listen_close(loop, gl_listening, gl_conf_first->nlisten);

        for (i = 0; i < gl_nworkers; i++) {
            gl_worker_post_quit(&gl_workers[i]);
        }

        ev_timer_init(&gl_shutdown_timer, gl_shutdown_timeout_cb,
                      gl_conf->shutdown_timeout, 0);
        ev_timer_start(loop, &gl_shutdown_timer);
        break;

    case SIGINT:
        gl_log_error(GL_LOG_NOTICE, 0, "signal %d received, exiting now",
                     s->signum);
        if (gl_new_binary == 0) {
            gl_sd_stopping();
        }
        gl_listen_close(NULL, gl_listening, gl_conf_first->nlisten);
        gl_remove_pid();
        _exit(0);

    case SIGHUP:
        /* after a SIGUSR2 the new binary is the service: this one says
           nothing that would make it the main process again */
        if (gl_new_binary == 0) {
            (void) gl_sd_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
                                gl_monotonic_usec());
        }
        gl_reload_conf();
        if (gl_new_binary == 0) {
            gl_sd_status("READY=1");
        }
        break;

    case SIGUSR2:
        gl_upgrade(loop);
        break;

    case SIGUSR1:
        gl_log_reopen();
        gl_log_error(GL_LOG_NOTICE, 0, "error log reopened");
        break;

    default:
        break;
    }
}


static int
gl_run(void)
{
    int              i, n, all;
    long             ncpu;
    gl_module_t     *m;
    struct ev_loop  *loop;
    static const int signals[] = { SIGTERM, SIGQUIT, SIGINT, SIGHUP,
                                   SIGUSR1, SIGUSR2 };

    gl_conf_first = gl_conf_ref(gl_conf);

    /* what the service manager (or the golapis of a SIGUSR2) passed */
    gl_sd_init();

    if (gl_set_environment(gl_conf) != GL_OK) {
        return 1;
    }

    /*
     * Not libev's default loop: that one reaps every child (its SIGCHLD
     * watcher waits for any pid), which would take the exit status of
     * io.popen's and os.execute's children from the scripts.  SIGCHLD is
     * watched here for the new binary of a SIGUSR2 alone.
     */
    loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_SIGNALFD);
    gl_main_loop = loop;
    if (loop == NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "cannot create the main event loop");
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);

    for (i = 0; i < (int) gl_nelems(signals); i++) {
        ev_signal_init(&gl_signals[i], gl_signal_cb, signals[i]);
        ev_signal_start(loop, &gl_signals[i]);
    }

    ev_signal_init(&gl_sigchld, gl_sigchld_cb, SIGCHLD);
    ev_signal_start(loop, &gl_sigchld);

    m = gl_conf_init_main(gl_conf);

    if (m != NULL) {
        gl_log_error(GL_LOG_EMERG, 0, "the \"%s\" module refused the "
                     "configuration", m->name);
        gl_shdict_destroy_all();
        return 1;
    }

    gl_listening = gl_listen_open(gl_conf, gl_sd_listen_fds());
    if (gl_listening == NULL) {
        gl_shdict_destroy_all();
        return 1;
    }

    gl_stat_listen(gl_listening, gl_conf);

    if (gl_write_pid() != GL_OK) {
        gl_listen_close(NULL, gl_listening, gl_conf->nlisten);
        return 1;
    }

    if (gl_drop_privileges() != GL_OK) {
        gl_listen_close(NULL, gl_listening, gl_conf->nlisten);
        gl_remove_pid();
        return 1;
    }

    gl_listen_set_conf(gl_conf);

    n = gl_conf->workers;
    if (n == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        /* as "workers N": 1024 at most (the status page's slots) */
        n = ncpu > 0 ? (int) gl_min(ncpu, 1024) : 1;
    }

    gl_conf->workers = n;

    /* room for as many again, to replace workers stuck in Lua code */
    gl_workers_want = n;
    gl_workers_cap = 2 * n;
    gl_workers = calloc(gl_workers_cap, sizeof(gl_worker_t));
    if (gl_workers == NULL) {
        gl_listen_close(NULL, gl_listening, gl_conf->nlisten);
        gl_remove_pid();
        return 1;
    }

    ev_async_init(&gl_worker_done, gl_worker_done_cb);
    ev_async_start(loop, &gl_worker_done);
    ev_async_init(&gl_stuck_async, gl_stuck_cb);
    ev_async_start(loop, &gl_stuck_async);
    ev_timer_init(&gl_replace_timer, gl_replace_timer_cb, 1, 0);
    ev_async_init(&gl_reload_async, gl_reload_cb);
    ev_async_start(loop, &gl_reload_async);
    gl_watch_on_stuck(gl_worker_stuck);

    for (i = 0; i < n; i++) {
        gl_workers[i].on_exit = gl_worker_exited;

        if (gl_worker_start(&gl_workers[i], i, gl_conf) != GL_OK) {
            gl_log_error(GL_LOG_EMERG, 0, "cannot start worker %d", i);
            gl_listen_close(NULL, gl_listening, gl_conf->nlisten);
            gl_remove_pid();
            _exit(1);
        }

        gl_nworkers++;
    }

    if (gl_house_start(gl_conf, gl_reload_workers) != GL_OK) {
        gl_listen_close(NULL, gl_listening, gl_conf->nlisten);
        gl_remove_pid();
        _exit(1);
    }

    gl_listen_start(loop, gl_listening, gl_conf->nlisten, gl_workers, n);

    gl_log_error(GL_LOG_NOTICE, 0, "golapis/" GL_VERSION " started, "
                 "%d workers", n);

    /* the sockets accept (their backlog) and the workers run */
    gl_sd_status("READY=1");

    if (gl_sd_watchdog_interval() > 0) {
        ev_timer_init(&gl_sd_watchdog_timer, gl_sd_watchdog_cb,
                      gl_sd_watchdog_interval() / 2,
                      gl_sd_watchdog_interval() / 2);
        ev_timer_start(loop, &gl_sd_watchdog_timer);
    }

    ev_run(loop, 0);

    all = 1;
    for (i = 0; i < gl_nworkers; i++) {
        if (!atomic_load(&gl_workers[i].done)) {
            all = 0;
        }
    }

    gl_listen_close(loop, gl_listening, gl_conf_first->nlisten);
    gl_remove_pid();

    if (!all) {
        /* the housekeeping thread ends with the process */
        /* the timeout expired: the rest of the requests are dropped */
        for (i = 0; i < gl_nworkers; i++) {
            if (atomic_load(&gl_workers[i].done) && gl_workers[i].started) {
                pthread_join(gl_workers[i].tid, NULL);
            } else if (gl_workers[i].started) {
                pthread_detach(gl_workers[i].tid);
            }
        }

        /* not a clean stop: requests were cut, which the exit status says
           (a service manager does not restart a unit it was told to
           stop) */
        _exit(EXIT_FAILURE);
    }

    gl_house_stop();

    for (i = 0; i < gl_nworkers; i++) {
        if (gl_workers[i].started) {
            pthread_join(gl_workers[i].tid, NULL);
        }

        gl_worker_free(&gl_workers[i]);
    }

    gl_conf_unref(gl_conf_first);
    gl_conf_first = NULL;

    /* every thread but this one has ended */
    gl_free_environment();

    gl_shdict_destroy_all();

    gl_log_error(GL_LOG_NOTICE, 0, "exiting");

    free(gl_workers);
    free(gl_listening);
    ev_loop_destroy(loop);

    return 0;
}


int
main(int argc, char **argv)
{
    int          c, test, rc;
    char         err[4096];
    const char  *file, *signame;

    file = GL_CONF_PATH;
    test = 0;
    signame = NULL;

    gl_save_start(argv);

    /* read before "env" empties the environment */
    (void) gl_lua_lib_dir();

    while ((c = getopt(argc, argv, "c:ts:vh")) != -1) {
        switch (c) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 's':
            signame = optarg;
            break;
        case 'v':
            gl_version();
            return 0;
        case 'h':
            gl_usage(stdout);
            return 0;
        default:
            gl_usage(stderr);
            return 1;
        }
    }

    if (optind != argc) {
        gl_usage(stderr);
        return 1;
    }

    gl_conf = gl_conf_load(file, gl_modules, err, sizeof(err));

    if (gl_conf == NULL) {
        fprintf(stderr, "golapis: %s\n", err);
        if (test) {
            fprintf(stderr, "golapis: configuration file %s test failed\n",
                    file);
        }
        return 1;
    }

    if (signame != NULL) {
        rc = gl_send_signal(gl_conf, signame);
        gl_conf_free(gl_conf);
        return rc;
    }

    if (test && gl_lua_check_conf(gl_conf, err, sizeof(err)) != GL_OK) {
        fprintf(stderr, "golapis: %s\n"
                "golapis: configuration file %s test failed\n", err, file);
        gl_conf_free(gl_conf);
        return 1;
    }

    if (test && gl_test_logs(gl_conf) != GL_OK) {
        fprintf(stderr, "golapis: configuration file %s test failed\n",
                file);
        gl_conf_free(gl_conf);
        return 1;
    }

    if (test) {
        printf("golapis: the configuration file %s syntax is ok\n"
               "golapis: configuration file %s test is successful\n",
               file, file);
        gl_conf_free(gl_conf);
        return 0;
    }

    if (gl_log_open(gl_conf->error_log, gl_conf->log_level) != GL_OK) {
        fprintf(stderr, "golapis: cannot open the error log \"%s\": %s\n",
                gl_conf->error_log, strerror(errno));
        gl_conf_free(gl_conf);
        return 1;
    }

    rc = gl_run();

    gl_conf_unref(gl_conf);

    return rc;
}
