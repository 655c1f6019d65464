/*
 * The FastCGI codec: pure.  No I/O, no allocation, no libev, no Lua.
 *
 * The record parser is a resumable state machine: feed it any split of the
 * input, byte by byte if you like, and it produces the same events.  Stream
 * contents (PARAMS, STDIN, DATA, GET_VALUES) are handed out as chunks that
 * point into the caller's buffer, so nothing is copied.
 *
 * The name-value decoder turns PARAMS (or GET_VALUES) content into pairs,
 * copying them into an arena the caller owns; its size is the params limit.
 *
 * Record layouts and constants come from libfcgi's <fastcgi.h>.
 */
#ifndef GL_FCGI_H
#define GL_FCGI_H

#include "gl_core.h"
#include <fastcgi.h>

typedef enum {
    GL_FCGI_EV_NONE = 0,     /* all input consumed, no event yet */
    GL_FCGI_EV_BEGIN,        /* BEGIN_REQUEST: id, role, flags */
    GL_FCGI_EV_ABORT,        /* ABORT_REQUEST: id */
    GL_FCGI_EV_PARAMS,       /* a chunk of a PARAMS record (data, len) */
    GL_FCGI_EV_STDIN,        /* a chunk of a STDIN record */
    GL_FCGI_EV_DATA,         /* a chunk of a DATA record */
    GL_FCGI_EV_GET_VALUES,   /* a chunk of a GET_VALUES record (id 0) */
    GL_FCGI_EV_UNKNOWN_TYPE, /* a record of a type we do not know (rtype) */
    GL_FCGI_EV_ERROR         /* malformed input; err says why; close */
} gl_fcgi_event_e;

typedef struct {
    gl_fcgi_event_e   type;
    uint16_t          id;       /* request id */
    uint8_t           rtype;    /* the record type (for UNKNOWN_TYPE) */
    uint16_t          role;     /* BEGIN */
    uint8_t           flags;    /* BEGIN: FCGI_KEEP_CONN */
    const u_char     *data;     /* chunk events: points into the input */
    size_t            len;
    unsigned          last:1;   /* chunk events: this chunk ends the record */
    unsigned          eos:1;    /* chunk events: a zero-length record, the
                                   end of the stream (len is 0, last is 1;
                                   set for an empty GET_VALUES too) */
    const char       *err;      /* ERROR: a static message */
} gl_fcgi_event_t;

typedef struct {
    int               state;
    u_char            hdr[FCGI_HEADER_LEN];
    size_t            hdr_n;
    uint8_t           type;
    uint16_t          id;
    size_t            content_left;
    size_t            padding_left;
    u_char            body[8];  /* BEGIN_REQUEST / fixed-size bodies */
    size_t            body_n;
    const char       *err;      /* set once in the error state */
} gl_fcgi_parser_t;

void gl_fcgi_parser_init(gl_fcgi_parser_t *p);

/*
 * Parses from buf[0..len).  Returns the number of bytes consumed and fills
 * *ev.  It stops after each event, so call it in a loop until len bytes are
 * consumed.  A chunk event of zero length is produced only for an empty
 * record (eos); records of unknown type are skipped whole after their
 * UNKNOWN_TYPE event.  ABORT and UNKNOWN_TYPE come as soon as the header
 * is in, BEGIN once its 8-byte body is.  After ERROR the parser stays in
 * its error state and every later call returns 0 and ERROR again.
 */
size_t gl_fcgi_parse(gl_fcgi_parser_t *p, const u_char *buf, size_t len,
    gl_fcgi_event_t *ev);


/* the name-value pair decoder */

typedef struct {
    const u_char     *name;     /* NUL-terminated, in the arena */
    size_t            name_len;
    const u_char     *value;    /* NUL-terminated, in the arena */
    size_t            value_len;
} gl_fcgi_pair_t;

typedef struct {
    int               state;
    u_char            lenbuf[4];
    size_t            lenbuf_n;
    uint32_t          name_len;
    uint32_t          value_len;
    size_t            copied;   /* of name + value so far */
    u_char           *start;    /* the arena, owned by the caller */
    u_char           *pos;
    u_char           *end;
    u_char           *pair;     /* where the pair being read starts */
} gl_fcgi_nv_t;

void gl_fcgi_nv_init(gl_fcgi_nv_t *nv, u_char *arena, size_t size);

/*
 * Decodes from *pos up to end, advancing *pos.  Returns GL_OK with *pair
 * filled when a pair is complete (call again for more), GL_AGAIN when all
 * input is consumed mid-stream, or GL_ERROR when a pair does not fit the
 * arena (the params limit); *err is set on GL_ERROR.
 */
int gl_fcgi_nv_parse(gl_fcgi_nv_t *nv, const u_char **pos, const u_char *end,
    gl_fcgi_pair_t *pair, const char **err);

/* at the end of the stream: GL_OK if no pair was left half-read */
int gl_fcgi_nv_done(gl_fcgi_nv_t *nv);


/* encoding */

/* padding that brings content_len to a multiple of 8 */
#define gl_fcgi_padding(clen)  ((8 - ((clen) & 7)) & 7)

/* writes an 8-byte record header */
void gl_fcgi_header(u_char *buf, uint8_t type, uint16_t id,
    uint16_t content_len, uint8_t padding_len);

/* writes a whole END_REQUEST record; returns its size (16) */
size_t gl_fcgi_end_request(u_char *buf, uint16_t id, uint32_t app_status,
    uint8_t protocol_status);

/* writes a whole UNKNOWN_TYPE record; returns its size (16) */
size_t gl_fcgi_unknown_type(u_char *buf, uint8_t type);

/*
 * Encodes one name-value pair at buf (1- or 4-byte lengths as needed).
 * Returns the bytes written, or 0 if size is too small.
 */
size_t gl_fcgi_nv_encode(u_char *buf, size_t size, const u_char *name,
    size_t name_len, const u_char *value, size_t value_len);

/*
 * Frames len bytes of stream data (STDOUT, STDERR) for request id into
 * out, as records of at most FCGI_MAX_LENGTH content, each padded to 8.
 * Returns the bytes written, or 0 if out_size is too small; see
 * gl_fcgi_stream_size().  len 0 writes the end-of-stream record.
 */
size_t gl_fcgi_stream(u_char *out, size_t out_size, uint8_t type,
    uint16_t id, const u_char *data, size_t len);
size_t gl_fcgi_stream_size(size_t len);

#endif /* GL_FCGI_H */
