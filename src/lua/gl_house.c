/*
 * The housekeeping thread.
 *
 * Watched files are kept with the stat (mtime, size, inode) they had when
 * they were read.  A file whose stat differs is "changing"; it is taken
 * as changed only when the next turn finds the same new stat, so a file
 * still being written is never loaded half-written.  Changed files are
 * test-compiled first: if one does not compile, its error is logged with
 * file:line and nothing is reloaded (a new generation would load it), until
 * it is fixed.  A changed file that cannot be loaded at all (a directory,
 * a FIFO, unreadable, too large, a dangling symlink) is logged once and
 * taken as gone: it does not hold the other changes back.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_house.h"
#include "gl_log.h"
#include "gl_shdict.h"

#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char             *path;
    char             *text;       /* the vetted content, for new loads;
                                     NULL: gone or not loadable */
    size_t            len;
    char             *next_text;  /* a changed content, once it compiles */
    size_t            next_len;
    gl_house_stat_t   loaded;     /* as loaded (or last reloaded) */
    gl_house_stat_t   seen;       /* a new stat seen once, to confirm */
    gl_house_stat_t   bad;        /* a version that did not compile */
    gl_house_stat_t   unusable;   /* a version that could not be read */
    unsigned          pending:1;
    unsigned          is_bad:1;
    unsigned          is_unusable:1;
    unsigned          young:1;    /* text not vetted yet: read while the
                                     file was young */
} gl_house_file_t;

static pthread_mutex_t   gl_house_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t    gl_house_cond = PTHREAD_COND_INITIALIZER;
static gl_house_file_t  *gl_house_files;
static size_t            gl_house_nfiles;
static size_t            gl_house_cap;
static int               gl_house_stopping;
static int               gl_house_running;
static pthread_t         gl_house_tid;
static double            gl_house_interval = 1.0;
static void            (*gl_house_reload)(void);


static void
gl_house_from_stat(gl_house_stat_t *hs, const struct stat *st)
{
    memset(hs, 0, sizeof(*hs));

    hs->exists = 1;
    hs->dev = st->st_dev;
    hs->ino = st->st_ino;
    hs->size = st->st_size;
    hs->mtime = st->st_mtim;
}


static void
gl_house_stat(const char *path, gl_house_stat_t *hs)
{
    struct stat  st;

    if (stat(path, &st) == -1) {
        memset(hs, 0, sizeof(*hs));
        hs->err = errno;
        return;
    }

    gl_house_from_stat(hs, &st);
}


static int
gl_house_same(const gl_house_stat_t *a, const gl_house_stat_t *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino
           && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec;
}


void
gl_house_watch(const char *path, const char *text, size_t len,
    const gl_house_stat_t *st, int young)
{
    size_t            i, size;
    gl_house_file_t  *f;

    pthread_mutex_lock(&gl_house_lock);

    for (i = 0; i < gl_house_nfiles; i++) {
        if (strcmp(gl_house_files[i].path, path) == 0) {
            pthread_mutex_unlock(&gl_house_lock);
            return;
        }
    }

    if (gl_house_nfiles == gl_house_cap) {
        size = gl_house_cap ? gl_house_cap * 2 : 64;
        f = realloc(gl_house_files, size * sizeof(gl_house_file_t));
        if (f == NULL) {
            pthread_mutex_unlock(&gl_house_lock);
            gl_log_error(GL_LOG_ALERT, errno, "cannot watch \"%s\"", path);
            return;
        }
        gl_house_files = f;
        gl_house_cap = size;
    }

    f = &gl_house_files[gl_house_nfiles];
    memset(f, 0, sizeof(*f));

    f->path = strdup(path);
    f->text = malloc(len + 1);

    if (f->path == NULL || f->text == NULL) {
        free(f->path);
        free(f->text);
        pthread_mutex_unlock(&gl_house_lock);
        return;
    }

    memcpy(f->text, text, len);
    f->len = len;

    f->loaded = *st;
    f->young = young ? 1 : 0;
    gl_house_nfiles++;

    pthread_mutex_unlock(&gl_house_lock);

    gl_log_debug("watching \"%s\"", path);
}


/*
 * A copy of the vetted content of a watched file (caller frees), so that a
 * new generation loads what was checked, never a file being rewritten;
 * NULL if the file is not watched yet.
 */
char *
gl_house_text(const char *path, size_t *len)
{
    char    *text;
    size_t   i;

    text = NULL;

    pthread_mutex_lock(&gl_house_lock);

    for (i = 0; i < gl_house_nfiles; i++) {
        if (strcmp(gl_house_files[i].path, path) == 0) {
            if (gl_house_files[i].text == NULL || gl_house_files[i].young) {
                /* gone or not loadable when last seen, or not vetted
                   yet: the disk tells */
                break;
            }

            text = malloc(gl_house_files[i].len + 1);
            if (text != NULL) {
                memcpy(text, gl_house_files[i].text, gl_house_files[i].len);
                *len = gl_house_files[i].len;
            }
            break;
        }
    }

    pthread_mutex_unlock(&gl_house_lock);

    return text;
}


int
gl_house_read_file(const char *path, char **text, size_t *len,
    gl_house_stat_t *st, char *err, size_t err_size)
{
    int            fd, rc;
    char          *buf, extra;
    size_t         got;
    ssize_t        n;
    struct stat    before, after;

    *text = NULL;
    buf = NULL;

    /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        snprintf(err, err_size, "%s", strerror(errno));
        return (errno == ENOENT || errno == ENOTDIR) ? GL_DECLINED
                                                    : GL_ERROR;
    }

    if (fstat(fd, &before) == -1) {
        snprintf(err, err_size, "%s", strerror(errno));
        rc = GL_ERROR;
        goto done;
    }

    if (S_ISDIR(before.st_mode)) {
        snprintf(err, err_size, "is a directory");
        rc = GL_ERROR;
        goto done;
    }

    if (!S_ISREG(before.st_mode)) {
        snprintf(err, err_size, "is not a regular file");
        rc = GL_ERROR;
        goto done;
    }

    if (before.st_size < 0 || before.st_size > GL_HOUSE_MAX_FILE) {
        snprintf(err, err_size, "too large (%jd bytes, at most %d)",
                 (intmax_t) before.st_size, GL_HOUSE_MAX_FILE);
        rc = GL_ERROR;
        goto done;
    }

    buf = malloc((size_t) before.st_size + 1);
    if (buf == NULL) {
        snprintf(err, err_size, "no memory for %jd bytes",
                 (intmax_t) before.st_size);
        rc = GL_ERROR;
        goto done;
    }

    rc = GL_AGAIN;
    got = 0;

    while (got < (size_t) before.st_size) {
        n = read(fd, buf + got, (size_t) before.st_size - got);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1) {
            snprintf(err, err_size, "%s", strerror(errno));
            rc = GL_ERROR;
            goto done;
        }

        if (n == 0) {
            snprintf(err, err_size, "changed while read (shrank)");
            goto done;
        }

        got += n;
    }

    do {
        n = read(fd, &extra, 1);
    } while (n == -1 && errno == EINTR);

    if (n != 0) {
        snprintf(err, err_size, "changed while read (grew)");
        goto done;
    }

    if (fstat(fd, &after) == -1
        || after.st_size != before.st_size
        || after.st_mtim.tv_sec != before.st_mtim.tv_sec
        || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
    {
        snprintf(err, err_size, "changed while read");
        goto done;
    }

    buf[got] = '\0';
    *text = buf;
    *len = got;
    gl_house_from_stat(st, &before);
    buf = NULL;
    rc = GL_OK;

done:

    free(buf);
    close(fd);

    return rc;
}


static int
gl_house_young_within(const gl_house_stat_t *st, double interval)
{
    double           age;
    struct timespec  now;

    clock_gettime(CLOCK_REALTIME, &now);

    age = (double) (now.tv_sec - st->mtime.tv_sec)
          + (now.tv_nsec - st->mtime.tv_nsec) / 1e9;

    /* a time far in the future (a skewed clock, touch -d) is no sign of a
       writer at work now: such a file would never be cached */
    return age < interval && age > -interval;
}


int
gl_house_young(const gl_house_stat_t *st)
{
    double  interval;

    pthread_mutex_lock(&gl_house_lock);
    interval = gl_house_interval;
    pthread_mutex_unlock(&gl_house_lock);

    return gl_house_young_within(st, interval);
}


/* as gl_house_young(), gl_house_lock held */
static int
gl_house_young_locked(const gl_house_stat_t *st)
{
    return gl_house_young_within(st, gl_house_interval);
}


/* a watched file cannot be loaded as it is now: say why, once for this
   version of it */
static void
gl_house_unusable(gl_house_file_t *f, const gl_house_stat_t *now,
    const char *reason)
{
    if (f->is_unusable && gl_house_same(now, &f->unusable)) {
        return;
    }

    f->unusable = *now;
    f->is_unusable = 1;

    gl_log_error(GL_LOG_ERR, 0, "cannot load \"%s\": %s, taken as gone",
                 f->path, reason);
}


/* one look at every watched file; returns 1 if workers must reload */
static int
gl_house_scan(lua_State *L)
{
    int               reload, broken;
    size_t            i;
    gl_house_stat_t   now;
    gl_house_file_t  *f;

    reload = 0;
    broken = 0;

    pthread_mutex_lock(&gl_house_lock);

    for (i = 0; i < gl_house_nfiles; i++) {
        f = &gl_house_files[i];

        gl_house_stat(f->path, &now);

        if (gl_house_same(&now, &f->loaded)) {
            f->pending = 0;
            f->is_bad = 0;
            if (f->young && !gl_house_young_locked(&f->loaded)) {
                /* held still for an interval since it was read */
                f->young = 0;
            }
            continue;
        }

        if (f->is_bad && gl_house_same(&now, &f->bad)) {
            /* still the version that does not compile */
            broken = 1;
            continue;
        }

        if (!f->pending || !gl_house_same(&now, &f->seen)) {
            /* changing: wait until it holds still for a turn */
            f->seen = now;
            f->pending = 1;
            broken = 1;
            continue;
        }

        /* changed, and stable: does it compile? */
        if (now.exists) {
            int              rc;
            size_t           len;
            char            *text, err[128];
            gl_house_stat_t  st;

            rc = gl_house_read_file(f->path, &text, &len, &st, err,
                                    sizeof(err));

            if (rc == GL_OK && !gl_house_same(&st, &now)) {
                free(text);
                rc = GL_AGAIN;
            }

            if (rc == GL_ERROR) {
                /* not loadable as it is: as if it were gone, so that it
                   does not hold the other changes back */
                gl_house_unusable(f, &now, err);
                free(f->next_text);
                f->next_text = NULL;
                f->next_len = 0;
                reload = 1;
                continue;
            }

            if (rc != GL_OK) {
                /* moving again: wait */
                f->pending = 0;
                broken = 1;
                continue;
            }

            lua_pushfstring(L, "@%s", f->path);

            if (luaL_loadbuffer(L, text, len, lua_tostring(L, -1)) != 0) {
                gl_log_error(GL_LOG_ERR, 0, "not reloading: %s",
                             lua_tostring(L, -1));
                free(text);
                f->pending = 0;
                f->bad = now;
                f->is_bad = 1;
                broken = 1;
                lua_settop(L, 0);
                continue;
            }

            lua_settop(L, 0);
            free(f->next_text);
            f->next_text = text;
            f->next_len = len;

        } else {
            struct stat  lst;

            if (now.err != ENOENT && now.err != ENOTDIR) {
                gl_house_unusable(f, &now, strerror(now.err));

            } else if (lstat(f->path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
                gl_house_unusable(f, &now, "a dangling symbolic link");
            }

            free(f->next_text);
            f->next_text = NULL;
            f->next_len = 0;
        }

        reload = 1;
    }

    if (reload && !broken) {
        /* all changes are complete and compile: take them */
        for (i = 0; i < gl_house_nfiles; i++) {
            f = &gl_house_files[i];

            if (f->pending) {
                gl_log_error(GL_LOG_NOTICE, 0, "\"%s\" changed", f->path);
                f->loaded = f->seen;
                f->pending = 0;

                free(f->text);
                f->text = f->next_text;
                f->len = f->next_len;
                f->next_text = NULL;
                f->next_len = 0;

                f->young = 0;

                if (f->text != NULL) {
                    /* a good version: a later unusable one is news */
                    f->is_unusable = 0;
                }

                /* f->text NULL: gone or not loadable, the next load
                   looks at the disk again */
            }
        }
    }

    pthread_mutex_unlock(&gl_house_lock);

    /*
     * while a file is being written or does not compile, a new generation
     * would load it: the changes wait (still pending) for it
     */
    return reload && !broken;
}


static void *
gl_house_thread(void *arg)
{
    int               reload;
    double            interval;
    lua_State        *L;
    struct timespec   ts;

    (void) arg;

    gl_log_set_worker(-1);

    /* a scratch state, to test-compile changed files */
    L = luaL_newstate();

    pthread_mutex_lock(&gl_house_lock);

    while (!gl_house_stopping) {
        interval = gl_house_interval;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t) interval;
        ts.tv_nsec += (long) ((interval - (time_t) interval) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }

        pthread_cond_timedwait(&gl_house_cond, &gl_house_lock, &ts);

        if (gl_house_stopping) {
            break;
        }

        pthread_mutex_unlock(&gl_house_lock);

        reload = (L != NULL) ? gl_house_scan(L) : 0;

        if (reload) {
            gl_house_reload();
        }

        /* expired shared-dict entries go in the background, a bounded
           number per turn */
        clock_gettime(CLOCK_REALTIME, &ts);
        (void) gl_shdict_expire_all(ts.tv_sec + ts.tv_nsec / 1e9, 10000);

        pthread_mutex_lock(&gl_house_lock);
    }

    pthread_mutex_unlock(&gl_house_lock);

    if (L != NULL) {
        lua_close(L);
    }

    return NULL;
}


int
gl_house_start(gl_conf_t *conf, void (*reload)(void))
{
    int       err;
    sigset_t  set, old;

    gl_house_reload = reload;
    gl_house_set_conf(conf);

    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    err = pthread_create(&gl_house_tid, NULL, gl_house_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        gl_log_error(GL_LOG_EMERG, err, "cannot start the housekeeping "
                     "thread");
        return GL_ERROR;
    }

    gl_house_running = 1;

    return GL_OK;
}


void
gl_house_set_conf(gl_conf_t *conf)
{
    pthread_mutex_lock(&gl_house_lock);
    gl_house_interval = conf->housekeeping_interval;
    pthread_mutex_unlock(&gl_house_lock);
}


void
gl_house_stop(void)
{
    size_t  i;

    if (gl_house_running) {
        pthread_mutex_lock(&gl_house_lock);
        gl_house_stopping = 1;
        pthread_cond_signal(&gl_house_cond);
        pthread_mutex_unlock(&gl_house_lock);

        pthread_join(gl_house_tid, NULL);
        gl_house_running = 0;
    }

    for (i = 0; i < gl_house_nfiles; i++) {
        free(gl_house_files[i].path);
        free(gl_house_files[i].text);
        free(gl_house_files[i].next_text);
    }

    free(gl_house_files);
    gl_house_files = NULL;
    gl_house_nfiles = 0;
    gl_house_cap = 0;
}
