/*
 * The access log, as nginx's ngx_http_log_module: "log_format NAME
 * [escape=default|json|none] 'text with $variables' ...;" and
 * "access_log FILE|syslog:... [FORMAT [if=CONDITION]];" or "access_log
 * off;".  The default format is nginx's "combined".  docs/logs.md has the
 * user's view.
 *
 * A format is compiled when the config is read into a list of operations:
 * text, and a variable each.  A variable is one golapis works out itself
 * ($status, $request_time, $time_local, ...), a param or a request header
 * read in C, or any other of ngx.var's (gl_lua_var.h), read through ngx.var
 * on the request's Lua state; a name ngx.var does not know as one of
 * nginx's variables refuses the config, as nginx does.
 *
 * A request's line is made when it ends (the request_end hook: after its
 * log_by_lua, its response sent), and written with one write(2) on the
 * file's O_APPEND descriptor, shared by the workers (gl_log_file_t): lines
 * never interleave, and SIGUSR1 reopens the files with the error log.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_http.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_var.h"
#include "gl_module.h"
#include "gl_request.h"
#include "gl_syslog.h"

#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define GL_ALOG_MAX        16       /* access_log directives */
#define GL_ALOG_VAR_MAX    255      /* the length of a variable's name */

#define GL_ALOG_COMBINED                                                     \
    "$remote_addr - $remote_user [$time_local] \"$request\" $status "        \
    "$body_bytes_sent \"$http_referer\" \"$http_user_agent\""

typedef enum {
    GL_ALOG_ESC_DEFAULT = 0,        /* " \ and bytes < 0x20, >= 0x7f: \xHH */
    GL_ALOG_ESC_JSON,
    GL_ALOG_ESC_NONE,
    GL_ALOG_ESC_COND                /* an if= condition: as it is, and ""
                                       for a variable with no value */
} gl_alog_esc_e;

/* what an operation writes */
typedef enum {
    GL_ALOG_TEXT = 0,
    GL_ALOG_PARAM,                  /* a param, as ngx.var reads it */
    GL_ALOG_HEADER,                 /* a request header */
    GL_ALOG_LUA,                    /* ngx.var[name] */
    /* golapis's own */
    GL_ALOG_STATUS,
    GL_ALOG_BODY_BYTES_SENT,
    GL_ALOG_BYTES_SENT,
    GL_ALOG_REQUEST,
    GL_ALOG_REQUEST_TIME,
    GL_ALOG_REQUEST_COMPLETION,
    GL_ALOG_MSEC,
    GL_ALOG_TIME_LOCAL,
    GL_ALOG_TIME_ISO8601,
    GL_ALOG_PID,
    GL_ALOG_WORKER,
    GL_ALOG_CONNECTION,
    GL_ALOG_CONNECTION_REQUESTS
} gl_alog_op_e;

typedef struct {
    gl_alog_op_e        op;
    const char         *data;       /* text; a param's or a variable's
                                       name; a header's (after "http_") */
    size_t              len;
    unsigned            empty:1;    /* a param: "" is a value, not "-" */
} gl_alog_op_t;

typedef struct gl_alog_fmt_s  gl_alog_fmt_t;

struct gl_alog_fmt_s {
    gl_alog_fmt_t      *next;
    const char         *name;
    gl_alog_esc_e       escape;
    gl_alog_op_t       *ops;
    int                 nops;
};

typedef struct {
    char               *path;       /* absolute, or "syslog:..." */
    gl_alog_fmt_t      *fmt;
    gl_alog_fmt_t      *cond;       /* if=: no line when "" or "0" */
    gl_log_file_t      *file;       /* init_main opens it */
} gl_alog_t;

typedef struct {
    gl_alog_fmt_t      *formats;
    gl_alog_t           logs[GL_ALOG_MAX];
    int                 nlogs;
    unsigned            off:1;      /* access_log off */
} gl_alog_conf_t;

/* golapis's own variables; the rest are ngx.var's */
static const struct {
    const char         *name;
    gl_alog_op_e        op;
} gl_alog_vars[] = {
    { "status", GL_ALOG_STATUS },
    { "body_bytes_sent", GL_ALOG_BODY_BYTES_SENT },
    { "bytes_sent", GL_ALOG_BYTES_SENT },
    { "request", GL_ALOG_REQUEST },
    { "request_time", GL_ALOG_REQUEST_TIME },
    { "request_completion", GL_ALOG_REQUEST_COMPLETION },
    { "msec", GL_ALOG_MSEC },
    { "time_local", GL_ALOG_TIME_LOCAL },
    { "time_iso8601", GL_ALOG_TIME_ISO8601 },
    { "pid", GL_ALOG_PID },
    { "golapis_worker", GL_ALOG_WORKER },
    { "connection", GL_ALOG_CONNECTION },
    { "connection_requests", GL_ALOG_CONNECTION_REQUESTS },
};

extern gl_module_t  gl_access_log_module;


/* a line being made: on the stack, on the heap once it outgrows that */
typedef struct {
    char               *p;
    size_t              len;
    size_t              cap;
    unsigned            heap:1;
    unsigned            failed:1;   /* no memory: the line is cut */
    char                stack[4096];
} gl_alog_buf_t;


static void
gl_alog_buf_init(gl_alog_buf_t *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
    b->heap = 0;
    b->failed = 0;
}


static void
gl_alog_buf_free(gl_alog_buf_t *b)
{
    if (b->heap) {
        free(b->p);
    }
}


/* room for n more bytes; NULL when there is none to be had */
static char *
gl_alog_buf_room(gl_alog_buf_t *b, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->len + n <= b->cap) {
        return b->p + b->len;
    }

    if (b->failed) {
        return NULL;
    }

    cap = gl_max(b->cap * 2, b->len + n);

    if (b->heap) {
        p = realloc(b->p, cap);
    } else {
        p = malloc(cap);
        if (p != NULL) {
            memcpy(p, b->p, b->len);
        }
    }

    if (p == NULL) {
        b->failed = 1;
        return NULL;
    }

    b->p = p;
    b->cap = cap;
    b->heap = 1;

    return b->p + b->len;
}


static void
gl_alog_buf_add(gl_alog_buf_t *b, const char *s, size_t n)
{
    char  *p;

    p = gl_alog_buf_room(b, n);

    if (p != NULL) {
        memcpy(p, s, n);
        b->len += n;
    }
}


/*
 * A variable's value, escaped as the format says: nginx's default escape
 * (ngx_http_log_escape) writes '"', '\' and the bytes below 0x20 or from
 * 0x7f as "\xHH"; json as ngx_escape_json; none as it is.
 */
static void
gl_alog_buf_value(gl_alog_buf_t *b, gl_alog_esc_e esc, const char *s,
    size_t n)
{
    char           *p;
    size_t          i;
    unsigned char   c;

    static const char  hex[] = "0123456789ABCDEF";

    if (esc == GL_ALOG_ESC_NONE || esc == GL_ALOG_ESC_COND) {
        gl_alog_buf_add(b, s, n);
        return;
    }

    p = gl_alog_buf_room(b, n * 6);
    if (p == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (esc == GL_ALOG_ESC_DEFAULT) {
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            } else {
                *p++ = (char) c;
            }

            continue;
        }

        /* json */
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;

        } else if (c < 0x20) {
            *p++ = '\\';

            switch (c) {
            case '\n': *p++ = 'n'; break;
            case '\r': *p++ = 'r'; break;
            case '\t': *p++ = 't'; break;
            case '\b': *p++ = 'b'; break;
            case '\f': *p++ = 'f'; break;
            default:
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
                break;
            }

        } else {
            *p++ = (char) c;
        }
    }

    b->len = p - b->p;
}


/* a variable that has no value: "-" with the default escaping, nothing
   with json and none (and in an if= condition, as nginx's complex
   values) */
static void
gl_alog_buf_none(gl_alog_buf_t *b, gl_alog_esc_e esc)
{
    if (esc == GL_ALOG_ESC_DEFAULT) {
        gl_alog_buf_add(b, "-", 1);
    }
}


/* the times of log lines, as nginx's: made once a second per thread */
typedef struct {
    time_t              sec;
    char                local[40];
    size_t              local_len;
    char                iso[40];
    size_t              iso_len;
} gl_alog_time_t;

static _Thread_local gl_alog_time_t  gl_alog_time = { -1, "", 0, "", 0 };


static const gl_alog_time_t *
gl_alog_times(time_t sec)
{
    long             off;
    struct tm        tm;
    gl_alog_time_t  *t;

    static const char  *months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };

    t = &gl_alog_time;

    if (t->sec == sec) {
        return t;
    }

    localtime_r(&sec, &tm);
    off = tm.tm_gmtoff / 60;

    t->local_len = (size_t) snprintf(t->local, sizeof(t->local),
                                     "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld",
                                     tm.tm_mday, months[tm.tm_mon],
                                     tm.tm_year + 1900, tm.tm_hour,
                                     tm.tm_min, tm.tm_sec,
                                     off < 0 ? '-' : '+', labs(off / 60),
                                     labs(off % 60));

    t->iso_len = (size_t) snprintf(t->iso, sizeof(t->iso),
                                   "%4d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                                   tm.tm_year + 1900, tm.tm_mon + 1,
                                   tm.tm_mday, tm.tm_hour, tm.tm_min,
                                   tm.tm_sec, off < 0 ? '-' : '+',
                                   labs(off / 60), labs(off % 60));
    t->sec = sec;

    return t;
}


/* ngx.var[name] through the request's Lua state */
typedef struct {
    gl_http_t          *h;
    const gl_alog_op_t *op;
    gl_alog_buf_t      *b;
    gl_alog_esc_e       esc;
} gl_alog_lua_t;


static int
gl_alog_lua_value(lua_State *L)
{
    size_t          n;
    const char     *s;
    gl_alog_lua_t  *a;

    a = lua_touserdata(L, 1);

    gl_lua_var_push(L, a->h, a->op->data, a->op->len);

    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        s = lua_tolstring(L, -1, &n);
        gl_alog_buf_value(a->b, a->esc, s, n);

    } else {
        gl_alog_buf_none(a->b, a->esc);
    }

    return 0;
}


/* $request (gl_request_line), escaped as the format says */
static void
gl_alog_request(gl_alog_buf_t *b, gl_alog_esc_e esc, gl_request_t *r)
{
    int                 i, n;
    gl_request_piece_t  pieces[5];

    n = gl_request_line(r, pieces);

    if (n == 0) {
        gl_alog_buf_none(b, esc);
        return;
    }

    for (i = 0; i < n; i++) {
        gl_alog_buf_value(b, esc, pieces[i].data, pieces[i].len);
    }
}


/* seconds with milliseconds, as nginx's "%T.%03M" */
static size_t
gl_alog_msec(char *buf, size_t size, double t)
{
    long long  ms;

    ms = (long long) (t * 1000);
    ms = gl_max(ms, 0);

    return (size_t) snprintf(buf, size, "%lld.%03lld", ms / 1000, ms % 1000);
}


static void
gl_alog_run(gl_alog_buf_t *b, const gl_alog_fmt_t *fmt, gl_http_t *h,
    double now)
{
    int                  i, n;
    char                 num[64];
    gl_request_t        *r;
    gl_alog_lua_t        a;
    const gl_param_t    *p;
    const gl_header_t   *hd;
    const gl_alog_op_t  *op;

    r = &h->r;

    for (i = 0; i < fmt->nops; i++) {
        op = &fmt->ops[i];
        n = -1;

        switch (op->op) {

        case GL_ALOG_TEXT:
            gl_alog_buf_add(b, op->data, op->len);
            break;

        case GL_ALOG_PARAM:
            p = gl_request_param(r, op->data, op->len);

            if (p == NULL || (p->value_len == 0 && !op->empty)) {
                gl_alog_buf_none(b, fmt->escape);
            } else {
                gl_alog_buf_value(b, fmt->escape, p->value, p->value_len);
            }
            break;

        case GL_ALOG_HEADER:
            hd = (gl_request_build_headers(r) == GL_OK)
                 ? gl_request_header(r, op->data, op->len) : NULL;

            if (hd == NULL) {
                gl_alog_buf_none(b, fmt->escape);
            } else {
                gl_alog_buf_value(b, fmt->escape, hd->value, hd->value_len);
            }
            break;

        case GL_ALOG_LUA:
            a.h = h;
            a.op = op;
            a.b = b;
            a.esc = fmt->escape;

            if (h->gen == NULL
                || lua_cpcall(h->gen->L, gl_alog_lua_value, &a) != 0)
            {
                if (h->gen != NULL) {
                    lua_pop(h->gen->L, 1);
                }
                gl_alog_buf_none(b, fmt->escape);
            }
            break;

        case GL_ALOG_STATUS:
            n = snprintf(num, sizeof(num), "%03d", r->status);
            break;

        case GL_ALOG_BODY_BYTES_SENT:
            /* nginx sends no body to the client of a HEAD request */
            n = snprintf(num, sizeof(num), "%zu", r->header_sent && !r->head
                         ? r->bytes_sent - r->header_size : 0);
            break;

        case GL_ALOG_BYTES_SENT:
            n = snprintf(num, sizeof(num), "%zu",
                         r->head ? r->header_size : r->bytes_sent);
            break;

        case GL_ALOG_REQUEST:
            gl_alog_request(b, fmt->escape, r);
            break;

        case GL_ALOG_REQUEST_TIME:
            n = (int) gl_alog_msec(num, sizeof(num), now - r->start_time);
            break;

        case GL_ALOG_REQUEST_COMPLETION:
            if (r->finished && !r->aborted && !r->cancelled) {
                gl_alog_buf_add(b, "OK", 2);
            }
            break;

        case GL_ALOG_MSEC:
            n = (int) gl_alog_msec(num, sizeof(num), now);
            break;

        case GL_ALOG_TIME_LOCAL:
            gl_alog_buf_add(b, gl_alog_times((time_t) now)->local,
                            gl_alog_times((time_t) now)->local_len);
            break;

        case GL_ALOG_TIME_ISO8601:
            gl_alog_buf_add(b, gl_alog_times((time_t) now)->iso,
                            gl_alog_times((time_t) now)->iso_len);
            break;

        case GL_ALOG_PID:
            n = snprintf(num, sizeof(num), "%d", (int) getpid());
            break;

        case GL_ALOG_WORKER:
            n = snprintf(num, sizeof(num), "%d", h->vm->id);
            break;

        case GL_ALOG_CONNECTION:
            n = snprintf(num, sizeof(num), "%llu",
                         (unsigned long long) r->conn_number);
            break;

        case GL_ALOG_CONNECTION_REQUESTS:
            n = snprintf(num, sizeof(num), "%llu",
                         (unsigned long long) r->conn_requests);
            break;
        }

        if (n >= 0) {
            gl_alog_buf_add(b, num, gl_min((size_t) n, sizeof(num) - 1));
        }
    }
}


/* the request ends, after its log_by_lua: its line in every access log */
static void
gl_alog_request_end(gl_http_t *h)
{
    int              i;
    double           now;
    gl_alog_t       *log;
    gl_alog_buf_t    b;
    gl_alog_conf_t  *acf;

    acf = gl_conf_module(h->r.conf, &gl_access_log_module);

    if (acf == NULL || acf->off || acf->nlogs == 0) {
        return;
    }

    now = ev_time();

    for (i = 0; i < acf->nlogs; i++) {
        log = &acf->logs[i];

        if (log->file == NULL) {
            continue;
        }

        gl_alog_buf_init(&b);

        if (log->cond != NULL) {
            gl_alog_run(&b, log->cond, h, now);

            if (b.len == 0 || (b.len == 1 && b.p[0] == '0')) {
                gl_alog_buf_free(&b);
                continue;
            }

            b.len = 0;
        }

        gl_alog_run(&b, log->fmt, h, now);
        gl_alog_buf_add(&b, "\n", 1);

        if (b.failed) {
            gl_log_error_limited(GL_LOG_ALERT, 0, "no memory for a line of "
                                 "the access log \"%s\": it is cut",
                                 log->path);
            if (b.len > 0) {
                b.p[b.len - 1] = '\n';
            }
        }

        gl_log_file_write(log->file, b.p, b.len);
        gl_alog_buf_free(&b);
    }
}


/* the directives */

/* op for the variable name (lower case): GL_OK, or GL_DECLINED if
   golapis has no such variable */
static int
gl_alog_var(gl_conf_t *conf, gl_alog_op_t *op, const char *name, size_t len)
{
    size_t            i;
    gl_lua_var_ref_t  ref;

    for (i = 0; i < gl_nelems(gl_alog_vars); i++) {
        if (strlen(gl_alog_vars[i].name) == len
            && memcmp(gl_alog_vars[i].name, name, len) == 0)
        {
            op->op = gl_alog_vars[i].op;
            return GL_OK;
        }
    }

    if (gl_lua_var_ref(name, len, &ref) != GL_OK) {
        return GL_DECLINED;
    }

    if (ref.param != NULL) {
        op->op = GL_ALOG_PARAM;
        op->data = ref.param;
        op->len = strlen(ref.param);
        op->empty = ref.empty;
        return GL_OK;
    }

    if (ref.header) {
        op->op = GL_ALOG_HEADER;
        name += 5;
        len -= 5;

    } else {
        op->op = GL_ALOG_LUA;
    }

    op->data = gl_conf_alloc(conf, len + 1);
    if (op->data == NULL) {
        return GL_ERROR;
    }

    memcpy((char *) op->data, name, len);
    op->len = len;

    return GL_OK;
}


/*
 * Compiles the strings into fmt's operations, as nginx's
 * ngx_http_log_compile: "$name" or "${name}", a name of letters, digits
 * and "_" (case does not matter).
 */
static int
gl_alog_compile(gl_conf_parser_t *cp, gl_alog_fmt_t *fmt, char **strs,
    int n)
{
    int            i, nops, rc, bracket;
    char           name[GL_ALOG_VAR_MAX + 1];
    char          *text;
    size_t         len;
    const char    *p, *start, *end;
    gl_alog_op_t  *op;
    gl_conf_t     *conf;

    conf = cp->conf;

    /* at most one text and one variable per "$", and per string */
    nops = 0;
    for (i = 0; i < n; i++) {
        for (p = strs[i]; *p; p++) {
            nops += (*p == '$') ? 2 : 0;
        }
        nops += 1;
    }

    fmt->ops = gl_conf_alloc(conf, nops * sizeof(gl_alog_op_t));
    if (fmt->ops == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    fmt->nops = 0;

    for (i = 0; i < n; i++) {
        p = strs[i];

        while (*p) {
            op = &fmt->ops[fmt->nops];

            if (*p != '$') {
                start = p;
                while (*p && *p != '$') {
                    p++;
                }

                len = p - start;

                /* the text goes on from the last operation's */
                if (fmt->nops > 0 && op[-1].op == GL_ALOG_TEXT) {
                    text = gl_conf_alloc(conf, op[-1].len + len + 1);
                    if (text == NULL) {
                        return gl_conf_error(cp, "out of memory");
                    }
                    memcpy(text, op[-1].data, op[-1].len);
                    memcpy(text + op[-1].len, start, len);
                    op[-1].data = text;
                    op[-1].len += len;
                    continue;
                }

                text = gl_conf_alloc(conf, len + 1);
                if (text == NULL) {
                    return gl_conf_error(cp, "out of memory");
                }

                memcpy(text, start, len);
                op->op = GL_ALOG_TEXT;
                op->data = text;
                op->len = len;
                fmt->nops++;
                continue;
            }

            /* a variable */
            p++;

            /* as nginx's: a name is letters, digits and '_'; "${name}"
               ends at its '}' and nothing else */
            bracket = (*p == '{');
            p += bracket;
            start = p;

            while (isalnum((unsigned char) *p) || *p == '_') {
                p++;
            }

            end = p;

            if (bracket) {
                if (*p != '}') {
                    return gl_conf_error(cp, "the closing bracket in \"%.*s\" "
                                         "variable is missing",
                                         (int) (end - start), start);
                }
                p++;
            }

            len = end - start;

            if (len == 0) {
                return gl_conf_error(cp, "invalid parameter \"%s\"", strs[i]);
            }

            if (len > GL_ALOG_VAR_MAX) {
                return gl_conf_error(cp, "the variable name \"%.*s\" is too "
                                     "long", (int) len, start);
            }

            for (len = 0; start + len < end; len++) {
                name[len] = (char) tolower((unsigned char) start[len]);
            }
            name[len] = '\0';

            memset(op, 0, sizeof(gl_alog_op_t));

            rc = gl_alog_var(conf, op, name, len);

            if (rc == GL_ERROR) {
                return gl_conf_error(cp, "out of memory");
            }

            if (rc == GL_DECLINED) {
                return gl_conf_error(cp, "unknown \"%s\" variable", name);
            }

            fmt->nops++;
        }
    }

    return GL_OK;
}


/*
 * The format of that name: exactly (log_format's duplicates, as nginx's
 * ngx_strcmp), or in any case (access_log's, as nginx's ngx_strcasecmp,
 * where the first one defined wins: the list has the newest first).
 */
static gl_alog_fmt_t *
gl_alog_find_format(gl_alog_conf_t *acf, const char *name, int nocase)
{
    gl_alog_fmt_t  *fmt, *found;

    found = NULL;

    for (fmt = acf->formats; fmt != NULL; fmt = fmt->next) {
        if (!nocase && strcmp(fmt->name, name) == 0) {
            return fmt;
        }

        if (nocase && strcasecmp(fmt->name, name) == 0) {
            found = fmt;
        }
    }

    return found;
}


/* a new format of the config, compiled from n strings */
static gl_alog_fmt_t *
gl_alog_new_format(gl_conf_parser_t *cp, gl_alog_conf_t *acf,
    const char *name, gl_alog_esc_e esc, char **strs, int n)
{
    gl_alog_fmt_t  *fmt;

    fmt = gl_conf_alloc(cp->conf, sizeof(gl_alog_fmt_t));
    if (fmt == NULL || (fmt->name = gl_conf_strdup(cp->conf, name)) == NULL)
    {
        gl_conf_error(cp, "out of memory");
        return NULL;
    }

    fmt->escape = esc;

    if (gl_alog_compile(cp, fmt, strs, n) != GL_OK) {
        return NULL;
    }

    if (acf != NULL) {
        fmt->next = acf->formats;
        acf->formats = fmt;
    }

    return fmt;
}


/* nginx's predefined "combined": made for the first config that uses it */
static gl_alog_fmt_t *
gl_alog_combined(gl_conf_parser_t *cp, gl_alog_conf_t *acf)
{
    char  *strs[1] = { GL_ALOG_COMBINED };

    return gl_alog_new_format(cp, acf, "combined", GL_ALOG_ESC_DEFAULT, strs,
                              1);
}


/* log_format NAME [escape=default|json|none] STRING ... */
static int
gl_alog_set_format(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *conf)
{
    int              first;
    const char      *e;
    gl_alog_esc_e    esc;
    gl_alog_conf_t  *acf;

    (void) cmd;

    acf = conf;

    if (cp->nargs < 3) {
        return gl_conf_error(cp, "invalid number of arguments in "
                             "\"log_format\" directive");
    }

    if (strcmp(cp->args[1], "combined") == 0
        || gl_alog_find_format(acf, cp->args[1], 0) != NULL)
    {
        return gl_conf_error(cp, "duplicate \"log_format\" name \"%s\"",
                             cp->args[1]);
    }

    esc = GL_ALOG_ESC_DEFAULT;
    first = 2;

    if (strncmp(cp->args[2], "escape=", 7) == 0) {
        e = cp->args[2] + 7;

        if (strcmp(e, "default") == 0) {
            esc = GL_ALOG_ESC_DEFAULT;
        } else if (strcmp(e, "json") == 0) {
            esc = GL_ALOG_ESC_JSON;
        } else if (strcmp(e, "none") == 0) {
            esc = GL_ALOG_ESC_NONE;
        } else {
            return gl_conf_error(cp, "unknown log format escaping \"%s\"", e);
        }

        first = 3;

        if (cp->nargs < 4) {
            return gl_conf_error(cp, "invalid number of arguments in "
                                 "\"log_format\" directive");
        }
    }

    if (gl_alog_new_format(cp, acf, cp->args[1], esc, cp->args + first,
                           cp->nargs - first)
        == NULL)
    {
        return GL_ERROR;
    }

    return GL_OK;
}


/* access_log off | access_log FILE|syslog:... [FORMAT [if=CONDITION]] */
static int
gl_alog_set_log(gl_conf_parser_t *cp, const gl_command_t *cmd, void *conf)
{
    int              i;
    char             err[256];
    char            *strs[1];
    const char      *name;
    gl_alog_t       *log;
    gl_alog_conf_t  *acf;

    (void) cmd;

    acf = conf;

    if (strcmp(cp->args[1], "off") == 0) {
        if (cp->nargs != 2) {
            return gl_conf_error(cp, "invalid parameter \"%s\"", cp->args[2]);
        }

        acf->off = 1;
        return GL_OK;
    }

    if (acf->nlogs == GL_ALOG_MAX) {
        return gl_conf_error(cp, "too many \"access_log\" directives (at "
                             "most %d)", GL_ALOG_MAX);
    }

    log = &acf->logs[acf->nlogs];

    if (gl_syslog_is(cp->args[1])) {
        if (gl_syslog_check(cp->args[1], err, sizeof(err)) != GL_OK) {
            return gl_conf_error(cp, "%s", err);
        }

        log->path = gl_conf_strdup(cp->conf, cp->args[1]);

    } else {
        if (strchr(cp->args[1], '$') != NULL) {
            return gl_conf_error(cp, "variables in the \"access_log\" path "
                                 "are not supported: \"%s\"", cp->args[1]);
        }

        log->path = gl_conf_path(cp->conf, cp->args[1]);
    }

    if (log->path == NULL) {
        return gl_conf_error(cp, "out of memory");
    }

    name = (cp->nargs > 2) ? cp->args[2] : "combined";

    /* nginx's "combined" comes before any log_format: "COMBINED" is it */
    if (strcasecmp(name, "combined") == 0) {
        log->fmt = gl_alog_find_format(acf, "combined", 0);

        if (log->fmt == NULL) {
            log->fmt = gl_alog_combined(cp, acf);
            if (log->fmt == NULL) {
                return GL_ERROR;
            }
        }

    } else {
        log->fmt = gl_alog_find_format(acf, name, 1);
    }

    if (log->fmt == NULL) {
        return gl_conf_error(cp, "unknown log format \"%s\"", name);
    }

    for (i = 3; i < cp->nargs; i++) {
        /* if= again: the last one counts, as nginx's */
        if (strncmp(cp->args[i], "if=", 3) == 0) {
            strs[0] = cp->args[i] + 3;
            log->cond = gl_alog_new_format(cp, NULL, "if", GL_ALOG_ESC_COND,
                                           strs, 1);
            if (log->cond == NULL) {
                return GL_ERROR;
            }
            continue;
        }

        if (strncmp(cp->args[i], "buffer=", 7) == 0
            || strncmp(cp->args[i], "flush=", 6) == 0
            || strncmp(cp->args[i], "gzip", 4) == 0)
        {
            return gl_conf_error(cp, "\"%s\": golapis writes each line at "
                                 "once, unbuffered and uncompressed",
                                 cp->args[i]);
        }

        return gl_conf_error(cp, "invalid parameter \"%s\"", cp->args[i]);
    }

    acf->nlogs++;

    return GL_OK;
}


/* the files must open, as they will at start (for golapis -t) */
static const char *
gl_alog_init_conf(gl_conf_t *conf, void *mconf)
{
    int              i;
    gl_alog_conf_t  *acf = mconf;

    (void) conf;

    for (i = 0; !acf->off && i < acf->nlogs; i++) {
        if (gl_log_file_check(acf->logs[i].path) != GL_OK) {
            return gl_conf_errf("cannot write \"%s\" (%d: %s)",
                                acf->logs[i].path, errno, strerror(errno));
        }
    }

    return NULL;
}


static void
gl_alog_close_file(void *data)
{
    gl_log_file_close(data);
}


/* in the main thread, before the workers see conf: its files open (as
   root, given to the user golapis becomes) */
static int
gl_alog_init_main(gl_conf_t *conf)
{
    int              i;
    gl_alog_t       *log;
    gl_alog_conf_t  *acf;

    acf = gl_conf_module(conf, &gl_access_log_module);

    if (acf == NULL || acf->off) {
        return GL_OK;
    }

    for (i = 0; i < acf->nlogs; i++) {
        log = &acf->logs[i];

        if (log->file != NULL) {
            continue;
        }

        log->file = gl_log_file_open(log->path, conf->uid, conf->gid);

        if (log->file == NULL) {
            gl_log_error(GL_LOG_EMERG, errno, "open() \"%s\" failed",
                         log->path);
            return GL_ERROR;
        }

        if (gl_conf_cleanup_add(conf, gl_alog_close_file, log->file)
            != GL_OK)
        {
            gl_log_file_close(log->file);
            log->file = NULL;
            gl_log_error(GL_LOG_EMERG, 0, "out of memory");
            return GL_ERROR;
        }
    }

    return GL_OK;
}


static const gl_command_t  gl_alog_commands[] = {

    { "access_log", GL_CONF_1MORE, gl_alog_set_log, GL_CONF_MODULE, 0,
      NULL },

    { "log_format", GL_CONF_1MORE, gl_alog_set_format, GL_CONF_MODULE, 0,
      NULL },

    gl_null_command
};


gl_module_t  gl_access_log_module = {
    .name = "access_log",
    .commands = gl_alog_commands,
    .conf_size = sizeof(gl_alog_conf_t),
    .init_conf = gl_alog_init_conf,
    .init_main = gl_alog_init_main,
    .request_end = gl_alog_request_end,
};
