/*
 * The config file: nginx-like syntax ("directive arg ...;", # comments,
 * quoted strings, *_by_lua_block { ... }).  A gl_conf_t is built once by
 * gl_conf_load() and then only read.  Whoever may read it holds a
 * reference (gl_conf_ref/unref: the main thread for the current config,
 * each worker for its own, each request and each generation of Lua code
 * for the one it started with); the last one frees it with everything it
 * holds: the strings its directives set and every module's conf (they
 * come from the config's memory, gl_conf_alloc()).
 *
 * Directives are tables of gl_command_t, as nginx's ngx_command_t: the
 * core's in gl_conf.c, a module's in its gl_module_t (gl_module.h).  A
 * command names a set function: one of the slots below, which write a
 * value at an offset into the core config or into the module's own conf,
 * or a function of its own.
 */
#ifndef GL_CONF_H
#define GL_CONF_H

#include "gl_core.h"

#include <stdatomic.h>

#define GL_CONF_MAX_LISTEN  16
#define GL_CONF_MAX_ENV     64
#define GL_CONF_MAX_ARGS    32          /* the name and 31 arguments
                                           (log_format's strings) */
#define GL_CONF_MAX_ACCESS  64          /* allow and deny rules */
#define GL_CONF_MAX_EXT     GL_CONF_MAX_ARGS

typedef struct gl_command_s      gl_command_t;
typedef struct gl_conf_parser_s  gl_conf_parser_t;
typedef struct gl_conf_mem_s     gl_conf_mem_t;
typedef struct gl_conf_cleanup_s gl_conf_cleanup_t;

/* what a command takes, as nginx's NGX_CONF_NOARGS, NGX_CONF_TAKE1 ... */
#define GL_CONF_NOARGS      0x0001
#define GL_CONF_TAKE1       0x0002
#define GL_CONF_TAKE2       0x0004
#define GL_CONF_TAKE3       0x0008
#define GL_CONF_TAKE4       0x0010
#define GL_CONF_TAKE5       0x0020
#define GL_CONF_TAKE6       0x0040
#define GL_CONF_TAKE7       0x0080
#define GL_CONF_TAKE12      (GL_CONF_TAKE1 | GL_CONF_TAKE2)
#define GL_CONF_TAKE123     (GL_CONF_TAKE12 | GL_CONF_TAKE3)
#define GL_CONF_TAKE1234    (GL_CONF_TAKE123 | GL_CONF_TAKE4)
#define GL_CONF_1MORE       0x0100      /* one or more */
#define GL_CONF_FLAG        0x0200      /* one: "on" or "off" */
/* a Lua block: "name { ... }" with no ";", the Lua text is args[1] */
#define GL_CONF_BLOCK       0x0400

/* the struct a command writes (its set gets a pointer to it) */
#define GL_CONF_CORE        0           /* the gl_conf_t */
#define GL_CONF_MODULE      1           /* its module's conf */

/*
 * Sets a directive: cp->args[0] is its name, cp->args[1 .. nargs - 1] its
 * arguments (their number is checked already), conf the struct it writes.
 * On error it calls gl_conf_error() and returns GL_ERROR.
 */
typedef int (*gl_conf_set_pt)(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);

struct gl_command_s {
    const char         *name;
    unsigned            type;           /* GL_CONF_TAKE1 ... */
    gl_conf_set_pt      set;
    int                 conf;           /* GL_CONF_CORE or GL_CONF_MODULE */
    size_t              offset;         /* of the field in that struct */
    const void         *post;           /* for set: bounds, ... */
};

#define gl_null_command     { NULL, 0, NULL, 0, 0, NULL }

/*
 * "Not given": gl_conf_load() writes these into the fields of the flag,
 * number, size and time slots before it reads the file (string and path
 * fields start NULL), so that a slot can say "is duplicate" and init_conf
 * can set the defaults of what was not given.
 */
#define GL_CONF_UNSET       -1          /* int and double fields */
#define GL_CONF_UNSET_SIZE  ((size_t) -1)

#define gl_conf_init_value(v, def)                                           \
    do { if ((v) == GL_CONF_UNSET) { (v) = (def); } } while (0)

#define gl_conf_init_size(v, def)                                            \
    do { if ((v) == GL_CONF_UNSET_SIZE) { (v) = (def); } } while (0)

/*
 * The post of the number, size and time slots: the values allowed.  Out
 * of them the message is "\"NAME\" ERR", or without err the slot's own
 * ("invalid number \"VALUE\" in \"NAME\"").
 */
typedef struct {
    double              min;
    double              max;            /* 0: no upper bound */
    const char         *err;            /* "must be at least 1k" */
} gl_conf_bounds_t;

/* while a file is read: what a set function sees */
struct gl_conf_parser_s {
    gl_conf_t          *conf;           /* the config being built */
    const char         *file;           /* as given, for messages */
    int                 line;           /* the directive's first line */
    char              **args;           /* args[0] is the name */
    int                 nargs;          /* with the name */
    int                 block_line;     /* where a Lua block's "{" was */

    /* the tokenizer's */
    const char         *p;
    const char         *end;
    char               *err;
    size_t              err_size;
};

typedef struct {
    char               *text;         /* as written, for messages */
    char               *path;         /* unix socket path, or NULL for TCP */
    char               *host;         /* TCP host, NULL for any */
    int                 port;
    int                 mode;         /* unix socket mode, -1 if not given */
    char               *owner;        /* owner=, group=: NULL if not given */
    char               *group;
    uid_t               uid;          /* the socket file's owner and group */
    gid_t               gid;          /* (init_conf), -1: left as is */
} gl_listen_conf_t;

/* an allow or deny rule, for the peers of TCP listens */
typedef struct {
    int                 family;       /* AF_INET, AF_INET6; 0: all */
    int                 deny;
    unsigned char       addr[16];     /* network byte order, masked */
    unsigned char       mask[16];
} gl_access_rule_t;

/* a *_by_lua_file or *_by_lua_block handler */
typedef struct {
    char               *file;         /* *_by_lua_file: absolute path */
    char               *code;         /* *_by_lua_block: the Lua text */
    size_t              code_len;
    char               *chunkname;    /* "=content_by_lua(golapis.conf:12)" */
} gl_lua_handler_t;

struct gl_conf_s {
    atomic_int          refs;
    unsigned            serial;          /* 1, 2...: one per load */
    gl_module_t       **modules;         /* NULL-terminated */
    int                 nmodules;
    void              **module_confs;    /* by module index; NULL: none */
    gl_conf_mem_t      *mem;             /* what gl_conf_alloc() gave */
    gl_conf_cleanup_t  *cleanups;        /* gl_conf_cleanup_add() */
    char               *file;            /* absolute */
    char               *dir;             /* where relative paths start */

    gl_listen_conf_t    listen[GL_CONF_MAX_LISTEN];
    int                 nlisten;

    /* privileges and exposure (docs/security.md) */
    char               *user;             /* "user": NULL when not given */
    char               *group;            /* NULL: the user's own group */
    const char         *run_user;         /* who to become when root
                                             (init_conf): user or nobody;
                                             NULL when not root */
    uid_t               uid;              /* run_user's, -1 without */
    gid_t               gid;
    gl_access_rule_t    access[GL_CONF_MAX_ACCESS];  /* allow, deny */
    int                 naccess;
    char               *script_ext[GL_CONF_MAX_EXT];  /* ".lua" */
    int                 nscript_ext;

    /* env NAME[=VALUE]: the environment scripts see (with TZ) */
    char               *env[GL_CONF_MAX_ENV];
    int                 nenv;

    int                 workers;          /* 0 (auto) until start-up
                                             sets the number */
    int                 worker_connections;
    double              shutdown_timeout;   /* seconds */
    double              housekeeping_interval;

    char               *document_root;      /* NULL only with a
                                               content_by_lua handler */
    char               *error_log;
    int                 log_level;
    char               *pid;

    char               *lua_package_path;
    char               *lua_package_cpath;
    int                 code_cache;
    gl_lua_handler_t    handlers[GL_PHASE_MAX];
    char               *luafcgid_handler;  /* "main" */

    size_t              params_max_size;
    size_t              client_max_body_size;
    size_t              client_body_buffer_size;
    char               *client_body_temp_path;
    char               *default_type;

    /* lua-nginx-module's request directives */
    int                 need_request_body;      /* lua_need_request_body */
    int                 transform_underscores;  /* lua_transform_
                                                   underscores_in_response_
                                                   headers */
    int                 check_client_abort;     /* lua_check_client_abort */
    int                 use_default_type;       /* lua_use_default_type */
    int                 malloc_trim;            /* lua_malloc_trim: every N
                                                   requests; 0: never */
    int                 thread_cache_max;       /* lua_thread_cache_max_
                                                   entries */

    /* lua_socket_*: read and checked now, for the cosockets */
    double              socket_connect_timeout;
    double              socket_send_timeout;
    double              socket_read_timeout;
    double              socket_keepalive_timeout;
    size_t              socket_send_lowat;
    size_t              socket_buffer_size;
    int                 socket_pool_size;
    int                 socket_log_errors;

    /*
     * lua-nginx-module's directives that change nothing behind FastCGI
     * (docs/configuration.md says why): accepted and checked, so that the
     * lua_* lines of an OpenResty config start golapis
     */
    int                 noop_load_resty_core;
    int                 noop_http10_buffering;
    int                 noop_rewrite_no_postpone;
    int                 noop_access_no_postpone;
    int                 noop_sa_restart;

    /* the FastCGI connections (docs/limits.md) */
    double              client_timeout;     /* a record, params or body
                                               stalled this long: close */
    double              keepalive_timeout;  /* idle this long: close */
};

/*
 * Reads the config file with the directives of the core and of modules
 * (NULL-terminated), gives each module its index and its conf (zeroed,
 * conf_size bytes), and runs every init_conf (the core's first).  On
 * error returns NULL, writes "file:line: message" (or "file: message")
 * into err, and frees what it built.  The caller frees the config with
 * gl_conf_free().
 */
gl_conf_t *gl_conf_load(const char *path, gl_module_t **modules, char *err,
    size_t err_size);
/* frees conf and everything gl_conf_alloc() gave for it; NULL is fine */
void gl_conf_free(gl_conf_t *conf);

/* a reference more (gl_conf_load's caller has the first); the last
   gl_conf_unref() frees conf, in any thread.  NULL is fine */
gl_conf_t *gl_conf_ref(gl_conf_t *conf);
void gl_conf_unref(gl_conf_t *conf);

/*
 * The conf of module m in conf (what its conf_size asked for), or NULL if
 * m has none or is not one of conf's modules.
 */
void *gl_conf_module(gl_conf_t *conf, gl_module_t *m);

/*
 * Runs every module's init_main in the main thread, in order, stopping at
 * the first that returns GL_ERROR: returns that module (it logged why),
 * or NULL when all took the config.
 */
gl_module_t *gl_conf_init_main(gl_conf_t *conf);

/*
 * Memory that lives as long as conf: zeroed; NULL when out of memory.
 * gl_conf_free() frees it.
 */
void *gl_conf_alloc(gl_conf_t *conf, size_t size);
char *gl_conf_strdup(gl_conf_t *conf, const char *s);
/* a path relative to the config file's directory, made absolute */
char *gl_conf_path(gl_conf_t *conf, const char *path);

/*
 * What must go with conf besides its memory (a log file a module opened
 * for it), as nginx's pool cleanups: handler(data) runs when conf is
 * freed, in the thread of its last gl_conf_unref(), the last added
 * first.  GL_ERROR on no memory (handler will not run then).
 */
int gl_conf_cleanup_add(gl_conf_t *conf, void (*handler)(void *data),
    void *data);

/*
 * Writes "file:line: message" for the directive being set; returns
 * GL_ERROR, for "return gl_conf_error(cp, ...);".
 */
int gl_conf_error(gl_conf_parser_t *cp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * An init_conf's message with values in it: formatted into a buffer of
 * the calling thread, good until its next call.
 */
const char *gl_conf_errf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * The slots, as nginx's ngx_conf_set_*_slot: each writes args[1] at
 * cmd->offset, and says "\"NAME\" directive is duplicate" if the field
 * was set already.
 *   flag:  int, "on" 1 or "off" 0
 *   str:   char *, a copy
 *   path:  char *, relative to the config file's directory
 *   num:   int, post: gl_conf_bounds_t (without: 0 to INT_MAX)
 *   size:  size_t, "10k", "1m", "1g"; post: gl_conf_bounds_t
 *   time:  double seconds, "500ms", "30s", "5m", "1h"; post: bounds
 */
int gl_conf_set_flag_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);
int gl_conf_set_str_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);
int gl_conf_set_path_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);
int gl_conf_set_num_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);
int gl_conf_set_size_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);
int gl_conf_set_time_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf);

/* the directive's prefix for a phase: "content_by_lua" */
const char *gl_conf_phase_directive(int phase);

/* "10k" -> 10240; returns -1 on a bad value */
ssize_t gl_conf_parse_size(const char *s);
/* "500ms" -> 0.5, "30s", "5m", "1h", "30" -> seconds; -1 on a bad value */
double gl_conf_parse_time(const char *s);

#endif /* GL_CONF_H */
