/*
 * The config file: nginx-like syntax ("directive arg ...;", # comments,
 * quoted strings).  A gl_conf_t is built once by gl_conf_load() and then
 * only read; the main thread owns it and frees it at exit.
 */
#ifndef GL_CONF_H
#define GL_CONF_H

#include "gl_core.h"

#define GL_CONF_MAX_LISTEN  16

typedef struct {
    char         *text;         /* as written, for messages */
    char         *path;         /* unix socket path, or NULL for TCP */
    char         *host;         /* TCP host, NULL for any */
    int           port;
    int           mode;         /* unix socket mode, -1 if not given */
} gl_listen_conf_t;

/* a *_by_lua_file or *_by_lua_block handler */
typedef struct {
    char         *file;         /* *_by_lua_file: absolute path */
    char         *code;         /* *_by_lua_block: the Lua text */
    size_t        code_len;
    char         *chunkname;    /* "=content_by_lua(golapis.conf:12)" */
} gl_lua_handler_t;

/* lua_shared_dict NAME SIZE */
typedef struct {
    char         *name;
    size_t        size;
} gl_conf_dict_t;

#define GL_CONF_MAX_DICTS  64

struct gl_conf_s {
    gl_module_t       **modules;         /* NULL-terminated */
    char               *file;            /* absolute */
    char               *dir;             /* where relative paths start */

    gl_listen_conf_t    listen[GL_CONF_MAX_LISTEN];
    int                 nlisten;

    int                 workers;          /* 0 (auto) until start-up
                                             sets the number */
    int                 worker_connections;
    double              shutdown_timeout;   /* seconds */
    double              housekeeping_interval;

    char               *document_root;      /* NULL: the DOCUMENT_ROOT param */
    char               *error_log;
    int                 log_level;
    char               *pid;

    char               *lua_package_path;
    char               *lua_package_cpath;
    int                 code_cache;
    gl_lua_handler_t    handlers[GL_PHASE_MAX];
    char               *luafcgid_handler;  /* "main" */

    gl_conf_dict_t      dicts[GL_CONF_MAX_DICTS];
    int                 ndicts;
    char               *golapis_dict;      /* golapis.shared's: "golapis" */
    size_t              golapis_dict_size; /* 1m */

    size_t              params_max_size;
    size_t              client_max_body_size;
    size_t              client_body_buffer_size;
    char               *client_body_temp_path;
    char               *default_type;

    int                 regex_cache_max_entries;
    int                 regex_match_limit;     /* 0: PCRE2's default */
};

/*
 * Reads and checks the config file.  On error returns NULL and writes
 * "file:line: message" (or "file: message") into err.
 */
gl_conf_t *gl_conf_load(const char *path, gl_module_t **modules, char *err,
    size_t err_size);
void gl_conf_free(gl_conf_t *conf);

/* the directive's prefix for a phase: "content_by_lua" */
const char *gl_conf_phase_directive(int phase);

/* "10k" -> 10240; returns -1 on a bad value */
ssize_t gl_conf_parse_size(const char *s);
/* "500ms" -> 0.5, "30s", "5m", "1h", "30" -> seconds; -1 on a bad value */
double gl_conf_parse_time(const char *s);

#endif /* GL_CONF_H */
