/*
 * The housekeeping thread.
 *
 * Watched files are kept with the stat (mtime, size, inode) they had when
 * they were loaded.  A file whose stat differs is "changing"; it is taken
 * as changed only when the next turn finds the same new stat, so a file
 * still being written is never loaded half-written.  Changed files are
 * test-compiled first: if one does not compile, its error is logged with
 * file:line and nothing is reloaded (a new generation would load it), until
 * it is fixed.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_house.h"
#include "gl_log.h"
#include "gl_shdict.h"

#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    dev_t            dev;
    ino_t            ino;
    off_t            size;
    struct timespec  mtime;
    int              exists;
} gl_house_stat_t;

typedef struct {
    char             *path;
    char             *text;       /* the vetted content, for new loads */
    size_t            len;
    char             *next_text;  /* a changed content, once it compiles */
    size_t            next_len;
    gl_house_stat_t   loaded;     /* as loaded (or last reloaded) */
    gl_house_stat_t   seen;       /* a new stat seen once, to confirm */
    gl_house_stat_t   bad;        /* a version that did not compile */
    unsigned          pending:1;
    unsigned          is_bad:1;
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
gl_house_stat(const char *path, gl_house_stat_t *hs)
{
    struct stat  st;

    memset(hs, 0, sizeof(*hs));

    if (stat(path, &st) == -1) {
        return;
    }

    hs->exists = 1;
    hs->dev = st.st_dev;
    hs->ino = st.st_ino;
    hs->size = st.st_size;
    hs->mtime = st.st_mtim;
}


static int
gl_house_same(const gl_house_stat_t *a, const gl_house_stat_t *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino
           && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec;
}


void
gl_house_watch(const char *path, const char *text, size_t len)
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

    gl_house_stat(path, &f->loaded);
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


/* reads path whole; NULL if it cannot, or if it changed from `expect`
   while we read */
static char *
gl_house_read(const char *path, const gl_house_stat_t *expect, size_t *len)
{
    FILE             *f;
    char             *buf;
    long              size;
    gl_house_stat_t   after;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }

    buf = NULL;

    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0
        && fseek(f, 0, SEEK_SET) == 0
        && (buf = malloc(size + 1)) != NULL
        && fread(buf, 1, size, f) == (size_t) size)
    {
        *len = size;
    } else {
        free(buf);
        buf = NULL;
    }

    fclose(f);

    gl_house_stat(path, &after);

    if (buf != NULL && !gl_house_same(&after, expect)) {
        free(buf);
        buf = NULL;
    }

    return buf;
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
            size_t   len;
            char    *text;

            text = gl_house_read(f->path, &now, &len);

            if (text == NULL) {
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

                if (f->text == NULL) {
                    /* gone: the next load looks at the disk again */
                    f->text = strdup("");
                }
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
