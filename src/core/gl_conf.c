/*
 * The config file parser.  A tokenizer turns the text into words, and each
 * statement (words up to ';', or a Lua block) is handed to the set
 * function of its command: the core's table below, or a module's.
 *
 * Everything a config holds comes from its memory (gl_conf_alloc()), a
 * list of blocks freed at once by gl_conf_free(), so a set function that
 * fails half-way leaks nothing.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_module.h"
#include "gl_syslog.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* the serial of the next config loaded (gl_conf_t.serial) */
static atomic_uint  gl_conf_serial;

#define GL_CONF_MAX_BLOCK  (1024 * 1024)
#define GL_CONF_ERRF_SIZE  1024

struct gl_conf_mem_s {
    gl_conf_mem_t  *next;
    max_align_t     data[];
};

struct gl_conf_cleanup_s {
    gl_conf_cleanup_t  *next;
    void              (*handler)(void *data);
    void               *data;
};


int
gl_conf_cleanup_add(gl_conf_t *conf, void (*handler)(void *data), void *data)
{
    gl_conf_cleanup_t  *c;

    c = gl_conf_alloc(conf, sizeof(gl_conf_cleanup_t));
    if (c == NULL) {
        return GL_ERROR;
    }

    c->handler = handler;
    c->data = data;
    c->next = conf->cleanups;
    conf->cleanups = c;

    return GL_OK;
}


void *
gl_conf_alloc(gl_conf_t *conf, size_t size)
{
    gl_conf_mem_t  *m;

    if (size > SIZE_MAX - sizeof(gl_conf_mem_t)) {
        return NULL;
    }

    m = calloc(1, sizeof(gl_conf_mem_t) + size);
    if (m == NULL) {
        return NULL;
    }

    m->next = conf->mem;
    conf->mem = m;

    return m->data;
}


char *
gl_conf_strdup(gl_conf_t *conf, const char *s)
{
    char    *p;
    size_t   len;

    len = strlen(s) + 1;

    p = gl_conf_alloc(conf, len);
    if (p != NULL) {
        memcpy(p, s, len);
    }

    return p;
}


char *
gl_conf_path(gl_conf_t *conf, const char *path)
{
    char    *p;
    size_t   len;

    if (path[0] == '/') {
        return gl_conf_strdup(conf, path);
    }

    len = strlen(conf->dir) + 1 + strlen(path) + 1;

    p = gl_conf_alloc(conf, len);
    if (p != NULL) {
        snprintf(p, len, "%s/%s", conf->dir, path);
    }

    return p;
}


int
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


const char *
gl_conf_errf(const char *fmt, ...)
{
    va_list                       args;
    static _Thread_local char     buf[GL_CONF_ERRF_SIZE];

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    return buf;
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



static int
gl_conf_duplicate(gl_conf_parser_t *cp)
{
    return gl_conf_error(cp, "\"%s\" directive is duplicate", cp->args[0]);
}


int
gl_conf_set_flag_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int  *field;

    field = (int *) ((char *) conf + cmd->offset);

    if (*field != GL_CONF_UNSET) {
        return gl_conf_duplicate(cp);
    }

    if (strcmp(cp->args[1], "on") == 0) {
        *field = 1;

    } else if (strcmp(cp->args[1], "off") == 0) {
        *field = 0;

    } else {
        return gl_conf_error(cp, "invalid value \"%s\" in \"%s\", "
                             "it must be \"on\" or \"off\"", cp->args[1],
                             cp->args[0]);
    }

    return GL_OK;
}


int
gl_conf_set_str_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    char  **field;

    field = (char **) ((char *) conf + cmd->offset);

    if (*field != NULL) {
        return gl_conf_duplicate(cp);
    }

    *field = gl_conf_strdup(cp->conf, cp->args[1]);
    if (*field == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


int
gl_conf_set_path_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    char  **field;

    field = (char **) ((char *) conf + cmd->offset);

    if (*field != NULL) {
        return gl_conf_duplicate(cp);
    }

    *field = gl_conf_path(cp->conf, cp->args[1]);
    if (*field == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


/* GL_OK if n is within the command's bounds, else the message */
static int
gl_conf_check_bounds(gl_conf_parser_t *cp, const gl_command_t *cmd,
    double n, const char *what)
{
    const gl_conf_bounds_t  *b;

    b = cmd->post;

    if (b == NULL || (n >= b->min && (b->max == 0 || n <= b->max))) {
        return GL_OK;
    }

    if (b->err != NULL) {
        return gl_conf_error(cp, "\"%s\" %s", cp->args[0], b->err);
    }

    return gl_conf_error(cp, "invalid %s \"%s\" in \"%s\"", what, cp->args[1],
                         cp->args[0]);
}


int
gl_conf_set_num_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int   *field;
    long   n;
    char  *end;

    field = (int *) ((char *) conf + cmd->offset);

    if (*field != GL_CONF_UNSET) {
        return gl_conf_duplicate(cp);
    }

    errno = 0;
    n = strtol(cp->args[1], &end, 10);

    if (cp->args[1][0] == '\0' || *end != '\0' || errno || n < 0
        || n > INT_MAX)
    {
        return gl_conf_error(cp, "invalid number \"%s\" in \"%s\"",
                             cp->args[1], cp->args[0]);
    }

    if (gl_conf_check_bounds(cp, cmd, (double) n, "number") != GL_OK) {
        return GL_ERROR;
    }

    *field = (int) n;

    return GL_OK;
}


int
gl_conf_set_size_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    size_t   *field;
    ssize_t   n;

    field = (size_t *) ((char *) conf + cmd->offset);

    if (*field != GL_CONF_UNSET_SIZE) {
        return gl_conf_duplicate(cp);
    }

    n = gl_conf_parse_size(cp->args[1]);
    if (n < 0) {
        return gl_conf_error(cp, "invalid size \"%s\" in \"%s\"", cp->args[1],
                             cp->args[0]);
    }

    if (gl_conf_check_bounds(cp, cmd, (double) n, "size") != GL_OK) {
        return GL_ERROR;
    }

    *field = (size_t) n;

    return GL_OK;
}


int
gl_conf_set_time_slot(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    double  *field, t;

    field = (double *) ((char *) conf + cmd->offset);

    if (*field != GL_CONF_UNSET) {
        return gl_conf_duplicate(cp);
    }

    t = gl_conf_parse_time(cp->args[1]);
    if (t < 0) {
        return gl_conf_error(cp, "invalid time \"%s\" in \"%s\"", cp->args[1],
                             cp->args[0]);
    }

    if (gl_conf_check_bounds(cp, cmd, t, "time") != GL_OK) {
        return GL_ERROR;
    }

    *field = t;

    return GL_OK;
}


/* ---- the core's own directives ---------------------------------------- */

static int
gl_conf_set_listen(gl_conf_parser_t *cp, const gl_command_t *cmd, void *conf)
{
    int                i;
    long               port;
    char              *addr, *colon, *end, **args;
    gl_conf_t         *cf;
    gl_listen_conf_t  *ls;

    (void) cmd;

    cf = conf;
    args = cp->args;

    if (cf->nlisten == GL_CONF_MAX_LISTEN) {
        return gl_conf_error(cp, "too many \"listen\" directives (at most %d)",
                             GL_CONF_MAX_LISTEN);
    }

    ls = &cf->listen[cf->nlisten];
    memset(ls, 0, sizeof(*ls));
    ls->mode = -1;
    addr = args[1];

    ls->text = gl_conf_strdup(cf, addr);
    if (ls->text == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    cf->nlisten++;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] == '\0') {
            return gl_conf_error(cp, "no path in \"listen %s\"", addr);
        }

        ls->path = gl_conf_path(cf, addr + 5);
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
            ls->host = gl_conf_alloc(cf, colon - addr + 1);
            if (ls->host == NULL) {
                return gl_conf_error(cp, "out of memory");
            }

            memcpy(ls->host, addr, colon - addr);

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

    for (i = 2; i < cp->nargs; i++) {
        if (strncmp(args[i], "owner=", 6) == 0 && ls->path != NULL
            && args[i][6] != '\0')
        {
            ls->owner = gl_conf_strdup(cf, args[i] + 6);
            if (ls->owner == NULL) {
                return gl_conf_error(cp, "out of memory");
            }
            continue;
        }

        if (strncmp(args[i], "group=", 6) == 0 && ls->path != NULL
            && args[i][6] != '\0')
        {
            ls->group = gl_conf_strdup(cf, args[i] + 6);
            if (ls->group == NULL) {
                return gl_conf_error(cp, "out of memory");
            }
            continue;
        }

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


/*
 * Privileges and exposure (docs/security.md): user, allow and deny,
 * script_extensions.
 */

/* user USER [GROUP]: names, looked up by init_conf */
static int
gl_conf_set_user(gl_conf_parser_t *cp, const gl_command_t *cmd, void *conf)
{
    gl_conf_t  *cf;

    (void) cmd;

    cf = conf;

    if (cf->user != NULL) {
        return gl_conf_duplicate(cp);
    }

    cf->user = gl_conf_strdup(cf, cp->args[1]);
    if (cf->user == NULL
        || (cp->nargs == 3
            && (cf->group = gl_conf_strdup(cf, cp->args[2])) == NULL))
    {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


/* env NAME or env NAME=VALUE, as nginx's: what scripts see of the
   environment golapis was started with, or a value of its own */
static int
gl_conf_set_env(gl_conf_parser_t *cp, const gl_command_t *cmd, void *conf)
{
    int          i;
    size_t       len;
    const char  *arg, *eq;
    gl_conf_t   *cf;

    (void) cmd;

    cf = conf;
    arg = cp->args[1];
    eq = strchr(arg, '=');
    len = eq ? (size_t) (eq - arg) : strlen(arg);

    if (len == 0) {
        return gl_conf_error(cp, "invalid variable name in \"env %s\"", arg);
    }

    for (i = 0; i < cf->nenv; i++) {
        if (strncmp(cf->env[i], arg, len) == 0
            && (cf->env[i][len] == '\0' || cf->env[i][len] == '='))
        {
            return gl_conf_error(cp, "\"env %.*s\" is duplicate",
                                 (int) len, arg);
        }
    }

    if (cf->nenv == GL_CONF_MAX_ENV) {
        return gl_conf_error(cp, "too many \"env\" directives (at most "
                             "%d)", GL_CONF_MAX_ENV);
    }

    cf->env[cf->nenv] = gl_conf_strdup(cf, arg);
    if (cf->env[cf->nenv] == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    cf->nenv++;

    return GL_OK;
}


/* allow|deny ADDRESS|CIDR|all: a rule, in config order */
static int
gl_conf_set_access(gl_conf_parser_t *cp, const gl_command_t *cmd, void *conf)
{
    int                i, bits, max;
    long               n;
    char              *slash, *end, addr[64];
    gl_conf_t         *cf;
    gl_access_rule_t  *rule;

    (void) cmd;

    cf = conf;

    if (cf->naccess == GL_CONF_MAX_ACCESS) {
        return gl_conf_error(cp, "too many \"allow\" and \"deny\" rules (at "
                             "most %d)", GL_CONF_MAX_ACCESS);
    }

    rule = &cf->access[cf->naccess];
    memset(rule, 0, sizeof(*rule));
    rule->deny = (cp->args[0][0] == 'd');

    if (strcmp(cp->args[1], "all") == 0) {
        cf->naccess++;
        return GL_OK;
    }

    if (strlen(cp->args[1]) >= sizeof(addr)) {
        goto invalid;
    }

    strcpy(addr, cp->args[1]);
    slash = strchr(addr, '/');

    if (slash != NULL) {
        *slash++ = '\0';
    }

    if (inet_pton(AF_INET, addr, rule->addr) == 1) {
        rule->family = AF_INET;
        max = 32;

    } else if (inet_pton(AF_INET6, addr, rule->addr) == 1) {
        rule->family = AF_INET6;
        max = 128;

    } else {
        goto invalid;
    }

    bits = max;

    if (slash != NULL) {
        errno = 0;
        n = strtol(slash, &end, 10);
        if (!isdigit((unsigned char) slash[0]) || *end != '\0' || errno
            || n > max)
        {
            goto invalid;
        }
        bits = (int) n;
    }

    for (i = 0; i < max / 8; i++) {
        n = bits >= 8 ? 8 : (bits > 0 ? bits : 0);
        bits -= (int) n;
        rule->mask[i] = (unsigned char) (0xff00 >> n);
        rule->addr[i] &= rule->mask[i];
    }

    cf->naccess++;

    return GL_OK;

invalid:

    return gl_conf_error(cp, "invalid parameter \"%s\" in \"%s\": an IPv4 or "
                         "IPv6 address, a CIDR (\"10.0.0.0/8\", "
                         "\"fd00::/8\") or \"all\"", cp->args[1],
                         cp->args[0]);
}


/* script_extensions .lua ...: what SCRIPT_FILENAME may end with */
static int
gl_conf_set_script_ext(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int         i;
    gl_conf_t  *cf;

    (void) cmd;

    cf = conf;

    if (cf->nscript_ext != 0) {
        return gl_conf_duplicate(cp);
    }

    for (i = 1; i < cp->nargs; i++) {
        if (cp->args[i][0] == '\0' || strchr(cp->args[i], '/') != NULL) {
            return gl_conf_error(cp, "invalid extension \"%s\" in "
                                 "\"script_extensions\"", cp->args[i]);
        }

        cf->script_ext[cf->nscript_ext] = gl_conf_strdup(cf, cp->args[i]);
        if (cf->script_ext[cf->nscript_ext] == NULL) {
            return gl_conf_error(cp, "out of memory");
        }

        cf->nscript_ext++;
    }

    return GL_OK;
}


/*
 * The checks of the directives above, for init_conf: the users and groups
 * exist, and scripts come from a configured document_root.
 */
static const char *
gl_conf_init_exposure(gl_conf_t *conf)
{
    int                i;
    struct group      *gr;
    struct passwd     *pw;
    gl_listen_conf_t  *ls;

    conf->uid = (uid_t) -1;
    conf->gid = (gid_t) -1;

    if (conf->nscript_ext == 0) {
        conf->script_ext[0] = gl_conf_strdup(conf, ".lua");
        if (conf->script_ext[0] == NULL) {
            return "out of memory";
        }
        conf->nscript_ext = 1;
    }

    if (conf->document_root == NULL
        && conf->handlers[GL_PHASE_CONTENT].file == NULL
        && conf->handlers[GL_PHASE_CONTENT].code == NULL)
    {
        return "no \"document_root\": it is required (scripts run only from "
               "inside it) unless content_by_lua_file or "
               "content_by_lua_block is set";
    }

    /* a "user" is checked even when not root: -t may run as anyone */
    if (conf->user != NULL || geteuid() == 0) {
        conf->run_user = conf->user ? conf->user : "nobody";

        pw = getpwnam(conf->run_user);
        if (pw == NULL) {
            return gl_conf_errf("\"user\": unknown user \"%s\"",
                                conf->run_user);
        }

        conf->uid = pw->pw_uid;
        conf->gid = pw->pw_gid;

        if (conf->group != NULL) {
            gr = getgrnam(conf->group);
            if (gr == NULL) {
                return gl_conf_errf("\"user\": unknown group \"%s\"",
                                    conf->group);
            }
            conf->gid = gr->gr_gid;
        }

        if (geteuid() != 0) {
            conf->run_user = NULL;
        }
    }

    for (i = 0; i < conf->nlisten; i++) {
        ls = &conf->listen[i];

        /* as root, the socket file is the user's: it can remove it */
        ls->uid = conf->run_user ? conf->uid : (uid_t) -1;
        ls->gid = conf->run_user ? conf->gid : (gid_t) -1;

        if (ls->owner != NULL) {
            pw = getpwnam(ls->owner);
            if (pw == NULL) {
                return gl_conf_errf("\"listen %s\": unknown user \"%s\"",
                                    ls->text, ls->owner);
            }
            ls->uid = pw->pw_uid;
        }

        if (ls->group != NULL) {
            gr = getgrnam(ls->group);
            if (gr == NULL) {
                return gl_conf_errf("\"listen %s\": unknown group \"%s\"",
                                    ls->text, ls->group);
            }
            ls->gid = gr->gr_gid;
        }
    }

    return NULL;
}


/* workers N|auto: auto is 0 until start-up counts the CPUs */
static int
gl_conf_set_workers(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int   *field;
    long   n;
    char  *end, *value;

    field = (int *) ((char *) conf + cmd->offset);
    value = cp->args[1];

    if (*field != GL_CONF_UNSET) {
        return gl_conf_duplicate(cp);
    }

    if (strcmp(value, "auto") == 0) {
        *field = 0;
        return GL_OK;
    }

    errno = 0;
    n = strtol(value, &end, 10);
    if (value[0] == '\0' || *end != '\0' || errno || n < 1 || n > 1024) {
        return gl_conf_error(cp, "invalid value \"%s\" in \"workers\", it must "
                             "be \"auto\" or a number from 1 to 1024", value);
    }

    *field = (int) n;

    return GL_OK;
}


/* error_log FILE|stderr|syslog:... [LEVEL] */
static int
gl_conf_set_error_log(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    char        err[256];
    gl_conf_t  *cf;

    (void) cmd;

    cf = conf;

    if (cf->error_log != NULL) {
        return gl_conf_duplicate(cp);
    }

    if (gl_syslog_is(cp->args[1])) {
        /* syslog:server=...: checked (and resolved) now, as nginx */
        if (gl_syslog_check(cp->args[1], err, sizeof(err)) != GL_OK) {
            return gl_conf_error(cp, "%s", err);
        }

        cf->error_log = gl_conf_strdup(cf, cp->args[1]);

    } else if (strcmp(cp->args[1], "stderr") == 0) {
        cf->error_log = gl_conf_strdup(cf, "stderr");
    } else {
        cf->error_log = gl_conf_path(cf, cp->args[1]);
    }

    if (cf->error_log == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    if (cp->nargs == 3) {
        cf->log_level = gl_log_level_by_name(cp->args[2]);
        if (cf->log_level == -1) {
            return gl_conf_error(cp, "invalid log level \"%s\"", cp->args[2]);
        }
    }

    return GL_OK;
}


static const char  *gl_conf_phase_names[GL_PHASE_MAX] = {
    "init_by_lua", "init_worker_by_lua", "rewrite_by_lua", "access_by_lua",
    "content_by_lua", "header_filter_by_lua", "body_filter_by_lua",
    "log_by_lua", "ngx.timer", "exit_worker_by_lua"
};


const char *
gl_conf_phase_directive(int phase)
{
    return gl_conf_phase_names[phase];
}


/* *_by_lua_file FILE and *_by_lua_block { ... }: one handler per phase */
static int
gl_conf_set_lua_handler(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int                phase;
    const char        *base;
    gl_conf_t         *cf;
    gl_lua_handler_t  *h;
    char               name[256];

    cf = conf;
    h = (gl_lua_handler_t *) ((char *) conf + cmd->offset);
    phase = (int) (h - cf->handlers);

    if ((cmd->type & GL_CONF_BLOCK) ? h->code != NULL : h->file != NULL) {
        return gl_conf_duplicate(cp);
    }

    if (h->file != NULL || h->code != NULL) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate (a %s handler "
                             "is set already)", cp->args[0],
                             gl_conf_phase_names[phase]);
    }

    if (!(cmd->type & GL_CONF_BLOCK)) {
        h->file = gl_conf_path(cf, cp->args[1]);
        h->chunkname = gl_conf_strdup(cf, "");

        if (h->file == NULL || h->chunkname == NULL) {
            return gl_conf_error(cp, "out of memory");
        }

        return GL_OK;
    }

    base = strrchr(cp->file, '/');
    base = base ? base + 1 : cp->file;
    snprintf(name, sizeof(name), "=%s(%s:%d)", gl_conf_phase_names[phase],
             base, cp->block_line);

    h->code_len = strlen(cp->args[1]);
    h->code = gl_conf_strdup(cf, cp->args[1]);
    h->chunkname = gl_conf_strdup(cf, name);

    if (h->code == NULL || h->chunkname == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    return GL_OK;
}


/* luafcgid_handler NAME: a Lua name */
static int
gl_conf_set_lua_name(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    const char  *p, *value;

    value = cp->args[1];

    for (p = value; *p; p++) {
        if (!(isalnum((unsigned char) *p) || *p == '_')
            || isdigit((unsigned char) value[0]))
        {
            return gl_conf_error(cp, "invalid Lua name \"%s\" in \"%s\"",
                                 value, cp->args[0]);
        }
    }

    return gl_conf_set_str_slot(cp, cmd, conf);
}


static const gl_conf_bounds_t  gl_conf_worker_connections_bounds = {
    1, 1000000, NULL
};

static const gl_conf_bounds_t  gl_conf_housekeeping_bounds = {
    0.01, 0, "must be at least 10ms"
};

static const gl_conf_bounds_t  gl_conf_params_bounds = {
    1024, 64 * 1024 * 1024, "must be between 1k and 64m"
};

static const gl_conf_bounds_t  gl_conf_body_buffer_bounds = {
    1024, 0, "must be at least 1k"
};


#define gl_conf_core(field)  GL_CONF_CORE, offsetof(gl_conf_t, field)

#define gl_conf_handler(phase, name)                                         \
    { name "_file", GL_CONF_TAKE1, gl_conf_set_lua_handler,                  \
      gl_conf_core(handlers[phase]), NULL },                                 \
    { name "_block", GL_CONF_BLOCK, gl_conf_set_lua_handler,                 \
      gl_conf_core(handlers[phase]), NULL }

static const gl_conf_bounds_t  gl_conf_pool_size_bounds = {
    1, 1000000, "\"lua_socket_pool_size\" must be positive"
};

static const gl_conf_bounds_t  gl_conf_conn_timeout_bounds = {
    0.001, 0, "must be at least 1ms"
};

static const gl_command_t  gl_conf_core_commands[] = {

    { "listen", GL_CONF_TAKE1234, gl_conf_set_listen,
      gl_conf_core(listen), NULL },

    { "user", GL_CONF_TAKE12, gl_conf_set_user,
      gl_conf_core(user), NULL },

    { "allow", GL_CONF_TAKE1, gl_conf_set_access,
      gl_conf_core(access), NULL },

    { "env", GL_CONF_TAKE1, gl_conf_set_env,
      gl_conf_core(env), NULL },

    { "deny", GL_CONF_TAKE1, gl_conf_set_access,
      gl_conf_core(access), NULL },

    { "script_extensions", GL_CONF_1MORE, gl_conf_set_script_ext,
      gl_conf_core(script_ext), NULL },

    { "workers", GL_CONF_TAKE1, gl_conf_set_workers,
      gl_conf_core(workers), NULL },

    { "worker_connections", GL_CONF_TAKE1, gl_conf_set_num_slot,
      gl_conf_core(worker_connections), &gl_conf_worker_connections_bounds },

    { "worker_shutdown_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(shutdown_timeout), NULL },

    { "housekeeping_interval", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(housekeeping_interval), &gl_conf_housekeeping_bounds },

    { "document_root", GL_CONF_TAKE1, gl_conf_set_path_slot,
      gl_conf_core(document_root), NULL },

    { "error_log", GL_CONF_TAKE12, gl_conf_set_error_log,
      gl_conf_core(error_log), NULL },

    { "pid", GL_CONF_TAKE1, gl_conf_set_path_slot,
      gl_conf_core(pid), NULL },

    { "lua_package_path", GL_CONF_TAKE1, gl_conf_set_str_slot,
      gl_conf_core(lua_package_path), NULL },

    { "lua_package_cpath", GL_CONF_TAKE1, gl_conf_set_str_slot,
      gl_conf_core(lua_package_cpath), NULL },

    { "lua_code_cache", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(code_cache), NULL },

    gl_conf_handler(GL_PHASE_INIT, "init_by_lua"),
    gl_conf_handler(GL_PHASE_INIT_WORKER, "init_worker_by_lua"),
    gl_conf_handler(GL_PHASE_REWRITE, "rewrite_by_lua"),
    gl_conf_handler(GL_PHASE_ACCESS, "access_by_lua"),
    gl_conf_handler(GL_PHASE_CONTENT, "content_by_lua"),
    gl_conf_handler(GL_PHASE_HEADER_FILTER, "header_filter_by_lua"),
    gl_conf_handler(GL_PHASE_BODY_FILTER, "body_filter_by_lua"),
    gl_conf_handler(GL_PHASE_LOG, "log_by_lua"),
    gl_conf_handler(GL_PHASE_EXIT_WORKER, "exit_worker_by_lua"),

    { "luafcgid_handler", GL_CONF_TAKE1, gl_conf_set_lua_name,
      gl_conf_core(luafcgid_handler), NULL },

    { "fastcgi_params_max_size", GL_CONF_TAKE1, gl_conf_set_size_slot,
      gl_conf_core(params_max_size), &gl_conf_params_bounds },

    { "client_max_body_size", GL_CONF_TAKE1, gl_conf_set_size_slot,
      gl_conf_core(client_max_body_size), NULL },

    { "client_body_buffer_size", GL_CONF_TAKE1, gl_conf_set_size_slot,
      gl_conf_core(client_body_buffer_size), &gl_conf_body_buffer_bounds },

    { "client_body_temp_path", GL_CONF_TAKE1, gl_conf_set_path_slot,
      gl_conf_core(client_body_temp_path), NULL },

    { "default_type", GL_CONF_TAKE1, gl_conf_set_str_slot,
      gl_conf_core(default_type), NULL },

    { "lua_need_request_body", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(need_request_body), NULL },

    { "lua_transform_underscores_in_response_headers", GL_CONF_FLAG,
      gl_conf_set_flag_slot, gl_conf_core(transform_underscores), NULL },

    { "lua_check_client_abort", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(check_client_abort), NULL },

    { "lua_use_default_type", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(use_default_type), NULL },

    { "lua_malloc_trim", GL_CONF_TAKE1, gl_conf_set_num_slot,
      gl_conf_core(malloc_trim), NULL },

    { "lua_thread_cache_max_entries", GL_CONF_TAKE1, gl_conf_set_num_slot,
      gl_conf_core(thread_cache_max), NULL },

    { "lua_socket_connect_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(socket_connect_timeout), NULL },

    { "lua_socket_send_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(socket_send_timeout), NULL },

    { "lua_socket_read_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(socket_read_timeout), NULL },

    { "lua_socket_keepalive_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(socket_keepalive_timeout), NULL },

    { "lua_socket_send_lowat", GL_CONF_TAKE1, gl_conf_set_size_slot,
      gl_conf_core(socket_send_lowat), NULL },

    { "lua_socket_buffer_size", GL_CONF_TAKE1, gl_conf_set_size_slot,
      gl_conf_core(socket_buffer_size), NULL },

    { "lua_socket_pool_size", GL_CONF_TAKE1, gl_conf_set_num_slot,
      gl_conf_core(socket_pool_size), &gl_conf_pool_size_bounds },

    { "lua_socket_log_errors", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(socket_log_errors), NULL },

    { "lua_load_resty_core", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(noop_load_resty_core), NULL },


    { "lua_http10_buffering", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(noop_http10_buffering), NULL },

    { "rewrite_by_lua_no_postpone", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(noop_rewrite_no_postpone), NULL },

    { "access_by_lua_no_postpone", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(noop_access_no_postpone), NULL },

    { "lua_sa_restart", GL_CONF_FLAG, gl_conf_set_flag_slot,
      gl_conf_core(noop_sa_restart), NULL },

    { "client_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(client_timeout), &gl_conf_conn_timeout_bounds },

    { "keepalive_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      gl_conf_core(keepalive_timeout), &gl_conf_conn_timeout_bounds },

    gl_null_command
};


/*
 * lua-nginx-module's directives golapis does not have, and why: a config
 * brought over from OpenResty then says more than "unknown directive".
 * A name ending in '*' is a prefix.
 */
static const struct {
    const char  *name;
    const char  *why;
} gl_conf_foreign[] = {
    { "set_by_lua*", "nginx variables are set in nginx" },
    { "balancer_*", "upstream balancing stays in nginx" },
    { "ssl_*", "TLS with clients stays in nginx" },
    { "proxy_ssl_*", "TLS with upstreams stays in nginx" },
    { "lua_ssl_conf_command", "not supported" },
    { "server_rewrite_by_lua*", "golapis has one server: use rewrite_by_lua" },
    { "precontent_by_lua*", "not implemented" },
    { "lua_capture_error_log", "not implemented" },
    { "lua_worker_thread_vm_pool_size", "not implemented" },
    { NULL, NULL }
};


static int
gl_conf_unknown(gl_conf_parser_t *cp, const char *name)
{
    size_t  n;
    int     i;

    for (i = 0; gl_conf_foreign[i].name; i++) {
        n = strlen(gl_conf_foreign[i].name);

        if (gl_conf_foreign[i].name[n - 1] == '*'
            ? strncmp(name, gl_conf_foreign[i].name, n - 1) == 0
            : strcmp(name, gl_conf_foreign[i].name) == 0)
        {
            return gl_conf_error(cp, "unknown directive \"%s\": "
                                 "lua-nginx-module's, which golapis does not "
                                 "have (%s)", name, gl_conf_foreign[i].why);
        }
    }

    return gl_conf_error(cp, "unknown directive \"%s\"", name);
}


/* a default string for what was not given; GL_ERROR when out of memory */
static int
gl_conf_init_str(gl_conf_t *conf, char **field, const char *def)
{
    if (*field == NULL) {
        *field = gl_conf_strdup(conf, def);
        if (*field == NULL) {
            return GL_ERROR;
        }
    }

    return GL_OK;
}


/* the core's defaults and checks, before the modules' */
static const char *
gl_conf_core_init_conf(gl_conf_t *conf, void *mconf)
{
    int          i;
    const char  *msg;
    struct stat  st;

    (void) mconf;

    gl_conf_init_value(conf->workers, 0);
    gl_conf_init_value(conf->worker_connections, 1024);
    gl_conf_init_value(conf->shutdown_timeout, 30);
    gl_conf_init_value(conf->housekeeping_interval, 1);
    gl_conf_init_value(conf->log_level, GL_LOG_ERR);
    gl_conf_init_value(conf->code_cache, 1);
    gl_conf_init_size(conf->params_max_size, 64 * 1024);
    gl_conf_init_size(conf->client_max_body_size, 1024 * 1024);
    gl_conf_init_size(conf->client_body_buffer_size, 16 * 1024);
    gl_conf_init_value(conf->need_request_body, 0);
    gl_conf_init_value(conf->transform_underscores, 1);
    gl_conf_init_value(conf->check_client_abort, 0);
    gl_conf_init_value(conf->use_default_type, 1);
    gl_conf_init_value(conf->malloc_trim, 1000);
    gl_conf_init_value(conf->thread_cache_max, 1024);
    gl_conf_init_value(conf->socket_connect_timeout, 60);
    gl_conf_init_value(conf->socket_send_timeout, 60);
    gl_conf_init_value(conf->socket_read_timeout, 60);
    gl_conf_init_value(conf->socket_keepalive_timeout, 60);
    gl_conf_init_size(conf->socket_send_lowat, 0);
    gl_conf_init_size(conf->socket_buffer_size, 4096);
    gl_conf_init_value(conf->socket_pool_size, 30);
    gl_conf_init_value(conf->socket_log_errors, 1);
    gl_conf_init_value(conf->client_timeout, 60);
    gl_conf_init_value(conf->keepalive_timeout, 75);

    if (gl_conf_init_str(conf, &conf->error_log, "stderr") != GL_OK
        || gl_conf_init_str(conf, &conf->default_type, "text/html") != GL_OK
        || gl_conf_init_str(conf, &conf->client_body_temp_path, "/tmp")
           != GL_OK
        || gl_conf_init_str(conf, &conf->luafcgid_handler, "main") != GL_OK)
    {
        return "out of memory";
    }

    if (conf->nlisten == 0) {
        return "no \"listen\" directive";
    }

    if (conf->document_root != NULL
        && (stat(conf->document_root, &st) == -1 || !S_ISDIR(st.st_mode)))
    {
        return gl_conf_errf("document_root \"%s\" is not a directory",
                            conf->document_root);
    }

    msg = gl_conf_init_exposure(conf);
    if (msg != NULL) {
        return msg;
    }

    for (i = 0; i < GL_PHASE_MAX; i++) {
        if (conf->handlers[i].file != NULL
            && access(conf->handlers[i].file, R_OK) == -1)
        {
            return gl_conf_errf("%s_file \"%s\": %s", gl_conf_phase_names[i],
                                conf->handlers[i].file, strerror(errno));
        }
    }

    return NULL;
}


/* the core, as a module: its conf is the gl_conf_t */
static gl_module_t  gl_conf_core_module = {
    .name = "core",
    .commands = gl_conf_core_commands,
    .init_conf = gl_conf_core_init_conf,
    .index = -1
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


/*
 * The command named name, from the core's table or a module's; *dst gets
 * the struct it writes.  NULL if there is none.
 */
static const gl_command_t *
gl_conf_find(gl_conf_t *conf, const char *name, gl_module_t **module,
    void **dst)
{
    int                  i;
    gl_module_t         *m;
    const gl_command_t  *c;

    for (i = -1; i < 0 || (conf->modules && conf->modules[i] != NULL); i++) {
        m = (i < 0) ? &gl_conf_core_module : conf->modules[i];

        if (m->commands == NULL) {
            continue;
        }

        for (c = m->commands; c->name != NULL; c++) {
            if (strcmp(c->name, name) == 0) {
                *module = m;
                *dst = (c->conf == GL_CONF_MODULE && i >= 0)
                       ? conf->module_confs[i] : conf;
                return c;
            }
        }
    }

    return NULL;
}


/*
 * The fields of the slots start "not given" (strings are NULL already):
 * a slot can then tell a duplicate, and init_conf a default.
 */
static void
gl_conf_unset(const gl_command_t *cmd, void *conf)
{
    char  *field;

    if (conf == NULL) {
        return;
    }

    field = (char *) conf + cmd->offset;

    if (cmd->set == gl_conf_set_flag_slot || cmd->set == gl_conf_set_num_slot)
    {
        *(int *) field = GL_CONF_UNSET;

    } else if (cmd->set == gl_conf_set_size_slot) {
        *(size_t *) field = GL_CONF_UNSET_SIZE;

    } else if (cmd->set == gl_conf_set_time_slot) {
        *(double *) field = GL_CONF_UNSET;
    }
}


/* is the number of arguments (without the name) one cmd takes */
static int
gl_conf_nargs_ok(const gl_command_t *cmd, int n)
{
    static const unsigned  argn[] = {
        GL_CONF_NOARGS, GL_CONF_TAKE1, GL_CONF_TAKE2, GL_CONF_TAKE3,
        GL_CONF_TAKE4, GL_CONF_TAKE5, GL_CONF_TAKE6, GL_CONF_TAKE7
    };

    if (cmd->type & (GL_CONF_BLOCK | GL_CONF_FLAG)) {
        return n == 1;
    }

    if (cmd->type & GL_CONF_1MORE) {
        return n >= 1;
    }

    return n >= 0 && n < (int) gl_nelems(argn) && (cmd->type & argn[n]);
}


static int
gl_conf_parse(gl_conf_t *conf, gl_conf_parser_t *cp)
{
    int                   rc, nargs, quoted, line, end_line;
    void                 *dst;
    char                 *args[GL_CONF_MAX_ARGS];
    static char           words[GL_CONF_MAX_ARGS][4096];
    static char           block[GL_CONF_MAX_BLOCK];
    gl_module_t          *m;
    const gl_command_t   *cmd;

    for ( ;; ) {
        nargs = 0;
        line = 0;
        cmd = NULL;
        dst = NULL;
        m = NULL;

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
                /* blocks are for Lua blocks only: name the directive */
                if (nargs > 0) {
                    cp->line = line;

                    if (cmd == NULL) {
                        return gl_conf_unknown(cp, args[0]);
                    }
                }

                return gl_conf_error(cp, "unexpected \"{\"");
            }

            if (nargs == 0) {
                line = cp->line;
            }

            args[nargs] = words[nargs];
            nargs++;

            if (nargs > 1) {
                continue;
            }

            cmd = gl_conf_find(conf, args[0], &m, &dst);

            if (cmd != NULL && (cmd->type & GL_CONF_BLOCK) && !quoted) {
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

        if (cmd == NULL) {
            return gl_conf_unknown(cp, args[0]);
        }

        if (!gl_conf_nargs_ok(cmd, nargs - 1)) {
            return gl_conf_error(cp, "invalid number of arguments in \"%s\" "
                                 "directive", args[0]);
        }

        if (dst == NULL) {
            /* the module's row has a GL_CONF_MODULE command but no
               conf_size: a bug of the module */
            return gl_conf_error(cp, "\"%s\" directive: the module \"%s\" has "
                                 "no conf", args[0], m->name);
        }

        cp->args = args;
        cp->nargs = nargs;

        rc = cmd->set(cp, cmd, dst);

        cp->args = NULL;
        cp->nargs = 0;

        if (rc != GL_OK) {
            return GL_ERROR;
        }

        cp->line = end_line;
    }
}


/* a config file bigger than this is refused: it is a mistake */
#define GL_CONF_MAX_FILE  (16 * 1024 * 1024)

/*
 * Reads the whole file into a string; NULL (err set) on error.  Only a
 * regular file is read (a directory, a FIFO, a device is refused without
 * blocking: opened O_NONBLOCK, checked with fstat on that descriptor),
 * and at most GL_CONF_MAX_FILE bytes.
 */
static char *
gl_conf_read_file(const char *path, size_t *len, char *err, size_t err_size)
{
    int           fd;
    char         *text;
    size_t        size, got;
    ssize_t       n;
    struct stat   st;

    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }

    if (fstat(fd, &st) == -1) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }

    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: %s", path, S_ISDIR(st.st_mode)
                 ? "is a directory" : "is not a regular file");
        close(fd);
        return NULL;
    }

    if (st.st_size > GL_CONF_MAX_FILE) {
        snprintf(err, err_size, "%s: too large (%lld bytes, at most %d)",
                 path, (long long) st.st_size, GL_CONF_MAX_FILE);
        close(fd);
        return NULL;
    }

    size = (size_t) st.st_size;

    text = malloc(size + 1);
    if (text == NULL) {
        snprintf(err, err_size, "out of memory");
        close(fd);
        return NULL;
    }

    for (got = 0; got < size; got += (size_t) n) {
        n = read(fd, text + got, size - got);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            snprintf(err, err_size, "%s: %s", path,
                     n == 0 ? "shrank while read" : strerror(errno));
            close(fd);
            free(text);
            return NULL;
        }
    }

    close(fd);
    text[size] = '\0';
    *len = size;

    return text;
}


gl_conf_t *
gl_conf_load(const char *path, gl_module_t **modules, char *err,
    size_t err_size)
{
    int                  i, n;
    char                *text, *slash, abs[PATH_MAX];
    void                *mconf;
    size_t               len;
    gl_conf_t           *conf;
    gl_module_t         *m;
    const char          *msg;
    gl_conf_parser_t     cp;
    const gl_command_t  *c;

    text = NULL;

    conf = calloc(1, sizeof(gl_conf_t));
    if (conf == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }

    conf->modules = modules;
    atomic_init(&conf->refs, 1);
    conf->serial = atomic_fetch_add(&gl_conf_serial, 1) + 1;

    /* the fields of the core's own set functions that are not strings */
    conf->workers = GL_CONF_UNSET;
    conf->log_level = GL_CONF_UNSET;

    if (realpath(path, abs) == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        goto failed;
    }

    conf->file = gl_conf_strdup(conf, abs);
    slash = strrchr(abs, '/');
    *(slash == abs ? slash + 1 : slash) = '\0';
    conf->dir = gl_conf_strdup(conf, abs);

    for (n = 0; modules != NULL && modules[n] != NULL; n++) {
        /* void */
    }

    conf->nmodules = n;
    conf->module_confs = gl_conf_alloc(conf, (n + 1) * sizeof(void *));

    if (conf->file == NULL || conf->dir == NULL || conf->module_confs == NULL)
    {
        snprintf(err, err_size, "out of memory");
        goto failed;
    }

    for (i = -1; i < n; i++) {
        m = (i < 0) ? &gl_conf_core_module : modules[i];
        mconf = conf;

        if (i >= 0) {
            /* the same list each time: no write once workers read it */
            if (m->index != i) {
                m->index = i;
            }

            mconf = NULL;

            if (m->conf_size != 0) {
                mconf = gl_conf_alloc(conf, m->conf_size);
                if (mconf == NULL) {
                    snprintf(err, err_size, "out of memory");
                    goto failed;
                }

                conf->module_confs[i] = mconf;
            }
        }

        for (c = m->commands; c != NULL && c->name != NULL; c++) {
            gl_conf_unset(c, c->conf == GL_CONF_MODULE ? mconf : conf);
        }
    }

    text = gl_conf_read_file(path, &len, err, err_size);
    if (text == NULL) {
        goto failed;
    }

    memset(&cp, 0, sizeof(cp));
    cp.conf = conf;
    cp.file = path;
    cp.p = text;
    cp.end = text + len;
    cp.line = 1;
    cp.err = err;
    cp.err_size = err_size;

    if (gl_conf_parse(conf, &cp) != GL_OK) {
        goto failed;
    }

    free(text);
    text = NULL;

    for (i = -1; i < n; i++) {
        m = (i < 0) ? &gl_conf_core_module : modules[i];

        if (m->init_conf == NULL) {
            continue;
        }

        msg = m->init_conf(conf, i < 0 ? conf : conf->module_confs[i]);

        if (msg != NULL) {
            snprintf(err, err_size, "%s: %s", path, msg);
            goto failed;
        }
    }

    return conf;

failed:

    free(text);
    gl_conf_free(conf);

    return NULL;
}


void
gl_conf_free(gl_conf_t *conf)
{
    gl_conf_mem_t      *m, *next;
    gl_conf_cleanup_t  *c;

    if (conf == NULL) {
        return;
    }

    for (c = conf->cleanups; c != NULL; c = c->next) {
        c->handler(c->data);
    }

    for (m = conf->mem; m != NULL; m = next) {
        next = m->next;
        free(m);
    }

    free(conf);
}


gl_conf_t *
gl_conf_ref(gl_conf_t *conf)
{
    if (conf != NULL) {
        atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    }

    return conf;
}


void
gl_conf_unref(gl_conf_t *conf)
{
    if (conf != NULL
        && atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel)
           == 1)
    {
        gl_conf_free(conf);
    }
}


void *
gl_conf_module(gl_conf_t *conf, gl_module_t *m)
{
    if (m->index < 0 || m->index >= conf->nmodules
        || conf->modules[m->index] != m)
    {
        return NULL;
    }

    return conf->module_confs[m->index];
}


gl_module_t *
gl_conf_init_main(gl_conf_t *conf)
{
    gl_module_t  **m;

    for (m = conf->modules; m != NULL && *m != NULL; m++) {
        if ((*m)->init_main != NULL && (*m)->init_main(conf) != GL_OK) {
            return *m;
        }
    }

    return NULL;
}
