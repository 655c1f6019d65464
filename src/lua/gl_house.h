/*
 * The housekeeping thread: every housekeeping_interval it looks at the
 * files behind the loaded Lua code (scripts and require()d modules), and
 * when some changed, and compile, it asks every worker to move to a new
 * generation of its Lua state.  It also expires shared-dict entries.
 */
#ifndef GL_HOUSE_H
#define GL_HOUSE_H

#include "gl_core.h"

#include <sys/types.h>
#include <time.h>

/*
 * The largest Lua file golapis reads (a script, a *_by_lua_file, a
 * module): a bigger one is refused with "too large", so that a stray
 * file of gigabytes costs neither the memory nor the time.
 */
#define GL_HOUSE_MAX_FILE  (64 * 1024 * 1024)

/* what a file's version is known by; err is stat()'s errno when !exists */
typedef struct {
    dev_t            dev;
    ino_t            ino;
    off_t            size;
    struct timespec  mtime;
    int              exists;
    int              err;
} gl_house_stat_t;

/* starts the thread; reload() runs in it when changed files compile
   (it asks every worker for a new generation).  GL_ERROR (logged) if it
   cannot */
int gl_house_start(gl_conf_t *conf, void (*reload)(void));

/* stops and joins it, and forgets the watched files */
void gl_house_stop(void);

/* a new config (SIGHUP): its interval applies from the next turn */
void gl_house_set_conf(gl_conf_t *conf);

/* a Lua file was loaded from text, read when the file had the stat st
   (from gl_house_read_file()): watch it (any thread; cheap when it is
   known already).  young: it was modified within the last interval, and
   its text is not vetted until a turn finds it unchanged */
void gl_house_watch(const char *path, const char *text, size_t len,
    const gl_house_stat_t *st, int young);

/* the vetted text of a watched file (malloc()ed copy), or NULL when it
   is not watched, not vetted yet (young), or its last version could not
   be loaded (gone, a directory...): then the disk tells */
char *gl_house_text(const char *path, size_t *len);

/*
 * Reads a Lua file whole, without blocking (a FIFO is refused, not
 * opened for good) and within GL_HOUSE_MAX_FILE.  On GL_OK, *text is
 * malloc()ed, NUL-terminated, *len long, and *st is the file's stat
 * while it was read.  Else *text is NULL and err holds the reason:
 * GL_DECLINED: it is not there (ENOENT, ENOTDIR); GL_AGAIN: it changed
 * while it was read (try again later); GL_ERROR: it cannot be loaded as
 * it is ("is a directory", "is not a regular file", "Permission denied",
 * "too large (N bytes, at most M)", a read error).  Logs nothing.
 */
int gl_house_read_file(const char *path, char **text, size_t *len,
    gl_house_stat_t *st, char *err, size_t err_size);

/* 1 if a file with this stat was modified less than one
   housekeeping_interval ago (it may be being written still), else 0 */
int gl_house_young(const gl_house_stat_t *st);

#endif /* GL_HOUSE_H */
