/*
 * libFuzzer target for the FastCGI codec:
 *
 *   clang-14 -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Iobjs -Isrc tests/fuzz/fuzz_fcgi.c -o objs/fuzz_fcgi
 *   objs/fuzz_fcgi -max_total_time=60 tests/fuzz/corpus
 *
 * The input is a byte stream from a web server.  It is parsed whole, cut
 * in two at a point derived from the data, in chunks of a derived size and
 * byte by byte; PARAMS and GET_VALUES content goes on through the
 * name-value decoder.  Every feed must give the same canonical event log
 * (the chunks of one record joined).  Then the same bytes go through the
 * encoders and back.  Any difference aborts.
 */
#include "../../src/fcgi/gl_fcgi.c"

#include <stdio.h>


typedef struct {
    u_char           *buf;
    size_t            len;
    size_t            cap;
} fz_sink_t;

/*
 * Records and pairs go to two sinks: where in a record a pair completes
 * depends on the split, what the pairs are does not.
 */
typedef struct {
    fz_sink_t         ev;
    fz_sink_t         nv_ev;

    int               pend_type;    /* chunks of the record being read */

    gl_fcgi_nv_t      nv[2];        /* PARAMS, GET_VALUES */
    int               nv_failed[2];
    u_char           *arena[2];
    size_t            arena_size[2];
} fz_log_t;


static void
fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_fcgi: %s\n", what);
    abort();
}


static void
fz_put(fz_sink_t *log, const void *data, size_t len)
{
    if (len > log->cap - log->len) {
        fz_fail("log overflow");
    }

    if (len) {
        memcpy(log->buf + log->len, data, len);
    }

    log->len += len;
}


static void
fz_put_num(fz_sink_t *log, char tag, uint64_t v)
{
    u_char  b[9];
    int     i;

    b[0] = (u_char) tag;

    for (i = 0; i < 8; i++) {
        b[1 + i] = (u_char) (v >> (8 * i));
    }

    fz_put(log, b, sizeof(b));
}


static void
fz_log_init(fz_log_t *log, u_char *buf, size_t cap, u_char *arena,
    size_t arena_size, u_char *arena2, size_t arena2_size)
{
    memset(log, 0, sizeof(fz_log_t));
    log->ev.buf = buf;
    log->ev.cap = cap / 2;
    log->nv_ev.buf = buf + cap / 2;
    log->nv_ev.cap = cap / 2;
    log->pend_type = -1;
    log->arena[0] = arena;
    log->arena_size[0] = arena_size;
    log->arena[1] = arena2;
    log->arena_size[1] = arena2_size;
    gl_fcgi_nv_init(&log->nv[0], arena, arena_size);
    gl_fcgi_nv_init(&log->nv[1], arena2, arena2_size);
}


static void
fz_nv_feed(fz_log_t *log, int k, const u_char *data, size_t len)
{
    int              rc;
    const char      *err;
    const u_char    *pos, *end;
    gl_fcgi_pair_t   pair;
    gl_fcgi_nv_t    *nv;

    if (log->nv_failed[k]) {
        return;
    }

    nv = &log->nv[k];
    pos = data;
    end = data + len;

    for ( ;; ) {
        err = NULL;
        rc = gl_fcgi_nv_parse(nv, &pos, end, &pair, &err);

        if (rc == GL_AGAIN) {
            if (pos != end) {
                fz_fail("nv: AGAIN with input left");
            }
            return;
        }

        if (rc == GL_ERROR) {
            if (err == NULL || strcmp(err, "fastcgi params too large") != 0) {
                fz_fail("nv: error without its message");
            }
            if (gl_fcgi_nv_done(nv) != GL_ERROR) {
                fz_fail("nv: done after an error");
            }
            fz_put_num(&log->nv_ev, 'X', (uint64_t) k);
            log->nv_failed[k] = 1;
            return;
        }

        if (rc != GL_OK) {
            fz_fail("nv: bad return code");
        }

        if (pair.name < nv->start || pair.value < pair.name
            || pair.value + pair.value_len >= nv->end
            || pair.name[pair.name_len] != '\0'
            || pair.value[pair.value_len] != '\0'
            || pair.value != pair.name + pair.name_len + 1)
        {
            fz_fail("nv: pair outside the arena or not terminated");
        }

        fz_put_num(&log->nv_ev, 'N', pair.name_len);
        fz_put(&log->nv_ev, pair.name, pair.name_len);
        fz_put_num(&log->nv_ev, 'V', pair.value_len);
        fz_put(&log->nv_ev, pair.value, pair.value_len);
    }
}


static void
fz_nv_end(fz_log_t *log, int k)
{
    fz_put_num(&log->nv_ev, 'D', log->nv_failed[k] ? 9 : (uint64_t) (
                   gl_fcgi_nv_done(&log->nv[k]) + 10));

    gl_fcgi_nv_init(&log->nv[k], log->arena[k], log->arena_size[k]);
    log->nv_failed[k] = 0;
}


static void
fz_event(fz_log_t *log, const gl_fcgi_event_t *ev)
{
    switch (ev->type) {

    case GL_FCGI_EV_BEGIN:
        fz_put_num(&log->ev, 'B', ((uint64_t) ev->id << 32)
                             | ((uint64_t) ev->role << 8) | ev->flags);
        return;

    case GL_FCGI_EV_ABORT:
        fz_put_num(&log->ev, 'A', ev->id);
        return;

    case GL_FCGI_EV_UNKNOWN_TYPE:
        if (ev->rtype >= FCGI_BEGIN_REQUEST && ev->rtype <= FCGI_MAXTYPE) {
            fz_fail("UNKNOWN_TYPE of a known type");
        }
        fz_put_num(&log->ev, 'U', ((uint64_t) ev->id << 8) | ev->rtype);
        return;

    case GL_FCGI_EV_PARAMS:
    case GL_FCGI_EV_STDIN:
    case GL_FCGI_EV_DATA:
    case GL_FCGI_EV_GET_VALUES:
        break;

    default:
        fz_fail("unexpected event type");
    }

    if ((ev->len == 0 && !ev->eos) || (ev->eos && (!ev->last || ev->len))
        || ev->data == NULL
        || (log->pend_type >= 0 && log->pend_type != (int) ev->type)
        || (ev->eos && log->pend_type >= 0)
        || (ev->type == GL_FCGI_EV_GET_VALUES && ev->id != 0)
        || (ev->type != GL_FCGI_EV_GET_VALUES && ev->id == 0))
    {
        fz_fail("a chunk event breaks the rules");
    }

    if (log->pend_type < 0) {
        log->pend_type = ev->type;
        fz_put_num(&log->ev, 'C', ((uint64_t) ev->id << 8) | ev->type);
    }

    fz_put(&log->ev, ev->data, ev->len);

    if (ev->type == GL_FCGI_EV_PARAMS) {
        fz_nv_feed(log, 0, ev->data, ev->len);

    } else if (ev->type == GL_FCGI_EV_GET_VALUES) {
        fz_nv_feed(log, 1, ev->data, ev->len);
    }

    if (!ev->last) {
        return;
    }

    fz_put_num(&log->ev, 'E', ev->eos);
    log->pend_type = -1;

    if (ev->type == GL_FCGI_EV_PARAMS && ev->eos) {
        fz_nv_end(log, 0);

    } else if (ev->type == GL_FCGI_EV_GET_VALUES) {
        fz_nv_end(log, 1);
    }
}


/* returns 0 once the parser is in error */
static int
fz_feed(fz_log_t *log, gl_fcgi_parser_t *p, const u_char *buf, size_t len)
{
    size_t           n;
    gl_fcgi_event_t  ev;

    for ( ;; ) {
        n = gl_fcgi_parse(p, buf, len, &ev);

        if (n > len) {
            fz_fail("consumed more than given");
        }

        if (ev.type == GL_FCGI_EV_ERROR) {
            if (ev.err == NULL) {
                fz_fail("ERROR without a message");
            }

            fz_put_num(&log->ev, 'R', 0);
            fz_put(&log->ev, ev.err, strlen(ev.err));

            /* it stays in error */
            n = gl_fcgi_parse(p, buf, len, &ev);
            if (n != 0 || ev.type != GL_FCGI_EV_ERROR || ev.err == NULL) {
                fz_fail("left the error state");
            }

            return 0;
        }

        if (ev.type == GL_FCGI_EV_NONE) {
            if (n != len) {
                fz_fail("stopped early without an event");
            }
            return 1;
        }

        if (n == 0) {
            fz_fail("an event out of no input");
        }

        fz_event(log, &ev);

        buf += n;
        len -= n;
    }
}


static void
fz_finish(fz_log_t *log, gl_fcgi_parser_t *p)
{
    fz_put_num(&log->ev, 'Z', (uint64_t) (p->state == GL_FCGI_ST_ERROR));
    fz_put_num(&log->ev, 'P', log->nv_failed[0] ? 9
                         : (uint64_t) (gl_fcgi_nv_done(&log->nv[0]) + 10));
    fz_put_num(&log->ev, 'G', log->nv_failed[1] ? 9
                         : (uint64_t) (gl_fcgi_nv_done(&log->nv[1]) + 10));
}


/* feeds in[0..len) in pieces: step 0 = whole, else step bytes at a time */
static void
fz_run(fz_log_t *log, const u_char *in, size_t len, size_t cut, size_t step)
{
    size_t            off, n;
    gl_fcgi_parser_t  p;

    gl_fcgi_parser_init(&p);

    if (step == 0) {
        if (fz_feed(log, &p, in, cut)) {
            (void) fz_feed(log, &p, in + cut, len - cut);
        }

    } else {
        for (off = 0; off < len; off += n) {
            n = gl_min(step, len - off);

            if (!fz_feed(log, &p, in + off, n)) {
                break;
            }
        }
    }

    fz_finish(log, &p);
}


/* what gl_fcgi_stream frames, the parser reads back whole */
static void
fz_stream_roundtrip(const u_char *data, size_t len, uint16_t id)
{
    u_char           *out;
    size_t            size, n, off, k, got;
    unsigned          lasts;
    gl_fcgi_parser_t  p;
    gl_fcgi_event_t   ev;

    size = gl_fcgi_stream_size(len);
    out = malloc(size);
    if (out == NULL) {
        fz_fail("malloc");
    }

    if (size > 0 && gl_fcgi_stream(out, size - 1, FCGI_STDIN, id, data, len)
                    != 0)
    {
        fz_fail("stream: wrote into too small a buffer");
    }

    n = gl_fcgi_stream(out, size, FCGI_STDIN, id, data, len);
    if (n != size) {
        fz_fail("stream: size differs from stream_size");
    }

    gl_fcgi_parser_init(&p);
    off = 0;
    got = 0;
    lasts = 0;

    while (off < n) {
        k = gl_fcgi_parse(&p, out + off, n - off, &ev);
        off += k;

        if (ev.type == GL_FCGI_EV_NONE) {
            break;
        }

        if (ev.type != GL_FCGI_EV_STDIN || ev.id != id
            || ev.len > len - got || memcmp(ev.data, data + got, ev.len))
        {
            fz_fail("stream: reparse differs");
        }

        got += ev.len;
        lasts += ev.last;
    }

    if (off != n || got != len || p.state != GL_FCGI_ST_HEADER
        || lasts != (len + FCGI_MAX_LENGTH - 1) / FCGI_MAX_LENGTH + (len == 0))
    {
        fz_fail("stream: reparse incomplete");
    }

    free(out);
}


/* a pair encoded, then decoded into an arena exactly its size, and less */
static void
fz_nv_roundtrip(const u_char *data, size_t len, size_t split)
{
    u_char          *enc, *arena;
    size_t           n, need;
    const char      *err;
    const u_char    *pos;
    gl_fcgi_nv_t     nv;
    gl_fcgi_pair_t   pair;

    need = len + 8;
    enc = malloc(need);
    arena = malloc(len + 2);
    if (enc == NULL || arena == NULL) {
        fz_fail("malloc");
    }

    n = gl_fcgi_nv_encode(enc, need, data, split, data + split, len - split);
    if (n == 0 || n > need
        || gl_fcgi_nv_encode(enc, n - 1, data, split, data + split,
                             len - split) != 0)
    {
        fz_fail("nv_encode: size");
    }

    gl_fcgi_nv_init(&nv, arena, len + 2);
    pos = enc;
    if (gl_fcgi_nv_parse(&nv, &pos, enc + n, &pair, &err) != GL_OK
        || pos != enc + n || pair.name_len != split
        || pair.value_len != len - split
        || memcmp(pair.name, data, split) != 0
        || memcmp(pair.value, data + split, len - split) != 0
        || gl_fcgi_nv_done(&nv) != GL_OK)
    {
        fz_fail("nv: roundtrip differs");
    }

    gl_fcgi_nv_init(&nv, arena, len + 1);
    pos = enc;
    if (gl_fcgi_nv_parse(&nv, &pos, enc + n, &pair, &err) != GL_ERROR) {
        fz_fail("nv: a pair one byte over the limit was taken");
    }

    free(enc);
    free(arena);
}


static void
fz_compare_sink(const fz_sink_t *a, const fz_sink_t *b, const char *what)
{
    size_t  i;

    if (a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0) {
        return;
    }

    for (i = 0; i < a->len && i < b->len && a->buf[i] == b->buf[i]; i++) {
        /* void */
    }

    fprintf(stderr, "fuzz_fcgi: %s feed differs from whole at log byte "
            "%zu (lengths %zu, %zu)\n", what, i, a->len, b->len);
    abort();
}


static void
fz_compare(const fz_log_t *a, const fz_log_t *b, const char *what)
{
    fz_compare_sink(&a->ev, &b->ev, what);
    fz_compare_sink(&a->nv_ev, &b->nv_ev, what);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t   h;
    size_t     i, cap, cut, step, limit;
    u_char    *buf1, *buf2, *arena1, *arena2, *values1, *values2;
    fz_log_t   whole, other;

    /* FNV-1a: split points and sizes come from the data itself */
    h = 2166136261u;
    for (i = 0; i < size; i++) {
        h = (h ^ data[i]) * 16777619u;
    }

    cut = size ? h % (size + 1) : 0;
    step = 1 + (h >> 8) % 13;
    limit = (h & 0x10000) ? 65536 : (h >> 17) % 512;

    /* a log holds each content byte twice (raw, pairs) plus 9 per item */
    cap = 64 + size * 40;

    buf1 = malloc(cap);
    buf2 = malloc(cap);
    arena1 = malloc(limit + 1);
    arena2 = malloc(limit + 1);
    values1 = malloc(1024);
    values2 = malloc(1024);

    if (!buf1 || !buf2 || !arena1 || !arena2 || !values1 || !values2) {
        fz_fail("malloc");
    }

    fz_log_init(&whole, buf1, cap, arena1, limit, values1, 1024);
    fz_run(&whole, data, size, size, 0);

    fz_log_init(&other, buf2, cap, arena2, limit, values2, 1024);
    fz_run(&other, data, size, cut, 0);
    fz_compare(&whole, &other, "two-piece");

    fz_log_init(&other, buf2, cap, arena2, limit, values2, 1024);
    fz_run(&other, data, size, 0, step);
    fz_compare(&whole, &other, "chunked");

    fz_log_init(&other, buf2, cap, arena2, limit, values2, 1024);
    fz_run(&other, data, size, 0, 1);
    fz_compare(&whole, &other, "byte-by-byte");

    free(buf1);
    free(buf2);
    free(arena1);
    free(arena2);
    free(values1);
    free(values2);

    fz_stream_roundtrip(data, size, (uint16_t) (h | 1));
    fz_nv_roundtrip(data, size, cut);

    return 0;
}
