/*
 * A request's Lua side (see gl_http.h): the phases, each run as a new
 * entry coroutine of the request's task; the filters and the log handler,
 * which cannot wait and run as plain calls; the waits the FastCGI side
 * ends (the body, the output queue); and the end of the request.
 *
 * Lifetime: the FastCGI side allocates a gl_http_t with each request and
 * frees it.  The request ends here (gl_http_finish: the log handler, the
 * rest of the response, the Lua references let go); if its coroutines
 * run at that moment, the block is freed when they stop (leave), not
 * under them.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_http.h"
#include "gl_watch.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_request.h"

#include <ctype.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

static void gl_http_start(gl_request_t *r);
static void gl_http_start_lua(gl_http_t *h);
static void gl_http_stdin(gl_request_t *r);
static void gl_http_drained(gl_request_t *r);
static int gl_http_cancel(gl_request_t *r, int abort);
static int gl_http_header(gl_request_t *r);
static int gl_http_output(gl_request_t *r, const u_char *data, size_t len,
    int last);

static void gl_http_enter(gl_task_t *t);
static void gl_http_leave(gl_task_t *t);
static void gl_http_done(gl_task_t *t, int rc);

static void gl_http_phase_done(gl_http_t *h);
static void gl_http_fail(gl_http_t *h, int status);
static void gl_http_finish(gl_http_t *h);
static void gl_http_release(gl_http_t *h);
static int gl_http_call_sync(gl_http_t *h, int phase, int nargs);
static int gl_http_log_start(gl_http_t *h);
static void gl_http_trim(gl_conf_t *conf);

const gl_request_handler_t  gl_http_handler = {
    sizeof(gl_http_t),
    gl_http_start,
    gl_http_stdin,
    gl_http_drained,
    gl_http_cancel,
    gl_http_header,
    gl_http_output
};

static int gl_http_error(gl_task_t *t, gl_co_t *co);

static const gl_task_ops_t  gl_http_task_ops = {
    gl_http_enter,
    gl_http_leave,
    gl_http_done,
    gl_http_error
};

/* the error object of ngx.exit() in a handler that cannot yield */
static char  gl_http_exit_key;

#define gl_http_of_task(t)                                                   \
    ((gl_http_t *) ((u_char *) (t) - offsetof(gl_http_t, task)))


gl_http_t *
gl_http_current(void)
{
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL || t->ops != &gl_http_task_ops) {
        return NULL;
    }

    return gl_http_of_task(t);
}


/*
 * For Lua modules through LuaJIT's FFI (resty.core.base's get_request):
 * the request running now, as an opaque pointer, or NULL.
 */
void *gl_ffi_get_request(void);

void *
gl_ffi_get_request(void)
{
    return gl_http_current();
}


gl_http_t *
gl_http_get(lua_State *L, unsigned mask)
{
    gl_http_t  *h;

    (void) gl_lua_check_context(L, mask);

    h = gl_http_current();

    if (h == NULL) {
        luaL_error(L, "API disabled in the current context");
    }

    return h;
}


int
gl_http_has_handler(gl_http_t *h, int phase)
{
    gl_lua_handler_t  *hd;

    hd = &h->r.conf->handlers[phase];

    return hd->file != NULL || hd->code != NULL;
}


/* the log context: what nginx's request log handler appends to each line
   of the request, rebuilt from the FastCGI params */

static size_t
gl_http_log_add(char *p, char *end, const char *s, size_t len)
{
    len = gl_min(len, (size_t) (end - p));
    memcpy(p, s, len);

    return len;
}


static size_t
gl_http_log_param(gl_request_t *r, char *p, char *end, const char *name,
    const char *before, const char *after)
{
    char              *start;
    const gl_param_t  *v;

    v = gl_request_param(r, name, strlen(name));
    if (v == NULL) {
        return 0;
    }

    start = p;
    p += gl_http_log_add(p, end, before, strlen(before));
    p += gl_http_log_add(p, end, v->value, v->value_len);
    p += gl_http_log_add(p, end, after, strlen(after));

    return p - start;
}


static size_t
gl_http_log_handler(gl_log_ctx_t *ctx, char *buf, size_t size)
{
    char              *p, *end;
    gl_http_t         *h;
    gl_request_t      *r;
    const gl_param_t  *method, *uri, *proto;

    h = (gl_http_t *) ((u_char *) ctx - offsetof(gl_http_t, log));
    r = &h->r;
    p = buf;
    end = buf + size;

    if (h->task.context == GL_PHASE_LOG) {
        /* nginx's log action then */
        p += gl_http_log_add(p, end, " while logging request", 22);
    }

    p += gl_http_log_param(r, p, end, "REMOTE_ADDR", ", client: ", "");
    p += gl_http_log_param(r, p, end, "SERVER_NAME", ", server: ", "");

    method = gl_request_param(r, "REQUEST_METHOD", 14);
    uri = gl_request_param(r, "REQUEST_URI", 11);
    proto = gl_request_param(r, "SERVER_PROTOCOL", 15);

    if (method != NULL && uri != NULL) {
        p += gl_http_log_add(p, end, ", request: \"", 12);
        p += gl_http_log_add(p, end, method->value, method->value_len);
        p += gl_http_log_add(p, end, " ", 1);
        p += gl_http_log_add(p, end, uri->value, uri->value_len);

        if (proto != NULL && proto->value_len) {
            p += gl_http_log_add(p, end, " ", 1);
            p += gl_http_log_add(p, end, proto->value, proto->value_len);
        }

        p += gl_http_log_add(p, end, "\"", 1);
    }

    p += gl_http_log_param(r, p, end, "HTTP_HOST", ", host: \"", "\"");
    p += gl_http_log_param(r, p, end, "HTTP_REFERER", ", referrer: \"",
                           "\"");

    return p - buf;
}


/* the handler's hooks */

static void
gl_http_start(gl_request_t *r)
{
    gl_http_t     *h;
    gl_log_ctx_t  *saved;

    h = (gl_http_t *) r;
    h->log.handler = gl_http_log_handler;
    h->log.conn = r->conn_number;
    saved = gl_log_set_ctx(&h->log);

    gl_http_start_lua(h);

    (void) gl_log_set_ctx(saved);
}


/* on the worker's list of requests in flight (vm->requests), which
   stays in the order they began (a request's params may take longer than
   those of the next one) */
static void
gl_http_in_flight(gl_http_t *h)
{
    gl_queue_t  *q;

    for (q = gl_queue_last(&h->vm->requests);
         q != gl_queue_sentinel(&h->vm->requests);
         q = q->prev)
    {
        if (gl_queue_data(q, gl_http_t, in_flight)->r.start_time
            <= h->r.start_time)
        {
            break;
        }
    }

    /* after q */
    gl_queue_insert_head(q, &h->in_flight);
}


/*
 * The request ends: the modules' request_end hooks (the access log's
 * line, ...).  Also for a request answered before any Lua ran
 * (status_uri, ping_uri, no Lua state for it), so that it has its line
 * in the access log as any other.
 */
static void
gl_http_request_end(gl_http_t *h)
{
    gl_module_t  **m;

    for (m = h->r.conf->modules; *m != NULL; m++) {
        if ((*m)->request_end != NULL) {
            (*m)->request_end(h);
        }
    }
}


static void
gl_http_start_lua(gl_http_t *h)
{
    lua_State      *L;
    gl_request_t   *r;
    gl_module_t   **m;

    r = &h->r;
    h->vm = gl_vm_self;
    h->var_ref = LUA_NOREF;
    h->env_ref = LUA_NOREF;
    h->lf_ref = LUA_NOREF;
    h->on_abort_ref = LUA_NOREF;
    gl_queue_init(&h->body_waiters);
    gl_queue_init(&h->drain_waiters);

    for (m = r->conf->modules; *m != NULL; m++) {
        if ((*m)->request_start != NULL && (*m)->request_start(h) == GL_OK) {
            gl_request_finalize(r);
            gl_http_request_end(h);
            h->over = 1;
            gl_request_free(r);
            return;
        }
    }

    /* lua_code_cache off: a fresh Lua state for each request, as
       OpenResty's */
    h->gen = r->conf->code_cache ? gl_lua_gen_take(h->vm)
                                 : gl_lua_gen_fresh(h->vm);

    if (h->gen == NULL) {
        gl_request_error_page(r, 500);
        gl_request_finalize(r);
        gl_http_request_end(h);
        h->over = 1;
        gl_request_free(r);
        return;
    }

    L = h->gen->L;

    /* the garbage of a request that ran out of memory goes before this
       one loads its code */
    gl_watch_mem_check(L);

    gl_task_init(&h->task, &h->vm->sched, L, &gl_http_task_ops,
                 GL_PHASE_INIT_WORKER);
    h->task.chunk = 1;

    gl_http_in_flight(h);

    if (r->body_too_large) {
        gl_http_fail(h, 413);
        return;
    }

    if (r->conf->need_request_body) {
        /* lua_need_request_body: the body is read before any phase */
        if (!r->stdin_done) {
            h->body_wait = 1;
            return;
        }

        r->body_read = 1;
    }

    gl_http_phase_done(h);
}


static void
gl_http_stdin(gl_request_t *r)
{
    gl_co_t    *co;
    gl_http_t  *h;

    h = (gl_http_t *) r;

    if (h->stdin_handler != NULL) {
        h->stdin_handler(h->stdin_data);
    }

    if (h->body_wait) {
        if (r->body_too_large || r->body_error) {
            h->body_wait = 0;
            gl_http_fail(h, r->body_too_large ? 413 : 500);
            return;
        }

        if (r->stdin_done) {
            h->body_wait = 0;
            r->body_read = 1;
            gl_http_phase_done(h);
        }

        return;
    }

    if (gl_queue_empty(&h->body_waiters)) {
        return;
    }

    if (r->body_too_large || r->body_error) {
        gl_http_fail(h, r->body_too_large ? 413 : 500);
        return;
    }

    if (!r->stdin_done) {
        return;
    }

    r->body_read = 1;

    while ((co = gl_co_waitq_first(&h->body_waiters)) != NULL) {
        gl_co_wake(co, 0);
    }
}


/*
 * ngx.print waiting for the queue to fall under GL_OUT_LOW, or
 * ngx.flush(true) waiting for it to empty: the waiters go on in order
 * while they can.
 */
static void
gl_http_drained(gl_request_t *r)
{
    size_t      n;
    gl_co_t    *co;
    gl_http_t  *h;

    h = (gl_http_t *) r;

    while ((co = gl_co_waitq_first(&h->drain_waiters)) != NULL) {

        if (co->wait.data == NULL) {
            /* ngx.flush(true) */
            if (gl_request_queued(r) != 0) {
                break;
            }

        } else {
            while (co->wait.len && gl_request_queued(r) <= GL_OUT_HIGH) {
                n = gl_min(co->wait.len, 16384);

                if (gl_request_output(r, co->wait.buf, n) != GL_OK) {
                    co->wait.len = 0;
                    break;
                }

                co->wait.buf += n;
                co->wait.len -= n;
            }

            gl_request_flush(r);

            if (co->wait.len) {
                break;
            }
        }

        lua_pushinteger(co->L, 1);
        gl_co_wake(co, 1);
    }

    if (!gl_queue_empty(&h->drain_waiters)) {
        (void) gl_request_want_drain(r);
    }
}


/* ngx.print and ngx.flush(true) waiting on a connection that is gone */
static void
gl_http_output_gone(gl_http_t *h)
{
    gl_co_t  *co;

    while ((co = gl_co_waitq_first(&h->drain_waiters)) != NULL) {
        lua_pushnil(co->L);
        lua_pushliteral(co->L, "nginx output filter error");
        gl_co_wake(co, 2);
    }
}


/*
 * The client is gone (abort), or the worker exits.  As lua-nginx-module:
 * without lua_check_client_abort the request goes on to its end (its
 * output goes nowhere); with it, its ngx.on_abort thread starts, or, if it
 * has none, the request stops with 499 (its log handler runs).  A request
 * that waits for a body which will not come stops anyway.
 */
static int
gl_http_cancel(gl_request_t *r, int abort)
{
    gl_http_t  *h;

    h = (gl_http_t *) r;

    if (!h->over && abort && r->stdin_done && h->gen != NULL
        && (!r->conf->check_client_abort || h->on_abort != NULL))
    {
        /* its output goes nowhere from now on: who waits to write goes on
           with nginx's answer to a write on a dead connection */
        gl_http_output_gone(h);

        if (h->on_abort != NULL
            && h->on_abort->status == GL_CO_SUSPENDED)
        {
            gl_co_thread_start(h->on_abort);
        }

        return GL_AGAIN;
    }

    if (h->logging) {
        /* the worker exits while a log handler waits */
        h->logging = 0;
        gl_task_cancel(&h->task);
        gl_http_release(h);
    }

    if (!h->over) {
        h->over = 1;
        gl_task_cancel(&h->task);

        if (abort && h->gen != NULL) {
            if (!r->header_sent) {
                r->status = 499;
            }

            if (gl_http_has_handler(h, GL_PHASE_LOG)) {
                (void) gl_http_call_sync(h, GL_PHASE_LOG, 0);
            }
        }

        gl_http_release(h);
    }

    gl_request_free(r);

    return GL_OK;
}


/* the task's ops */

static void
gl_http_enter(gl_task_t *t)
{
    gl_http_t  *h;

    h = gl_http_of_task(t);
    h->running = 1;
    h->saved_log = gl_log_set_ctx(&h->log);

    if (h->r.conn != NULL) {
        h->held = h->r.conn;
        gl_conn_hold(h->held);
    }
}


static void
gl_http_leave(gl_task_t *t)
{
    gl_conn_t  *c;
    gl_http_t  *h;

    h = gl_http_of_task(t);
    h->running = 0;
    c = h->held;
    h->held = NULL;
    (void) gl_log_set_ctx(h->saved_log);

    if (h->over) {
        /* finished while its coroutines ran (unless its log handler goes
           on) */
        if (!h->logging) {
            gl_request_free(&h->r);
        }

    } else {
        /* what was produced so far goes out while the script waits */
        gl_request_flush(&h->r);
    }

    if (c != NULL) {
        /* this may cancel and free the request, if the connection died */
        gl_conn_write(c);
        gl_conn_release(c);
    }
}


/*
 * The phase's entry coroutine and threads are done: rc GL_OK (on to the
 * next phase), GL_ERROR (an error, logged: a 500, or the answer cut
 * short if it had started), GL_DONE (ngx.exit).
 */
static void
gl_http_done(gl_task_t *t, int rc)
{
    int             status;
    gl_http_t      *h;
    gl_request_t   *r;
    gl_module_t   **m;

    h = gl_http_of_task(t);
    r = &h->r;

    if (h->logging) {
        /* log_by_lua is over: so is the request (freed on leave) */
        h->logging = 0;
        gl_request_finalize(r);
        gl_http_release(h);
        gl_http_trim(r->conf);
        return;
    }

    if (rc == GL_OK) {
        if (t->context == GL_PHASE_CONTENT) {
            for (m = r->conf->modules; *m != NULL; m++) {
                if ((*m)->content_done != NULL
                    && (*m)->content_done(h) == GL_OK)
                {
                    /* it runs more of the content phase */
                    return;
                }
            }
        }

        gl_http_phase_done(h);
        return;
    }

    if (rc == GL_ERROR) {
        if (r->header_sent) {
            /* as nginx: the client must not take half an answer for the
               whole */
            gl_request_abort(r);
            gl_http_finish(h);
            return;
        }

        gl_http_fail(h, 500);
        return;
    }

    /* ngx.exit */
    status = h->exit_status;

    if (status == -1 && r->header_sent) {
        /* ngx.ERROR after output: nginx drops the client connection */
        gl_request_abort(r);
        gl_http_finish(h);
        return;
    }

    if (status == -1 || status == -2) {
        /* ngx.ERROR, ngx.AGAIN */
        status = 500;
    }

    if (status == 0 && (t->context == GL_PHASE_REWRITE
                        || t->context == GL_PHASE_ACCESS))
    {
        /* ngx.exit(ngx.OK) in rewrite or access: on to the next phase */
        gl_http_phase_done(h);
        return;
    }

    if (status >= 200 && !r->header_sent) {
        if (status >= 300 && status != 304) {
            gl_request_error_page(r, status);
        } else {
            r->status = status;
        }
    }

    gl_http_finish(h);
}


/* phases */

/* path ends with one of the script_extensions */
static int
gl_http_script_ext(gl_conf_t *conf, const char *path, size_t len)
{
    int     i;
    size_t  n;

    for (i = 0; i < conf->nscript_ext; i++) {
        n = strlen(conf->script_ext[i]);

        if (len > n && memcmp(path + len - n, conf->script_ext[i], n) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Finds the script: SCRIPT_FILENAME, an absolute path with no NUL byte,
 * with every "..", "." and symlink resolved must lie inside the
 * document_root, and both it and the file it resolves to must end with
 * one of the script_extensions.  The DOCUMENT_ROOT param decides
 * nothing.  Returns 0 with the path in buf, or an HTTP status.
 */
/* the path asked for and the one found, escaped for a log line (nginx
   decoded them: a newline could forge a line), made only if logged */
#define GL_HTTP_V   gl_log_escape(v, sizeof(v), p->value, p->value_len)
#define GL_HTTP_RV  gl_log_escape(rv, sizeof(rv), buf, strlen(buf))

static int
gl_http_script(gl_http_t *h, char *buf)
{
    size_t             len;
    char               v[1024], rv[1024];
    const char        *root;
    struct stat        st;
    gl_request_t      *r;
    const gl_param_t  *p;

    r = &h->r;

    p = gl_request_param(r, "SCRIPT_FILENAME", 15);
    if (p == NULL || p->value_len == 0) {
        gl_log_error(GL_LOG_ERR, 0, "request %d has no SCRIPT_FILENAME "
                     "param; is fastcgi_param SCRIPT_FILENAME set?", r->id);
        return 404;
    }

    /* "/www/a.lua\0.php" would run a.lua where .php was asked for */
    if (memchr(p->value, '\0', p->value_len) != NULL
        || p->value[0] != '/' || p->value_len >= PATH_MAX)
    {
        gl_log_error(GL_LOG_ERR, 0, "request %d: SCRIPT_FILENAME \"%s\" is "
                     "not a possible path (a NUL byte, not absolute or too "
                     "long), not run", r->id, GL_HTTP_V);
        return 403;
    }

    if (!gl_http_script_ext(r->conf, p->value, p->value_len)) {
        gl_log_error(GL_LOG_ERR, 0, "script \"%s\" does not end with one "
                     "of the script_extensions, not run", GL_HTTP_V);
        return 403;
    }

    if (realpath(p->value, buf) == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            gl_log_error(GL_LOG_INFO, 0, "script \"%s\" not found",
                         GL_HTTP_V);
            return 404;
        }

        gl_log_error(GL_LOG_ERR, errno, "script \"%s\"", GL_HTTP_V);
        return errno == EACCES ? 403 : 500;
    }

    root = h->vm->docroot;

    if (root == NULL) {
        /* the config check requires document_root without a content
           handler: not reached */
        gl_log_error(GL_LOG_ERR, 0, "no document_root is configured: "
                     "\"%s\" is not run", GL_HTTP_RV);
        return 403;
    }

    len = strlen(root);

    if (strncmp(buf, root, len) != 0
        || (buf[len] != '/' && !(len == 1 && root[0] == '/')))
    {
        gl_log_error(GL_LOG_ERR, 0, "script \"%s\" is outside the document "
                     "root \"%s\", not run", GL_HTTP_RV, root);
        return 403;
    }

    if (!gl_http_script_ext(r->conf, buf, strlen(buf))) {
        gl_log_error(GL_LOG_ERR, 0, "script \"%s\" is \"%s\", which does "
                     "not end with one of the script_extensions, not run",
                     GL_HTTP_V, GL_HTTP_RV);
        return 403;
    }

    if (stat(buf, &st) == -1 || !S_ISREG(st.st_mode)) {
        gl_log_error(GL_LOG_ERR, 0, "script \"%s\" is not a regular file",
                     GL_HTTP_RV);
        return 403;
    }

    return 0;
}

#undef GL_HTTP_V
#undef GL_HTTP_RV


/* pushes the globals of the request, made on first use */
static void
gl_http_push_env(lua_State *L, gl_http_t *h)
{
    if (h->env_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->env_ref);
        return;
    }

    gl_lua_new_env(L);
    lua_pushvalue(L, -1);
    h->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}


/*
 * Pushes the handler's function, ready to call: the factory's fresh
 * closure with the request's globals.  GL_ERROR with a log line if the
 * code does not compile.
 */
static int
gl_http_push_handler(gl_http_t *h, gl_lua_handler_t *hd, const char *path)
{
    lua_State  *L;

    L = h->gen->L;

    if (gl_lua_push_code(L, h->r.conf, hd, path) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "failed to load %s: %s",
                     hd ? (hd->file ? "Lua file" : "inline Lua code")
                        : "Lua script", lua_tostring(L, -1));
        lua_pop(L, 1);
        return GL_ERROR;
    }

    gl_http_push_env(L, h);
    lua_setfenv(L, -2);

    return GL_OK;
}


/* runs a rewrite, access or content handler (hd), or a script (path), as
   the task's entry coroutine */
static void
gl_http_run(gl_http_t *h, int phase, gl_lua_handler_t *hd, const char *path)
{
    if (gl_http_push_handler(h, hd, path) != GL_OK) {
        gl_http_fail(h, 500);
        return;
    }

    h->task.context = phase;

    if (gl_task_start(&h->task, 0) != GL_OK) {
        gl_http_fail(h, 500);
    }
}


/*
 * Runs the next phase after the current one: rewrite and access handlers
 * when configured, then the content handler or the script; after content,
 * the request is over.
 */
static void
gl_http_phase_done(gl_http_t *h)
{
    int                phase, status;
    gl_conf_t         *conf;
    gl_lua_handler_t  *hd;
    char               buf[PATH_MAX];

    conf = h->r.conf;
    phase = h->task.context;

    if (phase >= GL_PHASE_CONTENT || h->r.header_sent) {
        /* a rewrite or access handler that answered ends the request */
        gl_http_finish(h);
        return;
    }

    while (++phase < GL_PHASE_CONTENT) {
        hd = &conf->handlers[phase];

        if (hd->file != NULL || hd->code != NULL) {
            gl_http_run(h, phase, hd, NULL);
            return;
        }
    }

    hd = &conf->handlers[GL_PHASE_CONTENT];

    if (hd->file != NULL || hd->code != NULL) {
        gl_http_run(h, GL_PHASE_CONTENT, hd, NULL);
        return;
    }

    status = gl_http_script(h, buf);
    if (status != 0) {
        h->task.context = GL_PHASE_CONTENT;
        gl_http_fail(h, status);
        return;
    }

    gl_http_run(h, GL_PHASE_CONTENT, NULL, buf);
}


/* the end */

static void
gl_http_fail(gl_http_t *h, int status)
{
    gl_request_error_page(&h->r, status);
    gl_http_finish(h);
}


/* what the Lua side holds for the request goes */
static void
gl_http_release(gl_http_t *h)
{
    lua_State  *L;

    gl_task_cancel(&h->task);
    gl_task_cleanup(&h->task);

    if (h->gen == NULL) {
        return;
    }

    gl_http_request_end(h);

    if (gl_queue_linked(&h->in_flight)) {
        gl_queue_remove(&h->in_flight);
    }

    L = h->gen->L;

    gl_lua_free_ctx(&h->task);
    luaL_unref(L, LUA_REGISTRYINDEX, h->var_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, h->env_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, h->on_abort_ref);
    h->var_ref = LUA_NOREF;
    h->env_ref = LUA_NOREF;
    h->on_abort_ref = LUA_NOREF;
    h->on_abort = NULL;

    gl_lua_gen_release(h->gen);
    h->gen = NULL;
}


/* lua_malloc_trim N: every N requests the worker's thread gives its free
   heap back to the system, as lua-nginx-module's */
static void
gl_http_trim(gl_conf_t *conf)
{
#ifdef __GLIBC__
    static _Thread_local int  n;

    if (conf->malloc_trim > 0 && ++n >= conf->malloc_trim) {
        n = 0;
        (void) malloc_trim(1);
    }
#else
    (void) conf;
#endif
}


/*
 * The request is over (normally, by ngx.exit, by an error): the rest of
 * the response and END_REQUEST go, the log handler runs, and the request
 * is freed (when its coroutines stop, if they run now).
 */
static void
gl_http_finish(gl_http_t *h)
{
    if (h->over) {
        return;
    }

    h->over = 1;

    gl_task_cancel(&h->task);
    gl_request_finalize(&h->r);

    if (gl_http_has_handler(h, GL_PHASE_LOG) && gl_http_log_start(h) == GL_OK)
    {
        /* the response went; the log handler runs as the task's last
           coroutine, which may wait (a cosocket) */
        return;
    }

    gl_http_release(h);
    gl_http_trim(h->r.conf);

    if (!h->running) {
        gl_request_free(&h->r);
    }
}


/* log_by_lua after the response: the task's entry coroutine once more,
   with the request kept as a detached one until it ends */
static int
gl_http_log_start(gl_http_t *h)
{
    if (gl_http_push_handler(h, &h->r.conf->handlers[GL_PHASE_LOG], NULL)
        != GL_OK)
    {
        return GL_ERROR;
    }

    h->task.context = GL_PHASE_LOG;

    if (gl_task_start(&h->task, 0) != GL_OK) {
        return GL_ERROR;
    }

    h->logging = 1;
    gl_request_detach(&h->r);

    return GL_OK;
}


/* as nginx: "failed to run log_by_lua*: MSG" and the traceback of where
   the error happened */
static int
gl_http_error(gl_task_t *t, gl_co_t *co)
{
    const char  *msg;

    if (t->context != GL_PHASE_LOG) {
        return GL_DECLINED;
    }

    if (lua_touserdata(co->L, -1) == &gl_http_exit_key) {
        return GL_OK;
    }

    msg = lua_tostring(co->L, -1);
    gl_lua_traceback_of(t->L, co->L,
                        msg ? msg : "(error object is not a string)", 0);
    gl_log_error(GL_LOG_ERR, 0, "failed to run %s*: %s",
                 gl_conf_phase_directive(GL_PHASE_LOG),
                 lua_tostring(t->L, -1));
    lua_pop(t->L, 1);

    return GL_OK;
}


/* code that cannot yield: filters and log */

static int
gl_http_traceback(lua_State *L)
{
    if (lua_touserdata(L, 1) == &gl_http_exit_key) {
        return 1;
    }

    return gl_lua_traceback(L);
}


static int
gl_http_call_sync(gl_http_t *h, int phase, int nargs)
{
    int            rc, base, saved;
    lua_State     *L;
    gl_sync_t      save;
    gl_log_ctx_t  *saved_log;

    L = h->gen->L;
    saved_log = gl_log_set_ctx(&h->log);

    if (gl_http_push_handler(h, &h->r.conf->handlers[phase], NULL)
        != GL_OK)
    {
        lua_pop(L, nargs);
        (void) gl_log_set_ctx(saved_log);
        return GL_ERROR;
    }

    lua_insert(L, -1 - nargs);
    base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, gl_http_traceback);
    lua_insert(L, base);

    saved = h->task.context;
    h->task.context = phase;
    gl_task_enter_sync(&h->task, &save);

    rc = lua_pcall(L, nargs, 0, base);

    gl_task_leave_sync(&save);

    if (rc != 0 && lua_touserdata(L, -1) == &gl_http_exit_key) {
        /* ngx.exit() in a filter or log handler: it just ends there */
        lua_pop(L, 1);
        rc = 0;
    }

    if (rc != 0) {
        /* in the phase still: its log action goes on the line */
        gl_log_error(GL_LOG_ERR, 0, "failed to run %s*: %s",
                     gl_conf_phase_directive(phase), lua_tostring(L, -1));
        lua_pop(L, 1);
    }

    h->task.context = saved;

    lua_remove(L, base);
    (void) gl_log_set_ctx(saved_log);

    return rc == 0 ? GL_OK : GL_ERROR;
}


static int
gl_http_header(gl_request_t *r)
{
    gl_http_t  *h;

    h = (gl_http_t *) r;

    /* without a Lua state (a module answered, or none could be made)
       there is no filter to run */
    if (h->gen == NULL || h->header_filtered
        || !gl_http_has_handler(h, GL_PHASE_HEADER_FILTER))
    {
        return GL_OK;
    }

    h->header_filtered = 1;

    if (gl_http_call_sync(h, GL_PHASE_HEADER_FILTER, 0) != GL_OK) {
        r->status = 500;
    }

    if (h->filter_exit && h->exit_status >= 300) {
        /* ngx.exit(status) in the header filter: that status's error page
           instead of the answer */
        h->filter_exit = 0;
        r->discard_output = 1;
        r->status = 0;
        gl_request_error_page(r, h->exit_status);
        return GL_DONE;
    }

    return GL_OK;
}


static int
gl_http_output(gl_request_t *r, const u_char *data, size_t len, int last)
{
    gl_http_t  *h;

    h = (gl_http_t *) r;

    if (h->gen == NULL || !gl_http_has_handler(h, GL_PHASE_BODY_FILTER)) {
        return len ? gl_request_output_raw(r, data, len) : GL_OK;
    }

    return gl_http_body_filter(h, data, len, last);
}


/*
 * body_filter_by_lua: the chunk goes in ngx.arg[1] and the eof flag in
 * ngx.arg[2]; what the filter leaves there goes out.
 */
int
gl_http_body_filter(gl_http_t *h, const u_char *data, size_t len, int eof)
{
    int            rc;
    size_t         n;
    lua_State     *L;
    const char    *out;
    gl_request_t  *r;

    r = &h->r;

    if (!gl_http_has_handler(h, GL_PHASE_BODY_FILTER)) {
        return len ? gl_request_output_raw(r, data, len) : GL_OK;
    }

    if (h->body_filter_eof || h->in_filter) {
        /* the filter ended the body already: the rest is dropped */
        return h->in_filter && !eof ? gl_request_output_raw(r, data, len)
                                    : GL_OK;
    }

    L = h->gen->L;

    lua_createtable(L, 2, 0);
    lua_pushlstring(L, (const char *) (data ? data : (const u_char *) ""),
                    len);
    lua_rawseti(L, -2, 1);
    lua_pushboolean(L, eof);
    lua_rawseti(L, -2, 2);

    gl_lua_push_ngx(L);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "arg");
    lua_pop(L, 1);

    h->in_filter = 1;
    rc = gl_http_call_sync(h, GL_PHASE_BODY_FILTER, 0);
    h->in_filter = 0;

    if (rc == GL_OK) {
        lua_rawgeti(L, -1, 1);

        if (lua_istable(L, -1)) {
            /* a table of strings: their concatenation */
            int  i, tlen = (int) lua_objlen(L, -1);

            for (i = 1; i <= tlen && rc == GL_OK; i++) {
                lua_rawgeti(L, -1, i);
                out = lua_tolstring(L, -1, &n);
                if (out != NULL && n) {
                    rc = gl_request_output_raw(r, (const u_char *) out, n);
                }
                lua_pop(L, 1);
            }

        } else {
            out = lua_tolstring(L, -1, &n);

            if (out != NULL && n) {
                rc = gl_request_output_raw(r, (const u_char *) out, n);
            }
        }

        lua_pop(L, 1);
        lua_rawgeti(L, -1, 2);

        if (lua_toboolean(L, -1) && !eof) {
            h->body_filter_eof = 1;
        }

        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    return rc;
}


/* waits of the request API */

int
gl_http_exit(lua_State *L, gl_http_t *h)
{
    gl_co_t  *co;
    int       phase;

    phase = h->task.context;

    if (phase == GL_PHASE_HEADER_FILTER || phase == GL_PHASE_BODY_FILTER
        || phase == GL_PHASE_LOG)
    {
        /* no coroutine to yield: unwind to gl_http_call_sync */
        h->filter_exit = 1;
        lua_pushlightuserdata(L, &gl_http_exit_key);
        return lua_error(L);
    }

    co = gl_co_self(L);
    if (co == NULL) {
        return luaL_error(L, "attempt to exit in a coroutine that golapis "
                          "does not run");
    }

    return gl_co_exit(co);
}


int
gl_http_on_abort(lua_State *L, gl_http_t *h)
{
    gl_co_t  *cur;

    if (h->on_abort != NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "duplicate call");
        return 2;
    }

    if (!h->r.conf->check_client_abort) {
        lua_pushnil(L);
        lua_pushliteral(L, "lua_check_client_abort is off");
        return 2;
    }

    luaL_argcheck(L, lua_isfunction(L, 1) && !lua_iscfunction(L, 1), 1,
                  "Lua function expected");

    (void) gl_lua_check_context(L, GL_CTX_YIELDABLE);

    cur = gl_co_self(L);
    if (cur == NULL) {
        return luaL_error(L, "no co ctx found");
    }

    /* a thread that starts when the client goes (gl_http_cancel); the
       request keeps it until then, across phases */
    h->on_abort = gl_co_new(cur, 1, GL_CO_THREAD);
    h->on_abort_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_pushinteger(L, 1);
    return 1;
}


static const gl_wait_ops_t  gl_http_drain_ops = { "ngx.print", NULL, NULL };
static const gl_wait_ops_t  gl_http_flush_ops = { "ngx.flush", NULL, NULL };
static const gl_wait_ops_t  gl_http_body_ops = { "ngx.req.read_body", NULL,
                                                 NULL };


int
gl_http_print(lua_State *L, gl_http_t *h, const u_char *data, size_t len)
{
    size_t         n;
    gl_co_t       *co;
    gl_request_t  *r;

    r = &h->r;
    co = gl_co_self(L);

    if (co == NULL) {
        /* a coroutine that golapis does not run (one of Lua's own
           functions resumed it) cannot wait: the data is queued */
        if (gl_request_output(r, data, len) != GL_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "no memory");
            return 2;
        }

        lua_pushinteger(L, 1);
        return 1;
    }

    while (len) {
        if (!gl_queue_empty(&h->drain_waiters)) {
            break;
        }

        if (gl_request_queued(r) > GL_OUT_HIGH) {
            /* the script waits only if the client really is slower: what
               can be written goes now */
            gl_request_write(r);

            if (gl_request_queued(r) > GL_OUT_HIGH) {
                break;
            }
        }

        n = gl_min(len, 16384);

        if (gl_request_output(r, data, n) != GL_OK) {
            len = 0;
            break;
        }

        data += n;
        len -= n;
    }

    if (len == 0 || !gl_request_want_drain(r)) {
        lua_pushinteger(L, 1);
        return 1;
    }

    /* the queue is long: wait for it to drain, keeping the data alive */
    gl_request_flush(r);
    gl_co_wait(co, &gl_http_drain_ops, -1);
    co->wait.data = h;
    co->wait.buf = data;
    co->wait.len = len;
    co->wait.ref = luaL_ref(L, LUA_REGISTRYINDEX);
    gl_co_waitq_add(&h->drain_waiters, co);

    return gl_co_yield(co);
}


int
gl_http_flush_wait(lua_State *L, gl_http_t *h)
{
    gl_co_t  *co;

    co = gl_co_self(L);

    if (co == NULL || gl_request_queued(&h->r) == 0
        || !gl_request_want_drain(&h->r))
    {
        lua_pushinteger(L, 1);
        return 1;
    }

    gl_co_wait(co, &gl_http_flush_ops, -1);
    gl_co_waitq_add(&h->drain_waiters, co);

    return gl_co_yield(co);
}


int
gl_http_read_body(lua_State *L, gl_http_t *h)
{
    gl_co_t  *co;

    co = gl_co_self(L);
    if (co == NULL) {
        return luaL_error(L, "ngx.req.read_body in a coroutine that "
                          "golapis does not run");
    }

    /* the end of STDIN wakes us (gl_http_stdin) */
    gl_co_wait(co, &gl_http_body_ops, -1);
    gl_co_waitq_add(&h->body_waiters, co);

    return gl_co_yield(co);
}


/* helpers of the request API */

const char *
gl_http_args(gl_http_t *h, size_t *len)
{
    const gl_param_t  *p;

    if (h->r.args != NULL) {
        *len = strlen(h->r.args);
        return h->r.args;
    }

    p = gl_request_param(&h->r, "QUERY_STRING", 12);
    if (p == NULL) {
        *len = 0;
        return "";
    }

    *len = p->value_len;
    return p->value;
}


/*
 * Control characters in a header value would break the header block: they
 * go out %-escaped, as lua-nginx-module does.  Pushes the value to use.
 */
const char *
gl_http_escape_header(lua_State *L, int idx, size_t *len)
{
    size_t          i, n;
    const u_char   *v;
    luaL_Buffer     b;
    char            esc[4];

    if (lua_type(L, idx) == LUA_TBOOLEAN) {
        lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
        return lua_tolstring(L, -1, len);
    }

    v = (const u_char *) lua_tolstring(L, idx, &n);
    if (v == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f) {
            break;
        }
    }

    if (i == n) {
        lua_pushvalue(L, idx);
        return lua_tolstring(L, -1, len);
    }

    luaL_buffinit(L, &b);

    for (i = 0; i < n; i++) {
        if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f) {
            snprintf(esc, sizeof(esc), "%%%02X", v[i]);
            luaL_addlstring(&b, esc, 3);
        } else {
            luaL_addchar(&b, (char) v[i]);
        }
    }

    luaL_pushresult(&b);

    return lua_tolstring(L, -1, len);
}


/*
 * With a table at -2 and a header name on top: sets the value under the
 * name, or, for a name seen before, makes an array of the values, as
 * lua-nginx-module's get_headers do.  Pops the name.
 */
void
gl_http_add_header_value(lua_State *L, const char *value, size_t len)
{
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, value, len);
        lua_rawset(L, -3);

    } else if (lua_istable(L, -1)) {
        lua_pushlstring(L, value, len);
        lua_rawseti(L, -2, (int) lua_objlen(L, -2) + 1);
        lua_pop(L, 2);

    } else {
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, value, len);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, -3);
    }
}


/* the response as nginx holds it, for the Lua API: what
   ngx.resp.get_headers and the $sent_http_ variables read besides the
   headers a script set (nginx adds them in its header filter; golapis's
   nginx adds them after the FastCGI answer) */

int
gl_http_version(gl_request_t *r)
{
    const char        *v;
    const gl_param_t  *p;

    p = gl_request_param(r, "SERVER_PROTOCOL", 15);

    if (p == NULL || p->value_len < 6 || memcmp(p->value, "HTTP/", 5) != 0) {
        return 9;
    }

    v = p->value + 5;

    if (v[0] >= '2' && v[0] <= '9') {
        return (v[0] - '0') * 1000;
    }

    if (v[0] == '1' && p->value_len >= 8 && v[1] == '.') {
        return 1000 + (v[2] - '0');
    }

    return 9;
}


const gl_header_t *
gl_http_resp_header(gl_request_t *r, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name_len == len
            && strncasecmp(r->headers[i].name, name, len) == 0)
        {
            return &r->headers[i];
        }
    }

    return NULL;
}




const char *
gl_http_resp_content_type(gl_request_t *r, size_t *len)
{
    const char         *type;
    const gl_header_t  *h;

    h = gl_http_resp_header(r, "Content-Type", 12);

    if (h != NULL) {
        *len = h->value_len;
        return h->value;
    }

    /* lua-nginx-module sets default_type as it sends the header (not
       for a 304), then nginx's header filter drops it from a 204 */
    if (!r->header_sent || r->mime_set || r->status == 304
        || (r->status == 204 && r->reason == NULL))
    {
        return NULL;
    }

    type = r->conf->default_type;
    *len = strlen(type);

    return *len ? type : NULL;
}


int
gl_http_resp_chunked(gl_request_t *r)
{
    /* nginx's chunked filter, when the header went out */
    if (!r->header_sent || r->status == 304 || r->status == 204
        || r->status < 200 || gl_request_is_head(r))
    {
        return 0;
    }

    return gl_http_resp_header(r, "Content-Length", 14) == NULL
           && gl_http_version(r) >= 1001;
}


const char *
gl_http_resp_connection(gl_request_t *r)
{
    int                 version, keepalive;
    const gl_header_t  *h;

    if (r->status == 101) {
        return "upgrade";
    }

    /* r->keepalive as ngx_http_handler() sets it from the request */
    version = gl_http_version(r);
    h = gl_request_header(r, "connection", 10);

    if (h != NULL && strcasestr(h->value, "close") != NULL) {
        keepalive = 0;

    } else if (h != NULL && strcasestr(h->value, "keep-alive") != NULL) {
        keepalive = 1;

    } else {
        keepalive = version > 1000;
    }

    /* an answer of unknown length that cannot be chunked ends with the
       connection */
    if (keepalive && r->header_sent && version < 1001
        && r->status != 304 && r->status != 204 && r->status >= 200
        && !gl_request_is_head(r)
        && gl_http_resp_header(r, "Content-Length", 14) == NULL)
    {
        keepalive = 0;
    }

    return keepalive ? "keep-alive" : "close";
}
