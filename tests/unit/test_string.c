/*
 * Unit tests of the encoding helpers of gl_lua_string.c (included, for its
 * statics): URI escaping per type, unescaping, base64 in its three
 * flavours, CRC-32, HMAC-SHA1, SQL quoting, the FFI exports, and
 * ngx.decode_args / ngx.encode_args run in a bare Lua state.
 */
#include "../../src/api/gl_lua_string.c"

#include <stdio.h>
#include <lualib.h>


#include "gl_test.h"

#define CHECK_STR(got, got_len, want)                                        \
    gl_t_check_str(__LINE__, #got, (const u_char *) (got), got_len, want,    \
                   sizeof(want) - 1)


static void
gl_t_check_str(int line, const char *expr, const u_char *got, size_t got_len,
    const char *want, size_t want_len)
{
    if (got_len == want_len && memcmp(got, want, got_len) == 0) {
        gl_t_passed++;
        return;
    }

    gl_t_failed++;
    printf("FAIL %s:%d: %s\n  got  (%zu): \"%.*s\"\n  want (%zu): \"%.*s\"\n",
           __FILE__, line, expr, got_len, (int) got_len, got, want_len,
           (int) want_len, want);
}


static size_t
gl_t_escape(u_char *out, const char *in, unsigned type)
{
    size_t  len = strlen(in);
    size_t  n = gl_escape_uri_count((const u_char *) in, len, type);
    u_char *end = gl_escape_uri(out, (const u_char *) in, len, type);

    CHECK((size_t) (end - out) == len + 2 * n);

    return end - out;
}


static void
test_escape(void)
{
    u_char  out[256], one[1];
    size_t  n;
    int     c, t, esc;

    n = gl_t_escape(out, "a b#c%d?e+f/g", GL_ESCAPE_URI);
    CHECK_STR(out, n, "a%20b%23c%25d%3Fe+f/g");

    n = gl_t_escape(out, "a b#c%d?e+f/g", GL_ESCAPE_ARGS);
    CHECK_STR(out, n, "a%20b%23c%25d%3Fe%2Bf/g");

    n = gl_t_escape(out, "a b#c%d?e+f/g&=:@", GL_ESCAPE_URI_COMPONENT);
    CHECK_STR(out, n, "a%20b%23c%25d%3Fe%2Bf%2Fg%26%3D%3A%40");

    n = gl_t_escape(out, "AZaz09-._~!'()*", GL_ESCAPE_URI_COMPONENT);
    CHECK_STR(out, n, "AZaz09-._~!'()*");

    n = gl_t_escape(out, "\"a'b <#>%", GL_ESCAPE_HTML);
    CHECK_STR(out, n, "%22a%27b%20<%23>%25");

    n = gl_t_escape(out, "\"a'b <#>%", GL_ESCAPE_REFRESH);
    CHECK_STR(out, n, "%22a%27b%20<#>%");

    n = gl_t_escape(out, "a b%c\x7f\x80\x1f", GL_ESCAPE_MEMCACHED);
    CHECK_STR(out, n, "a%20b%25c\x7f\x80%1F");

    n = gl_t_escape(out, "a b%c\x7f\x80\x1f", GL_ESCAPE_MAIL_AUTH);
    CHECK_STR(out, n, "a%20b%25c\x7f\x80%1F");

    /* control bytes by every type, DEL and high bytes by all but 5, 6 */
    for (t = 0; t < GL_ESCAPE_NTYPES; t++) {
        for (c = 0; c < 256; c++) {
            one[0] = (u_char) c;
            esc = gl_escape_uri_count(one, 1, t) == 1;

            if (c < 0x20) {
                CHECK(esc);

            } else if (c >= 0x7f && t != GL_ESCAPE_MEMCACHED
                       && t != GL_ESCAPE_MAIL_AUTH)
            {
                CHECK(esc);

            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                       || (c >= '0' && c <= '9'))
            {
                CHECK(!esc);
            }
        }
    }

    one[0] = 0xab;
    n = gl_escape_uri(out, one, 1, GL_ESCAPE_URI) - out;
    CHECK_STR(out, n, "%AB");
}


static void
test_unescape(void)
{
    static const struct {
        const char  *in;
        const char  *out;
    } cases[] = {
        { "", "" },
        { "abc", "abc" },
        { "a+b", "a b" },
        { "%41%62%2B", "Ab+" },
        { "%e4%BD%a0", "\xe4\xbd\xa0" },
        { "%", "%" },
        { "%4", "%4" },
        { "%4g%41", "%4gA" },
        { "%%41", "%A" },
        { "a%3Fb?c", "a?b?c" },
        { "%zz+", "%zz " },
    };

    size_t   i;
    u_char   buf[64], *end;

    for (i = 0; i < gl_nelems(cases); i++) {
        end = gl_unescape_uri(buf, (const u_char *) cases[i].in,
                              strlen(cases[i].in));
        gl_t_check_str(__LINE__, cases[i].in, buf, end - buf, cases[i].out,
                       strlen(cases[i].out));
    }

    /* in place */
    memcpy(buf, "x%20y+z", 7);
    end = gl_unescape_uri(buf, buf, 7);
    CHECK_STR(buf, end - buf, "x y z");

    end = gl_unescape_uri(buf, (const u_char *) "%00", 3);
    CHECK(end - buf == 1 && buf[0] == 0);
}


static void
test_base64(void)
{
    /* RFC 4648 section 10 */
    static const char  *plain[] = {
        "", "f", "fo", "foo", "foob", "fooba", "foobar"
    };
    static const char  *padded[] = {
        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
    };

    size_t  i, n, dlen;
    u_char  out[64], bin[3] = { 0xfb, 0xff, 0xbf };

    for (i = 0; i < gl_nelems(plain); i++) {
        n = gl_base64_encode(out, (const u_char *) plain[i],
                             strlen(plain[i]), gl_b64_std, 1);
        gl_t_check_str(__LINE__, plain[i], out, n, padded[i],
                       strlen(padded[i]));

        n = gl_base64_encode(out, (const u_char *) plain[i],
                             strlen(plain[i]), gl_b64_std, 0);
        CHECK(n == strcspn(padded[i], "="));

        CHECK(gl_base64_decode(out, &dlen, (const u_char *) padded[i],
                               strlen(padded[i]), gl_b64_std_dec) == GL_OK);
        gl_t_check_str(__LINE__, padded[i], out, dlen, plain[i],
                       strlen(plain[i]));

        /* without the padding */
        CHECK(gl_base64_decode(out, &dlen, (const u_char *) padded[i],
                               strcspn(padded[i], "="), gl_b64_std_dec)
              == GL_OK);
        gl_t_check_str(__LINE__, padded[i], out, dlen, plain[i],
                       strlen(plain[i]));
    }

    n = gl_base64_encode(out, bin, 3, gl_b64_std, 1);
    CHECK_STR(out, n, "+/+/");
    n = gl_ffi_encode_base64url(out, bin, 3);
    CHECK_STR(out, n, "-_-_");
    n = gl_ffi_encode_base64url(out, bin, 1);
    CHECK_STR(out, n, "-w");

    CHECK(gl_ffi_decode_base64url(out, &dlen, (const u_char *) "-_-_", 4));
    CHECK(dlen == 3 && memcmp(out, bin, 3) == 0);
    CHECK(!gl_ffi_decode_base64url(out, &dlen, (const u_char *) "+/+/", 4));

#define DEC_BAD(s)                                                           \
    CHECK(gl_base64_decode(out, &dlen, (const u_char *) s, sizeof(s) - 1,    \
                           gl_b64_std_dec) == GL_ERROR)
#define DEC_OK(s, want)                                                      \
    do {                                                                     \
        CHECK(gl_base64_decode(out, &dlen, (const u_char *) s,               \
                               sizeof(s) - 1, gl_b64_std_dec) == GL_OK);     \
        CHECK_STR(out, dlen, want);                                          \
    } while (0)

    DEC_BAD("Z");
    DEC_BAD("Zm9vY");
    DEC_BAD("Zm 9v");
    DEC_BAD("Zm9v\n");
    DEC_BAD("-_-_");
    DEC_OK("Zg==anything !", "f");
    DEC_OK("Zh==", "f");                    /* unused bits not checked */
    DEC_OK("=Zm9v", "");
    DEC_OK("Zm9v=", "foo");

#define MIME(s, want)                                                        \
    do {                                                                     \
        CHECK(gl_base64_decode_mime(out, &dlen, (const u_char *) s,          \
                                    sizeof(s) - 1) == GL_OK);                \
        CHECK_STR(out, dlen, want);                                          \
    } while (0)

    MIME("Zm9v\r\nYmFy", "foobar");
    MIME("!Z@m#9$v%Y^g", "foob");
    MIME("Zm9vYg==\nZm9v", "foob");
    MIME("", "");
    CHECK(gl_base64_decode_mime(out, &dlen, (const u_char *) "Zm9vY\n", 6)
          == GL_ERROR);
    CHECK(gl_base64_decode_mime(out, &dlen, (const u_char *) "zaaLg==", 7)
          == GL_ERROR);
}


static void
test_crc32_hmac_sql(void)
{
    u_char  md[SHA_DIGEST_LENGTH], hex[2 * SHA_DIGEST_LENGTH], out[64];
    u_char  key[80], *end;

    CHECK(gl_crc32((const u_char *) "123456789", 9) == 0xcbf43926u);
    CHECK(gl_crc32((const u_char *) "", 0) == 0);
    CHECK(gl_crc32((const u_char *) "\xff\xff\xff\xff", 4) == 0xffffffffu);

    /* RFC 2202 */
    memset(key, 0x0b, 20);
    gl_hmac_sha1(md, key, 20, (const u_char *) "Hi There", 8);
    ngx_hex_dump(hex, md, sizeof(md));
    CHECK_STR(hex, sizeof(hex), "b617318655057264e28bc0b6fb378c8ef146be00");

    gl_hmac_sha1(md, (const u_char *) "Jefe", 4,
                 (const u_char *) "what do ya want for nothing?", 28);
    ngx_hex_dump(hex, md, sizeof(md));
    CHECK_STR(hex, sizeof(hex), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");

    memset(key, 0xaa, 80);
    gl_hmac_sha1(md, key, 80, (const u_char *) "Test Using Larger Than "
                 "Block-Size Key - Hash Key First", 54);
    ngx_hex_dump(hex, md, sizeof(md));
    CHECK_STR(hex, sizeof(hex), "aa4ae5e15272d00e95705637ce8a3b55ed402112");

    gl_hmac_sha1(md, (const u_char *) "", 0, (const u_char *) "", 0);
    ngx_hex_dump(hex, md, sizeof(md));
    CHECK_STR(hex, sizeof(hex), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");

    CHECK(gl_sql_escape_count((const u_char *) "a'b\"c\\\0\b\n\r\t\x1a\x80",
                              12) == 9);
    end = gl_sql_escape(out, (const u_char *) "a'b\0\x1a\xe2\x80\x99", 8);
    CHECK_STR(out, end - out, "a\\'b\\0\\Z\xe2\x80\x99");

    CHECK(ngx_atoi((const u_char *) "0", 1) == 0);
    CHECK(ngx_atoi((const u_char *) "1234", 4) == 1234);
    CHECK(ngx_atoi((const u_char *) "1234", 2) == 12);
    CHECK(ngx_atoi((const u_char *) "", 0) == -1);
    CHECK(ngx_atoi((const u_char *) "-1", 2) == -1);
    CHECK(ngx_atoi((const u_char *) "1x", 2) == -1);
    CHECK(ngx_atoi((const u_char *) "9223372036854775807", 19)
          == INTPTR_MAX);
    CHECK(ngx_atoi((const u_char *) "9223372036854775808", 19) == -1);
    CHECK(ngx_atoi((const u_char *) "99999999999999999999", 20) == -1);

    end = ngx_hex_dump(out, (const u_char *) "\x00\x7f\xff", 3);
    CHECK_STR(out, end - out, "007fff");
}


/* runs "return <expr>" with ngx set up; the results as one string */
static void
gl_t_lua(lua_State *L, const char *code, const char *want)
{
    const char  *got;

    lua_settop(L, 0);

    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        gl_t_failed++;
        printf("FAIL %s: %s\n", code, lua_tostring(L, -1));
        return;
    }

    got = lua_tostring(L, -1);
    gl_t_check_str(__LINE__, code, (const u_char *) (got ? got : "(nil)"),
                   strlen(got ? got : "(nil)"), want, strlen(want));
}


static void
test_lua(void)
{
    lua_State  *L;

    L = luaL_newstate();
    if (L == NULL) {
        CHECK(L != NULL);
        return;
    }

    luaL_openlibs(L);
    lua_newtable(L);
    gl_lua_string_module.inject(L);
    lua_setglobal(L, "ngx");

    /* a canonical dump of a decode_args result */
    gl_t_lua(L,
        "function dump(t, extra) local k = {} "
        "for key, v in pairs(t) do "
        "  if type(v) == 'table' then "
        "    for i = 1, #v do v[i] = tostring(v[i]) end "
        "    v = '[' .. table.concat(v, ',') .. ']' end "
        "  k[#k + 1] = key .. '=' .. tostring(v) end "
        "table.sort(k) return table.concat(k, ' ') .. "
        "(extra and ' ' .. extra or '') end return 'x'", "x");

    gl_t_lua(L, "return dump(ngx.decode_args('a=1&b&c=%20+&a=2&a'))",
             "a=[1,2,true] b=true c=  ");
    gl_t_lua(L, "return dump(ngx.decode_args('=1&&x==y&'))", "x==y");
    gl_t_lua(L, "return dump(ngx.decode_args('a&b&c', 2))",
             "a=true b=true truncated");
    gl_t_lua(L, "return dump(ngx.decode_args('a&b&c', 3))",
             "a=true b=true c=true");
    gl_t_lua(L, "return dump(ngx.decode_args('a=', 0))", "a=");
    gl_t_lua(L, "return ngx.encode_args({a = {'1', true, false, 'x y'}})",
             "a=1&a&a=x%20y");
    gl_t_lua(L, "return ngx.encode_args({['a&'] = 3})", "a%26=3");
    gl_t_lua(L, "return select(2, pcall(ngx.encode_args, {1}))",
             "attempt to use a non-string key in the \"args\" option table");
    gl_t_lua(L, "return ngx.escape_uri('a b/', 0) .. ngx.escape_uri(nil)",
             "a%20b/");
    /* resty.core would read out of its table; we raise, at level 3 */
    gl_t_lua(L, "return (select(2, pcall(ngx.escape_uri, 'x', 0/0)))",
             "[string \"return (select(2, pcall(ngx.escape_uri, "
             "'x', ...\"]:1: \"type\" nan out of range");
    gl_t_lua(L, "return ngx.unescape_uri('%41+')", "A ");
    gl_t_lua(L, "return ngx.encode_base64('ab', true) .. "
             "ngx.decode_base64('YWI')", "YWIab");
    gl_t_lua(L, "return tostring(ngx.decode_base64('YWJjZ'))", "nil");
    gl_t_lua(L, "return ngx.decode_base64mime('YW\\nJj')", "abc");
    gl_t_lua(L, "return ngx.md5('') .. ngx.crc32_long(123)",
             "d41d8cd98f00b204e9800998ecf8427e2286445522");
    gl_t_lua(L, "return ngx.quote_sql_str(\"it's\")", "'it\\'s'");

    lua_close(L);
}


int
main(void)
{
    gl_string_init();

    test_escape();
    test_unescape();
    test_base64();
    test_crc32_hmac_sql();
    test_lua();

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
