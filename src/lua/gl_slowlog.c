/*
 * The slow log, as php-fpm's: "request_slowlog_timeout TIME;" and
 * "slowlog FILE;".  A request still running TIME after it began gets one
 * entry in the slow log: when, which worker, its request line, its script
 * and the Lua traceback of each of its coroutines (the entry thread, its
 * light threads, the coroutines they resumed), wherever they are; and a
 * warning in the error log, as php-fpm's "executing too slow".
 *
 * Each worker keeps its requests in flight in the order their Lua side
 * began (vm->requests), so that their deadlines come in that order too
 * (nearly: a deadline counts from the request's first record, and a
 * client may send its params late; such a request gets its entry at the
 * check after, at most a timeout late).  Two ways lead to the same check
 * (gl_slow_check), which writes the entries of the requests whose
 * deadline has passed and that have none yet (a SIGHUP that changes the
 * timeout applies to the requests in flight, each still written once):
 *
 *   - a timer of the worker's loop, armed for the next deadline: the
 *     requests then wait (ngx.sleep, a cosocket, a semaphore, ...), and
 *     their suspended coroutines are walked with lua_getstack;
 *   - the watchdog (gl_watch.c), when Lua code runs at that deadline and
 *     keeps the loop from running the timer (a long loop): the worker
 *     publishes its next deadline, the watchdog signals it as for
 *     lua_block_warn_time, and its count hook runs the check with the
 *     running coroutine at hand.
 *
 * The tracebacks are made in C from lua_getstack/lua_getinfo: nothing is
 * allocated in the Lua state, so the check can run inside a hook.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_co.h"
#include "gl_http.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_request.h"
#include "gl_watch.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define GL_SLOW_FRAMES   40         /* frames of one traceback, at most */
#define GL_SLOW_IDLE     1.0        /* seconds between two looks when the
                                       slow log is off */

typedef struct {
    double              timeout;    /* request_slowlog_timeout; 0: off */
    char               *path;       /* slowlog */
    gl_log_file_t      *file;       /* init_main opens it */
} gl_slow_conf_t;

typedef struct {
    gl_vm_t            *vm;
    ev_timer            timer;
} gl_slow_worker_t;

/* an entry being written */
typedef struct {
    char               *p;
    size_t              len;
    size_t              cap;
    unsigned            failed:1;
} gl_slow_buf_t;

extern gl_module_t  gl_slowlog_module;

static pthread_once_t  gl_slow_once = PTHREAD_ONCE_INIT;


static void
gl_slow_add(gl_slow_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + n > b->cap) {
        cap = gl_max(b->cap * 2, b->len + n + 1024);
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
}


static void
gl_slow_addf(gl_slow_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gl_slow_addf(gl_slow_buf_t *b, const char *fmt, ...)
{
    int      n;
    char     buf[1024];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n > 0) {
        gl_slow_add(b, buf, gl_min((size_t) n, sizeof(buf) - 1));
    }
}


/* a value from the client, escaped as the access log's: '"', '\' and the
   bytes below 0x20 or from 0x7f as \xHH */
static void
gl_slow_add_escaped(gl_slow_buf_t *b, const char *s, size_t n)
{
    size_t          i;
    char            x[4];
    unsigned char   c;

    static const char  hex[] = "0123456789ABCDEF";

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            x[0] = '\\';
            x[1] = 'x';
            x[2] = hex[c >> 4];
            x[3] = hex[c & 0xf];
            gl_slow_add(b, x, 4);
        } else {
            gl_slow_add(b, (char *) &s[i], 1);
        }
    }
}


static void
gl_slow_add_param(gl_slow_buf_t *b, gl_request_t *r, const char *name,
    const char *before, const char *after)
{
    const gl_param_t  *p;

    p = gl_request_param(r, name, strlen(name));

    if (p != NULL && p->value_len > 0) {
        gl_slow_add(b, before, strlen(before));
        gl_slow_add_escaped(b, p->value, p->value_len);
        gl_slow_add(b, after, strlen(after));
    }
}


/*
 * The traceback of the coroutine (or state) co, as luaL_traceback writes
 * it; with chunk, its last frame, the function the code cache made of a
 * chunk, reads "in main chunk" as in golapis's error tracebacks
 * (gl_lua_traceback_of).
 */
static void
gl_slow_traceback(gl_slow_buf_t *b, lua_State *co, int chunk)
{
    int        level, last;
    lua_Debug  ar, next;

    gl_slow_add(b, "stack traceback:", 16);

    for (level = 0; lua_getstack(co, level, &ar); level++) {
        if (level == GL_SLOW_FRAMES) {
            gl_slow_add(b, "\n\t...", 5);
            break;
        }

        if (!lua_getinfo(co, "Snl", &ar)) {
            break;
        }

        last = !lua_getstack(co, level + 1, &next);

        gl_slow_addf(b, "\n\t%s:", ar.short_src);

        if (ar.currentline > 0) {
            gl_slow_addf(b, "%d:", ar.currentline);
        }

        if (ar.namewhat != NULL && *ar.namewhat) {
            gl_slow_addf(b, " in function '%s'", ar.name ? ar.name : "?");

        } else if (*ar.what == 'm' || (chunk && last && *ar.what == 'L')) {
            gl_slow_add(b, " in main chunk", 14);

        } else if (*ar.what == 'C') {
            gl_slow_add(b, " in a C function", 16);

        } else {
            gl_slow_addf(b, " in function <%s:%d>", ar.short_src,
                         ar.linedefined);
        }
    }

    gl_slow_add(b, "\n", 1);
}


static void
gl_slow_co(gl_slow_buf_t *b, gl_co_t *co)
{
    static const char  *kinds[] = { "entry thread", "coroutine",
                                    "light thread" };

    gl_slow_addf(b, "%s (", kinds[co->kind]);

    if (co->wait.ops != NULL) {
        gl_slow_addf(b, "waiting: %s", co->wait.ops->name);

    } else if (co->status == GL_CO_RUNNING) {
        gl_slow_add(b, "running", 7);

    } else if (co->status == GL_CO_NORMAL) {
        gl_slow_add(b, "resuming another", 16);

    } else if (gl_posted(&co->ready)) {
        gl_slow_add(b, "ready to run", 12);

    } else {
        gl_slow_add(b, gl_co_status_names[co->status],
                    strlen(gl_co_status_names[co->status]));
    }

    gl_slow_add(b, "):\n", 3);
    gl_slow_traceback(b, co->L, co->kind == GL_CO_ENTRY);
}


/* what the request runs: its content handler's file, or its script */
static void
gl_slow_script(gl_slow_buf_t *b, gl_http_t *h)
{
    gl_lua_handler_t  *hd;

    hd = &h->r.conf->handlers[GL_PHASE_CONTENT];

    if (hd->file != NULL) {
        gl_slow_add(b, hd->file, strlen(hd->file));

    } else if (hd->chunkname != NULL) {
        gl_slow_add(b, hd->chunkname + (hd->chunkname[0] == '='),
                    strlen(hd->chunkname + (hd->chunkname[0] == '=')));

    } else {
        gl_slow_add_param(b, &h->r, "SCRIPT_FILENAME", "", "");
    }
}


/*
 * One entry for h, running for `age` seconds.  running: the Lua state of
 * the code that runs now, if it is h's (the watchdog's way), else NULL.
 */
static void
gl_slow_report(gl_slow_conf_t *scf, gl_http_t *h, double age,
    lua_State *running)
{
    int               seen;
    time_t            now;
    struct tm         tm;
    char              date[64];
    gl_co_t          *co;
    gl_queue_t       *q;
    gl_slow_buf_t     b;
    gl_log_ctx_t     *saved;
    gl_request_t     *r;
    const gl_param_t *m, *u, *p;

    r = &h->r;
    memset(&b, 0, sizeof(b));

    now = time(NULL);
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d-%b-%Y %H:%M:%S", &tm);

    /* as php-fpm's: "[date]  [pool www] pid N" */
    gl_slow_addf(&b, "[%s]  [worker %d] pid %d\nscript_filename = ", date,
                 h->vm->id, (int) getpid());
    gl_slow_script(&b, h);

    m = gl_request_param(r, "REQUEST_METHOD", 14);
    u = gl_request_param(r, "REQUEST_URI", 11);
    p = gl_request_param(r, "SERVER_PROTOCOL", 15);

    gl_slow_add(&b, "\nrequest = \"", 12);

    if (m != NULL && u != NULL) {
        gl_slow_add_escaped(&b, m->value, m->value_len);
        gl_slow_add(&b, " ", 1);
        gl_slow_add_escaped(&b, u->value, u->value_len);

        if (p != NULL && p->value_len > 0) {
            gl_slow_add(&b, " ", 1);
            gl_slow_add_escaped(&b, p->value, p->value_len);
        }
    }

    gl_slow_add(&b, "\"", 1);
    gl_slow_add_param(&b, r, "REMOTE_ADDR", ", client: ", "");
    gl_slow_add_param(&b, r, "HTTP_HOST", ", host: \"", "\"");
    gl_slow_addf(&b, ", running for %.3fs, in %s\n", age,
                 gl_lua_context_name(h->task.context));

    seen = 0;

    for (q = gl_queue_head(&h->task.live);
         q != gl_queue_sentinel(&h->task.live);
         q = gl_queue_next(q))
    {
        co = gl_queue_data(q, gl_co_t, live);

        if (co->status == GL_CO_DEAD || co->status == GL_CO_ZOMBIE) {
            continue;
        }

        seen |= (co->L == running);
        gl_slow_co(&b, co);
    }

    if (running != NULL && !seen) {
        /* code that runs as a plain call (a filter), on the state */
        gl_slow_add(&b, "running code:\n", 14);
        gl_slow_traceback(&b, running, 1);
    }

    gl_slow_add(&b, "\n", 1);

    if (b.failed) {
        gl_log_error(GL_LOG_ALERT, 0, "no memory for an entry of the slow "
                     "log \"%s\"", scf->path);

    } else {
        gl_log_file_write(scf->file, b.p, b.len);
    }

    free(b.p);

    /* and in the error log, as php-fpm's; a burst of slow requests (a
       backend that hangs) has every entry in the slow log, but no more
       than the rate limit's lines in the error log */
    saved = gl_log_set_ctx(&h->log);
    gl_log_error_limited(GL_LOG_WARN, 0, "request running for %.3fs "
                         "(request_slowlog_timeout %gs), logged in \"%s\"",
                         age, scf->timeout, scf->path);
    (void) gl_log_set_ctx(saved);
}


/*
 * Writes the entries of the worker's requests whose deadline passed and
 * that have none yet, and returns the time of the next deadline; publishes it
 * for the watchdog.  running: the Lua state running now (from the hook),
 * or NULL (from the loop).
 */
static double
gl_slow_check(gl_slow_worker_t *sw, lua_State *running)
{
    double           now, d, next;
    gl_http_t       *h, *cur;
    gl_queue_t      *q;
    gl_slow_conf_t  *scf;

    now = ev_time();
    scf = gl_conf_module(sw->vm->conf, &gl_slowlog_module);

    if (scf == NULL || scf->timeout <= 0 || scf->file == NULL) {
        gl_watch_slow_at(0);
        return now + GL_SLOW_IDLE;
    }

    cur = (running != NULL) ? gl_http_current() : NULL;
    next = now + scf->timeout;

    for (q = gl_queue_head(&sw->vm->requests);
         q != gl_queue_sentinel(&sw->vm->requests);
         q = gl_queue_next(q))
    {
        h = gl_queue_data(q, gl_http_t, in_flight);
        d = h->r.start_time + scf->timeout;

        if (d > now) {
            /* the rest began later */
            next = d;
            break;
        }

        if (h->slow_logged) {
            /* done at an earlier check */
            continue;
        }

        h->slow_logged = 1;
        gl_slow_report(scf, h, now - h->r.start_time,
                       h == cur ? running : NULL);
    }

    gl_watch_slow_at(gl_watch_clock()
                     + (uint64_t) ((next - now) * 1000) + 1);

    return next;
}


static void
gl_slow_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    double             next;
    gl_slow_worker_t  *sw;

    (void) revents;

    sw = t->data;
    next = gl_slow_check(sw, NULL);

    ev_timer_set(t, gl_max(next - ev_time(), 0.001), 0);
    ev_timer_start(loop, t);
}


/* from the watchdog, in the worker's count hook */
static void
gl_slow_hook(lua_State *L)
{
    gl_slow_worker_t  **slot;

    if (gl_vm_self == NULL) {
        return;
    }

    slot = (gl_slow_worker_t **) gl_vm_module_data(gl_vm_self,
                                                   &gl_slowlog_module);

    if (*slot != NULL) {
        (void) gl_slow_check(*slot, L);
    }
}


static void
gl_slow_register(void)
{
    gl_watch_on_slow(gl_slow_hook);
}


static int
gl_slow_init_worker(gl_vm_t *vm)
{
    gl_slow_worker_t  *sw;

    pthread_once(&gl_slow_once, gl_slow_register);

    sw = calloc(1, sizeof(gl_slow_worker_t));
    if (sw == NULL) {
        gl_log_error(GL_LOG_EMERG, errno, "no memory for the slow log");
        return GL_ERROR;
    }

    sw->vm = vm;

    ev_timer_init(&sw->timer, gl_slow_timer_cb, 0.001, 0);
    sw->timer.data = sw;
    ev_timer_start(vm->loop, &sw->timer);

    *gl_vm_module_data(vm, &gl_slowlog_module) = sw;

    return GL_OK;
}


static void
gl_slow_exit_worker(gl_vm_t *vm)
{
    gl_slow_worker_t  **slot;

    slot = (gl_slow_worker_t **) gl_vm_module_data(vm, &gl_slowlog_module);

    if (*slot != NULL) {
        ev_timer_stop(vm->loop, &(*slot)->timer);
        gl_watch_slow_at(0);
        free(*slot);
        *slot = NULL;
    }
}


/* the directives */

static const char *
gl_slow_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_slow_conf_t  *scf = mconf;

    (void) conf;

    gl_conf_init_value(scf->timeout, 0);

    if (scf->timeout > 0 && scf->path == NULL) {
        return "\"slowlog\" must be specified for use with "
               "\"request_slowlog_timeout\"";
    }

    /* the file must open, as it will at start (for golapis -t) */
    if (scf->path != NULL && gl_log_file_check(scf->path) != GL_OK) {
        return gl_conf_errf("cannot write \"%s\" (%d: %s)", scf->path,
                            errno, strerror(errno));
    }

    return NULL;
}


static void
gl_slow_close_file(void *data)
{
    gl_log_file_close(data);
}


static int
gl_slow_init_main(gl_conf_t *conf)
{
    gl_slow_conf_t  *scf;

    scf = gl_conf_module(conf, &gl_slowlog_module);

    if (scf == NULL || scf->path == NULL || scf->file != NULL) {
        return GL_OK;
    }

    scf->file = gl_log_file_open(scf->path, conf->uid, conf->gid);

    if (scf->file == NULL) {
        gl_log_error(GL_LOG_EMERG, errno, "open() \"%s\" failed", scf->path);
        return GL_ERROR;
    }

    if (gl_conf_cleanup_add(conf, gl_slow_close_file, scf->file) != GL_OK) {
        gl_log_file_close(scf->file);
        scf->file = NULL;
        gl_log_error(GL_LOG_EMERG, 0, "out of memory");
        return GL_ERROR;
    }

    return GL_OK;
}


static const gl_command_t  gl_slow_commands[] = {

    { "request_slowlog_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      GL_CONF_MODULE, offsetof(gl_slow_conf_t, timeout), NULL },

    { "slowlog", GL_CONF_TAKE1, gl_conf_set_path_slot, GL_CONF_MODULE,
      offsetof(gl_slow_conf_t, path), NULL },

    gl_null_command
};


gl_module_t  gl_slowlog_module = {
    .name = "slowlog",
    .commands = gl_slow_commands,
    .conf_size = sizeof(gl_slow_conf_t),
    .init_conf = gl_slow_init_conf,
    .init_main = gl_slow_init_main,
    .init_worker = gl_slow_init_worker,
    .exit_worker = gl_slow_exit_worker,
};
