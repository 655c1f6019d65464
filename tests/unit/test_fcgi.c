/*
 * Unit tests of the FastCGI codec.  The .c is included so that its statics
 * are reachable.  Encoders are checked byte for byte against hand-built
 * records; the parser is checked for the same events under every split of
 * its input.
 */
#include "../../src/fcgi/gl_fcgi.c"

#include <stdarg.h>
#include <stdio.h>


#include "gl_test.h"

#define CHECK_MEM(got, got_len, want, want_len)                              \
    gl_t_check_mem(__LINE__, #got, got, got_len, want, want_len)


static void
gl_t_dump(const char *what, const u_char *p, size_t len)
{
    size_t  i;

    printf("  %s (%zu):", what, len);

    for (i = 0; i < len && i < 64; i++) {
        printf(" %02x", p[i]);
    }

    printf("%s\n", len > 64 ? " ..." : "");
}


static void
gl_t_check_mem(int line, const char *expr, const u_char *got, size_t got_len,
    const u_char *want, size_t want_len)
{
    size_t  i;

    if (got_len == want_len && memcmp(got, want, got_len) == 0) {
        gl_t_passed++;
        return;
    }

    gl_t_failed++;

    for (i = 0; i < got_len && i < want_len && got[i] == want[i]; i++) {
        /* void */
    }

    printf("FAIL %s:%d: %s differs at byte %zu\n", __FILE__, line, expr, i);
    gl_t_dump("got", got, got_len);
    gl_t_dump("want", want, want_len);
}


/*
 * The event log: a canonical byte form of what the parser (and the
 * name-value decoders fed from its PARAMS and GET_VALUES chunks) produced.
 * Chunks of one record are joined, so any split of the input must give the
 * same log.
 */

#define GL_T_LOG_SIZE  (256 * 1024)

typedef struct {
    u_char            buf[GL_T_LOG_SIZE];
    size_t            len;
    int               overflow;
    int               invariant;   /* a broken per-event rule, by line */

    u_char            pend[GL_T_LOG_SIZE];   /* chunks of the record */
    size_t            pend_len;
    int               pend_type;
    unsigned          pend_chunks;

    gl_fcgi_nv_t      params;
    u_char            params_arena[4096];
    int               params_failed;
    gl_fcgi_nv_t      values;
    u_char            values_arena[4096];
    int               values_failed;

    unsigned          events;      /* raw events, for the counts */
    unsigned          errors;
} gl_t_log_t;


static void
gl_t_put(gl_t_log_t *log, const void *data, size_t len)
{
    if (len > sizeof(log->buf) - log->len) {
        log->overflow = 1;
        return;
    }

    if (len) {
        memcpy(log->buf + log->len, data, len);
    }

    log->len += len;
}


static void
gl_t_putf(gl_t_log_t *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gl_t_putf(gl_t_log_t *log, const char *fmt, ...)
{
    char     line[256];
    int      n;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);

    gl_t_put(log, line, (size_t) gl_min(n, (int) sizeof(line) - 1));
}


static void
gl_t_log_init(gl_t_log_t *log, size_t params_limit)
{
    memset(log, 0, sizeof(gl_t_log_t));
    log->pend_type = -1;

    gl_fcgi_nv_init(&log->params, log->params_arena,
                    gl_min(params_limit, sizeof(log->params_arena)));
    gl_fcgi_nv_init(&log->values, log->values_arena,
                    sizeof(log->values_arena));
}


static void
gl_t_nv_feed(gl_t_log_t *log, const char *what, gl_fcgi_nv_t *nv,
    int *failed, const u_char *data, size_t len)
{
    int              rc;
    const char      *err;
    const u_char    *pos, *end;
    gl_fcgi_pair_t   pair;

    if (*failed) {
        return;
    }

    pos = data;
    end = data + len;

    for ( ;; ) {
        err = NULL;
        rc = gl_fcgi_nv_parse(nv, &pos, end, &pair, &err);

        if (rc == GL_AGAIN) {
            if (pos != end) {
                log->invariant = __LINE__;
            }
            return;
        }

        if (rc == GL_ERROR) {
            gl_t_putf(log, "%s error \"%s\"\n", what, err ? err : "(null)");
            *failed = 1;
            return;
        }

        if (rc != GL_OK
            || pair.name[pair.name_len] != '\0'
            || pair.value[pair.value_len] != '\0')
        {
            log->invariant = __LINE__;
            return;
        }

        gl_t_putf(log, "%s pair %zu:", what, pair.name_len);
        gl_t_put(log, pair.name, pair.name_len);
        gl_t_putf(log, " = %zu:", pair.value_len);
        gl_t_put(log, pair.value, pair.value_len);
        gl_t_put(log, "\n", 1);
    }
}


static const char *
gl_t_ev_name(int type)
{
    static const char  *names[] = {
        "NONE", "BEGIN", "ABORT", "PARAMS", "STDIN", "DATA", "GET_VALUES",
        "UNKNOWN_TYPE", "ERROR"
    };

    if (type < 0 || (size_t) type >= gl_nelems(names)) {
        return "?";
    }

    return names[type];
}


/* the end of a record's chunks (or of the input, mid-record) */
static void
gl_t_flush(gl_t_log_t *log, int last, int eos)
{
    if (log->pend_type < 0) {
        return;
    }

    gl_t_putf(log, "%s %s eos=%d len=%zu:", gl_t_ev_name(log->pend_type),
              last ? "record" : "partial", eos, log->pend_len);
    gl_t_put(log, log->pend, log->pend_len);
    gl_t_put(log, "\n", 1);

    log->pend_type = -1;
    log->pend_len = 0;
    log->pend_chunks = 0;
}


static void
gl_t_event(gl_t_log_t *log, const gl_fcgi_event_t *ev)
{
    log->events++;

    switch (ev->type) {

    case GL_FCGI_EV_BEGIN:
        gl_t_putf(log, "BEGIN id=%u role=%u flags=%u\n",
                  ev->id, ev->role, ev->flags);
        break;

    case GL_FCGI_EV_ABORT:
        gl_t_putf(log, "ABORT id=%u\n", ev->id);
        break;

    case GL_FCGI_EV_UNKNOWN_TYPE:
        gl_t_putf(log, "UNKNOWN_TYPE id=%u rtype=%u\n", ev->id, ev->rtype);
        break;

    case GL_FCGI_EV_ERROR:
        log->errors++;
        gl_t_putf(log, "ERROR \"%s\"\n", ev->err ? ev->err : "(null)");
        break;

    case GL_FCGI_EV_PARAMS:
    case GL_FCGI_EV_STDIN:
    case GL_FCGI_EV_DATA:
    case GL_FCGI_EV_GET_VALUES:
        /* the rules of chunk events */
        if ((ev->len == 0 && !ev->eos) || (ev->eos && !ev->last)
            || (ev->eos && ev->len) || ev->data == NULL
            || (log->pend_type >= 0 && log->pend_type != (int) ev->type)
            || (ev->eos && log->pend_type >= 0))
        {
            log->invariant = __LINE__;
        }

        if (log->pend_type < 0) {
            log->pend_type = ev->type;
            gl_t_putf(log, "%s id=%u\n", gl_t_ev_name(ev->type), ev->id);
        }

        if (ev->len <= sizeof(log->pend) - log->pend_len) {
            memcpy(log->pend + log->pend_len, ev->data, ev->len);
            log->pend_len += ev->len;
        } else {
            log->overflow = 1;
        }

        log->pend_chunks++;

        if (ev->type == GL_FCGI_EV_PARAMS) {
            gl_t_nv_feed(log, "params", &log->params, &log->params_failed,
                         ev->data, ev->len);

        } else if (ev->type == GL_FCGI_EV_GET_VALUES) {
            gl_t_nv_feed(log, "values", &log->values, &log->values_failed,
                         ev->data, ev->len);
        }

        if (!ev->last) {
            break;
        }

        gl_t_flush(log, 1, ev->eos);

        if (ev->type == GL_FCGI_EV_PARAMS && ev->eos) {
            gl_t_putf(log, "params done %d\n",
                      log->params_failed ? 9 : gl_fcgi_nv_done(&log->params));
            gl_fcgi_nv_init(&log->params, log->params.start,
                            (size_t) (log->params.end - log->params.start));
            log->params_failed = 0;

        } else if (ev->type == GL_FCGI_EV_GET_VALUES) {
            gl_t_putf(log, "values done %d\n",
                      log->values_failed ? 9 : gl_fcgi_nv_done(&log->values));
            gl_fcgi_nv_init(&log->values, log->values_arena,
                            sizeof(log->values_arena));
            log->values_failed = 0;
        }

        break;

    default:
        log->invariant = __LINE__;
        break;
    }
}


/* feeds buf[0..len) as one read; returns 0 once the parser is in error */
static int
gl_t_feed(gl_t_log_t *log, gl_fcgi_parser_t *p, const u_char *buf,
    size_t len)
{
    size_t           n;
    gl_fcgi_event_t  ev;

    for ( ;; ) {
        n = gl_fcgi_parse(p, buf, len, &ev);

        if (n > len) {
            log->invariant = __LINE__;
            return 0;
        }

        if (ev.type == GL_FCGI_EV_ERROR) {
            gl_t_flush(log, 0, 0);
            gl_t_event(log, &ev);
            return 0;
        }

        if (ev.type == GL_FCGI_EV_NONE) {
            if (n != len) {
                log->invariant = __LINE__;  /* stopped with nothing to say */
            }
            return 1;
        }

        if (n == 0) {
            log->invariant = __LINE__;  /* an event out of no input */
            return 0;
        }

        gl_t_event(log, &ev);

        buf += n;
        len -= n;
    }
}


static void
gl_t_finish(gl_t_log_t *log)
{
    gl_t_flush(log, 0, 0);
    gl_t_putf(log, "end params=%d values=%d\n",
              log->params_failed ? 9 : gl_fcgi_nv_done(&log->params),
              log->values_failed ? 9 : gl_fcgi_nv_done(&log->values));
}


/* feeds input cut at the sorted cuts[0..ncuts) */
static void
gl_t_run(gl_t_log_t *log, size_t params_limit, const u_char *in, size_t len,
    const size_t *cuts, size_t ncuts)
{
    size_t            i, from, to;
    gl_fcgi_parser_t  p;

    gl_t_log_init(log, params_limit);
    gl_fcgi_parser_init(&p);

    from = 0;

    for (i = 0; i <= ncuts; i++) {
        to = (i < ncuts) ? cuts[i] : len;

        if (!gl_t_feed(log, &p, in + from, to - from)) {
            break;
        }

        from = to;
    }

    gl_t_finish(log);
}


static void
gl_t_run_bytes(gl_t_log_t *log, size_t params_limit, const u_char *in,
    size_t len)
{
    size_t            i;
    gl_fcgi_parser_t  p;

    gl_t_log_init(log, params_limit);
    gl_fcgi_parser_init(&p);

    for (i = 0; i < len; i++) {
        /* an empty read in between must change nothing */
        if (!gl_t_feed(log, &p, in + i, 0) || !gl_t_feed(log, &p, in + i, 1)) {
            break;
        }
    }

    gl_t_finish(log);
}


static int
gl_t_log_eq(const gl_t_log_t *a, const gl_t_log_t *b)
{
    return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0
           && !a->overflow && !b->overflow && !a->invariant && !b->invariant;
}


static void
gl_t_log_print(const char *what, const gl_t_log_t *log)
{
    size_t  i;

    printf("  %s (invariant line %d, overflow %d):\n    ", what,
           log->invariant, log->overflow);

    for (i = 0; i < log->len; i++) {
        u_char c = log->buf[i];

        if (c == '\n') {
            printf("\n    ");
        } else if (c >= 0x20 && c < 0x7f) {
            putchar(c);
        } else {
            printf("\\x%02x", c);
        }
    }

    putchar('\n');
}


/* a hand-built record, independent of the encoder under test */
static size_t
gl_t_rec(u_char *out, u_char version, u_char type, uint16_t id,
    const void *content, size_t clen, u_char plen)
{
    out[0] = version;
    out[1] = type;
    out[2] = (u_char) (id >> 8);
    out[3] = (u_char) id;
    out[4] = (u_char) (clen >> 8);
    out[5] = (u_char) clen;
    out[6] = plen;
    out[7] = 0xee;   /* reserved: ignored */

    if (clen) {
        memcpy(out + 8, content, clen);
    }

    /* padding bytes are garbage on purpose */
    memset(out + 8 + clen, 0xa5, plen);

    return 8 + clen + plen;
}


/* encoders */

static void
test_header(void)
{
    u_char        buf[8];
    const u_char  want[] = { 1, 6, 0x12, 0x34, 0xff, 0xfe, 7, 0 };

    memset(buf, 0xcc, sizeof(buf));
    gl_fcgi_header(buf, FCGI_STDOUT, 0x1234, 0xfffe, 7);
    CHECK_MEM(buf, 8, want, sizeof(want));

    CHECK(gl_fcgi_padding(0) == 0);
    CHECK(gl_fcgi_padding(1) == 7);
    CHECK(gl_fcgi_padding(7) == 1);
    CHECK(gl_fcgi_padding(8) == 0);
    CHECK(gl_fcgi_padding(65535) == 1);
}


static void
test_end_request(void)
{
    u_char        buf[32];
    size_t        n;
    const u_char  want[] = {
        1, 3, 0x00, 0x07, 0, 8, 0, 0,
        0xde, 0xad, 0xbe, 0xef, FCGI_OVERLOADED, 0, 0, 0
    };
    const u_char  want0[] = {
        1, 3, 0xff, 0xff, 0, 8, 0, 0,
        0, 0, 0, 0, FCGI_REQUEST_COMPLETE, 0, 0, 0
    };

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_end_request(buf, 7, 0xdeadbeef, FCGI_OVERLOADED);
    CHECK(n == 16);
    CHECK_MEM(buf, n, want, sizeof(want));
    CHECK(buf[16] == 0xcc);

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_end_request(buf, 0xffff, 0, FCGI_REQUEST_COMPLETE);
    CHECK_MEM(buf, n, want0, sizeof(want0));
}


static void
test_unknown_type(void)
{
    u_char        buf[32];
    size_t        n;
    const u_char  want[] = {
        1, 11, 0, 0, 0, 8, 0, 0,
        42, 0, 0, 0, 0, 0, 0, 0
    };

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_unknown_type(buf, 42);
    CHECK(n == 16);
    CHECK_MEM(buf, n, want, sizeof(want));
    CHECK(buf[16] == 0xcc);
}


static void
test_nv_encode(void)
{
    u_char        buf[512], big[300], want[600];
    size_t        n;
    const u_char  want_short[] = { 4, 3, 'H', 'O', 'S', 'T', 'a', '.', 'b' };
    const u_char  want_empty[] = { 1, 0, 'X' };
    const u_char  want_127[] = { 0x7f, 1 };

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_nv_encode(buf, sizeof(buf), (u_char *) "HOST", 4,
                          (u_char *) "a.b", 3);
    CHECK_MEM(buf, n, want_short, sizeof(want_short));

    /* exactly the size needed, and one byte less */
    n = gl_fcgi_nv_encode(buf, 9, (u_char *) "HOST", 4, (u_char *) "a.b", 3);
    CHECK(n == 9);
    n = gl_fcgi_nv_encode(buf, 8, (u_char *) "HOST", 4, (u_char *) "a.b", 3);
    CHECK(n == 0);
    n = gl_fcgi_nv_encode(buf, 1, (u_char *) "", 0, (u_char *) "", 0);
    CHECK(n == 0);
    n = gl_fcgi_nv_encode(buf, 0, NULL, 0, NULL, 0);
    CHECK(n == 0);

    n = gl_fcgi_nv_encode(buf, sizeof(buf), (u_char *) "X", 1, NULL, 0);
    CHECK_MEM(buf, n, want_empty, sizeof(want_empty));

    /* 127 still takes one byte, 128 takes four */
    memset(big, 'v', sizeof(big));
    n = gl_fcgi_nv_encode(buf, sizeof(buf), big, 127, big, 1);
    CHECK(n == 2 + 127 + 1);
    CHECK_MEM(buf, 2, want_127, sizeof(want_127));

    n = gl_fcgi_nv_encode(buf, sizeof(buf), (u_char *) "N", 1, big, 128);
    want[0] = 1;
    want[1] = 0x80; want[2] = 0; want[3] = 0; want[4] = 0x80;
    want[5] = 'N';
    memset(want + 6, 'v', 128);
    CHECK_MEM(buf, n, want, 6 + 128);

    /* both long: 300 = 0x12c */
    n = gl_fcgi_nv_encode(buf, sizeof(buf), big, 300, big, 200 - 72);
    want[0] = 0x80; want[1] = 0; want[2] = 0x01; want[3] = 0x2c;
    want[4] = 0x80; want[5] = 0; want[6] = 0; want[7] = 0x80;
    memset(want + 8, 'v', 300 + 128);
    CHECK_MEM(buf, n, want, 8 + 300 + 128);

    /* lengths over 2^31 - 1 cannot be encoded */
    n = gl_fcgi_nv_encode(buf, sizeof(buf), big, (size_t) 0x80000000u,
                          big, 1);
    CHECK(n == 0);
    n = gl_fcgi_nv_encode(buf, sizeof(buf), big, 1,
                          big, (size_t) 0x80000000u);
    CHECK(n == 0);
    n = gl_fcgi_nv_encode(buf, 4000000000u, big, 0x7fffffff,
                          big, 0x7fffffff);
    CHECK(n == 0);   /* 8 + 2^32 - 2 > size: refused, nothing read */
}


static void
test_stream_small(void)
{
    u_char        buf[64];
    size_t        n;
    const u_char  want[] = {
        1, 6, 0, 5, 0, 5, 3, 0,
        'h', 'e', 'l', 'l', 'o', 0, 0, 0
    };
    const u_char  want8[] = {
        1, 7, 0, 1, 0, 8, 0, 0,
        '1', '2', '3', '4', '5', '6', '7', '8'
    };
    const u_char  want_eos[] = { 1, 6, 0, 5, 0, 0, 0, 0 };

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_stream(buf, sizeof(buf), FCGI_STDOUT, 5,
                       (u_char *) "hello", 5);
    CHECK(n == gl_fcgi_stream_size(5));
    CHECK_MEM(buf, n, want, sizeof(want));
    CHECK(buf[16] == 0xcc);

    n = gl_fcgi_stream(buf, sizeof(buf), FCGI_STDERR, 1,
                       (u_char *) "12345678", 8);
    CHECK_MEM(buf, n, want8, sizeof(want8));

    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_stream(buf, sizeof(buf), FCGI_STDOUT, 5, NULL, 0);
    CHECK(gl_fcgi_stream_size(0) == 8);
    CHECK_MEM(buf, n, want_eos, sizeof(want_eos));
    CHECK(buf[8] == 0xcc);

    /* too small: nothing written */
    memset(buf, 0xcc, sizeof(buf));
    n = gl_fcgi_stream(buf, 15, FCGI_STDOUT, 5, (u_char *) "hello", 5);
    CHECK(n == 0);
    CHECK(buf[0] == 0xcc);
    n = gl_fcgi_stream(buf, 7, FCGI_STDOUT, 5, NULL, 0);
    CHECK(n == 0);
    n = gl_fcgi_stream(buf, 16, FCGI_STDOUT, 5, (u_char *) "hello", 5);
    CHECK(n == 16);

    CHECK(gl_fcgi_stream_size(1) == 16);
    CHECK(gl_fcgi_stream_size(8) == 16);
    CHECK(gl_fcgi_stream_size(9) == 24);
    CHECK(gl_fcgi_stream_size(SIZE_MAX) == SIZE_MAX);
    CHECK(gl_fcgi_stream(buf, sizeof(buf), FCGI_STDOUT, 1, buf, SIZE_MAX)
          == 0);
}


/* parses a framed STDIN stream back: the content must come out whole */
static int
gl_t_reparse(const u_char *framed, size_t n, const u_char *data, size_t len,
    uint16_t id)
{
    static u_char     got[200000];
    size_t            got_len, k, off;
    unsigned          lasts;
    gl_fcgi_parser_t  p;
    gl_fcgi_event_t   ev;

    gl_fcgi_parser_init(&p);
    got_len = 0;
    lasts = 0;
    off = 0;

    while (off < n) {
        k = gl_fcgi_parse(&p, framed + off, n - off, &ev);
        off += k;

        if (ev.type == GL_FCGI_EV_NONE) {
            break;
        }

        if (ev.type != GL_FCGI_EV_STDIN || ev.id != id
            || ev.len > sizeof(got) - got_len)
        {
            return 0;
        }

        memcpy(got + got_len, ev.data, ev.len);
        got_len += ev.len;
        lasts += ev.last;
    }

    return off == n && p.state == GL_FCGI_ST_HEADER && got_len == len
           && memcmp(got, data, len) == 0
           && lasts == (len + FCGI_MAX_LENGTH - 1) / FCGI_MAX_LENGTH
                       + (len == 0);
}


static void
test_stream_large(void)
{
    static u_char  data[3 * 65536], out[3 * 65536 + 64];
    size_t         i, n;
    const u_char   h1[] = { 1, 6, 0, 9, 0xff, 0xff, 1, 0 };
    const u_char   h2[] = { 1, 6, 0, 9, 0x00, 0x01, 7, 0 };
    const u_char   h3[] = { 1, 6, 0, 9, 0xff, 0xfe, 2, 0 };
    const u_char   zeros[8] = { 0 };

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (u_char) (i * 7 + (i >> 8));
    }

    /* exactly one full record */
    n = gl_fcgi_stream(out, sizeof(out), FCGI_STDOUT, 9, data, 65535);
    CHECK(n == 8 + 65535 + 1);
    CHECK(n == gl_fcgi_stream_size(65535));
    CHECK_MEM(out, 8, h1, 8);
    CHECK_MEM(out + 8, 65535, data, 65535);
    CHECK_MEM(out + 8 + 65535, 1, zeros, 1);

    /* one byte more: a second record of 1 byte */
    n = gl_fcgi_stream(out, sizeof(out), FCGI_STDOUT, 9, data, 65536);
    CHECK(n == 65544 + 16);
    CHECK(n == gl_fcgi_stream_size(65536));
    CHECK_MEM(out, 8, h1, 8);
    CHECK_MEM(out + 8, 65535, data, 65535);
    CHECK_MEM(out + 65544, 8, h2, 8);
    CHECK_MEM(out + 65552, 1, data + 65535, 1);
    CHECK_MEM(out + 65553, 7, zeros, 7);

    /* the exact size works; one byte less writes nothing */
    CHECK(gl_fcgi_stream(out, 65560, FCGI_STDOUT, 9, data, 65536) == 65560);
    CHECK(gl_fcgi_stream(out, 65559, FCGI_STDOUT, 9, data, 65536) == 0);
    CHECK(gl_fcgi_stream(out, 65543, FCGI_STDOUT, 9, data, 65535) == 0);

    /* two full records, then 131070 + 65534 */
    CHECK(gl_fcgi_stream_size(131070) == 2 * 65544);
    n = gl_fcgi_stream(out, sizeof(out), FCGI_STDOUT, 9, data, 196604);
    CHECK(n == 2 * 65544 + 8 + 65534 + 2);
    CHECK(n == gl_fcgi_stream_size(196604));
    CHECK_MEM(out + 65544, 8, h1, 8);
    CHECK_MEM(out + 2 * 65544, 8, h3, 8);
    CHECK_MEM(out + 2 * 65544 + 8, 65534, data + 131070, 65534);

    /* what we frame, the parser reads back */
    {
        static const size_t  lens[] = {
            0, 1, 7, 8, 9, 65534, 65535, 65536, 131069, 131070, 131071,
            196604, 196605
        };

        for (i = 0; i < gl_nelems(lens); i++) {
            n = gl_fcgi_stream(out, sizeof(out), FCGI_STDIN, 300, data,
                               lens[i]);
            CHECK(n == gl_fcgi_stream_size(lens[i]));
            if (!gl_t_reparse(out, n, data, lens[i], 300)) {
                printf("FAIL %s:%d: reparse of %zu bytes\n", __FILE__,
                       __LINE__, lens[i]);
                gl_t_failed++;
            } else {
                gl_t_passed++;
            }
        }
    }
}


/* the parser: every split of one input with every kind of record */

static u_char  gl_t_in[2048];
static size_t  gl_t_in_len;

static void
gl_t_build_input(void)
{
    u_char   *p, c[512];
    size_t    n;
    static const u_char  begin[] = { 0, FCGI_RESPONDER, FCGI_KEEP_CONN,
                                     9, 9, 9, 9, 9 };
    static const u_char  begin2[] = { 0, FCGI_AUTHORIZER, 0, 0, 0, 0, 0, 0 };

    p = gl_t_in;

    p += gl_t_rec(p, 1, FCGI_BEGIN_REQUEST, 1, begin, 8, 0);

    /* PARAMS in two records; a pair crosses the record boundary */
    n = 0;
    memcpy(c + n, "\x0b\x02" "SERVER_PORT" "80", 15);           n += 15;
    memcpy(c + n, "\x00\x00", 2);                               n += 2;
    memcpy(c + n, "\x0c\x80\x00\x00\x82" "QUERY_STRING", 17);   n += 17;
    memset(c + n, 'q', 130);                                    n += 130;
    /* a 4-byte name length for a short name */
    memcpy(c + n, "\x80\x00\x00\x04\x03" "HOSTa.b", 12);        n += 12;
    memcpy(c + n, "\x0e\x04" "REQUEST_METHOD" "P", 17);         n += 17;
    p += gl_t_rec(p, 1, FCGI_PARAMS, 1, c, n, 3);

    n = 0;
    memcpy(c + n, "OST", 3);                                    n += 3;
    memcpy(c + n, "\x01\x00" "E", 3);                           n += 3;
    p += gl_t_rec(p, 1, FCGI_PARAMS, 1, c, n, 0);

    p += gl_t_rec(p, 1, FCGI_PARAMS, 1, NULL, 0, 5);            /* eos */

    p += gl_t_rec(p, 1, FCGI_STDIN, 1, "a=1&b=2", 7, 1);
    p += gl_t_rec(p, 1, 200, 1, "ignored!", 8, 8);              /* unknown */
    p += gl_t_rec(p, 1, FCGI_STDIN, 1, "&c=3", 4, 4);
    p += gl_t_rec(p, 1, FCGI_STDIN, 1, NULL, 0, 0);             /* eos */

    p += gl_t_rec(p, 1, FCGI_DATA, 1, "filter data", 11, 5);
    p += gl_t_rec(p, 1, FCGI_DATA, 1, NULL, 0, 0);

    n = 0;
    memcpy(c + n, "\x0e\x00" "FCGI_MAX_CONNS", 16);             n += 16;
    memcpy(c + n, "\x0f\x00" "FCGI_MPXS_CONNS", 17);            n += 17;
    p += gl_t_rec(p, 1, FCGI_GET_VALUES, 0, c, n, 7);
    p += gl_t_rec(p, 1, FCGI_GET_VALUES, 0, NULL, 0, 0);

    p += gl_t_rec(p, 1, 0, 0, NULL, 0, 0);                      /* unknown */
    p += gl_t_rec(p, 1, 12, 3, "x", 1, 0);                      /* unknown */

    p += gl_t_rec(p, 1, FCGI_BEGIN_REQUEST, 0x0102, begin2, 8, 2);
    p += gl_t_rec(p, 1, FCGI_ABORT_REQUEST, 0x0102, "zz", 2, 6);
    p += gl_t_rec(p, 1, FCGI_ABORT_REQUEST, 1, NULL, 0, 0);

    /* and a STDIN record cut short by the end of input */
    p += gl_t_rec(p, 1, FCGI_STDIN, 4, "cut", 3, 0);
    p[-11 + 4] = 0;
    p[-11 + 5] = 10;   /* claims 10 bytes, has 3 */

    gl_t_in_len = (size_t) (p - gl_t_in);
}


static const char  gl_t_expected[] =
    "BEGIN id=1 role=1 flags=1\n"
    "PARAMS id=1\n"
    "params pair 11:SERVER_PORT = 2:80\n"
    "params pair 0: = 0:\n"
    "params pair 12:QUERY_STRING = 130:"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n"
    "params pair 4:HOST = 3:a.b\n"
    "PARAMS record eos=0 len=193:@\n"   /* @: content, filled in below */
    "PARAMS id=1\n"
    "params pair 14:REQUEST_METHOD = 4:POST\n"
    "params pair 1:E = 0:\n"
    "PARAMS record eos=0 len=6:@\n"
    "PARAMS id=1\n"
    "PARAMS record eos=1 len=0:\n"
    "params done 0\n"
    "STDIN id=1\n"
    "STDIN record eos=0 len=7:a=1&b=2\n"
    "UNKNOWN_TYPE id=1 rtype=200\n"
    "STDIN id=1\n"
    "STDIN record eos=0 len=4:&c=3\n"
    "STDIN id=1\n"
    "STDIN record eos=1 len=0:\n"
    "DATA id=1\n"
    "DATA record eos=0 len=11:filter data\n"
    "DATA id=1\n"
    "DATA record eos=1 len=0:\n"
    "GET_VALUES id=0\n"
    "values pair 14:FCGI_MAX_CONNS = 0:\n"
    "values pair 15:FCGI_MPXS_CONNS = 0:\n"
    "GET_VALUES record eos=0 len=33:@\n"
    "values done 0\n"
    "GET_VALUES id=0\n"
    "GET_VALUES record eos=1 len=0:\n"
    "values done 0\n"
    "UNKNOWN_TYPE id=0 rtype=0\n"
    "UNKNOWN_TYPE id=3 rtype=12\n"
    "BEGIN id=258 role=2 flags=0\n"
    "ABORT id=258\n"
    "ABORT id=1\n"
    "STDIN id=4\n"
    "partial\n"                         /* checked apart */
    ;


static void
test_parse_whole(gl_t_log_t *log)
{
    const char  *e, *at;
    u_char      *g;
    size_t       glen;

    gl_t_run(log, 4096, gl_t_in, gl_t_in_len, NULL, 0);

    CHECK(log->invariant == 0);
    CHECK(log->overflow == 0);
    CHECK(log->errors == 0);

    /* compare against gl_t_expected, line by line, "@" = raw content */
    e = gl_t_expected;
    g = log->buf;
    glen = log->len;

    while (*e && strcmp(e, "partial\n") != 0) {
        at = strchr(e, '@');
        if (at == NULL || strchr(e, '\n') < at) {
            at = strchr(e, '\n') + 1;
            if (glen < (size_t) (at - e) || memcmp(g, e, at - e) != 0) {
                break;
            }
            glen -= at - e;
            g += at - e;
            e = at;
            continue;
        }

        /* "...len=N:@\n": the prefix, then N raw bytes, then "\n" */
        {
            size_t  pre = (size_t) (at - e), n;

            n = strtoul(strstr(e, "len=") + 4, NULL, 10);
            if (glen < pre + n + 1 || memcmp(g, e, pre) != 0
                || g[pre + n] != '\n')
            {
                break;
            }
            glen -= pre + n + 1;
            g += pre + n + 1;
            e = at + 2;
        }
    }

    if (strcmp(e, "partial\n") != 0) {
        gl_t_failed++;
        printf("FAIL %s:%d: whole parse differs from the expected events "
               "at: %.60s\n", __FILE__, __LINE__, e);
        gl_t_log_print("got", log);

    } else {
        const char  tail[] = "STDIN partial eos=0 len=3:cut\n"
                             "end params=0 values=0\n";

        gl_t_passed++;
        CHECK_MEM(g, glen, (const u_char *) tail, sizeof(tail) - 1);
    }
}


static void
test_parse_splits(void)
{
    static gl_t_log_t  whole, split;
    size_t             i, j, cuts[2], bad1, bad2;

    gl_t_build_input();
    test_parse_whole(&whole);

    gl_t_run_bytes(&split, 4096, gl_t_in, gl_t_in_len);
    if (!gl_t_log_eq(&whole, &split)) {
        gl_t_failed++;
        printf("FAIL %s:%d: byte-by-byte feed differs\n", __FILE__, __LINE__);
        gl_t_log_print("whole", &whole);
        gl_t_log_print("bytes", &split);
    } else {
        gl_t_passed++;
    }

    /* also a byte-by-byte feed makes as many chunks as content bytes */
    CHECK(split.events > whole.events + 200);

    bad1 = 0;

    for (i = 0; i <= gl_t_in_len; i++) {
        cuts[0] = i;
        gl_t_run(&split, 4096, gl_t_in, gl_t_in_len, cuts, 1);

        if (!gl_t_log_eq(&whole, &split)) {
            if (bad1++ == 0) {
                printf("FAIL %s:%d: split at %zu differs\n", __FILE__,
                       __LINE__, i);
                gl_t_log_print("split", &split);
            }
        }
    }

    CHECK(bad1 == 0);

    bad2 = 0;

    for (i = 0; i <= gl_t_in_len; i++) {
        for (j = i; j <= gl_t_in_len; j++) {
            cuts[0] = i;
            cuts[1] = j;
            gl_t_run(&split, 4096, gl_t_in, gl_t_in_len, cuts, 2);

            if (!gl_t_log_eq(&whole, &split)) {
                if (bad2++ == 0) {
                    printf("FAIL %s:%d: split at %zu, %zu differs\n",
                           __FILE__, __LINE__, i, j);
                    gl_t_log_print("split", &split);
                }
            }
        }
    }

    CHECK(bad2 == 0);
}


/* malformed input */

static void
gl_t_expect_error(int line, const u_char *in, size_t len, size_t at,
    const char *err)
{
    size_t            i, n, off, got_at;
    gl_fcgi_parser_t  p;
    gl_fcgi_event_t   ev;
    int               ok, step;

    /* whole, then byte by byte: the error must come at the same byte */
    for (step = 0; step < 2; step++) {
        gl_fcgi_parser_init(&p);
        off = 0;
        got_at = (size_t) -1;
        memset(&ev, 0, sizeof(ev));

        while (off < len) {
            i = step ? gl_min(len - off, 1) : len - off;
            n = gl_fcgi_parse(&p, in + off, i, &ev);
            off += n;

            if (ev.type == GL_FCGI_EV_ERROR) {
                got_at = off;
                break;
            }

            if (n == 0) {
                break;   /* no progress: a bug, reported below */
            }
        }

        ok = ev.type == GL_FCGI_EV_ERROR && got_at == at && ev.err
             && strcmp(ev.err, err) == 0;

        /* and it stays in error, whatever comes next */
        n = gl_fcgi_parse(&p, (u_char *) "\1\5\0\1\0\0\0\0", 8, &ev);
        ok = ok && n == 0 && ev.type == GL_FCGI_EV_ERROR && ev.err
             && strcmp(ev.err, err) == 0;
        n = gl_fcgi_parse(&p, NULL, 0, &ev);
        ok = ok && n == 0 && ev.type == GL_FCGI_EV_ERROR;

        if (ok) {
            gl_t_passed++;
        } else {
            gl_t_failed++;
            printf("FAIL %s:%d: expected \"%s\" at %zu, got type %d "
                   "\"%s\" at %zu (%s feed)\n", __FILE__, line, err, at,
                   ev.type, ev.err ? ev.err : "", got_at,
                   step ? "bytewise" : "whole");
        }
    }
}

#define EXPECT_ERROR(in, len, at, err)                                       \
    gl_t_expect_error(__LINE__, in, len, at, err)


static void
test_parse_errors(void)
{
    u_char         in[256], *p;
    size_t         n, b;
    int            t;
    static const u_char  body[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
    static const u_char  app_types[] = {
        FCGI_END_REQUEST, FCGI_STDOUT, FCGI_STDERR, FCGI_GET_VALUES_RESULT,
        FCGI_UNKNOWN_TYPE
    };

    /* bad version, at the first record and after a good one */
    n = gl_t_rec(in, 0, FCGI_BEGIN_REQUEST, 1, body, 8, 0);
    EXPECT_ERROR(in, n, 8, "bad version");
    n = gl_t_rec(in, 2, FCGI_STDIN, 1, NULL, 0, 0);
    EXPECT_ERROR(in, n, 8, "bad version");
    b = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 1, body, 8, 0);
    n = b + gl_t_rec(in + b, 0xff, FCGI_PARAMS, 1, "abc", 3, 5);
    EXPECT_ERROR(in, n, b + 8, "bad version");
    /* garbage: HTTP sent to a FastCGI port */
    memcpy(in, "GET / HTTP/1.1\r\n\r\n", 18);
    EXPECT_ERROR(in, 18, 8, "bad version");

    /* BEGIN_REQUEST of the wrong length, or request id 0 */
    n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 1, body, 7, 0);
    EXPECT_ERROR(in, n, 8, "bad BEGIN_REQUEST length");
    n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 1, "123456789", 9, 0);
    EXPECT_ERROR(in, n, 8, "bad BEGIN_REQUEST length");
    n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 1, NULL, 0, 0);
    EXPECT_ERROR(in, n, 8, "bad BEGIN_REQUEST length");
    n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 0, body, 8, 0);
    EXPECT_ERROR(in, n, 8, "BEGIN_REQUEST with request id 0");

    /* GET_VALUES must be a management record */
    n = gl_t_rec(in, 1, FCGI_GET_VALUES, 1, NULL, 0, 0);
    EXPECT_ERROR(in, n, 8, "GET_VALUES with nonzero request id");
    n = gl_t_rec(in, 1, FCGI_GET_VALUES, 0x100, "\1\0X", 3, 0);
    EXPECT_ERROR(in, n, 8, "GET_VALUES with nonzero request id");

    /* stream and abort records need a request */
    n = gl_t_rec(in, 1, FCGI_PARAMS, 0, NULL, 0, 0);
    EXPECT_ERROR(in, n, 8, "stream record with request id 0");
    n = gl_t_rec(in, 1, FCGI_STDIN, 0, "x", 1, 0);
    EXPECT_ERROR(in, n, 8, "stream record with request id 0");
    n = gl_t_rec(in, 1, FCGI_DATA, 0, "x", 1, 0);
    EXPECT_ERROR(in, n, 8, "stream record with request id 0");
    n = gl_t_rec(in, 1, FCGI_ABORT_REQUEST, 0, NULL, 0, 0);
    EXPECT_ERROR(in, n, 8, "ABORT_REQUEST with request id 0");

    /* records that only an application sends */
    for (t = 0; t < (int) sizeof(app_types); t++) {
        n = gl_t_rec(in, 1, app_types[t], 1, "out", 3, 5);
        EXPECT_ERROR(in, n, 8, "unexpected record type");
    }

    /* STDOUT after a good request start */
    p = in;
    p += gl_t_rec(p, 1, FCGI_BEGIN_REQUEST, 1, body, 8, 0);
    p += gl_t_rec(p, 1, FCGI_PARAMS, 1, NULL, 0, 0);
    b = (size_t) (p - in);
    p += gl_t_rec(p, 1, FCGI_STDOUT, 1, "Status: 200\r\n", 13, 3);
    EXPECT_ERROR(in, (size_t) (p - in), b + 8, "unexpected record type");
}


/* the name-value decoder */

static int
gl_t_nv_all(gl_fcgi_nv_t *nv, const u_char *in, size_t len, size_t step,
    gl_fcgi_pair_t *pairs, size_t *npairs, const char **err)
{
    int            rc;
    size_t         off, k;
    const u_char  *pos, *end;

    *npairs = 0;
    off = 0;

    do {
        k = gl_min(step, len - off);
        pos = in + off;
        end = pos + k;

        for ( ;; ) {
            rc = gl_fcgi_nv_parse(nv, &pos, end, &pairs[*npairs], err);
            if (rc == GL_OK) {
                (*npairs)++;
                continue;
            }
            if (rc == GL_ERROR) {
                return GL_ERROR;
            }
            break;
        }

        off += k;

    } while (off < len);

    return GL_AGAIN;
}


static void
test_nv(void)
{
    u_char          arena[64], in[128];
    size_t          n, np, step;
    const char     *err;
    gl_fcgi_nv_t    nv;
    gl_fcgi_pair_t  pairs[16];
    int             rc;
    const u_char    two[] = "\x01\x02" "ABC" "\x80\x00\x00\x01\x00" "D";

    /* any step, the same pairs, laid out name NUL value NUL */
    for (step = 1; step <= sizeof(two); step++) {
        gl_fcgi_nv_init(&nv, arena, sizeof(arena));
        memset(arena, 0xcc, sizeof(arena));
        err = NULL;
        rc = gl_t_nv_all(&nv, two, sizeof(two) - 1, step, pairs, &np, &err);
        CHECK(rc == GL_AGAIN && np == 2);
        CHECK(gl_fcgi_nv_done(&nv) == GL_OK);
        CHECK_MEM(arena, 8, (const u_char *) "A\0BC\0D\0\0", 8);
        CHECK(arena[8] == 0xcc);
        CHECK(np == 2 && pairs[0].name == arena && pairs[0].name_len == 1
              && pairs[0].value == arena + 2 && pairs[0].value_len == 2
              && pairs[1].name == arena + 5 && pairs[1].name_len == 1
              && pairs[1].value == arena + 7 && pairs[1].value_len == 0);
    }

    /*
     * params that fill the arena exactly fit; one byte more does not:
     * NAME NUL VAL NUL takes 9, the empty pair 2
     */
    n = gl_fcgi_nv_encode(in, sizeof(in), (u_char *) "NAME", 4,
                          (u_char *) "VAL", 3);
    n += gl_fcgi_nv_encode(in + n, sizeof(in) - n, (u_char *) "", 0,
                           (u_char *) "", 0);
    CHECK(n == 11);

    for (step = 1; step <= n; step++) {
        gl_fcgi_nv_init(&nv, arena, 11);
        rc = gl_t_nv_all(&nv, in, n, step, pairs, &np, &err);
        CHECK(rc == GL_AGAIN && np == 2 && nv.pos == arena + 11);
        CHECK(gl_fcgi_nv_done(&nv) == GL_OK);

        gl_fcgi_nv_init(&nv, arena, 10);
        err = NULL;
        rc = gl_t_nv_all(&nv, in, n, step, pairs, &np, &err);
        CHECK(rc == GL_ERROR && np == 1);
        CHECK(err && strcmp(err, "fastcgi params too large") == 0);
    }

    gl_fcgi_nv_init(&nv, arena, 8);
    err = NULL;
    rc = gl_t_nv_all(&nv, in, n, n, pairs, &np, &err);
    CHECK(rc == GL_ERROR && np == 0);
    CHECK(err && strcmp(err, "fastcgi params too large") == 0);
    CHECK(nv.pos == arena);

    /* it stays in error */
    err = NULL;
    {
        const u_char  *pos = in, *end = in + n;

        rc = gl_fcgi_nv_parse(&nv, &pos, end, &pairs[0], &err);
        CHECK(rc == GL_ERROR && err != NULL);
        CHECK(gl_fcgi_nv_done(&nv) == GL_ERROR);
    }

    /* huge lengths are refused before a byte is copied, without wrapping */
    memcpy(in, "\xff\xff\xff\xff\xff\xff\xff\xff" "xyz", 11);
    gl_fcgi_nv_init(&nv, arena, sizeof(arena));
    err = NULL;
    rc = gl_t_nv_all(&nv, in, 11, 11, pairs, &np, &err);
    CHECK(rc == GL_ERROR && np == 0 && err != NULL);

    memcpy(in, "\x80\x00\x00\x3f\x00", 5);   /* 63 + 0 + 2 > 64 */
    gl_fcgi_nv_init(&nv, arena, sizeof(arena));
    rc = gl_t_nv_all(&nv, in, 5, 5, pairs, &np, &err);
    CHECK(rc == GL_ERROR);
    memcpy(in, "\x80\x00\x00\x3e\x00", 5);   /* 62 + 0 + 2 fits */
    memset(in + 5, 'n', 62);
    gl_fcgi_nv_init(&nv, arena, sizeof(arena));
    rc = gl_t_nv_all(&nv, in, 5 + 62, 3, pairs, &np, &err);
    CHECK(rc == GL_AGAIN && np == 1 && pairs[0].name_len == 62);
    CHECK(gl_fcgi_nv_done(&nv) == GL_OK);

    /* an empty arena holds nothing; no input is fine */
    gl_fcgi_nv_init(&nv, NULL, 0);
    CHECK(gl_fcgi_nv_done(&nv) == GL_OK);
    rc = gl_t_nv_all(&nv, (u_char *) "\0\0", 2, 2, pairs, &np, &err);
    CHECK(rc == GL_ERROR);

    /* a pair cut short at the end of the stream, at each place */
    {
        static const u_char  pair[] = "\x80\x00\x00\x02\x03" "NMval";
        size_t               cut;

        for (cut = 0; cut <= sizeof(pair) - 1; cut++) {
            gl_fcgi_nv_init(&nv, arena, sizeof(arena));
            rc = gl_t_nv_all(&nv, pair, cut, 1, pairs, &np, &err);
            CHECK(rc == GL_AGAIN);
            if (cut == 0 || cut == sizeof(pair) - 1) {
                CHECK(gl_fcgi_nv_done(&nv) == GL_OK);
            } else {
                CHECK(gl_fcgi_nv_done(&nv) == GL_ERROR);
            }
        }
    }

    /* a round trip through the encoder at the 127/128 boundary */
    {
        static u_char  big[300], buf[700], ar[700];
        size_t         lens[] = { 0, 1, 127, 128, 129, 300 };
        size_t         a, b;

        memset(big, 'z', sizeof(big));

        for (a = 0; a < gl_nelems(lens); a++) {
            for (b = 0; b < gl_nelems(lens); b++) {
                n = gl_fcgi_nv_encode(buf, sizeof(buf), big, lens[a],
                                      big, lens[b]);
                gl_fcgi_nv_init(&nv, ar, sizeof(ar));
                rc = gl_t_nv_all(&nv, buf, n, 7, pairs, &np, &err);
                CHECK(rc == GL_AGAIN && np == 1
                      && pairs[0].name_len == lens[a]
                      && pairs[0].value_len == lens[b]
                      && memcmp(pairs[0].value, big, lens[b]) == 0
                      && gl_fcgi_nv_done(&nv) == GL_OK);
            }
        }
    }
}


/* params over the limit, through the parser, under every split */
static void
test_params_limit(void)
{
    static gl_t_log_t  whole, split;
    size_t             i, bad;
    const char        *want = "params error \"fastcgi params too large\"\n";

    gl_t_build_input();

    /* SERVER_PORT (15) fits, then "" (2), then QUERY_STRING does not */
    gl_t_run(&whole, 40, gl_t_in, gl_t_in_len, NULL, 0);
    CHECK(whole.invariant == 0);

    if (memmem(whole.buf, whole.len, want, strlen(want)) == NULL
        || memmem(whole.buf, whole.len, "QUERY_STRING =", 14) != NULL
        || memmem(whole.buf, whole.len, "params pair 0:", 14) == NULL
        || memmem(whole.buf, whole.len, "params done 9", 13) == NULL)
    {
        gl_t_failed++;
        printf("FAIL %s:%d: params limit\n", __FILE__, __LINE__);
        gl_t_log_print("got", &whole);
    } else {
        gl_t_passed++;
    }

    bad = 0;

    for (i = 0; i <= gl_t_in_len; i++) {
        gl_t_run(&split, 40, gl_t_in, gl_t_in_len, &i, 1);
        bad += !gl_t_log_eq(&whole, &split);
    }

    CHECK(bad == 0);
}


static void
test_parse_misc(void)
{
    u_char            in[64];
    size_t            n;
    gl_fcgi_parser_t  p;
    gl_fcgi_event_t   ev;
    static const u_char  body[8] = { 0x12, 0x34, 0xff, 0, 0, 0, 0, 0 };

    /* nothing in, nothing out */
    gl_fcgi_parser_init(&p);
    n = gl_fcgi_parse(&p, NULL, 0, &ev);
    CHECK(n == 0 && ev.type == GL_FCGI_EV_NONE);

    /* BEGIN's body is buffered across calls; role and flags are raw */
    n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 0xfffe, body, 8, 0);
    CHECK(gl_fcgi_parse(&p, in, 11, &ev) == 11
          && ev.type == GL_FCGI_EV_NONE);
    CHECK(gl_fcgi_parse(&p, in + 11, 4, &ev) == 4
          && ev.type == GL_FCGI_EV_NONE);
    CHECK(gl_fcgi_parse(&p, in + 15, n - 15, &ev) == 1
          && ev.type == GL_FCGI_EV_BEGIN && ev.id == 0xfffe
          && ev.role == 0x1234 && ev.flags == 0xff);

    /* a chunk points into the buffer given */
    gl_fcgi_parser_init(&p);
    n = gl_t_rec(in, 1, FCGI_STDIN, 2, "hello", 5, 3);
    n += gl_t_rec(in + n, 1, FCGI_STDIN, 2, NULL, 0, 0);
    CHECK(gl_fcgi_parse(&p, in, 10, &ev) == 10
          && ev.type == GL_FCGI_EV_STDIN && ev.data == in + 8
          && ev.len == 2 && !ev.last && !ev.eos);
    CHECK(gl_fcgi_parse(&p, in + 10, n - 10, &ev) == 3
          && ev.type == GL_FCGI_EV_STDIN && ev.data == in + 10
          && ev.len == 3 && ev.last && !ev.eos);
    CHECK(gl_fcgi_parse(&p, in + 13, n - 13, &ev) == n - 13
          && ev.type == GL_FCGI_EV_STDIN && ev.len == 0 && ev.last
          && ev.eos && ev.id == 2);
    CHECK(p.state == GL_FCGI_ST_HEADER && p.hdr_n == 0);

    /* an unknown type tells its type; its content and padding go */
    gl_fcgi_parser_init(&p);
    {
        static u_char  big[300];

        n = gl_t_rec(big, 1, 77, 9, "skip me", 7, 255);
        n += gl_t_rec(big + n, 1, FCGI_ABORT_REQUEST, 9, NULL, 0, 0);
        CHECK(gl_fcgi_parse(&p, big, n, &ev) == 8
              && ev.type == GL_FCGI_EV_UNKNOWN_TYPE && ev.rtype == 77
              && ev.id == 9);
        CHECK(gl_fcgi_parse(&p, big + 8, n - 8, &ev) == n - 8
              && ev.type == GL_FCGI_EV_ABORT && ev.id == 9);
        CHECK(p.state == GL_FCGI_ST_HEADER && p.hdr_n == 0);
    }

    /* the largest content length */
    {
        static u_char  big[8 + 65535 + 255 + 8], content[65535];
        size_t         off, total;

        gl_fcgi_parser_init(&p);
        memset(content, 'x', sizeof(content));
        n = gl_t_rec(big, 1, FCGI_STDIN, 1, content, 65535, 255);
        n += gl_t_rec(big + n, 1, FCGI_STDIN, 1, NULL, 0, 0);
        off = gl_fcgi_parse(&p, big, n, &ev);
        CHECK(off == 8 + 65535 && ev.len == 65535 && ev.last);
        total = off;
        off = gl_fcgi_parse(&p, big + total, n - total, &ev);
        CHECK(total + off == n && ev.eos);
    }
}


/* a PARAMS stream that ends inside a pair, under every split */
static void
test_params_truncated(void)
{
    static gl_t_log_t  whole, split;
    static u_char      in[128];
    size_t             n, i, c, bad;
    static const u_char  body[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
    static const char   *cuts[] = {
        "\x04",                     /* inside the lengths */
        "\x80\x00\x00",             /* inside a 4-byte length */
        "\x04\x05NA",               /* inside the name */
        "\x04\x05NAMEval",          /* inside the value */
    };
    static const size_t  cut_len[] = { 1, 3, 4, 9 };

    for (i = 0; i < gl_nelems(cuts); i++) {
        n = gl_t_rec(in, 1, FCGI_BEGIN_REQUEST, 1, body, 8, 0);
        n += gl_t_rec(in + n, 1, FCGI_PARAMS, 1, "\x01\x01" "AB", 4, 4);
        n += gl_t_rec(in + n, 1, FCGI_PARAMS, 1, cuts[i], cut_len[i], 1);
        n += gl_t_rec(in + n, 1, FCGI_PARAMS, 1, NULL, 0, 0);

        gl_t_run(&whole, 4096, in, n, NULL, 0);

        if (memmem(whole.buf, whole.len, "params pair 1:A = 1:B\n", 22)
            == NULL
            || memmem(whole.buf, whole.len, "params done -1\n", 15) == NULL
            || whole.invariant || whole.errors)
        {
            gl_t_failed++;
            printf("FAIL %s:%d: truncated pair %zu\n", __FILE__, __LINE__,
                   i);
            gl_t_log_print("got", &whole);
            continue;
        }

        gl_t_passed++;
        bad = 0;

        for (c = 0; c <= n; c++) {
            gl_t_run(&split, 4096, in, n, &c, 1);
            bad += !gl_t_log_eq(&whole, &split);
        }

        CHECK(bad == 0);
    }
}


int
main(void)
{
    test_header();
    test_end_request();
    test_unknown_type();
    test_nv_encode();
    test_stream_small();
    test_stream_large();
    test_parse_misc();
    test_parse_splits();
    test_parse_errors();
    test_nv();
    test_params_limit();
    test_params_truncated();

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
