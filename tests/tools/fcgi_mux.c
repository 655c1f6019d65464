/*
 * fcgi_mux: a small FastCGI client for the tests.  it speaks the protocol
 * with raw sockets and the record structs of <fastcgi.h>; it does not use
 * libfcgi's FCGX API, so it can send what libfcgi never would: several
 * requests multiplexed on one connection, GET_VALUES, arbitrary bytes.
 *
 * usage:
 *   fcgi_mux [options] -s SOCK REQUEST...
 *   fcgi_mux [options] -s SOCK --get-values
 *   fcgi_mux [options] -s SOCK --raw FILE [REQUEST...]
 *
 *   -s SOCK         a unix socket path, or HOST:PORT
 *   -t SEC          give up after SEC seconds (default 10; may be fractional)
 *   -p NAME=VALUE   a param; before the first -r it goes to every request,
 *                   after an -r only to that request
 *   -f FILE         shorthand for -p SCRIPT_FILENAME=FILE
 *   -r              starts a new request (ids 1, 2, ... in -r order)
 *   -n N            N requests with only the common params (instead of -r)
 *   -b BODY         the request body (STDIN) of the current request
 *   -B N            a body of N bytes of 'x' for the current request
 *   -c N            split PARAMS and STDIN into records of at most N bytes
 *   -i ID           the id of the first request (default 1)
 *   -a ID           after everything, send ABORT_REQUEST for ID
 *   --seq           send each request whole, one after another; the
 *                   default interleaves: all BEGINs, then all PARAMS, then
 *                   all STDINs
 *   --no-keep-conn  do not set FCGI_KEEP_CONN
 *   --shut-wr       shutdown(SHUT_WR) once everything is sent
 *   --wait-close    after the last END_REQUEST, wait for the server to close
 *   --get-values    send GET_VALUES for FCGI_MAX_CONNS, FCGI_MAX_REQS and
 *                   FCGI_MPXS_CONNS
 *   --raw FILE      send the bytes of FILE ("-" = stdin) before any request
 *
 * output, on stdout, in arrival order:
 *   end id=I app_status=A protocol_status=P
 *   value NAME=VALUE                  (one per GET_VALUES_RESULT pair)
 *   unknown_type T                    (an UNKNOWN_TYPE record)
 *   record type=T id=I len=L          (any other record)
 *   bad_input VERSION_OR_REASON       (the server sent something malformed)
 * then for each request, in id order:
 *   response id=I ended=0|1 app_status=A protocol_status=P stdout=N stderr=M
 *   <N bytes of stdout><M bytes of stderr>
 * and a last line: "closed" (the server closed), "timeout" or "done".
 *
 * exit status: 0 when every request ended (or the GET_VALUES result came,
 * or, for --raw alone, the server closed or the time ran out), 2 on a
 * timeout before that, 3 on a socket error, 1 on usage errors.
 */

#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fastcgi.h>


#define MUX_MAX_REQS    1024
#define MUX_MAX_PARAMS  256


typedef struct {
    char       *name;
    char       *value;
} mux_param_t;

typedef struct {
    unsigned    id;
    mux_param_t params[MUX_MAX_PARAMS];
    int         nparams;
    char       *body;
    size_t      body_len;
    int         ended;
    uint32_t    app_status;
    int         protocol_status;
    char       *out;
    size_t      out_len;
    size_t      out_cap;
    char       *err;
    size_t      err_len;
    size_t      err_cap;
} mux_req_t;

typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
} mux_buf_t;


static mux_param_t  common[MUX_MAX_PARAMS];
static int          ncommon;
static mux_req_t   *reqs;
static int          nreqs;
static size_t       chunk = 65528;


static void
die(const char *msg)
{
    fprintf(stderr, "fcgi_mux: %s\n", msg);
    exit(1);
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}


static void
buf_add(mux_buf_t *b, const void *data, size_t len)
{
    if (len == 0) {
        return;
    }
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}


static void
append(char **p, size_t *len, size_t *cap, const unsigned char *data,
    size_t n)
{
    if (n == 0) {
        return;
    }
    if (*len + n > *cap) {
        *cap = (*len + n) * 2 + 64;
        *p = xrealloc(*p, *cap);
    }
    memcpy(*p + *len, data, n);
    *len += n;
}


static void
add_record(mux_buf_t *b, int type, unsigned id, const unsigned char *data,
    size_t len)
{
    FCGI_Header     h;
    unsigned char   pad[8] = { 0 };
    size_t          padding = (8 - (len & 7)) & 7;

    h.version = FCGI_VERSION_1;
    h.type = (unsigned char) type;
    h.requestIdB1 = (unsigned char) (id >> 8);
    h.requestIdB0 = (unsigned char) id;
    h.contentLengthB1 = (unsigned char) (len >> 8);
    h.contentLengthB0 = (unsigned char) len;
    h.paddingLength = (unsigned char) padding;
    h.reserved = 0;

    buf_add(b, &h, sizeof(h));
    buf_add(b, data, len);
    buf_add(b, pad, padding);
}


/* a stream: the data cut into records of at most `chunk`, then the eos */
static void
add_stream(mux_buf_t *b, int type, unsigned id, const unsigned char *data,
    size_t len)
{
    size_t  n;

    while (len) {
        n = len < chunk ? len : chunk;
        add_record(b, type, id, data, n);
        data += n;
        len -= n;
    }
    add_record(b, type, id, NULL, 0);
}


static void
nv_len(mux_buf_t *b, size_t len)
{
    unsigned char  l[4];

    if (len < 128) {
        l[0] = (unsigned char) len;
        buf_add(b, l, 1);
        return;
    }
    l[0] = (unsigned char) ((len >> 24) | 0x80);
    l[1] = (unsigned char) (len >> 16);
    l[2] = (unsigned char) (len >> 8);
    l[3] = (unsigned char) len;
    buf_add(b, l, 4);
}


static void
nv_add(mux_buf_t *b, const char *name, const char *value)
{
    nv_len(b, strlen(name));
    nv_len(b, strlen(value));
    buf_add(b, name, strlen(name));
    buf_add(b, value, strlen(value));
}


static int
has_param(mux_req_t *r, const char *name)
{
    int  i;

    for (i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0) {
            return 1;
        }
    }
    for (i = 0; i < ncommon; i++) {
        if (strcmp(common[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}


static void
add_params(mux_buf_t *b, mux_req_t *r)
{
    mux_buf_t   nv = { NULL, 0, 0 };
    char        cl[32];
    int         i;

    for (i = 0; i < ncommon; i++) {
        nv_add(&nv, common[i].name, common[i].value);
    }
    for (i = 0; i < r->nparams; i++) {
        nv_add(&nv, r->params[i].name, r->params[i].value);
    }
    if (!has_param(r, "REQUEST_METHOD")) {
        nv_add(&nv, "REQUEST_METHOD", r->body_len ? "POST" : "GET");
    }
    if (!has_param(r, "SERVER_PROTOCOL")) {
        nv_add(&nv, "SERVER_PROTOCOL", "HTTP/1.1");
    }
    if (!has_param(r, "GATEWAY_INTERFACE")) {
        nv_add(&nv, "GATEWAY_INTERFACE", "CGI/1.1");
    }
    if (!has_param(r, "QUERY_STRING")) {
        nv_add(&nv, "QUERY_STRING", "");
    }
    if (!has_param(r, "REQUEST_URI")) {
        nv_add(&nv, "REQUEST_URI", "/");
    }
    if (!has_param(r, "CONTENT_LENGTH") && r->body_len) {
        snprintf(cl, sizeof(cl), "%zu", r->body_len);
        nv_add(&nv, "CONTENT_LENGTH", cl);
    }

    add_stream(b, FCGI_PARAMS, r->id, nv.data, nv.len);
    free(nv.data);
}


static void
add_begin(mux_buf_t *b, unsigned id, int keep)
{
    FCGI_BeginRequestBody  body;

    memset(&body, 0, sizeof(body));
    body.roleB1 = 0;
    body.roleB0 = FCGI_RESPONDER;
    body.flags = keep ? FCGI_KEEP_CONN : 0;
    add_record(b, FCGI_BEGIN_REQUEST, id, (unsigned char *) &body,
               sizeof(body));
}


static void
parse_param(const char *arg, mux_param_t *p)
{
    const char  *eq = strchr(arg, '=');

    if (eq == NULL) {
        die("a param must be NAME=VALUE");
    }
    p->name = strndup(arg, (size_t) (eq - arg));
    p->value = strdup(eq + 1);
    if (p->name == NULL || p->value == NULL) {
        die("out of memory");
    }
}


static void
add_param_arg(const char *arg)
{
    mux_req_t  *r;

    if (nreqs == 0) {
        if (ncommon == MUX_MAX_PARAMS) {
            die("too many params");
        }
        parse_param(arg, &common[ncommon++]);
        return;
    }
    r = &reqs[nreqs - 1];
    if (r->nparams == MUX_MAX_PARAMS) {
        die("too many params");
    }
    parse_param(arg, &r->params[r->nparams++]);
}


static void
new_request(void)
{
    if (nreqs == MUX_MAX_REQS) {
        die("too many requests");
    }
    memset(&reqs[nreqs], 0, sizeof(mux_req_t));
    nreqs++;
}


static void
free_params(mux_param_t *p, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
}


static mux_req_t *
find_req(unsigned id)
{
    int  i;

    for (i = 0; i < nreqs; i++) {
        if (reqs[i].id == id) {
            return &reqs[i];
        }
    }
    return NULL;
}


static int
connect_to(const char *addr)
{
    struct sockaddr_un   sun;
    struct addrinfo      hints, *res;
    const char          *colon;
    char                 host[256];
    int                  fd;

    colon = strrchr(addr, ':');
    if (addr[0] == '/' || colon == NULL) {
        if (strlen(addr) >= sizeof(sun.sun_path)) {
            die("socket path too long");
        }
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd == -1) {
            return -1;
        }
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, addr);
        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
            close(fd);
            return -1;
        }
        return fd;
    }

    if ((size_t) (colon - addr) >= sizeof(host)) {
        die("host too long");
    }
    memcpy(host, addr, (size_t) (colon - addr));
    host[colon - addr] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd == -1 || connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
        if (fd != -1) {
            close(fd);
        }
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static size_t
read_nv_len(const unsigned char *p, size_t n, size_t *len)
{
    if (n < 1) {
        return 0;
    }
    if (p[0] < 128) {
        *len = p[0];
        return 1;
    }
    if (n < 4) {
        return 0;
    }
    *len = ((size_t) (p[0] & 0x7f) << 24) | ((size_t) p[1] << 16)
           | ((size_t) p[2] << 8) | p[3];
    return 4;
}


static void
print_values(const unsigned char *p, size_t n)
{
    size_t  a, b, nl, vl;

    while (n) {
        a = read_nv_len(p, n, &nl);
        if (a == 0) {
            printf("bad_input truncated GET_VALUES_RESULT\n");
            return;
        }
        p += a;
        n -= a;
        b = read_nv_len(p, n, &vl);
        if (b == 0 || nl + vl > n - b) {
            printf("bad_input truncated GET_VALUES_RESULT\n");
            return;
        }
        p += b;
        n -= b;
        printf("value %.*s=%.*s\n", (int) nl, p, (int) vl, p + nl);
        p += nl + vl;
        n -= nl + vl;
    }
}


int
main(int argc, char **argv)
{
    mux_buf_t       out = { NULL, 0, 0 };
    mux_buf_t       in = { NULL, 0, 0 };
    const char     *sock = NULL, *raw = NULL;
    double          timeout = 10, deadline;
    unsigned        first_id = 1, abort_id = 0;
    int             seq = 0, keep = 1, shut_wr = 0, wait_close = 0;
    int             get_values = 0, n = 0, i, fd, rc = 0;
    int             ended = 0, got_values = 0, closed = 0, timed_out = 0;
    int             bad = 0, shut = 0;
    size_t          sent = 0, pos, clen, plen;
    unsigned char   rbuf[65536];
    ssize_t         k;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    reqs = calloc(MUX_MAX_REQS, sizeof(mux_req_t));
    if (reqs == NULL) {
        die("out of memory");
    }

    for (i = 1; i < argc; i++) {
        const char  *a = argv[i];
        const char  *v = (i + 1 < argc) ? argv[i + 1] : NULL;

        if (strcmp(a, "--seq") == 0) {
            seq = 1;
        } else if (strcmp(a, "--no-keep-conn") == 0) {
            keep = 0;
        } else if (strcmp(a, "--shut-wr") == 0) {
            shut_wr = 1;
        } else if (strcmp(a, "--wait-close") == 0) {
            wait_close = 1;
        } else if (strcmp(a, "--get-values") == 0) {
            get_values = 1;
        } else if (strcmp(a, "-r") == 0) {
            new_request();
        } else if (v == NULL) {
            die("an option needs a value (see the comment atop fcgi_mux.c)");
        } else if (strcmp(a, "--raw") == 0) {
            raw = v; i++;
        } else if (strcmp(a, "-s") == 0) {
            sock = v; i++;
        } else if (strcmp(a, "-t") == 0) {
            timeout = atof(v); i++;
        } else if (strcmp(a, "-p") == 0) {
            add_param_arg(v); i++;
        } else if (strcmp(a, "-f") == 0) {
            char  *p = malloc(strlen(v) + 20);
            if (p == NULL) {
                die("out of memory");
            }
            sprintf(p, "SCRIPT_FILENAME=%s", v);
            add_param_arg(p); i++;
            free(p);
        } else if (strcmp(a, "-n") == 0) {
            n = atoi(v); i++;
        } else if (strcmp(a, "-b") == 0 || strcmp(a, "-B") == 0) {
            mux_req_t  *r;
            if (nreqs == 0) {
                die("-b/-B needs an -r before it");
            }
            r = &reqs[nreqs - 1];
            free(r->body);
            if (a[1] == 'b') {
                r->body = strdup(v);
                r->body_len = strlen(v);
            } else {
                r->body_len = (size_t) atol(v);
                r->body = malloc(r->body_len + 1);
                if (r->body == NULL) {
                    die("out of memory");
                }
                memset(r->body, 'x', r->body_len);
            }
            i++;
        } else if (strcmp(a, "-c") == 0) {
            chunk = (size_t) atol(v); i++;
            if (chunk == 0 || chunk > FCGI_MAX_LENGTH) {
                die("-c must be 1..65535");
            }
        } else if (strcmp(a, "-i") == 0) {
            first_id = (unsigned) atoi(v); i++;
        } else if (strcmp(a, "-a") == 0) {
            abort_id = (unsigned) atoi(v); i++;
        } else {
            die("unknown option (see the comment atop fcgi_mux.c)");
        }
    }

    if (sock == NULL) {
        die("-s SOCK is required");
    }
    for (i = 0; i < n; i++) {
        new_request();
    }
    for (i = 0; i < nreqs; i++) {
        reqs[i].id = first_id + (unsigned) i;
        if (reqs[i].id > 0xffff) {
            die("request id over 65535");
        }
    }
    if (nreqs == 0 && !get_values && raw == NULL) {
        die("nothing to send: give -r, -n, --get-values or --raw");
    }

    /* build everything we send up front */

    if (raw) {
        FILE  *f = strcmp(raw, "-") == 0 ? stdin : fopen(raw, "rb");
        if (f == NULL) {
            die("cannot open the --raw file");
        }
        while ((k = (ssize_t) fread(rbuf, 1, sizeof(rbuf), f)) > 0) {
            buf_add(&out, rbuf, (size_t) k);
        }
        if (f != stdin) {
            fclose(f);
        }
    }

    if (get_values) {
        mux_buf_t  nv = { NULL, 0, 0 };
        nv_add(&nv, FCGI_MAX_CONNS, "");
        nv_add(&nv, FCGI_MAX_REQS, "");
        nv_add(&nv, FCGI_MPXS_CONNS, "");
        add_record(&out, FCGI_GET_VALUES, 0, nv.data, nv.len);
        free(nv.data);
    }

    if (seq) {
        for (i = 0; i < nreqs; i++) {
            add_begin(&out, reqs[i].id, keep);
            add_params(&out, &reqs[i]);
            add_stream(&out, FCGI_STDIN, reqs[i].id,
                       (unsigned char *) reqs[i].body, reqs[i].body_len);
        }
    } else {
        for (i = 0; i < nreqs; i++) {
            add_begin(&out, reqs[i].id, keep);
        }
        for (i = 0; i < nreqs; i++) {
            add_params(&out, &reqs[i]);
        }
        for (i = 0; i < nreqs; i++) {
            add_stream(&out, FCGI_STDIN, reqs[i].id,
                       (unsigned char *) reqs[i].body, reqs[i].body_len);
        }
    }

    if (abort_id) {
        add_record(&out, FCGI_ABORT_REQUEST, abort_id, NULL, 0);
    }

    fd = connect_to(sock);
    if (fd == -1) {
        fprintf(stderr, "fcgi_mux: connect to %s: %s\n", sock,
                strerror(errno));
        return 3;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    deadline = now() + timeout;

    for ( ;; ) {
        struct pollfd  pfd;
        double         left;
        int            done;

        done = (nreqs == 0 || ended == nreqs)
               && (!get_values || got_values);
        if (nreqs == 0 && !get_values) {
            done = 0;   /* --raw alone: read until close or timeout */
        }
        if (done && !wait_close) {
            break;
        }
        if (closed || bad) {
            break;
        }

        if (sent == out.len && shut_wr && !shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }

        left = deadline - now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }

        pfd.fd = fd;
        pfd.events = POLLIN | (sent < out.len ? POLLOUT : 0);
        pfd.revents = 0;
        if (poll(&pfd, 1, (int) (left * 1000) + 1) == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror("fcgi_mux: poll");
            return 3;
        }

        if ((pfd.revents & POLLOUT) && sent < out.len) {
            k = write(fd, out.data + sent, out.len - sent);
            if (k > 0) {
                sent += (size_t) k;
            } else if (k == -1 && errno != EAGAIN && errno != EINTR) {
                /* the server closed on us; what it sent is still readable */
                sent = out.len;
                shut = 1;
            }
        }

        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            k = read(fd, rbuf, sizeof(rbuf));
            if (k == 0 || (k == -1 && errno == ECONNRESET)) {
                closed = 1;
            } else if (k > 0) {
                buf_add(&in, rbuf, (size_t) k);
            } else if (errno != EAGAIN && errno != EINTR) {
                perror("fcgi_mux: read");
                return 3;
            }
        }

        /* whole records */
        pos = 0;
        while (in.len - pos >= FCGI_HEADER_LEN) {
            FCGI_Header  *h = (FCGI_Header *) (in.data + pos);
            unsigned      id;
            mux_req_t    *r;
            unsigned char *c;

            if (h->version != FCGI_VERSION_1) {
                printf("bad_input version %d\n", h->version);
                bad = 1;
                break;
            }
            clen = ((size_t) h->contentLengthB1 << 8) | h->contentLengthB0;
            plen = h->paddingLength;
            if (in.len - pos < FCGI_HEADER_LEN + clen + plen) {
                break;
            }
            id = ((unsigned) h->requestIdB1 << 8) | h->requestIdB0;
            c = in.data + pos + FCGI_HEADER_LEN;

            switch (h->type) {

            case FCGI_STDOUT:
            case FCGI_STDERR:
                r = find_req(id);
                if (r == NULL) {
                    printf("record type=%d id=%u len=%zu\n", h->type, id, clen);
                } else if (h->type == FCGI_STDOUT) {
                    append(&r->out, &r->out_len, &r->out_cap, c, clen);
                } else {
                    append(&r->err, &r->err_len, &r->err_cap, c, clen);
                }
                break;

            case FCGI_END_REQUEST:
                r = find_req(id);
                if (clen < 8) {
                    printf("bad_input short END_REQUEST\n");
                    bad = 1;
                    break;
                }
                printf("end id=%u app_status=%u protocol_status=%d\n", id,
                       ((uint32_t) c[0] << 24) | ((uint32_t) c[1] << 16)
                       | ((uint32_t) c[2] << 8) | c[3], c[4]);
                if (r && !r->ended) {
                    r->ended = 1;
                    r->app_status = ((uint32_t) c[0] << 24)
                                    | ((uint32_t) c[1] << 16)
                                    | ((uint32_t) c[2] << 8) | c[3];
                    r->protocol_status = c[4];
                    ended++;
                }
                break;

            case FCGI_GET_VALUES_RESULT:
                print_values(c, clen);
                got_values = 1;
                break;

            case FCGI_UNKNOWN_TYPE:
                printf("unknown_type %d\n", clen ? c[0] : -1);
                break;

            default:
                printf("record type=%d id=%u len=%zu\n", h->type, id, clen);
            }

            pos += FCGI_HEADER_LEN + clen + plen;
        }
        if (pos) {
            memmove(in.data, in.data + pos, in.len - pos);
            in.len -= pos;
        }
    }

    for (i = 0; i < nreqs; i++) {
        mux_req_t  *r = &reqs[i];

        printf("response id=%u ended=%d app_status=%u protocol_status=%d "
               "stdout=%zu stderr=%zu\n", r->id, r->ended, r->app_status,
               r->protocol_status, r->out_len, r->err_len);
        if (r->out_len) {
            fwrite(r->out, 1, r->out_len, stdout);
        }
        if (r->err_len) {
            fwrite(r->err, 1, r->err_len, stdout);
        }
    }

    if (closed) {
        printf("closed\n");
    } else if (timed_out) {
        printf("timeout\n");
    } else {
        printf("done\n");
    }

    if (timed_out && !(nreqs == 0 && !get_values)) {
        if (!(ended == nreqs && (!get_values || got_values))) {
            rc = 2;
        }
    }
    if (!timed_out && !bad && (ended < nreqs || (get_values && !got_values))) {
        rc = 2;   /* closed before we got everything */
    }

    fflush(stdout);
    close(fd);

    for (i = 0; i < nreqs; i++) {
        free_params(reqs[i].params, reqs[i].nparams);
        free(reqs[i].body);
        free(reqs[i].out);
        free(reqs[i].err);
    }
    free_params(common, ncommon);
    free(reqs);
    free(out.data);
    free(in.data);
    return rc;
}
