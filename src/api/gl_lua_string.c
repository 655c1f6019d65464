/*
 * Encoding and hashing: ngx.escape_uri, ngx.unescape_uri, ngx.encode_args,
 * ngx.decode_args, ngx.encode_base64, ngx.decode_base64,
 * ngx.decode_base64mime, ngx.md5, ngx.md5_bin, ngx.sha1_bin, ngx.hmac_sha1,
 * ngx.crc32_short, ngx.crc32_long and ngx.quote_sql_str, with the argument
 * checks, error strings and results of lua-nginx-module 0.10.x running
 * with lua-resty-core (whose Lua wrappers coerce most arguments with
 * tostring and raise some errors one level further up the stack).
 *
 * For LuaJIT's FFI the binary also exports a few nginx functions that
 * lua-resty-string declares (ngx_hex_dump, ngx_atoi) and the base64url
 * codec of our lua/ngx/base64.lua.
 *
 * The digests come from libcrypto's low-level MD5 and SHA-1 functions
 * (HMAC is built on them): they take no lock and allocate nothing, where
 * OpenSSL 3's EVP path and HMAC() look the algorithm up in a shared store
 * on every call.  Base64 is our own: nginx's decoding rules (stop at the
 * first "=", unchecked trailing bits) are not libcrypto's.
 */
#include "gl_core.h"
#include "gl_lua.h"
#include "gl_module.h"

#include <pthread.h>

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/md5.h>
#include <openssl/sha.h>

/* resty.core's escape types: 0 URI ... 6 mail_auth */
#define GL_ESCAPE_URI            0
#define GL_ESCAPE_ARGS           1
#define GL_ESCAPE_URI_COMPONENT  2
#define GL_ESCAPE_HTML           3
#define GL_ESCAPE_REFRESH        4
#define GL_ESCAPE_MEMCACHED      5
#define GL_ESCAPE_MAIL_AUTH      6
#define GL_ESCAPE_NTYPES         7

#define GL_DECODE_ARGS_MAX       100

/* results up to this size are built on the C stack */
#define GL_STRING_STACK_BUF      4096

#define GL_B64_BAD               0xff


/* for LuaJIT's FFI: lua-resty-string and lua/ngx/base64.lua */
u_char *ngx_hex_dump(u_char *dst, const u_char *src, size_t len);
intptr_t ngx_atoi(const u_char *line, size_t n);
size_t gl_ffi_encode_base64url(u_char *dst, const u_char *src, size_t len);
int gl_ffi_decode_base64url(u_char *dst, size_t *dlen, const u_char *src,
    size_t len);


static pthread_once_t  gl_string_once = PTHREAD_ONCE_INIT;

/* escape tables: a bit per byte value, per type */
static uint32_t  gl_escape_map[GL_ESCAPE_NTYPES][8];

static uint32_t  gl_crc32_table[256];

static const char  gl_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  gl_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* byte -> 6-bit value, or GL_B64_BAD */
static u_char  gl_b64_std_dec[256];
static u_char  gl_b64_url_dec[256];

static const char  gl_hex_lower[] = "0123456789abcdef";
static const char  gl_hex_upper[] = "0123456789ABCDEF";


/*
 * Which bytes each escape type turns into %XX: the sets of nginx's
 * ngx_escape_uri, as lua-nginx-module uses them.  Control bytes are
 * escaped by every type; DEL and the bytes >= 0x80 by all but memcached.
 * The URI component set leaves !'()* alone, as JavaScript's
 * encodeURIComponent does.
 */
static int
gl_escape_needed(unsigned type, unsigned c)
{
    if (c < 0x20) {
        return 1;
    }

    if (type == GL_ESCAPE_MEMCACHED || type == GL_ESCAPE_MAIL_AUTH) {
        return c == ' ' || c == '%';
    }

    if (c >= 0x7f) {
        return 1;
    }

    switch (type) {

    case GL_ESCAPE_URI:
        return strchr(" #%?", (int) c) != NULL;

    case GL_ESCAPE_ARGS:
        return strchr(" #%+?", (int) c) != NULL;

    case GL_ESCAPE_URI_COMPONENT:
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9'))
        {
            return 0;
        }

        return strchr("-._~!'()*", (int) c) == NULL;

    case GL_ESCAPE_HTML:
        return strchr(" #\"%'", (int) c) != NULL;

    default: /* GL_ESCAPE_REFRESH */
        return strchr(" \"'", (int) c) != NULL;
    }
}


static void
gl_string_init_tables(void)
{
    unsigned  t, c, k;
    uint32_t  crc;

    for (t = 0; t < GL_ESCAPE_NTYPES; t++) {
        for (c = 0; c < 256; c++) {
            if (gl_escape_needed(t, c)) {
                gl_escape_map[t][c >> 5] |= 1u << (c & 0x1f);
            }
        }
    }

    /* the IEEE 802.3 polynomial, reflected, as zlib's and nginx's */
    for (c = 0; c < 256; c++) {
        crc = c;
        for (k = 0; k < 8; k++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        }
        gl_crc32_table[c] = crc;
    }

    memset(gl_b64_std_dec, GL_B64_BAD, sizeof(gl_b64_std_dec));
    memset(gl_b64_url_dec, GL_B64_BAD, sizeof(gl_b64_url_dec));

    for (c = 0; c < 64; c++) {
        gl_b64_std_dec[(u_char) gl_b64_std[c]] = (u_char) c;
        gl_b64_url_dec[(u_char) gl_b64_url[c]] = (u_char) c;
    }
}


static void
gl_string_init(void)
{
    (void) pthread_once(&gl_string_once, gl_string_init_tables);
}


/* --- pure helpers ------------------------------------------------------ */

#define gl_escape_test(map, c)  ((map)[(c) >> 5] & (1u << ((c) & 0x1f)))


/* how many bytes of src the type escapes */
static size_t
gl_escape_uri_count(const u_char *src, size_t size, unsigned type)
{
    const uint32_t  *map = gl_escape_map[type];
    size_t           n = 0;

    while (size--) {
        if (gl_escape_test(map, *src)) {
            n++;
        }
        src++;
    }

    return n;
}


/* writes the escaped src to dst; returns the end of what it wrote */
static u_char *
gl_escape_uri(u_char *dst, const u_char *src, size_t size, unsigned type)
{
    const uint32_t  *map = gl_escape_map[type];

    while (size--) {
        if (gl_escape_test(map, *src)) {
            *dst++ = '%';
            *dst++ = gl_hex_upper[*src >> 4];
            *dst++ = gl_hex_upper[*src & 0xf];

        } else {
            *dst++ = *src;
        }
        src++;
    }

    return dst;
}


static int
gl_hex_value(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * Decodes %XX and "+" (a space); a "%" without two hex digits after it
 * stays as it is.  dst may be src: the result is never longer.
 */
static u_char *
gl_unescape_uri(u_char *dst, const u_char *src, size_t size)
{
    const u_char  *end = src + size;
    int            hi, lo;

    while (src < end) {
        if (*src == '%' && end - src > 2
            && (hi = gl_hex_value(src[1])) >= 0
            && (lo = gl_hex_value(src[2])) >= 0)
        {
            *dst++ = (u_char) (hi << 4 | lo);
            src += 3;

        } else if (*src == '+') {
            *dst++ = ' ';
            src++;

        } else {
            *dst++ = *src++;
        }
    }

    return dst;
}


static size_t
gl_base64_encode(u_char *dst, const u_char *src, size_t len,
    const char *alphabet, int padding)
{
    u_char  *d = dst;

    for ( /* void */ ; len > 2; len -= 3, src += 3) {
        *d++ = alphabet[src[0] >> 2];
        *d++ = alphabet[(src[0] & 0x03) << 4 | src[1] >> 4];
        *d++ = alphabet[(src[1] & 0x0f) << 2 | src[2] >> 6];
        *d++ = alphabet[src[2] & 0x3f];
    }

    if (len == 1) {
        *d++ = alphabet[src[0] >> 2];
        *d++ = alphabet[(src[0] & 0x03) << 4];
        if (padding) {
            *d++ = '=';
            *d++ = '=';
        }

    } else if (len == 2) {
        *d++ = alphabet[src[0] >> 2];
        *d++ = alphabet[(src[0] & 0x03) << 4 | src[1] >> 4];
        *d++ = alphabet[(src[1] & 0x0f) << 2];
        if (padding) {
            *d++ = '=';
        }
    }

    return d - dst;
}


/* the bytes that n base64 digits (no padding) make, into dst */
static u_char *
gl_base64_put(u_char *d, const u_char *v, size_t n)
{
    if (n > 1) {
        *d++ = (u_char) (v[0] << 2 | v[1] >> 4);
    }

    if (n > 2) {
        *d++ = (u_char) (v[1] << 4 | v[2] >> 2);
    }

    if (n > 3) {
        *d++ = (u_char) (v[2] << 6 | v[3]);
    }

    return d;
}


/*
 * nginx's decoding: the input ends at the first "=" (what follows is not
 * looked at), every byte before it must be in the alphabet, and a lone
 * last digit (length % 4 == 1) is an error.  Padding may be missing and
 * the unused bits of the last digit are not checked.  GL_ERROR or GL_OK
 * with *dlen set; dst needs (len + 3) / 4 * 3 bytes.
 */
static int
gl_base64_decode(u_char *dst, size_t *dlen, const u_char *src, size_t len,
    const u_char *basis)
{
    size_t   n, i, k;
    u_char  *d = dst;
    u_char   v[4];

    for (n = 0; n < len && src[n] != '='; n++) {
        if (basis[src[n]] == GL_B64_BAD) {
            return GL_ERROR;
        }
    }

    if (n % 4 == 1) {
        return GL_ERROR;
    }

    for (i = 0; i + 4 <= n; i += 4) {
        v[0] = basis[src[i]];
        v[1] = basis[src[i + 1]];
        v[2] = basis[src[i + 2]];
        v[3] = basis[src[i + 3]];
        d = gl_base64_put(d, v, 4);
    }

    /* 0, 2 or 3 digits left */
    for (k = 0; i + k < n; k++) {
        v[k] = basis[src[i + k]];
    }
    d = gl_base64_put(d, v, k);

    *dlen = d - dst;

    return GL_OK;
}


/*
 * RFC 2045 decoding, as lua-nginx-module's decode_base64mime: bytes
 * outside the alphabet are skipped, the input ends at the first "=", and
 * the digits seen follow the rules of gl_base64_decode().
 */
static int
gl_base64_decode_mime(u_char *dst, size_t *dlen, const u_char *src,
    size_t len)
{
    size_t   i, n, k;
    u_char  *d = dst;
    u_char   v[4];

    for (i = 0, n = 0; i < len && src[i] != '='; i++) {
        if (gl_b64_std_dec[src[i]] != GL_B64_BAD) {
            n++;
        }
    }

    if (n % 4 == 1) {
        return GL_ERROR;
    }

    for (i = 0, k = 0; i < len && src[i] != '='; i++) {
        if (gl_b64_std_dec[src[i]] == GL_B64_BAD) {
            continue;
        }

        v[k++] = gl_b64_std_dec[src[i]];

        if (k == 4) {
            d = gl_base64_put(d, v, 4);
            k = 0;
        }
    }

    d = gl_base64_put(d, v, k);

    *dlen = d - dst;

    return GL_OK;
}


static uint32_t
gl_crc32(const u_char *p, size_t len)
{
    uint32_t  crc = 0xffffffffu;

    while (len--) {
        crc = gl_crc32_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }

    return crc ^ 0xffffffffu;
}


/* MySQL's escapes, for the ASCII bytes only: a UTF-8 byte is never one */
static u_char
gl_sql_escape_char(u_char c)
{
    switch (c) {
    case '\0':
        return '0';
    case '\b':
        return 'b';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case 26:
        return 'Z';
    case '\\':
    case '\'':
    case '"':
        return c;
    default:
        return 0;
    }
}


static size_t
gl_sql_escape_count(const u_char *src, size_t len)
{
    size_t  n = 0;

    while (len--) {
        if (gl_sql_escape_char(*src++)) {
            n++;
        }
    }

    return n;
}


static u_char *
gl_sql_escape(u_char *dst, const u_char *src, size_t len)
{
    u_char  e;

    while (len--) {
        e = gl_sql_escape_char(*src);
        if (e) {
            *dst++ = '\\';
            *dst++ = e;

        } else {
            *dst++ = *src;
        }
        src++;
    }

    return dst;
}


/*
 * The Init/Update/Final calls, not the one-shot MD5() and SHA1(): in
 * OpenSSL 3 SHA1() goes through EVP_Q_digest(), a fetch on every call.
 */
static void
gl_md5(u_char md[MD5_DIGEST_LENGTH], const u_char *src, size_t len)
{
    MD5_CTX  ctx;

    MD5_Init(&ctx);
    MD5_Update(&ctx, src, len);
    MD5_Final(md, &ctx);
}


static void
gl_sha1(u_char md[SHA_DIGEST_LENGTH], const u_char *src, size_t len)
{
    SHA_CTX  ctx;

    SHA1_Init(&ctx);
    SHA1_Update(&ctx, src, len);
    SHA1_Final(md, &ctx);
}


static void
gl_hmac_sha1(u_char md[SHA_DIGEST_LENGTH], const u_char *key, size_t klen,
    const u_char *msg, size_t mlen)
{
    size_t   i;
    u_char   k[SHA_CBLOCK], pad[SHA_CBLOCK], inner[SHA_DIGEST_LENGTH];
    SHA_CTX  ctx;

    memset(k, 0, sizeof(k));

    if (klen > SHA_CBLOCK) {
        gl_sha1(k, key, klen);

    } else if (klen > 0) {
        memcpy(k, key, klen);
    }

    for (i = 0; i < SHA_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }

    SHA1_Init(&ctx);
    SHA1_Update(&ctx, pad, SHA_CBLOCK);
    SHA1_Update(&ctx, msg, mlen);
    SHA1_Final(inner, &ctx);

    for (i = 0; i < SHA_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }

    SHA1_Init(&ctx);
    SHA1_Update(&ctx, pad, SHA_CBLOCK);
    SHA1_Update(&ctx, inner, SHA_DIGEST_LENGTH);
    SHA1_Final(md, &ctx);
}


/* --- exported for LuaJIT's FFI ----------------------------------------- */

/* nginx's: lowercase hex of len bytes, returns the end of dst */
u_char *
ngx_hex_dump(u_char *dst, const u_char *src, size_t len)
{
    while (len--) {
        *dst++ = gl_hex_lower[*src >> 4];
        *dst++ = gl_hex_lower[*src++ & 0xf];
    }

    return dst;
}


/* nginx's: a non-negative decimal, -1 if empty, not digits or too big */
intptr_t
ngx_atoi(const u_char *line, size_t n)
{
    intptr_t  value = 0;

    if (n == 0) {
        return -1;
    }

    while (n--) {
        if (*line < '0' || *line > '9') {
            return -1;
        }

        if (value > (INTPTR_MAX - (*line - '0')) / 10) {
            return -1;
        }

        value = value * 10 + (*line++ - '0');
    }

    return value;
}


/* dst needs (len + 2) / 3 * 4 bytes; no padding, as nginx's */
size_t
gl_ffi_encode_base64url(u_char *dst, const u_char *src, size_t len)
{
    return gl_base64_encode(dst, src, len, gl_b64_url, 0);
}


/* 1 and *dlen set, or 0 for an invalid input; dst as gl_base64_decode() */
int
gl_ffi_decode_base64url(u_char *dst, size_t *dlen, const u_char *src,
    size_t len)
{
    gl_string_init();

    return gl_base64_decode(dst, dlen, src, len, gl_b64_url_dec) == GL_OK;
}


/* --- the Lua API ------------------------------------------------------- */

/*
 * resty.core's coercion of a string argument: nil and false are "",
 * other non-strings go through tostring (upvalue 1: the tostring of the
 * start, as resty.core captures it when it loads).  The result replaces
 * the argument, which keeps it alive.
 */
static const u_char *
gl_lua_tostr_arg(lua_State *L, int idx, size_t *len)
{
    const char  *s;

    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
    case LUA_TNUMBER:
        return (const u_char *) lua_tolstring(L, idx, len);

    case LUA_TNONE:
    case LUA_TNIL:
        *len = 0;
        return (const u_char *) "";

    case LUA_TBOOLEAN:
        if (!lua_toboolean(L, idx)) {
            *len = 0;
            return (const u_char *) "";
        }
        break;

    default:
        break;
    }

    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);

    /* a __tostring may return a non-string: resty.core then fails on #s */
    s = lua_tolstring(L, -1, len);
    if (s == NULL) {
        luaL_error(L, "attempt to get length of local 's' (a %s value)",
                   luaL_typename(L, -1));
        return NULL;
    }

    lua_replace(L, idx);

    return (const u_char *) lua_tolstring(L, idx, len);
}


/* the stack buffer when it is big enough, else a userdata (garbage soon) */
static u_char *
gl_lua_string_buf(lua_State *L, u_char *stack_buf, size_t size)
{
    if (size <= GL_STRING_STACK_BUF) {
        return stack_buf;
    }

    return lua_newuserdata(L, size);
}


/*
 * A Lua error with the position "level" frames up, as error(msg, level+1)
 * in a Lua function would give: resty.core raises some of its errors at
 * its caller's caller.
 */
static int
gl_lua_error_at(lua_State *L, int level, const char *msg)
{
    luaL_where(L, level);
    lua_pushstring(L, msg);
    lua_concat(L, 2);

    return lua_error(L);
}


static int
gl_lua_escape_uri(lua_State *L)
{
    int            type;
    size_t         len, n;
    lua_Number     t;
    const u_char  *src;
    u_char        *dst, buf[GL_STRING_STACK_BUF];

    src = gl_lua_tostr_arg(L, 1, &len);

    if (lua_isnoneornil(L, 2)) {
        type = GL_ESCAPE_URI_COMPONENT;

    } else {
        if (lua_type(L, 2) != LUA_TNUMBER) {
            return gl_lua_error_at(L, 2, "\"type\" is not a number");
        }

        t = lua_tonumber(L, 2);

        /* a NaN passes resty.core's check and reads out of its table */
        if (!(t >= GL_ESCAPE_URI && t <= GL_ESCAPE_MAIL_AUTH)) {
            lua_pushliteral(L, "\"type\" ");
            lua_pushvalue(L, 2);
            lua_pushliteral(L, " out of range");
            lua_concat(L, 3);
            return gl_lua_error_at(L, 2, lua_tostring(L, -1));
        }

        type = (int) t;
    }

    n = gl_escape_uri_count(src, len, type);

    if (n == 0) {
        lua_pushlstring(L, (const char *) src, len);
        return 1;
    }

    dst = gl_lua_string_buf(L, buf, len + 2 * n);
    gl_escape_uri(dst, src, len, type);
    lua_pushlstring(L, (const char *) dst, len + 2 * n);

    return 1;
}


static int
gl_lua_unescape_uri(lua_State *L)
{
    size_t         len;
    const u_char  *src;
    u_char        *dst, *end, buf[GL_STRING_STACK_BUF];

    src = gl_lua_tostr_arg(L, 1, &len);

    dst = gl_lua_string_buf(L, buf, len);
    end = gl_unescape_uri(dst, src, len);
    lua_pushlstring(L, (const char *) dst, end - dst);

    return 1;
}


/*
 * ngx.encode_args: a first pass checks the table and sizes the result, a
 * second writes it; both walk the table with lua_next(), so the pairs come
 * in the table's own order (hash order for the keys, as upstream).
 */
static int
gl_lua_args_value_len(lua_State *L, int idx, size_t *len)
{
    const char  *v;

    if (lua_type(L, idx) == LUA_TBOOLEAN) {
        return lua_toboolean(L, idx) ? 0 : -1;
    }

    v = lua_tolstring(L, idx, len);
    if (v == NULL) {
        return luaL_error(L, "attempt to use %s as query arg value",
                          luaL_typename(L, idx));
    }

    *len = gl_escape_uri_count((const u_char *) v, *len,
                               GL_ESCAPE_URI_COMPONENT) * 2 + *len + 1;

    return 1;
}


static u_char *
gl_lua_args_put(lua_State *L, u_char *p, int idx, const u_char *key,
    size_t klen, int *first)
{
    size_t       len;
    const char  *v;

    if (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)) {
        return p;
    }

    if (!*first) {
        *p++ = '&';
    }
    *first = 0;

    p = gl_escape_uri(p, key, klen, GL_ESCAPE_URI_COMPONENT);

    if (lua_type(L, idx) != LUA_TBOOLEAN) {
        v = lua_tolstring(L, idx, &len);
        *p++ = '=';
        p = gl_escape_uri(p, (const u_char *) v, len,
                          GL_ESCAPE_URI_COMPONENT);
    }

    return p;
}


static int
gl_lua_encode_args(lua_State *L)
{
    int            rc, first;
    size_t         total, klen, kesc, vlen, npairs;
    const u_char  *key;
    u_char        *dst, *p;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 argument but seen %d",
                          lua_gettop(L));
    }

    luaL_checktype(L, 1, LUA_TTABLE);

    total = 0;
    npairs = 0;

    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            return luaL_error(L, "attempt to use a non-string key in the "
                              "\"args\" option table");
        }

        key = (const u_char *) lua_tolstring(L, -2, &klen);
        kesc = klen + 2 * gl_escape_uri_count(key, klen,
                                              GL_ESCAPE_URI_COMPONENT);

        switch (lua_type(L, -1)) {

        case LUA_TNUMBER:
        case LUA_TSTRING:
        case LUA_TBOOLEAN:
            rc = gl_lua_args_value_len(L, -1, &vlen);
            if (rc >= 0) {
                total += kesc + (rc ? vlen : 0);
                npairs++;
            }
            break;

        case LUA_TTABLE:
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                rc = gl_lua_args_value_len(L, lua_gettop(L), &vlen);
                if (rc >= 0) {
                    total += kesc + (rc ? vlen : 0);
                    npairs++;
                }
                lua_pop(L, 1);
            }
            break;

        default:
            return luaL_error(L, "attempt to use %s as query arg value",
                              luaL_typename(L, -1));
        }

        lua_pop(L, 1);
    }

    if (npairs > 1) {
        total += npairs - 1;
    }

    dst = lua_newuserdata(L, total > 0 ? total : 1);
    p = dst;
    first = 1;

    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        key = (const u_char *) lua_tolstring(L, -2, &klen);

        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                p = gl_lua_args_put(L, p, lua_gettop(L), key, klen, &first);
                lua_pop(L, 1);
            }

        } else {
            p = gl_lua_args_put(L, p, lua_gettop(L), key, klen, &first);
        }

        lua_pop(L, 1);
    }

    if ((size_t) (p - dst) != total) {
        return luaL_error(L, "buffer error: %d != %d", (int) (p - dst),
                          (int) total);
    }

    lua_pushlstring(L, (const char *) dst, total);

    return 1;
}


/*
 * t[key] = value for the key and value on top of the stack (popped);
 * a repeated key makes an array of its values, as lua-nginx-module does.
 */
static void
gl_lua_set_multi_value(lua_State *L, int t)
{
    lua_pushvalue(L, -2);
    lua_rawget(L, t);                       /* key value old */

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawset(L, t);
        return;
    }

    if (lua_istable(L, -1)) {
        lua_insert(L, -2);                  /* key old value */
        lua_rawseti(L, -2, (int) lua_objlen(L, -2) + 1);
        lua_pop(L, 2);
        return;
    }

    lua_createtable(L, 4, 0);               /* key value old arr */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);                  /* key value arr */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2);                  /* key arr */
    lua_rawset(L, t);
}


static void
gl_lua_push_unescaped(lua_State *L, u_char *tmp, const u_char *s, size_t n)
{
    u_char  *end;

    end = gl_unescape_uri(tmp, s, n);
    lua_pushlstring(L, (const char *) tmp, end - tmp);
}


/* the pair on the stack: into the table, unless its key is empty */
static void
gl_lua_args_pair(lua_State *L, int t)
{
    size_t  klen;

    (void) lua_tolstring(L, -2, &klen);

    if (klen == 0) {
        lua_pop(L, 2);

    } else {
        gl_lua_set_multi_value(L, t);
    }
}


/*
 * ngx.decode_args(str, max_args): "k=v&k2&..." into a table.  Every "&"
 * ends a pair, an empty key drops it; after max_args "&"s (0 or less: no
 * limit) it returns the table and "truncated".
 */
static int
gl_lua_decode_args(lua_State *L)
{
    int            n, max, count, t, value;
    size_t         len;
    const u_char  *s, *p, *q, *last;
    u_char        *tmp, buf[GL_STRING_STACK_BUF];

    n = lua_gettop(L);

    if (n != 1 && n != 2) {
        return luaL_error(L, "expecting 1 or 2 arguments but seen %d", n);
    }

    s = (const u_char *) luaL_checklstring(L, 1, &len);

    if (n == 2) {
        max = luaL_checkint(L, 2);
        lua_pop(L, 1);

    } else {
        max = GL_DECODE_ARGS_MAX;
    }

    tmp = gl_lua_string_buf(L, buf, len);

    lua_createtable(L, 0, 4);
    t = lua_gettop(L);

    count = 0;
    value = 0;
    last = s + len;

    for (p = q = s; p != last; p++) {
        if (*p == '=' && !value) {
            gl_lua_push_unescaped(L, tmp, q, p - q);
            q = p + 1;
            value = 1;

        } else if (*p == '&') {
            gl_lua_push_unescaped(L, tmp, q, p - q);
            q = p + 1;

            if (value) {
                value = 0;

            } else {
                lua_pushboolean(L, 1);
            }

            gl_lua_args_pair(L, t);

            if (max > 0 && ++count == max) {
                lua_pushliteral(L, "truncated");
                return 2;
            }
        }
    }

    if (p != q || value) {
        gl_lua_push_unescaped(L, tmp, q, p - q);

        if (!value) {
            lua_pushboolean(L, 1);
        }

        gl_lua_args_pair(L, t);
    }

    return 1;
}


static int
gl_lua_encode_base64(lua_State *L)
{
    int            no_padding;
    size_t         len, dlen;
    const u_char  *src;
    u_char        *dst, buf[GL_STRING_STACK_BUF];

    src = gl_lua_tostr_arg(L, 1, &len);

    no_padding = 0;

    if (lua_toboolean(L, 2)) {
        if (lua_type(L, 2) != LUA_TBOOLEAN) {
            return luaL_error(L, "bad no_padding: boolean expected, got %s",
                              luaL_typename(L, 2));
        }
        no_padding = 1;
    }

    dst = gl_lua_string_buf(L, buf, (len + 2) / 3 * 4);
    dlen = gl_base64_encode(dst, src, len, gl_b64_std, !no_padding);
    lua_pushlstring(L, (const char *) dst, dlen);

    return 1;
}


static int
gl_lua_decode_base64_common(lua_State *L, int mime)
{
    int            rc;
    size_t         len, dlen;
    const u_char  *src;
    u_char        *dst, buf[GL_STRING_STACK_BUF];

    if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L, "string argument only");
    }

    src = (const u_char *) lua_tolstring(L, 1, &len);

    dst = gl_lua_string_buf(L, buf, (len + 3) / 4 * 3);

    if (mime) {
        rc = gl_base64_decode_mime(dst, &dlen, src, len);

    } else {
        rc = gl_base64_decode(dst, &dlen, src, len, gl_b64_std_dec);
    }

    if (rc != GL_OK) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushlstring(L, (const char *) dst, dlen);

    return 1;
}


static int
gl_lua_decode_base64(lua_State *L)
{
    return gl_lua_decode_base64_common(L, 0);
}


static int
gl_lua_decode_base64mime(lua_State *L)
{
    return gl_lua_decode_base64_common(L, 1);
}


static int
gl_lua_md5_bin(lua_State *L)
{
    size_t         len;
    const u_char  *src;
    u_char         md[MD5_DIGEST_LENGTH];

    src = gl_lua_tostr_arg(L, 1, &len);
    gl_md5(md, src, len);
    lua_pushlstring(L, (const char *) md, sizeof(md));

    return 1;
}


static int
gl_lua_md5(lua_State *L)
{
    size_t         len;
    const u_char  *src;
    u_char         md[MD5_DIGEST_LENGTH], hex[2 * MD5_DIGEST_LENGTH];

    src = gl_lua_tostr_arg(L, 1, &len);
    gl_md5(md, src, len);
    ngx_hex_dump(hex, md, sizeof(md));
    lua_pushlstring(L, (const char *) hex, sizeof(hex));

    return 1;
}


static int
gl_lua_sha1_bin(lua_State *L)
{
    size_t         len;
    const u_char  *src;
    u_char         md[SHA_DIGEST_LENGTH];

    src = gl_lua_tostr_arg(L, 1, &len);
    gl_sha1(md, src, len);
    lua_pushlstring(L, (const char *) md, sizeof(md));

    return 1;
}


static int
gl_lua_hmac_sha1(lua_State *L)
{
    size_t         klen, mlen;
    const u_char  *key, *msg;
    u_char         md[SHA_DIGEST_LENGTH];

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "expecting 2 arguments, but got %d",
                          lua_gettop(L));
    }

    key = (const u_char *) luaL_checklstring(L, 1, &klen);
    msg = (const u_char *) luaL_checklstring(L, 2, &mlen);

    gl_hmac_sha1(md, key, klen, msg, mlen);
    lua_pushlstring(L, (const char *) md, sizeof(md));

    return 1;
}


/* nginx's short and long variants differ in speed only */
static int
gl_lua_crc32(lua_State *L)
{
    size_t         len;
    const u_char  *src;

    src = gl_lua_tostr_arg(L, 1, &len);
    lua_pushnumber(L, (lua_Number) gl_crc32(src, len));

    return 1;
}


static int
gl_lua_quote_sql_str(lua_State *L)
{
    size_t         len, n;
    const u_char  *src;
    u_char        *dst, *p, buf[GL_STRING_STACK_BUF];

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting one argument");
    }

    src = (const u_char *) luaL_checklstring(L, 1, &len);

    n = gl_sql_escape_count(src, len);

    dst = gl_lua_string_buf(L, buf, len + n + 2);
    p = dst;
    *p++ = '\'';
    p = gl_sql_escape(p, src, len);
    *p++ = '\'';

    lua_pushlstring(L, (const char *) dst, p - dst);

    return 1;
}


static void
gl_lua_string_inject(lua_State *L)
{
    static const luaL_Reg  coerced[] = {
        { "escape_uri", gl_lua_escape_uri },
        { "unescape_uri", gl_lua_unescape_uri },
        { "encode_base64", gl_lua_encode_base64 },
        { "md5", gl_lua_md5 },
        { "md5_bin", gl_lua_md5_bin },
        { "sha1_bin", gl_lua_sha1_bin },
        { "crc32_short", gl_lua_crc32 },
        { "crc32_long", gl_lua_crc32 },
        { NULL, NULL }
    };

    static const luaL_Reg  plain[] = {
        { "encode_args", gl_lua_encode_args },
        { "decode_args", gl_lua_decode_args },
        { "decode_base64", gl_lua_decode_base64 },
        { "decode_base64mime", gl_lua_decode_base64mime },
        { "hmac_sha1", gl_lua_hmac_sha1 },
        { "quote_sql_str", gl_lua_quote_sql_str },
        { NULL, NULL }
    };

    const luaL_Reg  *r;

    gl_string_init();

    for (r = coerced; r->name != NULL; r++) {
        lua_getglobal(L, "tostring");
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -2, r->name);
    }

    for (r = plain; r->name != NULL; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
}


gl_module_t  gl_lua_string_module = {
    .name = "string",
    .inject = gl_lua_string_inject,
};
