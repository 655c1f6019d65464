/*
 * The config file parser.  A tokenizer turns the text into words, and each
 * statement (words up to ';') is handed to its directive's handler.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define GL_CONF_MAX_ARGS  8
#define GL_CONF_MAX_BLOCK (1024 * 1024)

typedef struct {
    const char   *file;
    const char   *p;
    const char   *end;
    int           line;
    int           block_line;   /* where the last Lua block's "{" was */
    char         *err;
    size_t        err_size;
} gl_conf_parser_t;

typedef int (*gl_conf_handler_pt)(gl_conf_t *conf, gl_conf_parser_t *cp,
    char **args, int nargs);

typedef struct {
    const char           *name;
    int                   min_args;
    int                   max_args;
    int                   once;
    gl_conf_handler_pt    handler;
} gl_conf_directive_t;


static int
gl_conf_ends_with(const char *s, const char *suffix)
{
    size_t  n, m;

    n = strlen(s);
    m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}


static int
gl_conf_error(gl_conf_parser_t *cp, const char *fmt, ...)
{
    int      n;
    va_list  args;

    n = snprintf(cp->err, cp->err_size, "%s:%d: ", cp->file, cp->line);
    if (n < 0 || (size_t) n >= cp->err_size) {
        return GL_ERROR;
    }

    va_start(args, fmt);
    vsnprintf(cp->err + n, cp->err_size - n, fmt, args);
    va_end(args);

    return GL_ERROR;
}


ssize_t
gl_conf_parse_size(const char *s)
{
    char               *end;
    unsigned long long  n, mul;

    if (!isdigit((unsigned char) s[0])) {
        return -1;
    }

    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno) {
        return -1;
    }

    switch (*end) {
    case '\0':
        mul = 1;
        break;
    case 'k': case 'K':
        mul = 1024;
        end++;
        break;
    case 'm': case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'g': case 'G':
        mul = 1024 * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }

    if (*end != '\0' || n > (unsigned long long) SSIZE_MAX / mul) {
        return -1;
    }

    return (ssize_t) (n * mul);
}


double
gl_conf_parse_time(const char *s)
{
    char    *end;
    double   n;

    if (!isdigit((unsigned char) s[0])) {
        return -1;
    }

    errno = 0;
    n = strtod(s, &end);
    if (errno || n > 1e9) {
        return -1;
    }

    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0) {
        return n;
    }

    if (strcmp(end, "ms") == 0) {
        return n / 1000;
    }

    if (strcmp(end, "m") == 0) {
        return n * 60;
    }

    if (strcmp(end, "h") == 0) {
        return n * 3600;
    }

    return -1;
}


/* a path relative to the config file's directory; caller frees */
static char *
gl_conf_path(gl_conf_t *conf, const char *path)
{
    char    *p;
    size_t   len;

    if (path[0] == '/') {
        return strdup(path);
    }

    len = strlen(conf->dir) + 1 + strlen(path) + 1;
    p = malloc(len);
    if (p != NULL) {
        snprintf(p, len, "%s/%s", conf->dir, path);
    }

    return p;
}


static int
gl_conf_set_str(gl_conf_parser_t *cp, char **dst, const char *value)
{
    free(*dst);
    *dst = strdup(value);
    if (*dst == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


static int
gl_conf_set_path(gl_conf_t *conf, gl_conf_parser_t *cp, char **dst,
    const char *value)
{
    free(*dst);
    *dst = gl_conf_path(conf, value);
    if (*dst == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


static int
gl_conf_flag(gl_conf_parser_t *cp, char **args, int *dst)
{
    if (strcmp(args[1], "on") == 0) {
        *dst = 1;
    } else if (strcmp(args[1], "off") == 0) {
        *dst = 0;
    } else {
        return gl_conf_error(cp, "invalid value \"%s\" in \"%s\", "
                             "it must be \"on\" or \"off\"", args[1], args[0]);
    }

    return GL_OK;
}


static int
gl_conf_listen(gl_conf_t *conf, gl_conf_parser_t *cp, char **args, int nargs)
{
    int                i;
    long               port;
    char              *addr, *colon, *end;
    gl_listen_conf_t  *ls;

    if (conf->nlisten == GL_CONF_MAX_LISTEN) {
        return gl_conf_error(cp, "too many \"listen\" directives (at most %d)",
                             GL_CONF_MAX_LISTEN);
    }

    ls = &conf->listen[conf->nlisten];
    memset(ls, 0, sizeof(*ls));
    ls->mode = -1;
    addr = args[1];

    ls->text = strdup(addr);
    if (ls->text == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    conf->nlisten++;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] == '\0') {
            return gl_conf_error(cp, "no path in \"listen %s\"", addr);
        }

        ls->path = gl_conf_path(conf, addr + 5);
        if (ls->path == NULL) {
            return gl_conf_error(cp, "out of memory");
        }

        if (strlen(ls->path) >= 108) {
            return gl_conf_error(cp, "unix socket path \"%s\" is too long",
                                 ls->path);
        }

    } else {
        colon = strrchr(addr, ':');

        if (colon != NULL) {
            ls->host = strndup(addr, colon - addr);
            if (ls->host == NULL) {
                return gl_conf_error(cp, "out of memory");
            }

            if (ls->host[0] == '[') {
                /* [::1]:9000 */
                size_t  n = strlen(ls->host);

                if (n < 3 || ls->host[n - 1] != ']') {
                    return gl_conf_error(cp, "invalid address in "
                                         "\"listen %s\"", addr);
                }

                memmove(ls->host, ls->host + 1, n - 2);
                ls->host[n - 2] = '\0';
            }

            addr = colon + 1;
        }

        errno = 0;
        port = strtol(addr, &end, 10);
        if (addr[0] == '\0' || *end != '\0' || errno || port < 1
            || port > 65535)
        {
            return gl_conf_error(cp, "invalid port in \"listen %s\"",
                                 args[1]);
        }

        ls->port = (int) port;
    }

    for (i = 2; i < nargs; i++) {
        if (strncmp(args[i], "mode=", 5) == 0 && ls->path != NULL) {
            errno = 0;
            port = strtol(args[i] + 5, &end, 8);
            if (args[i][5] == '\0' || *end != '\0' || port < 0
                || port > 0777)
            {
                return gl_conf_error(cp, "invalid \"%s\"", args[i]);
            }

            ls->mode = (int) port;
            continue;
        }

        return gl_conf_error(cp, "invalid parameter \"%s\"", args[i]);
    }

    return GL_OK;
}


static int
gl_conf_workers(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    long   n;
    char  *end;

    (void) nargs;

    if (strcmp(args[1], "auto") == 0) {
        conf->workers = 0;
        return GL_OK;
    }

    errno = 0;
    n = strtol(args[1], &end, 10);
    if (args[1][0] == '\0' || *end != '\0' || errno || n < 1 || n > 1024) {
        return gl_conf_error(cp, "invalid value \"%s\" in \"workers\", it must "
                             "be \"auto\" or a number from 1 to 1024",
                             args[1]);
    }

    conf->workers = (int) n;

    return GL_OK;
}


static int
gl_conf_worker_connections(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    long   n;
    char  *end;

    (void) nargs;

    errno = 0;
    n = strtol(args[1], &end, 10);
    if (args[1][0] == '\0' || *end != '\0' || errno || n < 1 || n > 1000000) {
        return gl_conf_error(cp, "invalid value \"%s\" in "
                             "\"worker_connections\"", args[1]);
    }

    conf->worker_connections = (int) n;

    return GL_OK;
}


static int
gl_conf_time(gl_conf_t *conf, gl_conf_parser_t *cp, char **args, int nargs)
{
    double  t;

    (void) nargs;

    t = gl_conf_parse_time(args[1]);
    if (t < 0) {
        return gl_conf_error(cp, "invalid time \"%s\" in \"%s\"", args[1],
                             args[0]);
    }

    if (strcmp(args[0], "housekeeping_interval") == 0) {
        if (t < 0.01) {
            return gl_conf_error(cp, "\"%s\" must be at least 10ms",
                                 args[0]);
        }
        conf->housekeeping_interval = t;

    } else {
        conf->shutdown_timeout = t;
    }

    return GL_OK;
}


static int
gl_conf_document_root(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    (void) nargs;

    return gl_conf_set_path(conf, cp, &conf->document_root, args[1]);
}


static int
gl_conf_error_log(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    int  rc;

    if (strcmp(args[1], "stderr") == 0) {
        rc = gl_conf_set_str(cp, &conf->error_log, "stderr");
    } else {
        rc = gl_conf_set_path(conf, cp, &conf->error_log, args[1]);
    }

    if (rc != GL_OK) {
        return rc;
    }

    if (nargs == 3) {
        conf->log_level = gl_log_level_by_name(args[2]);
        if (conf->log_level == -1) {
            return gl_conf_error(cp, "invalid log level \"%s\"", args[2]);
        }
    }

    return GL_OK;
}


static int
gl_conf_pid(gl_conf_t *conf, gl_conf_parser_t *cp, char **args, int nargs)
{
    (void) nargs;

    return gl_conf_set_path(conf, cp, &conf->pid, args[1]);
}


static int
gl_conf_package_path(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    (void) nargs;

    return gl_conf_set_str(cp, strcmp(args[0], "lua_package_path") == 0
                               ? &conf->lua_package_path
                               : &conf->lua_package_cpath, args[1]);
}


static int
gl_conf_code_cache(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    (void) nargs;

    return gl_conf_flag(cp, args, &conf->code_cache);
}


static const char  *gl_conf_phase_names[GL_PHASE_MAX] = {
    "init_by_lua", "init_worker_by_lua", "rewrite_by_lua", "access_by_lua",
    "content_by_lua", "header_filter_by_lua", "body_filter_by_lua",
    "log_by_lua", "ngx.timer"
};


const char *
gl_conf_phase_directive(int phase)
{
    return gl_conf_phase_names[phase];
}


/* *_by_lua_file FILE and *_by_lua_block { ... } */
static int
gl_conf_lua_handler(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    int                i;
    size_t             len;
    const char        *base;
    gl_lua_handler_t  *h;
    char               name[256];

    (void) nargs;

    for (i = 0; i < GL_PHASE_MAX; i++) {
        len = strlen(gl_conf_phase_names[i]);
        if (strncmp(args[0], gl_conf_phase_names[i], len) == 0
            && args[0][len] == '_')
        {
            break;
        }
    }

    h = &conf->handlers[i];

    if (h->file != NULL || h->code != NULL) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate (a %s handler "
                             "is set already)", args[0],
                             gl_conf_phase_names[i]);
    }

    if (strstr(args[0], "_file") != NULL) {
        if (gl_conf_set_path(conf, cp, &h->file, args[1]) != GL_OK) {
            return GL_ERROR;
        }

        return gl_conf_set_str(cp, &h->chunkname, "");
    }

    h->code_len = strlen(args[1]);
    if (gl_conf_set_str(cp, &h->code, args[1]) != GL_OK) {
        return GL_ERROR;
    }

    base = strrchr(cp->file, '/');
    base = base ? base + 1 : cp->file;
    snprintf(name, sizeof(name), "=%s(%s:%d)", gl_conf_phase_names[i], base,
             cp->block_line);

    return gl_conf_set_str(cp, &h->chunkname, name);
}


static int
gl_conf_size(gl_conf_t *conf, gl_conf_parser_t *cp, char **args, int nargs)
{
    ssize_t  n;

    (void) nargs;

    n = gl_conf_parse_size(args[1]);
    if (n < 0) {
        return gl_conf_error(cp, "invalid size \"%s\" in \"%s\"", args[1],
                             args[0]);
    }

    if (strcmp(args[0], "client_body_buffer_size") == 0) {
        if (n < 1024) {
            return gl_conf_error(cp, "\"%s\" must be at least 1k",
                                 args[0]);
        }

        conf->client_body_buffer_size = n;

    } else if (strcmp(args[0], "fastcgi_params_max_size") == 0) {
        if (n < 1024 || n > 64 * 1024 * 1024) {
            return gl_conf_error(cp, "\"%s\" must be between 1k and 64m",
                                 args[0]);
        }

        conf->params_max_size = n;

    } else {
        conf->client_max_body_size = n;
    }

    return GL_OK;
}


static int
gl_conf_luafcgid_handler(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    const char  *p;

    (void) nargs;

    for (p = args[1]; *p; p++) {
        if (!(isalnum((unsigned char) *p) || *p == '_')
            || isdigit((unsigned char) args[1][0]))
        {
            return gl_conf_error(cp, "invalid Lua name \"%s\" in \"%s\"",
                                 args[1], args[0]);
        }
    }

    return gl_conf_set_str(cp, &conf->luafcgid_handler, args[1]);
}


/*
 * lua_shared_dict NAME SIZE, and golapis_shared_dict NAME SIZE: the dict
 * behind golapis.shared.get/set/incr (by default "golapis", 1m), which is
 * also ngx.shared.NAME
 */
static int
gl_conf_shared_dict(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    int          i;
    ssize_t      size;
    const char  *p;

    (void) nargs;

    for (p = args[1]; *p; p++) {
        if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-')) {
            return gl_conf_error(cp, "invalid dict name \"%s\"", args[1]);
        }
    }

    if (strcmp(args[1], "get") == 0 || strcmp(args[1], "set") == 0
        || strcmp(args[1], "incr") == 0)
    {
        /* ngx.shared (= golapis.shared) has functions of these names */
        return gl_conf_error(cp, "the dict name \"%s\" is reserved",
                             args[1]);
    }

    size = gl_conf_parse_size(args[2]);
    if (size < 8192) {
        return gl_conf_error(cp, "invalid size \"%s\" in \"%s\" (at least "
                             "8k)", args[2], args[0]);
    }

    if (strcmp(args[0], "golapis_shared_dict") == 0) {
        conf->golapis_dict_size = size;
        return gl_conf_set_str(cp, &conf->golapis_dict, args[1]);
    }

    for (i = 0; i < conf->ndicts; i++) {
        if (strcmp(conf->dicts[i].name, args[1]) == 0) {
            return gl_conf_error(cp, "duplicate zone \"%s\"", args[1]);
        }
    }

    if (conf->ndicts == GL_CONF_MAX_DICTS) {
        return gl_conf_error(cp, "too many shared dicts (at most %d)",
                             GL_CONF_MAX_DICTS);
    }

    conf->dicts[conf->ndicts].name = strdup(args[1]);
    if (conf->dicts[conf->ndicts].name == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    conf->dicts[conf->ndicts].size = size;
    conf->ndicts++;

    return GL_OK;
}


static int
gl_conf_default_type(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    (void) nargs;

    return gl_conf_set_str(cp, &conf->default_type, args[1]);
}


static int
gl_conf_number(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    long   n;
    char  *end;

    (void) nargs;

    errno = 0;
    n = strtol(args[1], &end, 10);
    if (args[1][0] == '\0' || *end != '\0' || errno || n < 0
        || n > 1000000000)
    {
        return gl_conf_error(cp, "invalid number \"%s\" in \"%s\"", args[1],
                             args[0]);
    }

    if (strcmp(args[0], "lua_regex_cache_max_entries") == 0) {
        conf->regex_cache_max_entries = (int) n;
    } else {
        conf->regex_match_limit = (int) n;
    }

    return GL_OK;
}


static int
gl_conf_body_temp_path(gl_conf_t *conf, gl_conf_parser_t *cp, char **args,
    int nargs)
{
    (void) nargs;

    return gl_conf_set_path(conf, cp, &conf->client_body_temp_path, args[1]);
}


static gl_conf_directive_t  gl_conf_directives[] = {
    { "listen", 1, 2, 0, gl_conf_listen },
    { "workers", 1, 1, 1, gl_conf_workers },
    { "worker_connections", 1, 1, 1, gl_conf_worker_connections },
    { "worker_shutdown_timeout", 1, 1, 1, gl_conf_time },
    { "housekeeping_interval", 1, 1, 1, gl_conf_time },
    { "document_root", 1, 1, 1, gl_conf_document_root },
    { "error_log", 1, 2, 1, gl_conf_error_log },
    { "pid", 1, 1, 1, gl_conf_pid },
    { "lua_package_path", 1, 1, 1, gl_conf_package_path },
    { "lua_package_cpath", 1, 1, 1, gl_conf_package_path },
    { "lua_code_cache", 1, 1, 1, gl_conf_code_cache },
    { "init_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "init_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "init_worker_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "init_worker_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "rewrite_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "rewrite_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "access_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "access_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "content_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "content_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "header_filter_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "header_filter_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "body_filter_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "body_filter_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "log_by_lua_file", 1, 1, 1, gl_conf_lua_handler },
    { "log_by_lua_block", 1, 1, 1, gl_conf_lua_handler },
    { "fastcgi_params_max_size", 1, 1, 1, gl_conf_size },
    { "client_max_body_size", 1, 1, 1, gl_conf_size },
    { "client_body_buffer_size", 1, 1, 1, gl_conf_size },
    { "client_body_temp_path", 1, 1, 1, gl_conf_body_temp_path },
    { "lua_regex_cache_max_entries", 1, 1, 1, gl_conf_number },
    { "lua_regex_match_limit", 1, 1, 1, gl_conf_number },
    { "default_type", 1, 1, 1, gl_conf_default_type },
    { "luafcgid_handler", 1, 1, 1, gl_conf_luafcgid_handler },
    { "lua_shared_dict", 2, 2, 0, gl_conf_shared_dict },
    { "golapis_shared_dict", 2, 2, 1, gl_conf_shared_dict },
    { NULL, 0, 0, 0, NULL }
};


/*
 * Reads the next word into buf.  Returns 1 for a word, 0 at the end of the
 * file, ';' at a semicolon, or GL_ERROR.  *quoted tells a quoted word.
 */
static int
gl_conf_token(gl_conf_parser_t *cp, char *buf, size_t size, int *quoted)
{
    char    q, c;
    size_t  n;

    *quoted = 0;

    for ( ;; ) {
        while (cp->p < cp->end && isspace((unsigned char) *cp->p)) {
            if (*cp->p == '\n') {
                cp->line++;
            }
            cp->p++;
        }

        if (cp->p == cp->end) {
            return 0;
        }

        if (*cp->p != '#') {
            break;
        }

        while (cp->p < cp->end && *cp->p != '\n') {
            cp->p++;
        }
    }

    c = *cp->p;

    if (c == ';') {
        cp->p++;
        return ';';
    }

    if (c == '{') {
        cp->p++;
        return '{';
    }

    if (c == '}') {
        return gl_conf_error(cp, "unexpected \"}\"");
    }

    n = 0;

    if (c == '"' || c == '\'') {
        q = c;
        cp->p++;
        *quoted = 1;

        for ( ;; ) {
            if (cp->p == cp->end) {
                return gl_conf_error(cp, "unexpected end of file, "
                                     "unterminated string");
            }

            c = *cp->p++;

            if (c == q) {
                break;
            }

            if (c == '\n') {
                cp->line++;
            }

            if (c == '\\' && cp->p < cp->end) {
                c = *cp->p++;
                switch (c) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                default: break;
                }
            }

            if (n + 1 >= size) {
                return gl_conf_error(cp, "too long parameter");
            }

            buf[n++] = c;
        }

        buf[n] = '\0';
        return 1;
    }

    while (cp->p < cp->end) {
        c = *cp->p;

        if (isspace((unsigned char) c) || c == ';' || c == '{' || c == '}') {
            break;
        }

        if (n + 1 >= size) {
            return gl_conf_error(cp, "too long parameter");
        }

        buf[n++] = c;
        cp->p++;
    }

    buf[n] = '\0';

    return 1;
}


/* the level of a long bracket "[==[" at p, or -1 */
static int
gl_conf_long_bracket(const char *p, const char *end)
{
    int  level;

    if (p >= end || *p != '[') {
        return -1;
    }

    for (level = 0, p++; p < end && *p == '='; p++) {
        level++;
    }

    return (p < end && *p == '[') ? level : -1;
}


/* skips a long string or comment whose opening bracket is at cp->p */
static int
gl_conf_skip_long(gl_conf_parser_t *cp, int level)
{
    int          i, line;
    const char  *p;

    line = cp->line;
    cp->p += level + 2;

    for (p = cp->p; p < cp->end; p++) {
        if (*p == '\n') {
            cp->line++;
            continue;
        }

        if (*p != ']') {
            continue;
        }

        for (i = 0; i < level && p + 1 + i < cp->end && p[1 + i] == '='; i++)
        {
            /* void */
        }

        if (i == level && p + 1 + i < cp->end && p[1 + i] == ']') {
            cp->p = p + 2 + level;
            return GL_OK;
        }
    }

    cp->line = line;

    return gl_conf_error(cp, "unexpected end of file in a Lua long string "
                         "or comment");
}


/*
 * Reads the Lua code of a *_by_lua_block: from "{" to its matching "}",
 * knowing Lua's strings, long brackets and comments, which may hold
 * braces of their own.
 */
static int
gl_conf_lua_block(gl_conf_parser_t *cp, char *buf, size_t size)
{
    int          depth, level, line;
    char         q;
    const char  *start;

    while (cp->p < cp->end && isspace((unsigned char) *cp->p)) {
        if (*cp->p == '\n') {
            cp->line++;
        }
        cp->p++;
    }

    if (cp->p < cp->end && *cp->p == ';') {
        return gl_conf_error(cp, "unexpected \";\", \"{\" expected after a "
                             "*_by_lua_block directive");
    }

    if (cp->p == cp->end || *cp->p != '{') {
        return gl_conf_error(cp, "\"{\" expected after a *_by_lua_block "
                             "directive");
    }

    line = cp->line;
    cp->block_line = line;
    start = ++cp->p;
    depth = 1;

    while (cp->p < cp->end) {
        switch (*cp->p) {

        case '\n':
            cp->line++;
            cp->p++;
            break;

        case '{':
            depth++;
            cp->p++;
            break;

        case '}':
            if (--depth == 0) {
                if ((size_t) (cp->p - start) >= size) {
                    return gl_conf_error(cp, "the Lua block is too long");
                }

                memcpy(buf, start, cp->p - start);
                buf[cp->p - start] = '\0';
                cp->p++;
                return GL_OK;
            }
            cp->p++;
            break;

        case '"':
        case '\'':
            q = *cp->p++;

            while (cp->p < cp->end && *cp->p != q) {
                if (*cp->p == '\\' && cp->p + 1 < cp->end) {
                    if (cp->p[1] == '\n') {
                        cp->line++;
                    }
                    cp->p++;

                } else if (*cp->p == '\n') {
                    return gl_conf_error(cp, "unfinished string in a Lua "
                                         "block");
                }
                cp->p++;
            }

            if (cp->p == cp->end) {
                return gl_conf_error(cp, "unfinished string in a Lua block");
            }

            cp->p++;
            break;

        case '[':
            level = gl_conf_long_bracket(cp->p, cp->end);
            if (level >= 0) {
                if (gl_conf_skip_long(cp, level) != GL_OK) {
                    return GL_ERROR;
                }
            } else {
                cp->p++;
            }
            break;

        case '-':
            if (cp->p + 1 < cp->end && cp->p[1] == '-') {
                cp->p += 2;
                level = gl_conf_long_bracket(cp->p, cp->end);

                if (level >= 0) {
                    if (gl_conf_skip_long(cp, level) != GL_OK) {
                        return GL_ERROR;
                    }
                } else {
                    while (cp->p < cp->end && *cp->p != '\n') {
                        cp->p++;
                    }
                }

            } else {
                cp->p++;
            }
            break;

        default:
            cp->p++;
            break;
        }
    }

    cp->line = line;

    return gl_conf_error(cp, "unexpected end of file, the Lua block opened "
                         "here is not closed");
}


static int
gl_conf_parse(gl_conf_t *conf, gl_conf_parser_t *cp)
{
    int                   rc, nargs, quoted, line, end_line, i;
    char                 *args[GL_CONF_MAX_ARGS];
    char                  words[GL_CONF_MAX_ARGS][4096];
    static char           block[GL_CONF_MAX_BLOCK];
    char                  seen[gl_nelems(gl_conf_directives)];
    gl_conf_directive_t  *d;

    memset(seen, 0, sizeof(seen));

    for ( ;; ) {
        nargs = 0;
        line = 0;

        for ( ;; ) {
            if (nargs == GL_CONF_MAX_ARGS) {
                return gl_conf_error(cp, "too many parameters");
            }

            rc = gl_conf_token(cp, words[nargs], sizeof(words[0]), &quoted);

            if (rc == GL_ERROR) {
                return GL_ERROR;
            }

            if (rc == 0) {
                if (nargs) {
                    return gl_conf_error(cp, "unexpected end of file, "
                                         "expecting \";\"");
                }
                return GL_OK;
            }

            if (rc == ';') {
                if (nargs == 0) {
                    return gl_conf_error(cp, "unexpected \";\"");
                }
                break;
            }

            if (rc == '{') {
                /* blocks are for *_by_lua_block only: name the directive */
                if (nargs > 0) {
                    cp->line = line;

                    for (d = gl_conf_directives; d->name; d++) {
                        if (strcmp(d->name, args[0]) == 0) {
                            break;
                        }
                    }

                    if (d->name == NULL) {
                        return gl_conf_error(cp, "unknown directive \"%s\"",
                                             args[0]);
                    }
                }

                return gl_conf_error(cp, "unexpected \"{\"");
            }

            if (nargs == 0) {
                line = cp->line;
            }

            args[nargs] = words[nargs];
            nargs++;

            if (nargs == 1 && !quoted
                && gl_conf_ends_with(args[0], "_by_lua_block"))
            {
                /* no ";" after the block, as in nginx */
                if (gl_conf_lua_block(cp, block, GL_CONF_MAX_BLOCK) != GL_OK)
                {
                    return GL_ERROR;
                }

                args[nargs++] = block;
                break;
            }
        }

        /* messages about the directive name its first line */
        end_line = cp->line;
        cp->line = line;

        for (d = gl_conf_directives; d->name; d++) {
            if (strcmp(d->name, args[0]) == 0) {
                break;
            }
        }

        if (d->name == NULL) {
            return gl_conf_error(cp, "unknown directive \"%s\"", args[0]);
        }

        i = d - gl_conf_directives;

        if (d->once && seen[i]) {
            return gl_conf_error(cp, "\"%s\" directive is duplicate",
                                 args[0]);
        }

        seen[i] = 1;

        if (nargs - 1 < d->min_args || nargs - 1 > d->max_args) {
            return gl_conf_error(cp, "invalid number of arguments in \"%s\" "
                                 "directive", args[0]);
        }

        if (d->handler(conf, cp, args, nargs) != GL_OK) {
            return GL_ERROR;
        }

        cp->line = end_line;
    }
}


static int
gl_conf_check(gl_conf_t *conf, gl_conf_parser_t *cp)
{
    int          i;
    struct stat  st;

    if (conf->nlisten == 0) {
        snprintf(cp->err, cp->err_size, "%s: no \"listen\" directive",
                 cp->file);
        return GL_ERROR;
    }

    if (conf->document_root != NULL
        && (stat(conf->document_root, &st) == -1 || !S_ISDIR(st.st_mode)))
    {
        snprintf(cp->err, cp->err_size, "%s: document_root \"%s\" is not "
                 "a directory", cp->file, conf->document_root);
        return GL_ERROR;
    }

    for (i = 0; i < GL_PHASE_MAX; i++) {
        if (conf->handlers[i].file != NULL
            && access(conf->handlers[i].file, R_OK) == -1)
        {
            snprintf(cp->err, cp->err_size, "%s: %s_file \"%s\": %s",
                     cp->file, gl_conf_phase_names[i], conf->handlers[i].file,
                     strerror(errno));
            return GL_ERROR;
        }
    }

    return GL_OK;
}


gl_conf_t *
gl_conf_load(const char *path, gl_module_t **modules, char *err,
    size_t err_size)
{
    FILE              *f;
    char              *text, *slash, abs[PATH_MAX];
    long               size;
    gl_conf_t         *conf;
    gl_conf_parser_t   cp;

    text = NULL;
    f = NULL;

    conf = calloc(1, sizeof(gl_conf_t));
    if (conf == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }

    conf->modules = modules;
    conf->workers = 0;
    conf->worker_connections = 1024;
    conf->shutdown_timeout = 30;
    conf->housekeeping_interval = 1;
    conf->log_level = GL_LOG_ERR;
    conf->code_cache = 1;
    conf->params_max_size = 64 * 1024;
    conf->client_max_body_size = 1024 * 1024;
    conf->client_body_buffer_size = 16 * 1024;
    conf->regex_cache_max_entries = 1024;

    if (realpath(path, abs) == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        goto failed;
    }

    conf->file = strdup(abs);
    slash = strrchr(abs, '/');
    *(slash == abs ? slash + 1 : slash) = '\0';
    conf->dir = strdup(abs);
    conf->error_log = strdup("stderr");
    conf->default_type = strdup("text/html");
    conf->client_body_temp_path = strdup("/tmp");
    conf->luafcgid_handler = strdup("main");
    conf->golapis_dict = strdup("golapis");
    conf->golapis_dict_size = 1024 * 1024;

    if (conf->file == NULL || conf->dir == NULL || conf->error_log == NULL
        || conf->default_type == NULL || conf->client_body_temp_path == NULL
        || conf->luafcgid_handler == NULL || conf->golapis_dict == NULL)
    {
        snprintf(err, err_size, "out of memory");
        goto failed;
    }

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        goto failed;
    }

    if (fseek(f, 0, SEEK_END) == -1 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) == -1)
    {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        goto failed;
    }

    text = malloc(size + 1);
    if (text == NULL) {
        snprintf(err, err_size, "out of memory");
        goto failed;
    }

    if (fread(text, 1, size, f) != (size_t) size) {
        snprintf(err, err_size, "%s: read error", path);
        goto failed;
    }

    text[size] = '\0';

    cp.file = path;
    cp.p = text;
    cp.end = text + size;
    cp.line = 1;
    cp.err = err;
    cp.err_size = err_size;

    if (gl_conf_parse(conf, &cp) != GL_OK || gl_conf_check(conf, &cp) != GL_OK)
    {
        goto failed;
    }

    fclose(f);
    free(text);

    return conf;

failed:

    if (f != NULL) {
        fclose(f);
    }

    free(text);
    gl_conf_free(conf);

    return NULL;
}


void
gl_conf_free(gl_conf_t *conf)
{
    int  i;

    if (conf == NULL) {
        return;
    }

    for (i = 0; i < conf->nlisten; i++) {
        free(conf->listen[i].text);
        free(conf->listen[i].path);
        free(conf->listen[i].host);
    }

    free(conf->file);
    free(conf->dir);
    free(conf->document_root);
    free(conf->error_log);
    free(conf->pid);
    free(conf->lua_package_path);
    free(conf->lua_package_cpath);
    for (i = 0; i < GL_PHASE_MAX; i++) {
        free(conf->handlers[i].file);
        free(conf->handlers[i].code);
        free(conf->handlers[i].chunkname);
    }

    free(conf->default_type);
    free(conf->client_body_temp_path);
    free(conf->luafcgid_handler);
    free(conf->golapis_dict);

    for (i = 0; i < conf->ndicts; i++) {
        free(conf->dicts[i].name);
    }
    free(conf);
}
