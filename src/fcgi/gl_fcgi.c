/*
 * The FastCGI codec: the record parser, the name-value decoder and the
 * encoders.  Pure code: it owns no memory and does no I/O; see gl_fcgi.h.
 */
#include "gl_core.h"
#include "gl_fcgi.h"


enum {
    GL_FCGI_ST_HEADER = 0,
    GL_FCGI_ST_BEGIN_BODY,
    GL_FCGI_ST_CONTENT,
    GL_FCGI_ST_SKIP,
    GL_FCGI_ST_PADDING,
    GL_FCGI_ST_ERROR
};

enum {
    GL_FCGI_NV_NAME_LEN = 0,
    GL_FCGI_NV_VALUE_LEN,
    GL_FCGI_NV_COPY,
    GL_FCGI_NV_ERROR
};

#define GL_FCGI_NV_MAX_LEN  0x7fffffff

static const char  gl_fcgi_nv_too_large[] = "fastcgi params too large";


void
gl_fcgi_parser_init(gl_fcgi_parser_t *p)
{
    memset(p, 0, sizeof(gl_fcgi_parser_t));
    p->state = GL_FCGI_ST_HEADER;
}


static void
gl_fcgi_parse_error(gl_fcgi_parser_t *p, gl_fcgi_event_t *ev, const char *err)
{
    p->state = GL_FCGI_ST_ERROR;
    p->err = err;
    ev->type = GL_FCGI_EV_ERROR;
    ev->err = err;
}


static gl_fcgi_event_e
gl_fcgi_chunk_event(uint8_t type)
{
    switch (type) {
    case FCGI_PARAMS:
        return GL_FCGI_EV_PARAMS;
    case FCGI_STDIN:
        return GL_FCGI_EV_STDIN;
    case FCGI_DATA:
        return GL_FCGI_EV_DATA;
    default:
        return GL_FCGI_EV_GET_VALUES;
    }
}


/* so that a parser between records is always in the header state */
static int
gl_fcgi_after_content(gl_fcgi_parser_t *p)
{
    return p->padding_left ? GL_FCGI_ST_PADDING : GL_FCGI_ST_HEADER;
}


/*
 * A header is complete in p->hdr: checks it and sets the next state.
 * An event that needs no content (ABORT, UNKNOWN_TYPE, an empty stream
 * record, ERROR) is filled in *ev at once; "here" is where the record's
 * content would start, so an empty chunk points into the caller's buffer.
 */
static void
gl_fcgi_header_done(gl_fcgi_parser_t *p, gl_fcgi_event_t *ev,
    const u_char *here)
{
    u_char  *h;

    h = p->hdr;

    p->type = h[1];
    p->id = (uint16_t) ((h[2] << 8) | h[3]);
    p->content_left = (size_t) ((h[4] << 8) | h[5]);
    p->padding_left = h[6];

    ev->id = p->id;
    ev->rtype = p->type;

    if (h[0] != FCGI_VERSION_1) {
        gl_fcgi_parse_error(p, ev, "bad version");
        return;
    }

    switch (p->type) {

    case FCGI_BEGIN_REQUEST:
        if (p->content_left != sizeof(FCGI_BeginRequestBody)) {
            gl_fcgi_parse_error(p, ev, "bad BEGIN_REQUEST length");
            return;
        }

        if (p->id == FCGI_NULL_REQUEST_ID) {
            gl_fcgi_parse_error(p, ev, "BEGIN_REQUEST with request id 0");
            return;
        }

        p->body_n = 0;
        p->content_left = 0;
        p->state = GL_FCGI_ST_BEGIN_BODY;
        return;

    case FCGI_ABORT_REQUEST:
        if (p->id == FCGI_NULL_REQUEST_ID) {
            gl_fcgi_parse_error(p, ev, "ABORT_REQUEST with request id 0");
            return;
        }

        ev->type = GL_FCGI_EV_ABORT;
        p->state = p->content_left ? GL_FCGI_ST_SKIP
                                   : gl_fcgi_after_content(p);
        return;

    case FCGI_PARAMS:
    case FCGI_STDIN:
    case FCGI_DATA:
        if (p->id == FCGI_NULL_REQUEST_ID) {
            gl_fcgi_parse_error(p, ev, "stream record with request id 0");
            return;
        }
        break;

    case FCGI_GET_VALUES:
        if (p->id != FCGI_NULL_REQUEST_ID) {
            gl_fcgi_parse_error(p, ev, "GET_VALUES with nonzero request id");
            return;
        }
        break;

    case FCGI_END_REQUEST:
    case FCGI_STDOUT:
    case FCGI_STDERR:
    case FCGI_GET_VALUES_RESULT:
    case FCGI_UNKNOWN_TYPE:
        /* records only an application sends */
        gl_fcgi_parse_error(p, ev, "unexpected record type");
        return;

    default:
        ev->type = GL_FCGI_EV_UNKNOWN_TYPE;
        p->state = p->content_left ? GL_FCGI_ST_SKIP
                                   : gl_fcgi_after_content(p);
        return;
    }

    /* PARAMS, STDIN, DATA, GET_VALUES */

    if (p->content_left == 0) {
        ev->type = gl_fcgi_chunk_event(p->type);
        ev->data = here;
        ev->len = 0;
        ev->last = 1;
        ev->eos = 1;
        p->state = gl_fcgi_after_content(p);
        return;
    }

    p->state = GL_FCGI_ST_CONTENT;
}


size_t
gl_fcgi_parse(gl_fcgi_parser_t *p, const u_char *buf, size_t len,
    gl_fcgi_event_t *ev)
{
    size_t  i, n;

    memset(ev, 0, sizeof(gl_fcgi_event_t));
    ev->type = GL_FCGI_EV_NONE;

    i = 0;

    for ( ;; ) {

        switch (p->state) {

        case GL_FCGI_ST_HEADER:
            n = gl_min(len - i, FCGI_HEADER_LEN - p->hdr_n);
            if (n == 0) {
                return i;
            }

            memcpy(p->hdr + p->hdr_n, buf + i, n);
            p->hdr_n += n;
            i += n;

            if (p->hdr_n < FCGI_HEADER_LEN) {
                return i;
            }

            p->hdr_n = 0;
            gl_fcgi_header_done(p, ev, buf + i);

            if (ev->type != GL_FCGI_EV_NONE) {
                return i;
            }

            break;

        case GL_FCGI_ST_BEGIN_BODY:
            n = gl_min(len - i, sizeof(FCGI_BeginRequestBody) - p->body_n);
            if (n == 0) {
                return i;
            }

            memcpy(p->body + p->body_n, buf + i, n);
            p->body_n += n;
            i += n;

            if (p->body_n < sizeof(FCGI_BeginRequestBody)) {
                return i;
            }

            ev->type = GL_FCGI_EV_BEGIN;
            ev->id = p->id;
            ev->rtype = p->type;
            ev->role = (uint16_t) ((p->body[0] << 8) | p->body[1]);
            ev->flags = p->body[2];

            p->body_n = 0;
            p->state = gl_fcgi_after_content(p);
            return i;

        case GL_FCGI_ST_CONTENT:
            n = gl_min(len - i, p->content_left);
            if (n == 0) {
                return i;
            }

            ev->type = gl_fcgi_chunk_event(p->type);
            ev->id = p->id;
            ev->rtype = p->type;
            ev->data = buf + i;
            ev->len = n;

            p->content_left -= n;
            i += n;

            if (p->content_left == 0) {
                ev->last = 1;
                p->state = gl_fcgi_after_content(p);
            }

            return i;

        case GL_FCGI_ST_SKIP:
            n = gl_min(len - i, p->content_left);
            p->content_left -= n;
            i += n;

            if (p->content_left) {
                return i;
            }

            p->state = gl_fcgi_after_content(p);
            break;

        case GL_FCGI_ST_PADDING:
            n = gl_min(len - i, p->padding_left);
            p->padding_left -= n;
            i += n;

            if (p->padding_left) {
                return i;
            }

            p->state = GL_FCGI_ST_HEADER;
            break;

        default: /* GL_FCGI_ST_ERROR */
            ev->type = GL_FCGI_EV_ERROR;
            ev->id = p->id;
            ev->rtype = p->type;
            ev->err = p->err;
            return 0;
        }
    }
}


void
gl_fcgi_nv_init(gl_fcgi_nv_t *nv, u_char *arena, size_t size)
{
    memset(nv, 0, sizeof(gl_fcgi_nv_t));
    nv->state = GL_FCGI_NV_NAME_LEN;
    nv->start = arena;
    nv->pos = arena;
    nv->end = arena ? arena + size : arena;
    nv->pair = arena;
}


/* reads a 1- or 4-byte length; GL_AGAIN if the input ends inside it */
static int
gl_fcgi_nv_len(gl_fcgi_nv_t *nv, const u_char **pos, const u_char *end,
    uint32_t *len)
{
    u_char  c;

    while (*pos < end) {
        c = *(*pos)++;

        if (nv->lenbuf_n == 0 && !(c & 0x80)) {
            *len = c;
            return GL_OK;
        }

        nv->lenbuf[nv->lenbuf_n++] = c;

        if (nv->lenbuf_n == 4) {
            *len = ((uint32_t) (nv->lenbuf[0] & 0x7f) << 24)
                   | ((uint32_t) nv->lenbuf[1] << 16)
                   | ((uint32_t) nv->lenbuf[2] << 8)
                   | (uint32_t) nv->lenbuf[3];
            nv->lenbuf_n = 0;
            return GL_OK;
        }
    }

    return GL_AGAIN;
}


int
gl_fcgi_nv_parse(gl_fcgi_nv_t *nv, const u_char **pos, const u_char *end,
    gl_fcgi_pair_t *pair, const char **err)
{
    size_t   room, total, n;
    u_char  *dst;

    for ( ;; ) {

        switch (nv->state) {

        case GL_FCGI_NV_NAME_LEN:
            if (gl_fcgi_nv_len(nv, pos, end, &nv->name_len) != GL_OK) {
                return GL_AGAIN;
            }

            nv->state = GL_FCGI_NV_VALUE_LEN;
            break;

        case GL_FCGI_NV_VALUE_LEN:
            if (gl_fcgi_nv_len(nv, pos, end, &nv->value_len) != GL_OK) {
                return GL_AGAIN;
            }

            /*
             * name, NUL, value, NUL must fit; compared piecewise so that
             * two lengths near 2^31 cannot wrap a 32-bit size_t
             */
            room = (size_t) (nv->end - nv->pos);

            if (room < 2
                || nv->name_len > room - 2
                || nv->value_len > room - 2 - nv->name_len)
            {
                nv->state = GL_FCGI_NV_ERROR;
                *err = gl_fcgi_nv_too_large;
                return GL_ERROR;
            }

            nv->pair = nv->pos;
            nv->copied = 0;
            nv->state = GL_FCGI_NV_COPY;
            break;

        case GL_FCGI_NV_COPY:
            total = (size_t) nv->name_len + nv->value_len;

            while (nv->copied < total) {
                if (*pos == end) {
                    return GL_AGAIN;
                }

                if (nv->copied < nv->name_len) {
                    n = nv->name_len - nv->copied;
                    dst = nv->pair + nv->copied;

                } else {
                    n = total - nv->copied;
                    dst = nv->pair + nv->copied + 1;  /* after name's NUL */
                }

                n = gl_min(n, (size_t) (end - *pos));

                memcpy(dst, *pos, n);
                *pos += n;
                nv->copied += n;
            }

            nv->pair[nv->name_len] = '\0';
            nv->pair[total + 1] = '\0';

            pair->name = nv->pair;
            pair->name_len = nv->name_len;
            pair->value = nv->pair + nv->name_len + 1;
            pair->value_len = nv->value_len;

            nv->pos = nv->pair + total + 2;
            nv->copied = 0;
            nv->state = GL_FCGI_NV_NAME_LEN;
            return GL_OK;

        default: /* GL_FCGI_NV_ERROR */
            *err = gl_fcgi_nv_too_large;
            return GL_ERROR;
        }
    }
}


int
gl_fcgi_nv_done(gl_fcgi_nv_t *nv)
{
    if (nv->state == GL_FCGI_NV_NAME_LEN && nv->lenbuf_n == 0) {
        return GL_OK;
    }

    return GL_ERROR;
}


void
gl_fcgi_header(u_char *buf, uint8_t type, uint16_t id,
    uint16_t content_len, uint8_t padding_len)
{
    buf[0] = FCGI_VERSION_1;
    buf[1] = type;
    buf[2] = (u_char) (id >> 8);
    buf[3] = (u_char) id;
    buf[4] = (u_char) (content_len >> 8);
    buf[5] = (u_char) content_len;
    buf[6] = padding_len;
    buf[7] = 0;
}


size_t
gl_fcgi_end_request(u_char *buf, uint16_t id, uint32_t app_status,
    uint8_t protocol_status)
{
    gl_fcgi_header(buf, FCGI_END_REQUEST, id, sizeof(FCGI_EndRequestBody), 0);

    buf += FCGI_HEADER_LEN;
    buf[0] = (u_char) (app_status >> 24);
    buf[1] = (u_char) (app_status >> 16);
    buf[2] = (u_char) (app_status >> 8);
    buf[3] = (u_char) app_status;
    buf[4] = protocol_status;
    buf[5] = 0;
    buf[6] = 0;
    buf[7] = 0;

    return sizeof(FCGI_EndRequestRecord);
}


size_t
gl_fcgi_unknown_type(u_char *buf, uint8_t type)
{
    gl_fcgi_header(buf, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID,
                   sizeof(FCGI_UnknownTypeBody), 0);

    buf += FCGI_HEADER_LEN;
    buf[0] = type;
    memset(buf + 1, 0, sizeof(FCGI_UnknownTypeBody) - 1);

    return sizeof(FCGI_UnknownTypeRecord);
}


static u_char *
gl_fcgi_nv_put_len(u_char *p, size_t len)
{
    if (len < 0x80) {
        *p++ = (u_char) len;
        return p;
    }

    *p++ = (u_char) ((len >> 24) | 0x80);
    *p++ = (u_char) (len >> 16);
    *p++ = (u_char) (len >> 8);
    *p++ = (u_char) len;

    return p;
}


size_t
gl_fcgi_nv_encode(u_char *buf, size_t size, const u_char *name,
    size_t name_len, const u_char *value, size_t value_len)
{
    size_t   need;
    u_char  *p;

    if (name_len > GL_FCGI_NV_MAX_LEN || value_len > GL_FCGI_NV_MAX_LEN) {
        return 0;
    }

    need = (name_len < 0x80 ? 1u : 4u) + (value_len < 0x80 ? 1u : 4u);

    if (size < need
        || name_len > size - need
        || value_len > size - need - name_len)
    {
        return 0;
    }

    p = gl_fcgi_nv_put_len(buf, name_len);
    p = gl_fcgi_nv_put_len(p, value_len);

    if (name_len) {
        memcpy(p, name, name_len);
        p += name_len;
    }

    if (value_len) {
        memcpy(p, value, value_len);
        p += value_len;
    }

    return (size_t) (p - buf);
}


/* a full record: header, FCGI_MAX_LENGTH content, its padding */
#define GL_FCGI_FULL_RECORD                                                  \
    (FCGI_HEADER_LEN + FCGI_MAX_LENGTH + gl_fcgi_padding(FCGI_MAX_LENGTH))

size_t
gl_fcgi_stream_size(size_t len)
{
    size_t  full, rest;

    full = len / FCGI_MAX_LENGTH;
    rest = len % FCGI_MAX_LENGTH;

    /* saturates, so that a caller's allocation of that size fails */
    if (full > (SIZE_MAX - GL_FCGI_FULL_RECORD) / GL_FCGI_FULL_RECORD) {
        return SIZE_MAX;
    }

    if (rest == 0 && full != 0) {
        return full * GL_FCGI_FULL_RECORD;
    }

    return full * GL_FCGI_FULL_RECORD
           + FCGI_HEADER_LEN + rest + gl_fcgi_padding(rest);
}


size_t
gl_fcgi_stream(u_char *out, size_t out_size, uint8_t type,
    uint16_t id, const u_char *data, size_t len)
{
    size_t   need, n, pad;
    u_char  *p;

    need = gl_fcgi_stream_size(len);

    if (need == SIZE_MAX || need > out_size) {
        return 0;
    }

    p = out;

    do {
        n = gl_min(len, (size_t) FCGI_MAX_LENGTH);
        pad = gl_fcgi_padding(n);

        gl_fcgi_header(p, type, id, (uint16_t) n, (uint8_t) pad);
        p += FCGI_HEADER_LEN;

        if (n) {
            memcpy(p, data, n);
            p += n;
            data += n;
            len -= n;
        }

        memset(p, 0, pad);
        p += pad;

    } while (len);

    gl_assert((size_t) (p - out) == need);

    return (size_t) (p - out);
}
