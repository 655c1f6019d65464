/*
 * The housekeeping thread: every housekeeping_interval it looks at the
 * files behind the loaded Lua code (scripts and require()d modules), and
 * when some changed, and compile, it asks every worker to move to a new
 * generation of its Lua state.  It also expires shared-dict entries.
 */
#ifndef GL_HOUSE_H
#define GL_HOUSE_H

#include "gl_core.h"

/* starts the thread; reload() runs in it when changed files compile
   (it asks every worker for a new generation).  GL_ERROR (logged) if it
   cannot */
int gl_house_start(gl_conf_t *conf, void (*reload)(void));

/* stops and joins it, and forgets the watched files */
void gl_house_stop(void);

/* a new config (SIGHUP): its interval applies from the next turn */
void gl_house_set_conf(gl_conf_t *conf);

/* a Lua file was loaded from text: watch it (any thread; cheap when it
   is known already) */
void gl_house_watch(const char *path, const char *text, size_t len);

/* the vetted text of a watched file (malloc()ed copy), or NULL */
char *gl_house_text(const char *path, size_t *len);

#endif /* GL_HOUSE_H */
