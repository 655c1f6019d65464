/*
 * A request's life on the FastCGI side: params and body in, the handler
 * started, the response out as STDOUT records, END_REQUEST, and the
 * request freed.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_conn.h"
#include "gl_fcgi.h"
#include "gl_log.h"
#include "gl_request.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* STDOUT content per record we build; the block also has room for the
   header, the padding, and the closing records */
#define GL_OUT_DATA   16384
#define GL_OUT_BLOCK  (FCGI_HEADER_LEN + GL_OUT_DATA + 8 + 24)

#if (GL_OUT_BLOCK != GL_CHAIN_BLOCK)
#error "GL_CHAIN_BLOCK must be GL_OUT_BLOCK"
#endif

static void gl_request_start(gl_request_t *r);
static void gl_request_unproxy(gl_request_t *r);
static void gl_request_send_end(gl_request_t *r);
static int gl_request_send_header(gl_request_t *r);
static int gl_request_append(gl_request_t *r, const u_char *data, size_t len);


/*
 * Apache's mod_proxy_fcgi sends SCRIPT_FILENAME as a URL of its own:
 * "proxy:fcgi://HOST[:PORT]/PATH" (SetHandler and ProxyPassMatch alike),
 * and older versions "proxy:balancer://NAME/PATH".  As php-fpm, we keep
 * PATH, which then goes through every check a plain path does: this only
 * ever makes a SCRIPT_FILENAME shorter, never lets another file run.
 * HOST decides nothing (a client that can connect could send PATH
 * alone), but it must look like one: anything else is left as it came,
 * and refused as not absolute.  Nothing is decoded or cut off: a "?"
 * belongs to the file name, as "%20" (ProxyPassMatch's escaping) does.
 */
static void
gl_request_unproxy(gl_request_t *r)
{
    size_t       i, n, len;
    const char  *v, *p, *end, *host;
    gl_param_t  *sf;

    for (i = 0; i < r->nparams; i++) {
        if (r->params[i].name_len == 15
            && memcmp(r->params[i].name, "SCRIPT_FILENAME", 15) == 0)
        {
            break;
        }
    }

    if (i == r->nparams) {
        return;
    }

    sf = &r->params[i];

    v = sf->value;
    len = sf->value_len;

    if (len > 13 && strncasecmp(v, "proxy:fcgi://", 13) == 0) {
        n = 13;

    } else if (len > 17 && strncasecmp(v, "proxy:balancer://", 17) == 0) {
        n = 17;

    } else {
        return;
    }

    host = v + n;
    end = v + len;
    p = host;

    if (*p == '[') {
        /* an IPv6 literal */
        for (p++; p < end && (isxdigit((u_char) *p) || *p == ':'
                              || *p == '.'); p++) { /* void */ }

        if (p == end || *p != ']' || p == host + 1) {
            return;
        }

        p++;

    } else {
        for ( /* void */ ; p < end && (isalnum((u_char) *p) || *p == '.'
                                       || *p == '-' || *p == '_'); p++)
        {
            /* void */
        }

        if (p == host) {
            return;
        }
    }

    if (p < end && *p == ':') {
        host = ++p;

        for ( /* void */ ; p < end && isdigit((u_char) *p); p++) {
            /* void */
        }

        if (p == host) {
            return;
        }
    }

    if (p == end || *p != '/') {
        return;
    }

    gl_log_debug("request %d: SCRIPT_FILENAME \"%s\" is \"%s\" without "
                 "Apache's prefix", r->id, v, p);

    sf->value = p;
    sf->value_len = end - p;
}


gl_request_t *
gl_request_create(gl_conn_t *c, uint16_t id, int keep_conn)
{
    gl_srv_t      *s;
    gl_request_t  *r;

    s = c->srv;

    r = calloc(1, s->handler->size);
    if (r == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "cannot allocate a request");
        return NULL;
    }

    r->srv = s;
    r->conn = c;
    r->conn_number = c->number;
    r->conn_requests = ++c->nbegun;
    r->conf = gl_conf_ref(s->conf);
    r->id = id;
    r->serial = ++s->stat_reqs;
    gl_stat_add(&s->stat->requests, 1);
    gl_stat_gauge_add(&s->stat->requests_active, 1);
    r->keep_conn = keep_conn ? 1 : 0;
    r->body_fd = -1;
    r->body_buffer_size = s->conf->client_body_buffer_size;
    r->start_time = ev_now(s->loop);

    return r;
}


int
gl_request_params(gl_request_t *r, const u_char *data, size_t len, int eos)
{
    int                rc;
    size_t             size, max;
    u_char            *p;
    const char        *err;
    gl_param_t        *params;
    gl_fcgi_nv_t       nv;
    const u_char      *pos;
    gl_fcgi_pair_t     pair;
    const gl_param_t  *method;

    max = r->conf->params_max_size;

    if (len) {
        if (r->params_raw_len + len > max) {
            gl_log_error(GL_LOG_ERR, 0, "closing connection %d: the params "
                         "of request %d exceed fastcgi_params_max_size "
                         "(%zu bytes)", r->conn->fd, r->id, max);
            return GL_ERROR;
        }

        if (r->params_raw_len + len > r->params_raw_cap) {
            size = gl_max(r->params_raw_cap * 2, 2048);
            size = gl_max(size, r->params_raw_len + len);
            p = realloc(r->params_raw, size);
            if (p == NULL) {
                gl_log_error(GL_LOG_ALERT, errno, "no memory for params");
                return GL_ERROR;
            }
            r->params_raw = p;
            r->params_raw_cap = size;
        }

        memcpy(r->params_raw + r->params_raw_len, data, len);
        r->params_raw_len += len;
    }

    if (!eos) {
        return GL_OK;
    }

    /*
     * a pair takes at least 2 length bytes in the stream and 2 NULs in the
     * arena, so the stream's size is always enough for the arena
     */
    r->params_arena = malloc(r->params_raw_len + 1);
    if (r->params_arena == NULL) {
        gl_log_error(GL_LOG_ALERT, errno, "no memory for params");
        return GL_ERROR;
    }

    gl_fcgi_nv_init(&nv, r->params_arena, r->params_raw_len + 1);
    pos = r->params_raw;
    size = 0;

    for ( ;; ) {
        rc = gl_fcgi_nv_parse(&nv, &pos, r->params_raw + r->params_raw_len,
                              &pair, &err);
        if (rc != GL_OK) {
            break;
        }

        if (r->nparams == size) {
            size = size ? size * 2 : 32;
            params = realloc(r->params, size * sizeof(gl_param_t));
            if (params == NULL) {
                gl_log_error(GL_LOG_ALERT, errno, "no memory for params");
                return GL_ERROR;
            }
            r->params = params;
        }

        r->params[r->nparams].name = (const char *) pair.name;
        r->params[r->nparams].name_len = pair.name_len;
        r->params[r->nparams].value = (const char *) pair.value;
        r->params[r->nparams].value_len = pair.value_len;
        r->nparams++;
    }

    if (rc == GL_ERROR || gl_fcgi_nv_done(&nv) != GL_OK) {
        gl_log_error(GL_LOG_ERR, 0, "closing connection %d: bad params in "
                     "request %d: %s", r->conn->fd, r->id,
                     rc == GL_ERROR ? err : "truncated name-value pair");
        return GL_ERROR;
    }

    free(r->params_raw);
    r->params_raw = NULL;
    r->params_raw_cap = 0;
    r->params_done = 1;

    /* asked on every ngx.print: looked up once */
    method = gl_request_param(r, "REQUEST_METHOD", 14);
    r->head = method != NULL && method->value_len == 4
              && memcmp(method->value, "HEAD", 4) == 0;

    gl_request_unproxy(r);

    /* the script starts now; it reads the body when it wants it */
    gl_request_start(r);

    return GL_OK;
}


void
gl_request_stdin(gl_request_t *r, const u_char *data, size_t len, int eos)
{
    size_t  max;

    max = r->conf->client_max_body_size;

    if (len && !r->body_too_large && !r->body_error && !r->body_discard) {
        if (max && r->body_total + len > max) {
            gl_log_error(GL_LOG_ERR, 0, "client intended to send too large "
                         "body: more than client_max_body_size (%zu bytes)",
                         max);
            r->body_too_large = 1;
            gl_request_body_free(r);

        } else {
            r->body_total += len;

            if (gl_request_body_append(r, data, len) != GL_OK) {
                gl_request_body_free(r);
                r->body_error = 1;
            }
        }
    }

    if (eos) {
        r->stdin_done = 1;
    }

    if (r->started && (eos || r->body_too_large || r->body_error)) {
        r->srv->handler->stdin(r);
    }
}


int
gl_request_body_append(gl_request_t *r, const u_char *data, size_t len)
{
    size_t    size;
    u_char   *p;
    ssize_t   n;
    char      path[4096];

    if (r->body_fd == -1 && r->body_len + len > r->body_buffer_size) {
        /* spool to a file, as nginx does with client_body_temp_path */
        snprintf(path, sizeof(path), "%s/golapis-body-XXXXXX",
                 r->conf->client_body_temp_path);

        r->body_fd = mkostemp(path, O_CLOEXEC);
        if (r->body_fd == -1) {
            gl_log_error(GL_LOG_CRIT, errno, "mkostemp(\"%s\") failed", path);
            return GL_ERROR;
        }

        r->body_path = strdup(path);
        r->body_in_file = 1;
        r->body_clean = 1;

        if (r->body_path == NULL) {
            return GL_ERROR;
        }

        gl_log_error(GL_LOG_WARN, 0, "a client request body is buffered to "
                     "a temporary file %s", path);

        if (r->body_len
            && gl_request_body_append(r, r->body, r->body_len) != GL_OK)
        {
            return GL_ERROR;
        }

        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        r->body_cap = 0;
    }

    if (r->body_fd != -1) {
        while (len) {
            n = write(r->body_fd, data, len);
            if (n == -1) {
                if (errno == EINTR) {
                    continue;
                }
                gl_log_error(GL_LOG_CRIT, errno, "write() to \"%s\" failed",
                             r->body_path);
                return GL_ERROR;
            }
            data += n;
            len -= n;
        }

        return GL_OK;
    }

    if (r->body_len + len > r->body_cap) {
        size = gl_max(r->body_cap * 2, 4096);
        size = gl_max(size, r->body_len + len);
        p = realloc(r->body, size);
        if (p == NULL) {
            gl_log_error(GL_LOG_ALERT, errno, "no memory for a body of %zu "
                         "bytes", size);
            return GL_ERROR;
        }
        r->body = p;
        r->body_cap = size;
    }

    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;

    return GL_OK;
}


void
gl_request_body_free(gl_request_t *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->body_cap = 0;

    if (r->body_fd != -1) {
        close(r->body_fd);
        r->body_fd = -1;
    }

    if (r->body_path != NULL) {
        if (r->body_clean && unlink(r->body_path) == -1) {
            gl_log_error(GL_LOG_ERR, errno, "unlink(\"%s\") failed",
                         r->body_path);
        }
        free(r->body_path);
        r->body_path = NULL;
    }

    r->body_in_file = 0;
    r->body_clean = 0;
}


const gl_param_t *
gl_request_param(gl_request_t *r, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < r->nparams; i++) {
        if (r->params[i].name_len == len
            && memcmp(r->params[i].name, name, len) == 0)
        {
            return &r->params[i];
        }
    }

    return NULL;
}


int
gl_request_line(gl_request_t *r, gl_request_piece_t *pieces)
{
    int                n;
    const gl_param_t  *m, *u, *p;

    p = gl_request_param(r, "REQUEST", 7);

    if (p != NULL && p->value_len > 0) {
        pieces[0].data = p->value;
        pieces[0].len = p->value_len;
        return 1;
    }

    m = gl_request_param(r, "REQUEST_METHOD", 14);
    u = gl_request_param(r, "REQUEST_URI", 11);
    p = gl_request_param(r, "SERVER_PROTOCOL", 15);

    if (m == NULL || u == NULL) {
        return 0;
    }

    pieces[0].data = m->value;
    pieces[0].len = m->value_len;
    pieces[1].data = " ";
    pieces[1].len = 1;
    pieces[2].data = u->value;
    pieces[2].len = u->value_len;
    n = 3;

    /* an HTTP/0.9 request line has no version */
    if (p != NULL && p->value_len > 0 && strcmp(p->value, "HTTP/0.9") != 0) {
        pieces[3].data = " ";
        pieces[3].len = 1;
        pieces[4].data = p->value;
        pieces[4].len = p->value_len;
        n = 5;
    }

    return n;
}


static void
gl_request_start(gl_request_t *r)
{
    const gl_param_t  *p;

    r->started = 1;

    p = gl_request_param(r, "CONTENT_LENGTH", 14);

    if (p != NULL && p->value_len && r->conf->client_max_body_size
        && strtoull(p->value, NULL, 10)
           > r->conf->client_max_body_size)
    {
        gl_log_error(GL_LOG_ERR, 0, "client intended to send too large "
                     "body: %s bytes, more than client_max_body_size (%zu "
                     "bytes)", p->value,
                     r->conf->client_max_body_size);
        r->body_too_large = 1;
    }

    r->srv->handler->start(r);
}


/* response output */

static struct {
    int          status;
    const char  *line;
} gl_http_statuses[] = {
    { 100, "100 Continue" }, { 101, "101 Switching Protocols" },
    { 200, "200 OK" }, { 201, "201 Created" }, { 202, "202 Accepted" },
    { 203, "203 Non-Authoritative Information" }, { 204, "204 No Content" },
    { 205, "205 Reset Content" }, { 206, "206 Partial Content" },
    { 300, "300 Multiple Choices" }, { 301, "301 Moved Permanently" },
    { 302, "302 Moved Temporarily" }, { 303, "303 See Other" },
    { 304, "304 Not Modified" }, { 307, "307 Temporary Redirect" },
    { 308, "308 Permanent Redirect" },
    { 400, "400 Bad Request" }, { 401, "401 Unauthorized" },
    { 402, "402 Payment Required" }, { 403, "403 Forbidden" },
    { 404, "404 Not Found" }, { 405, "405 Not Allowed" },
    { 406, "406 Not Acceptable" }, { 408, "408 Request Time-out" },
    { 409, "409 Conflict" }, { 410, "410 Gone" },
    { 411, "411 Length Required" }, { 412, "412 Precondition Failed" },
    { 413, "413 Request Entity Too Large" },
    { 414, "414 Request-URI Too Large" },
    { 415, "415 Unsupported Media Type" },
    { 416, "416 Requested Range Not Satisfiable" },
    { 421, "421 Misdirected Request" }, { 429, "429 Too Many Requests" },
    { 500, "500 Internal Server Error" }, { 501, "501 Not Implemented" },
    { 502, "502 Bad Gateway" }, { 503, "503 Service Temporarily Unavailable" },
    { 504, "504 Gateway Time-out" }, { 505, "505 HTTP Version Not Supported" },
    { 507, "507 Insufficient Storage" },
    { 0, NULL }
};


const char *
gl_http_status_line(int status)
{
    int  i;

    for (i = 0; gl_http_statuses[i].status; i++) {
        if (gl_http_statuses[i].status == status) {
            return gl_http_statuses[i].line;
        }
    }

    return NULL;
}


static int
gl_request_send_header(gl_request_t *r)
{
    int          n, have_type;
    char         line[64];
    size_t       i;
    const char  *status;
    gl_header_t *h;

    if (r->status == 0) {
        r->status = 200;
    }

    if (r->srv->handler->header(r) == GL_DONE) {
        /* it sent an error page instead */
        return r->header_sent ? GL_OK : GL_ERROR;
    }

    r->header_sent = 1;

    status = gl_http_status_line(r->status);

    if (r->reason != NULL) {
        /* ngx.resp.set_status(status, reason) */
        n = snprintf(line, sizeof(line), "Status: %d ", r->status);
        if (gl_request_append(r, (u_char *) line, n) != GL_OK
            || gl_request_append(r, (u_char *) r->reason, strlen(r->reason))
               != GL_OK)
        {
            return GL_ERROR;
        }
        n = snprintf(line, sizeof(line), "\r\n");

    } else if (status != NULL) {
        n = snprintf(line, sizeof(line), "Status: %s\r\n", status);
    } else {
        n = snprintf(line, sizeof(line), "Status: %d\r\n", r->status);
    }

    if (gl_request_append(r, (u_char *) line, n) != GL_OK) {
        return GL_ERROR;
    }

    /*
     * nginx sends no Content-Type with a 204 or a 304, and adds default_type
     * only when the script did not touch Content-Type (even to clear it)
     */
    have_type = (r->status == 204 || r->status == 304 || r->mime_set);

    for (i = 0; i < r->nheaders; i++) {
        h = &r->headers[i];

        if (h->name_len == 12 && strcasecmp(h->name, "Content-Type") == 0) {
            if (r->status == 204) {
                continue;
            }
            have_type = 1;
        }

        if (gl_request_append(r, (u_char *) h->name, h->name_len) != GL_OK
            || gl_request_append(r, (u_char *) ": ", 2) != GL_OK
            || gl_request_append(r, (u_char *) h->value, h->value_len)
               != GL_OK
            || gl_request_append(r, (u_char *) "\r\n", 2) != GL_OK)
        {
            return GL_ERROR;
        }
    }

    if (!have_type && r->conf->use_default_type) {
        const char  *type = r->conf->default_type;

        if (gl_request_append(r, (u_char *) "Content-Type: ", 14) != GL_OK
            || gl_request_append(r, (u_char *) type, strlen(type)) != GL_OK
            || gl_request_append(r, (u_char *) "\r\n", 2) != GL_OK)
        {
            return GL_ERROR;
        }
    }

    if (gl_request_append(r, (u_char *) "\r\n", 2) != GL_OK) {
        return GL_ERROR;
    }

    r->header_size = r->bytes_sent;

    return GL_OK;
}


static int
gl_request_append(gl_request_t *r, const u_char *data, size_t len)
{
    size_t  n;

    while (len) {
        if (r->out == NULL) {
            r->out = gl_chain_alloc(r->srv, GL_OUT_BLOCK);
            if (r->out == NULL) {
                gl_log_error(GL_LOG_ALERT, errno, "no memory for output");
                return GL_ERROR;
            }
            r->out->last = FCGI_HEADER_LEN;
        }

        n = gl_min(len, FCGI_HEADER_LEN + GL_OUT_DATA - r->out->last);
        memcpy(r->out->data + r->out->last, data, n);
        r->out->last += n;
        r->bytes_sent += n;
        data += n;
        len -= n;

        if (r->out->last == FCGI_HEADER_LEN + GL_OUT_DATA) {
            gl_request_flush(r);
        }
    }

    return GL_OK;
}


int
gl_request_output(gl_request_t *r, const u_char *data, size_t len)
{
    if (!r->header_sent && gl_request_send_header(r) != GL_OK) {
        return GL_ERROR;
    }

    if (r->discard_output || r->output_done) {
        return GL_OK;
    }

    return r->srv->handler->output(r, data, len, 0);
}


/* the output hook's output: straight into STDOUT records */
int
gl_request_output_raw(gl_request_t *r, const u_char *data, size_t len)
{
    return gl_request_append(r, data, len);
}


/* the end of the body through the output hook, once */
static void
gl_request_output_last(gl_request_t *r, const u_char *data, size_t len)
{
    if (r->output_done) {
        return;
    }

    r->output_done = 1;
    (void) r->srv->handler->output(r, data, len, 1);
}


int
gl_request_send_header_now(gl_request_t *r)
{
    if (r->header_sent) {
        return GL_OK;
    }

    return gl_request_send_header(r);
}


/* closes the record being filled; returns it, not yet queued */
static gl_chain_t *
gl_request_close_record(gl_request_t *r)
{
    size_t       len, pad;
    gl_chain_t  *cl;

    cl = r->out;
    if (cl == NULL || cl->last == FCGI_HEADER_LEN) {
        return NULL;
    }

    r->out = NULL;

    len = cl->last - FCGI_HEADER_LEN;
    pad = gl_fcgi_padding(len);
    gl_fcgi_header(cl->data, FCGI_STDOUT, r->id, (uint16_t) len,
                   (uint8_t) pad);
    memset(cl->data + cl->last, 0, pad);
    cl->last += pad;

    return cl;
}


void
gl_request_flush(gl_request_t *r)
{
    gl_chain_t  *cl;

    cl = gl_request_close_record(r);
    if (cl == NULL) {
        return;
    }

    if (r->conn != NULL) {
        gl_conn_queue(r->conn, cl);
    } else {
        gl_chain_free(r->srv, cl);
    }
}


/* the titles of nginx's own error pages, where they differ from the
   status line */
static const char *
gl_request_page_title(int status)
{
    switch (status) {
    case 302:
        return "302 Found";
    case 401:
        return "401 Authorization Required";
    default:
        return gl_http_status_line(status);
    }
}


void
gl_request_error_page(gl_request_t *r, int status)
{
    int          n;
    char         page[512], len[32];
    const char  *title;

    if (r->header_sent) {
        return;
    }

    r->status = status;

    if (status < 300 || status == 304) {
        return;
    }

    title = gl_request_page_title(status);

    if (title == NULL) {
        return;
    }

    n = snprintf(page, sizeof(page),
                 "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n"
                 "<center><h1>%s</h1></center>\r\n<hr><center>golapis</center>"
                 "\r\n</body>\r\n</html>\r\n", title, title);

    gl_request_set_header(r, "Content-Type", 12, "text/html", 9, 1);
    gl_request_set_header(r, "Content-Length", 14, len,
                          snprintf(len, sizeof(len), "%d", n), 1);

    if (gl_request_send_header(r) != GL_OK) {
        return;
    }

    /* the page is the whole body: the body filter sees it with eof, as
       nginx's special responses */
    gl_request_output_last(r, (u_char *) page, n);
}


int
gl_request_is_head(gl_request_t *r)
{
    if (r->method != NULL) {
        return strcmp(r->method, "HEAD") == 0;
    }

    return r->head;
}


void
gl_request_finalize(gl_request_t *r)
{
    gl_srv_t       *s;
    gl_request_t  **pr;

    if (r->aborted) {
        return;
    }

    if (!r->eof) {
        gl_request_send_end(r);
        return;
    }

    /* a detached request ends */
    s = r->srv;

    for (pr = &s->detached; *pr; pr = &(*pr)->next) {
        if (*pr == r) {
            *pr = r->next;
            s->ndetached--;
            break;
        }
    }

    if (s->on_idle != NULL) {
        s->on_idle(s);
    }
}


void
gl_request_detach(gl_request_t *r)
{
    gl_srv_t  *s;

    s = r->srv;
    r->eof = 1;
    r->next = s->detached;
    s->detached = r;
    s->ndetached++;
}


void
gl_request_eof(gl_request_t *r)
{
    gl_srv_t  *s;

    gl_request_send_end(r);

    /* from now on the request belongs to the server, not the connection */
    s = r->srv;
    r->eof = 1;
    r->next = s->detached;
    s->detached = r;
    s->ndetached++;
}


/*
 * The answer cannot be completed: what was produced goes, then, instead of
 * END_REQUEST, a record nginx must refuse in a response (FCGI_UNKNOWN_TYPE
 * is an answer to the web server, never sent by an application), and the
 * connection closes.  nginx then logs "upstream sent invalid FastCGI
 * record type: 11" and drops the client connection without ending the
 * response (no last chunk, or short of Content-Length), as it does when a
 * Lua handler of its own fails after output; a plain close would not do:
 * with fastcgi_keep_conn off nginx takes the end of the connection for
 * the end of the answer.  The record waits until nginx has read what came
 * before (gl_conn_abort), so that what the script flushed reaches the
 * client (with nginx's default fastcgi_buffering it may still hold it).
 */
void
gl_request_abort(gl_request_t *r)
{
    gl_conn_t   *c;

    c = r->conn;

    if (c == NULL || r->finished) {
        return;
    }

    gl_log_error(GL_LOG_INFO, 0, "connection %d: the answer to request %d "
                 "is cut short: closing the connection", c->fd, r->id);

    gl_request_flush(r);

    r->finished = 1;
    r->aborted = 1;
    gl_conn_request_done(c, r);
    gl_conn_abort(c, r->id);
    r->conn = NULL;
}


/* the rest of the answer, the end of STDOUT and END_REQUEST */
static void
gl_request_send_end(gl_request_t *r)
{
    size_t        need;
    gl_conn_t    *c;
    gl_chain_t   *cl;

    c = r->conn;
    r->finished = 1;

    if (!r->header_sent) {
        (void) gl_request_send_header(r);
    }

    if (r->status != 204 && r->status != 304 && !gl_request_is_head(r)) {
        gl_request_output_last(r, NULL, 0);
    }

    cl = gl_request_close_record(r);
    need = 2 * FCGI_HEADER_LEN + 8;

    if (cl == NULL || cl->size - cl->last < need) {
        if (cl != NULL) {
            gl_conn_queue(c, cl);
        }

        cl = r->out;
        r->out = NULL;

        if (cl == NULL) {
            cl = gl_chain_alloc(r->srv, need);
            if (cl == NULL) {
                gl_log_error(GL_LOG_ALERT, errno, "no memory for output");
                c->error = 1;
                goto done;
            }
        }

        cl->pos = 0;
        cl->last = 0;
    }

    gl_fcgi_header(cl->data + cl->last, FCGI_STDOUT, r->id, 0, 0);
    cl->last += FCGI_HEADER_LEN;
    cl->last += gl_fcgi_end_request(cl->data + cl->last, r->id, 0,
                                    FCGI_REQUEST_COMPLETE);
    gl_conn_queue(c, cl);

done:

    gl_conn_request_done(c, r);
    gl_conn_write(c);
    r->conn = NULL;
}


void
gl_request_cancel(gl_request_t *r, int abort)
{
    gl_srv_t  *s;

    s = r->srv;
    r->conn = NULL;
    r->cancelled = !r->finished;
    r->finished = 1;

    if (!r->started) {
        gl_request_free(r);
        return;
    }

    if (s->handler->cancel(r, abort) != GL_AGAIN) {
        /* the handler freed it */
        return;
    }

    /* it goes on without a client, as a detached request: the worker
       waits for it at a stop, and cancels it for good at its exit */
    r->eof = 1;
    r->next = s->detached;
    s->detached = r;
    s->ndetached++;
}


int
gl_request_want_drain(gl_request_t *r)
{
    gl_conn_t  *c;

    c = r->conn;

    if (c == NULL || c->error) {
        return 0;
    }

    if (!r->want_drain) {
        r->want_drain = 1;
        r->next_waiter = c->drain_waiters;
        c->drain_waiters = r;
    }

    return 1;
}


size_t
gl_request_queued(gl_request_t *r)
{
    return r->conn != NULL ? r->conn->out_bytes : 0;
}


void
gl_request_write(gl_request_t *r)
{
    gl_request_flush(r);

    if (r->conn != NULL) {
        gl_conn_write(r->conn);
    }
}


int
gl_request_set_header(gl_request_t *r, const char *name, size_t nlen,
    const char *value, size_t vlen, int replace)
{
    size_t        i, j;
    gl_header_t  *h;

    if (value != NULL && vlen == 0) {
        /* an empty value removes the header, as in nginx */
        value = NULL;
    }

    if (replace && value != NULL) {
        /* nginx keeps the name as first set: update the first in place */
        for (i = 0; i < r->nheaders; i++) {
            h = &r->headers[i];

            if (h->name_len == nlen && strncasecmp(h->name, name, nlen) == 0)
            {
                char  *v = strndup(value, vlen);

                if (v == NULL) {
                    return GL_ERROR;
                }

                free(h->value);
                h->value = v;
                h->value_len = vlen;

                /* and drop the other values */
                for (j = ++i; i < r->nheaders; i++) {
                    h = &r->headers[i];

                    if (h->name_len == nlen
                        && strncasecmp(h->name, name, nlen) == 0)
                    {
                        free(h->name);
                        free(h->value);
                        continue;
                    }

                    r->headers[j++] = *h;
                }

                r->nheaders = j;
                return GL_OK;
            }
        }
    }

    if (replace || value == NULL) {
        for (i = 0, j = 0; i < r->nheaders; i++) {
            h = &r->headers[i];

            if (h->name_len == nlen && strncasecmp(h->name, name, nlen) == 0)
            {
                free(h->name);
                free(h->value);
                continue;
            }

            r->headers[j++] = *h;
        }

        r->nheaders = j;
    }

    if (value == NULL) {
        return GL_OK;
    }

    if (gl_header_push(&r->headers, &r->nheaders, &r->headers_cap, name, nlen,
                       value, vlen)
        == NULL)
    {
        return GL_ERROR;
    }

    return GL_OK;
}


/* appends a copy of name: value to a growing array of headers */
gl_header_t *
gl_header_push(gl_header_t **a, size_t *n, size_t *cap, const char *name,
    size_t nlen, const char *value, size_t vlen)
{
    size_t        size;
    gl_header_t  *h;

    if (*n == *cap) {
        size = *cap ? *cap * 2 : 8;
        h = realloc(*a, size * sizeof(gl_header_t));
        if (h == NULL) {
            return NULL;
        }
        *a = h;
        *cap = size;
    }

    h = &(*a)[*n];
    h->name = strndup(name, nlen);
    h->value = strndup(value, vlen);

    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return NULL;
    }

    h->name_len = nlen;
    h->value_len = vlen;
    (*n)++;

    return h;
}


void
gl_request_free(gl_request_t *r)
{
    size_t  i;

    /* as nginx's $request_time: until the request ends, its log handler
       included */
    gl_stat_request_end(r->srv->stat, ev_time() - r->start_time, r->status);

    for (i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }

    for (i = 0; i < r->nrh; i++) {
        free(r->rh[i].name);
        free(r->rh[i].value);
    }

    gl_request_body_free(r);

    free(r->rh);
    free(r->reason);
    free(r->method);
    free(r->uri);
    free(r->args);
    free(r->headers);
    if (r->out != NULL) {
        gl_chain_free(r->srv, r->out);
    }
    free(r->params_raw);
    free(r->params_arena);
    free(r->params);
    free(r->body);
    gl_conf_unref(r->conf);
    free(r);
}


/*
 * The request headers, as nginx's fastcgi module passed them: "HTTP_X_Y"
 * params become "x-y" (nginx sends Content-Type and Content-Length both
 * as CONTENT_* params and as HTTP_CONTENT_*).
 */
int
gl_request_build_headers(gl_request_t *r)
{
    size_t             i, j, n;
    char              *name;
    gl_header_t       *h;
    const gl_param_t  *p;

    if (r->rh_built) {
        return GL_OK;
    }

    r->rh_built = 1;

    for (i = 0; i < r->nparams; i++) {
        p = &r->params[i];

        if (p->name_len > 5 && memcmp(p->name, "HTTP_", 5) == 0) {
            n = p->name_len - 5;
            name = strndup(p->name + 5, n);

        } else {
            continue;
        }

        if (name == NULL) {
            return GL_ERROR;
        }

        for (j = 0; j < n; j++) {
            name[j] = (name[j] == '_') ? '-'
                                       : (char) tolower((unsigned char) name[j]);
        }

        if (r->nrh == r->rh_cap) {
            size_t  size = r->rh_cap ? r->rh_cap * 2 : 16;

            h = realloc(r->rh, size * sizeof(gl_header_t));
            if (h == NULL) {
                free(name);
                return GL_ERROR;
            }
            r->rh = h;
            r->rh_cap = size;
        }

        h = &r->rh[r->nrh];
        h->name = name;
        h->name_len = n;
        h->value = strndup(p->value, p->value_len);
        h->value_len = p->value_len;

        if (h->value == NULL) {
            free(name);
            return GL_ERROR;
        }

        r->nrh++;
    }

    return GL_OK;
}


/* header names alike, as nginx's $http_ variables see them: case and
   "-" versus "_" do not matter */
static int
gl_request_header_eq(const char *a, const char *b, size_t len)
{
    size_t  i;
    int     ca, cb;

    for (i = 0; i < len; i++) {
        ca = tolower((unsigned char) a[i]);
        cb = tolower((unsigned char) b[i]);
        ca = (ca == '_') ? '-' : ca;
        cb = (cb == '_') ? '-' : cb;

        if (ca != cb) {
            return 0;
        }
    }

    return 1;
}


/* the first value of request header name (lower-case, dashes), or NULL */
const gl_header_t *
gl_request_header(gl_request_t *r, const char *name, size_t len)
{
    size_t  i;

    if (gl_request_build_headers(r) != GL_OK) {
        return NULL;
    }

    for (i = 0; i < r->nrh; i++) {
        if (r->rh[i].name_len == len
            && gl_request_header_eq(r->rh[i].name, name, len))
        {
            return &r->rh[i];
        }
    }

    return NULL;
}
