/*
 * ngx.re: match, find, gmatch, sub and gsub on PCRE2, with the options,
 * results and error strings of lua-nginx-module running with
 * lua-resty-core; and the primitives lua/ngx/re.lua builds split() and
 * opt() on (package.loaded["golapis.re"], internal).
 *
 * Everything here belongs to one Lua state, so to one worker: a context
 * userdata (match context with the match limit and the JIT stack, match
 * data) and the cache of the regexes compiled with "o": a table
 * cache[opts][pattern] -> compiled regex, with an LRU list through the
 * entries bounded by lua_regex_cache_max_entries.  Both are upvalues of
 * the functions below; their __gc frees the PCRE2 memory when the state
 * closes.  A regex compiled without "o" is freed by the call that
 * compiled it (or by the GC if that call raised).
 *
 * sub and gsub are small Lua functions (the chunk below): a replacement
 * function is called from Lua, so it may yield (ngx.sleep, cosockets) as
 * it may in OpenResty.  A template replacement is done in C.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_worker.h"

#include <limits.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* the flags of lua-nginx-module's regex options */
#define GL_RE_COMPILE_ONCE      0x01
#define GL_RE_DFA               0x02
#define GL_RE_JIT               0x04
#define GL_RE_DUPNAMES          0x08
#define GL_RE_NO_UTF_CHECK      0x10

#define GL_RE_DFA_WORKSPACE     100
#define GL_RE_JIT_STACK_MIN     (32 * 1024)
#define GL_RE_ERRSTR_SIZE       128
#define GL_RE_CACHE_DEFAULT     1024

/* PCRE_JAVASCRIPT_COMPAT is these three in PCRE2 */
#define GL_RE_JS_COMPAT                                                      \
    (PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_MATCH_UNSET_BACKREF)

/* the upvalues of every function here */
#define GL_RE_UV_CTX            lua_upvalueindex(1)
#define GL_RE_UV_CACHE          lua_upvalueindex(2)
#define GL_RE_UV_TOSTRING       lua_upvalueindex(3)
#define GL_RE_UV_RE_MT          lua_upvalueindex(4)
#define GL_RE_UV_ITER_MT        lua_upvalueindex(5)
#define GL_RE_NUPVALUES         5

/* the slots of a gmatch iterator table */
#define GL_RE_IT_RE             1
#define GL_RE_IT_SUBJ           2
#define GL_RE_IT_POS            3


typedef struct gl_re_s  gl_re_t;

/* a compiled regex: a userdata; an "o" one is also in the cache */
struct gl_re_s {
    pcre2_code         *code;          /* NULL once freed */
    uint32_t            ncaptures;
    uint32_t            name_count;
    uint32_t            name_entry_size;
    PCRE2_SPTR          name_table;
    int                 flags;
    unsigned            owned:1;       /* never cached: freed by its call */
    unsigned            cached:1;      /* in the cache now */
    gl_re_t            *prev;          /* the LRU list, newest first */
    gl_re_t            *next;
    size_t              opts_len;      /* the cache keys, copied after */
    size_t              pat_len;       /* the struct: opts \0 pattern \0 */
};

typedef struct {
    pcre2_match_context    *mctx;
    uint32_t                match_limit;   /* what mctx has; 0 default */
    pcre2_jit_stack        *jit_stack;
    pcre2_match_data       *md;
    uint32_t                md_pairs;
    pcre2_match_data       *dfa_md;        /* one pair, as upstream */
    gl_re_t                *head;
    gl_re_t                *tail;
    int                     count;
    unsigned                warned:1;
    unsigned                match_cached:1; /* resty.core's "regex cache
                                               is not empty" */
} gl_re_ctx_t;


static int
gl_re_conf_cache_max(void)
{
    return gl_worker_self != NULL
           ? gl_worker_self->conf->regex_cache_max_entries
           : GL_RE_CACHE_DEFAULT;
}


static uint32_t
gl_re_conf_match_limit(void)
{
    int  n;

    n = gl_worker_self != NULL ? gl_worker_self->conf->regex_match_limit : 0;

    return n > 0 ? (uint32_t) n : 0;
}


static const char *
gl_re_key_opts(gl_re_t *re)
{
    return (const char *) (re + 1);
}


static const char *
gl_re_key_pat(gl_re_t *re)
{
    return (const char *) (re + 1) + re->opts_len + 1;
}


static void
gl_re_free_code(gl_re_t *re)
{
    if (re->code != NULL) {
        pcre2_code_free(re->code);
        re->code = NULL;
    }
}


/* a regex this call compiled without "o" is done with */
static void
gl_re_release(gl_re_t *re)
{
    if (re->owned) {
        gl_re_free_code(re);
    }
}


static int
gl_re_gc(lua_State *L)
{
    gl_re_free_code(lua_touserdata(L, 1));

    return 0;
}


static int
gl_re_ctx_gc(lua_State *L)
{
    gl_re_ctx_t  *ctx;

    ctx = lua_touserdata(L, 1);

    if (ctx->md != NULL) {
        pcre2_match_data_free(ctx->md);
        ctx->md = NULL;
    }

    if (ctx->dfa_md != NULL) {
        pcre2_match_data_free(ctx->dfa_md);
        ctx->dfa_md = NULL;
    }

    if (ctx->mctx != NULL) {
        pcre2_match_context_free(ctx->mctx);
        ctx->mctx = NULL;
    }

    if (ctx->jit_stack != NULL) {
        pcre2_jit_stack_free(ctx->jit_stack);
        ctx->jit_stack = NULL;
    }

    return 0;
}


/*
 * tostring(v) in place, as resty.core coerces the subject and the
 * replacement.
 */
static void
gl_re_tostring(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {

    case LUA_TSTRING:
        return;

    case LUA_TNUMBER:
        lua_pushvalue(L, idx);
        lua_tolstring(L, -1, NULL);
        break;

    default:
        lua_pushvalue(L, GL_RE_UV_TOSTRING);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "'tostring' must return a string");
        }
    }

    lua_replace(L, idx);
}


/* the messages resty.core's Lua code raises for a bad argument type */
static int
gl_re_type_error(lua_State *L, const char *what, const char *name, int idx)
{
    return luaL_error(L, "attempt to %s local '%s' (a %s value)", what,
                      name, luaL_typename(L, idx));
}


/*
 * The options string at idx: flags and PCRE2 compile options.  Raises
 * for an unknown option, as resty.core does.
 */
static void
gl_re_parse_opts(lua_State *L, int idx, int *flags, uint32_t *options)
{
    size_t        i, len;
    const char   *p;

    *flags = 0;
    *options = 0;

    switch (lua_type(L, idx)) {

    case LUA_TNIL:
        return;

    case LUA_TBOOLEAN:
        if (!lua_toboolean(L, idx)) {
            return;
        }
        gl_re_type_error(L, "get length of", "opts", idx);
        return;

    case LUA_TTABLE:
        /* resty.core reads its bytes with string.byte */
        if (lua_objlen(L, idx) == 0) {
            return;
        }
        luaL_error(L, "bad argument #1 to 'byte' (string expected, got "
                   "table)");
        return;

    case LUA_TSTRING:
        break;

    default:
        gl_re_type_error(L, "get length of", "opts", idx);
        return;
    }

    p = lua_tolstring(L, idx, &len);

    for (i = 0; i < len; i++) {
        switch (p[i]) {
        case 'o':
            *flags |= GL_RE_COMPILE_ONCE;
            break;
        case 'j':
            *flags |= GL_RE_JIT;
            break;
        case 'i':
            *options |= PCRE2_CASELESS;
            break;
        case 's':
            *options |= PCRE2_DOTALL;
            break;
        case 'm':
            *options |= PCRE2_MULTILINE;
            break;
        case 'u':
            *options |= PCRE2_UTF;
            break;
        case 'U':
            *options |= PCRE2_UTF;
            *flags |= GL_RE_NO_UTF_CHECK;
            break;
        case 'x':
            *options |= PCRE2_EXTENDED;
            break;
        case 'd':
            *flags |= GL_RE_DFA;
            break;
        case 'a':
            *options |= PCRE2_ANCHORED;
            break;
        case 'D':
            *options |= PCRE2_DUPNAMES;
            *flags |= GL_RE_DUPNAMES;
            break;
        case 'J':
            *options |= GL_RE_JS_COMPAT;
            break;
        default:
            luaL_error(L, "unknown flag \"%c\" (flags \"%s\")", p[i], p);
            return;
        }
    }
}


/* appends to a NUL-terminated buffer of size GL_RE_ERRSTR_SIZE, keeping
   at most size - 1 bytes, as ngx_snprintf into lua-nginx-module's */
static size_t
gl_re_err_add(char *buf, size_t n, const char *s, size_t len)
{
    len = gl_min(len, GL_RE_ERRSTR_SIZE - 1 - n);
    memcpy(buf + n, s, len);
    buf[n + len] = '\0';

    return n + len;
}


/*
 * Compiles pat into a new compiled-regex userdata pushed on the stack.
 * key != 0 keeps room for the cache keys (opts at opts_idx).  On a
 * compile error pushes the message instead and returns NULL.
 */
static gl_re_t *
gl_re_compile(lua_State *L, const char *pat, size_t pat_len, int opts_idx,
    int flags, uint32_t options, int key)
{
    int           errcode, rc;
    char          buf[GL_RE_ERRSTR_SIZE];
    u_char        msg[GL_RE_ERRSTR_SIZE];
    size_t        n, opts_len, size;
    gl_re_t      *re;
    const char   *opts;
    PCRE2_SIZE    erroff;
    pcre2_code   *code;

    opts = "";
    opts_len = 0;

    if (key && lua_type(L, opts_idx) == LUA_TSTRING) {
        opts = lua_tolstring(L, opts_idx, &opts_len);
    }

    size = sizeof(gl_re_t) + (key ? opts_len + pat_len + 2 : 0);

    re = lua_newuserdata(L, size);
    memset(re, 0, sizeof(gl_re_t));
    lua_pushvalue(L, GL_RE_UV_RE_MT);
    lua_setmetatable(L, -2);

    if (key) {
        re->opts_len = opts_len;
        re->pat_len = pat_len;
        memcpy((char *) (re + 1), opts, opts_len + 1);
        memcpy((char *) (re + 1) + opts_len + 1, pat, pat_len + 1);
    }

    code = pcre2_compile((PCRE2_SPTR) pat, pat_len, options, &errcode,
                         &erroff, NULL);

    if (code == NULL) {
        lua_pop(L, 1);

        pcre2_get_error_message(errcode, msg, sizeof(msg));

        n = gl_re_err_add(buf, 0, "pcre2_compile() failed: ", 24);
        n = gl_re_err_add(buf, n, (char *) msg, strlen((char *) msg));
        n = gl_re_err_add(buf, n, " in \"", 5);
        n = gl_re_err_add(buf, n, pat, pat_len);

        if (erroff == pat_len) {
            gl_re_err_add(buf, n, "\"", 1);

        } else {
            n = gl_re_err_add(buf, n, "\" at \"", 6);
            n = gl_re_err_add(buf, n, pat + erroff, strlen(pat + erroff));
            gl_re_err_add(buf, n, "\"", 1);
        }

        /* what upstream hands back is a C string */
        lua_pushstring(L, buf);
        return NULL;
    }

    re->code = code;
    re->flags = flags;

    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &re->ncaptures);
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &re->name_count);

    if (re->name_count > 0) {
        pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE,
                           &re->name_entry_size);
        pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &re->name_table);
    }

    if (flags & GL_RE_DFA) {
        /* DFA matching returns the whole match only */
        re->ncaptures = 0;
    }

    if (flags & GL_RE_JIT) {
        rc = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        if (rc != 0) {
            gl_log_error(GL_LOG_INFO, 0, "pcre2_jit_compile() failed: %d in "
                         "\"%s\", ignored", rc, pat);
        }
    }

    return re;
}


static void
gl_re_lru_unlink(gl_re_ctx_t *ctx, gl_re_t *re)
{
    if (re->prev != NULL) {
        re->prev->next = re->next;
    } else {
        ctx->head = re->next;
    }

    if (re->next != NULL) {
        re->next->prev = re->prev;
    } else {
        ctx->tail = re->prev;
    }

    re->prev = NULL;
    re->next = NULL;
}


static void
gl_re_lru_push(gl_re_ctx_t *ctx, gl_re_t *re)
{
    re->prev = NULL;
    re->next = ctx->head;

    if (ctx->head != NULL) {
        ctx->head->prev = re;
    } else {
        ctx->tail = re;
    }

    ctx->head = re;
}


/* drops the least recently used entry; whoever still holds it (a gmatch
   iterator) keeps it alive until the GC */
static void
gl_re_cache_evict(lua_State *L, gl_re_ctx_t *ctx)
{
    gl_re_t  *re;

    re = ctx->tail;
    gl_re_lru_unlink(ctx, re);
    re->cached = 0;
    ctx->count--;

    lua_pushlstring(L, gl_re_key_opts(re), re->opts_len);
    lua_rawget(L, GL_RE_UV_CACHE);

    if (lua_istable(L, -1)) {
        lua_pushlstring(L, gl_re_key_pat(re), re->pat_len);
        lua_pushnil(L);
        lua_rawset(L, -3);
    }

    lua_pop(L, 1);
}


/* puts the regex on top of the stack into cache[opts][pat] */
static void
gl_re_cache_put(lua_State *L, gl_re_ctx_t *ctx, gl_re_t *re, int pat_idx,
    int opts_idx, int max, int match_family)
{
    if (ctx->count >= max) {
        if (!ctx->warned) {
            ctx->warned = 1;
            gl_log_error(GL_LOG_WARN, 0, "lua exceeding regex cache max "
                         "entries (%d)", max);
        }

        while (ctx->count >= max && ctx->tail != NULL) {
            gl_re_cache_evict(L, ctx);
        }
    }

    if (lua_type(L, opts_idx) == LUA_TSTRING) {
        lua_pushvalue(L, opts_idx);
    } else {
        lua_pushliteral(L, "");
    }

    lua_pushvalue(L, -1);
    lua_rawget(L, GL_RE_UV_CACHE);

    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 4);
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, GL_RE_UV_CACHE);
    }

    lua_pushvalue(L, pat_idx);
    lua_pushvalue(L, -4);
    lua_rawset(L, -3);
    lua_pop(L, 2);

    re->cached = 1;
    gl_re_lru_push(ctx, re);
    ctx->count++;

    if (match_family) {
        ctx->match_cached = 1;
    }
}


/*
 * The compiled regex for the pattern at pat_idx with the options at
 * opts_idx, pushed on the stack: from the cache for "o", else compiled
 * now.  On a compile error pushes the message instead and returns NULL.
 * Raises for a bad option or a pattern that is not a string.
 */
static gl_re_t *
gl_re_get(lua_State *L, int pat_idx, int opts_idx, int match_family)
{
    int           flags, max;
    size_t        pat_len;
    uint32_t      options;
    gl_re_t      *re;
    const char   *pat;
    gl_re_ctx_t  *ctx;

    gl_re_parse_opts(L, opts_idx, &flags, &options);

    switch (lua_type(L, pat_idx)) {

    case LUA_TSTRING:
        break;

    case LUA_TTABLE:
        /* resty.core's #regex passes, the FFI call does not */
        luaL_error(L, "bad argument #1 to 'ngx_lua_ffi_compile_regex' "
                   "(cannot convert 'table' to 'const unsigned char *')");
        break;

    default:
        gl_re_type_error(L, "get length of", "regex", pat_idx);
    }

    pat = lua_tolstring(L, pat_idx, &pat_len);
    ctx = lua_touserdata(L, GL_RE_UV_CTX);

    /* "o" is only in an options string */
    max = (flags & GL_RE_COMPILE_ONCE) ? gl_re_conf_cache_max() : 0;

    if (max > 0) {
        lua_pushvalue(L, opts_idx);
        lua_rawget(L, GL_RE_UV_CACHE);

        if (lua_istable(L, -1)) {
            lua_pushvalue(L, pat_idx);
            lua_rawget(L, -2);
            re = lua_touserdata(L, -1);

            if (re != NULL) {
                lua_remove(L, -2);

                if (re != ctx->head) {
                    gl_re_lru_unlink(ctx, re);
                    gl_re_lru_push(ctx, re);
                }

                return re;
            }

            lua_pop(L, 1);
        }

        lua_pop(L, 1);
    }

    re = gl_re_compile(L, pat, pat_len, opts_idx, flags, options, max > 0);
    if (re == NULL) {
        return NULL;
    }

    if (max > 0) {
        gl_re_cache_put(L, ctx, re, pat_idx, opts_idx, max, match_family);

    } else {
        re->owned = 1;
    }

    return re;
}


/* the compiled regex at idx, checked (the primitives take it from Lua) */
static gl_re_t *
gl_re_check(lua_State *L, int idx)
{
    gl_re_t  *re;

    re = lua_touserdata(L, idx);

    if (re == NULL || !lua_getmetatable(L, idx)) {
        luaL_error(L, "bad compiled regex");
        return NULL;
    }

    if (!lua_rawequal(L, -1, GL_RE_UV_RE_MT)) {
        luaL_error(L, "bad compiled regex");
    }

    lua_pop(L, 1);

    return re;
}


static int
gl_re_match_context(gl_re_ctx_t *ctx)
{
    uint32_t  limit;

    if (ctx->mctx == NULL) {
        ctx->mctx = pcre2_match_context_create(NULL);
        if (ctx->mctx == NULL) {
            return GL_ERROR;
        }

        ctx->match_limit = 0;
    }

    limit = gl_re_conf_match_limit();

    if (limit != ctx->match_limit) {
        if (limit == 0) {
            pcre2_config(PCRE2_CONFIG_MATCHLIMIT, &limit);
            pcre2_set_match_limit(ctx->mctx, limit);
            limit = 0;

        } else {
            pcre2_set_match_limit(ctx->mctx, limit);
        }

        ctx->match_limit = limit;
    }

    return GL_OK;
}


/*
 * Runs the regex on s from offset pos.  Returns PCRE2's code: the number
 * of pairs set (at least 1 on a match), PCRE2_ERROR_NOMATCH or another
 * error.  The pairs are copied into ov (room for ncaptures + 1 pairs):
 * the match data is shared by the state, and Lua code that runs before
 * the caller is done with the offsets (a metamethod, a finalizer) may
 * match again.
 */
static int
gl_re_exec(gl_re_ctx_t *ctx, gl_re_t *re, const char *s, size_t len,
    size_t pos, PCRE2_SIZE *ov)
{
    int                rc, ws[GL_RE_DFA_WORKSPACE];
    uint32_t           options, pairs;
    PCRE2_SIZE        *p;
    pcre2_match_data  *md;

    if (re->code == NULL) {
        return PCRE2_ERROR_NULL;
    }

    if (gl_re_match_context(ctx) != GL_OK) {
        return PCRE2_ERROR_NOMEMORY;
    }

    options = (re->flags & GL_RE_NO_UTF_CHECK) ? PCRE2_NO_UTF_CHECK : 0;

    if (re->flags & GL_RE_DFA) {
        if (ctx->dfa_md == NULL) {
            ctx->dfa_md = pcre2_match_data_create(1, NULL);
            if (ctx->dfa_md == NULL) {
                return PCRE2_ERROR_NOMEMORY;
            }
        }

        md = ctx->dfa_md;
        rc = pcre2_dfa_match(re->code, (PCRE2_SPTR) s, len, pos, options,
                             md, ctx->mctx, ws, GL_RE_DFA_WORKSPACE);

        if (rc == 0) {
            /* more matches than the one pair: the longest is there */
            rc = 1;
        }

    } else {
        pairs = re->ncaptures + 1;

        if (ctx->md_pairs < pairs) {
            if (ctx->md != NULL) {
                pcre2_match_data_free(ctx->md);
            }

            ctx->md = pcre2_match_data_create(gl_max(pairs, 16), NULL);
            if (ctx->md == NULL) {
                ctx->md_pairs = 0;
                return PCRE2_ERROR_NOMEMORY;
            }

            ctx->md_pairs = gl_max(pairs, 16);
        }

        md = ctx->md;
        rc = pcre2_match(re->code, (PCRE2_SPTR) s, len, pos, options, md,
                         ctx->mctx);
    }

    if (rc > 0) {
        p = pcre2_get_ovector_pointer(md);
        memcpy(ov, p, 2 * sizeof(PCRE2_SIZE) * rc);
    }

    return rc;
}


/* room for the offsets of a match: on the C stack, or a userdata pushed
   for a regex with many groups */
#define GL_RE_OV_STACK  32

static PCRE2_SIZE *
gl_re_ovector(lua_State *L, gl_re_t *re, PCRE2_SIZE *buf)
{
    if (re->ncaptures + 1 <= GL_RE_OV_STACK) {
        return buf;
    }

    return lua_newuserdata(L, 2 * sizeof(PCRE2_SIZE)
                              * ((size_t) re->ncaptures + 1));
}


/* resty.core hands offsets to C as an int: truncated, and a value out of
   range comes out negative, which the match rejects as a bad offset */
static size_t
gl_re_offset(lua_Number d)
{
    if (!(d > -1.0 && d < 2147483648.0)) {
        return (size_t) -1;
    }

    return (size_t) (int) d;
}


/* the start offset from ctx.pos (1-based), as resty.core reads it */
static size_t
gl_re_ctx_offset(lua_State *L, int idx)
{
    lua_Number  d;

    if (!lua_toboolean(L, idx)) {
        return 0;
    }

    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "pos");

    } else if (lua_type(L, idx) == LUA_TSTRING) {
        /* a string indexes string's table: nothing there */
        lua_pushnil(L);

    } else {
        gl_re_type_error(L, "index", "ctx", idx);
    }

    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }

    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "attempt to compare %s with number",
                   luaL_typename(L, -1));
    }

    d = lua_tonumber(L, -1);
    lua_pop(L, 1);

    if (d <= 0) {
        return 0;
    }

    return gl_re_offset(d - 1);
}


static void
gl_re_ctx_set_pos(lua_State *L, int idx, PCRE2_SIZE end)
{
    if (!lua_toboolean(L, idx)) {
        return;
    }

    if (!lua_istable(L, idx)) {
        gl_re_type_error(L, "index", "ctx", idx);
    }

    lua_pushinteger(L, (lua_Integer) end + 1);
    lua_setfield(L, idx, "pos");
}


static void
gl_re_push_sub(lua_State *L, const char *s, PCRE2_SIZE from, PCRE2_SIZE to)
{
    lua_pushlstring(L, s + from, to > from ? to - from : 0);
}


/*
 * The captures table of ngx.re.match: [0] the whole match, [n] group n
 * or false, and named groups by name (with "D" an array of the groups
 * of that name that matched).  res_idx: the caller's table, or 0.
 */
static void
gl_re_push_captures(lua_State *L, gl_re_t *re, const char *s,
    PCRE2_SIZE *ov, int rc, int res_idx)
{
    int          t;
    size_t       k;
    uint32_t     i, n;
    PCRE2_SPTR   entry;
    const char  *name;

    if (res_idx != 0 && lua_toboolean(L, res_idx)) {
        if (!lua_istable(L, res_idx)) {
            gl_re_type_error(L, "index", "res", res_idx);
        }

        lua_pushvalue(L, res_idx);

    } else {
        lua_createtable(L, re->ncaptures, re->name_count);
    }

    t = lua_gettop(L);

    for (i = 0; i <= re->ncaptures; i++) {
        if ((int) i < rc && ov[2 * i] != PCRE2_UNSET) {
            gl_re_push_sub(L, s, ov[2 * i], ov[2 * i + 1]);

        } else {
            lua_pushboolean(L, 0);
        }

        lua_rawseti(L, t, i);
    }

    entry = re->name_table;

    for (n = 0; n < re->name_count; n++, entry += re->name_entry_size) {
        i = (entry[0] << 8) | entry[1];
        name = (const char *) entry + 2;

        if (!(re->flags & GL_RE_DUPNAMES)) {
            lua_pushstring(L, name);
            lua_rawgeti(L, t, i);
            lua_rawset(L, t);
            continue;
        }

        /* unmatched groups are left out of the array */
        lua_rawgeti(L, t, i);
        if (!lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            continue;
        }

        lua_pushstring(L, name);
        lua_rawget(L, t);

        if (lua_toboolean(L, -1)) {
            if (!lua_istable(L, -1)) {
                gl_re_type_error(L, "index", "old", -1);
            }

            k = lua_objlen(L, -1);
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, k + 1);
            lua_pop(L, 2);
            continue;
        }

        lua_pop(L, 1);
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, name);
        lua_insert(L, -2);
        lua_rawset(L, t);
    }
}


/* ngx.re.match (want_caps) and ngx.re.find */
static int
gl_re_match_helper(lua_State *L, int want_caps)
{
    int           rc;
    size_t        len, pos;
    gl_re_t      *re;
    PCRE2_SIZE    buf[2 * GL_RE_OV_STACK], *ov, from, to;
    lua_Number    nth;
    const char   *s;
    gl_re_ctx_t  *ctx;

    lua_settop(L, 5);

    gl_re_tostring(L, 1);

    re = gl_re_get(L, 2, 3, 1);
    if (re == NULL) {
        lua_pushnil(L);
        lua_insert(L, -2);

        if (!want_caps) {
            lua_pushnil(L);
            lua_insert(L, -2);
            return 3;
        }

        return 2;
    }

    ctx = lua_touserdata(L, GL_RE_UV_CTX);
    pos = gl_re_ctx_offset(L, 4);
    ov = gl_re_ovector(L, re, buf);

    s = lua_tolstring(L, 1, &len);
    rc = gl_re_exec(ctx, re, s, len, pos, ov);

    if (rc == PCRE2_ERROR_NOMATCH) {
        gl_re_release(re);
        lua_pushnil(L);
        return 1;
    }

    if (rc < 0) {
        gl_re_release(re);
        lua_pushnil(L);

        if (!want_caps) {
            lua_pushnil(L);
        }

        lua_pushfstring(L, "pcre_exec() failed: %d", rc);
        return want_caps ? 2 : 3;
    }

    gl_re_ctx_set_pos(L, 4, ov[1]);

    if (want_caps) {
        gl_re_push_captures(L, re, s, ov, rc, 5);
        gl_re_release(re);
        return 1;
    }

    gl_re_release(re);

    nth = 0;

    if (lua_toboolean(L, 5)) {
        if (lua_type(L, 5) != LUA_TNUMBER) {
            return luaL_error(L, "attempt to compare %s with number",
                              luaL_typename(L, 5));
        }

        nth = lua_tonumber(L, 5);
        if (nth < 0) {
            nth = 0;
        }
    }

    if (nth > re->ncaptures) {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushliteral(L, "nth out of bound");
        return 3;
    }

    if (nth >= rc) {
        lua_pushnil(L);
        lua_pushnil(L);
        return 2;
    }

    from = ov[2 * (int) nth];
    to = ov[2 * (int) nth + 1];

    if (from == PCRE2_UNSET) {
        lua_pushnil(L);
        lua_pushnil(L);
        return 2;
    }

    lua_pushinteger(L, (lua_Integer) from + 1);
    lua_pushinteger(L, (lua_Integer) to);

    return 2;
}


static int
gl_re_match(lua_State *L)
{
    return gl_re_match_helper(L, 1);
}


static int
gl_re_find(lua_State *L)
{
    return gl_re_match_helper(L, 0);
}


static int
gl_re_gmatch(lua_State *L)
{
    lua_settop(L, 3);

    gl_re_tostring(L, 1);

    if (gl_re_get(L, 2, 3, 1) == NULL) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }

    /* a table called through its metatable, as resty.core's iterator */
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, GL_RE_IT_RE);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, GL_RE_IT_SUBJ);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, GL_RE_IT_POS);
    lua_pushvalue(L, GL_RE_UV_ITER_MT);
    lua_setmetatable(L, -2);

    return 1;
}


static void
gl_re_gmatch_done(lua_State *L, gl_re_t *re)
{
    lua_pushnil(L);
    lua_rawseti(L, 1, GL_RE_IT_POS);
    lua_pushnil(L);
    lua_rawseti(L, 1, GL_RE_IT_RE);
    lua_pushnil(L);
    lua_rawseti(L, 1, GL_RE_IT_SUBJ);

    gl_re_release(re);
}


/* the iterator: all its state is in its table, so it may be called
   across yields of the request, and by any coroutine */
static int
gl_re_gmatch_iter(lua_State *L)
{
    int           rc;
    size_t        len, pos;
    gl_re_t      *re;
    PCRE2_SIZE    buf[2 * GL_RE_OV_STACK], *ov, next;
    const char   *s;
    gl_re_ctx_t  *ctx;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    lua_rawgeti(L, 1, GL_RE_IT_POS);
    if (lua_isnil(L, 2)) {
        /* exhausted */
        lua_pushnil(L);
        return 1;
    }

    lua_rawgeti(L, 1, GL_RE_IT_RE);
    lua_rawgeti(L, 1, GL_RE_IT_SUBJ);

    re = gl_re_check(L, 3);
    s = luaL_checklstring(L, 4, &len);
    pos = (size_t) lua_tointeger(L, 2);

    ctx = lua_touserdata(L, GL_RE_UV_CTX);
    ov = gl_re_ovector(L, re, buf);

    rc = gl_re_exec(ctx, re, s, len, pos, ov);

    if (rc == PCRE2_ERROR_NOMATCH) {
        gl_re_gmatch_done(L, re);
        lua_pushnil(L);
        return 1;
    }

    if (rc < 0) {
        gl_re_gmatch_done(L, re);
        lua_pushnil(L);
        lua_pushfstring(L, "pcre_exec() failed: %d", rc);
        return 2;
    }

    next = ov[1];

    if (next == ov[0]) {
        /* an empty match: go on from the next byte */
        next++;

        if (next > len) {
            gl_re_push_captures(L, re, s, ov, rc, 0);
            gl_re_gmatch_done(L, re);
            return 1;
        }
    }

    lua_pushinteger(L, (lua_Integer) next);
    lua_rawseti(L, 1, GL_RE_IT_POS);

    gl_re_push_captures(L, re, s, ov, rc, 0);

    return 1;
}


/*
 * Walks a replacement template as lua-nginx-module's script compiler
 * does: "$$", "$N" and "${N}"; a name ("$x", "${x}") is an error there
 * too.  With b == NULL only checks it, logging what upstream logs; else
 * appends its expansion for the match in ov (rc pairs) to b.
 */
static int
gl_re_template(const char *t, size_t len, luaL_Buffer *b, const char *s,
    PCRE2_SIZE *ov, int rc)
{
    int      bracket, num;
    char     ch;
    size_t   i, start, end, n, k;

    i = 0;

    while (i < len) {

        if (t[i] != '$') {
            start = i;

            while (i < len && t[i] != '$') {
                i++;
            }

            if (b != NULL) {
                luaL_addlstring(b, t + start, i - start);
            }

            continue;
        }

        if (++i == len) {
            goto invalid;
        }

        if (t[i] == '$') {
            if (b != NULL) {
                luaL_addchar(b, '$');
            }

            i++;
            continue;
        }

        num = (t[i] >= '0' && t[i] <= '9');
        bracket = 0;

        if (t[i] == '{') {
            bracket = 1;

            if (++i == len) {
                goto invalid;
            }

            if (t[i] >= '0' && t[i] <= '9') {
                num = 1;
            }
        }

        start = i;
        n = 0;

        for ( ;; ) {
            if (i == len) {
                end = i;
                break;
            }

            ch = t[i];

            if (ch == '}' && bracket) {
                end = i++;
                bracket = 0;
                break;
            }

            if (num) {
                if (ch >= '0' && ch <= '9') {
                    n = n * 10 + (ch - '0');
                    i++;
                    continue;
                }

            } else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
                       || (ch >= '0' && ch <= '9') || ch == '_')
            {
                i++;
                continue;
            }

            end = i;
            break;
        }

        if (bracket) {
            if (b == NULL) {
                gl_log_error(GL_LOG_ERR, 0, "the closing bracket in \"%.*s\" "
                             "variable is missing", (int) (end - start),
                             t + start);
            }

            return GL_ERROR;
        }

        if (end == start) {
            goto invalid;
        }

        if (!num) {
            if (b == NULL) {
                gl_log_error(GL_LOG_ERR, 0, "attempt to use named capturing "
                             "variable \"%.*s\" (named captures not "
                             "supported yet)", (int) (end - start),
                             t + start);
            }

            return GL_ERROR;
        }

        if (b != NULL) {
            /* as upstream: beyond the groups that matched is empty */
            k = 2 * n;

            if (k < 2 * (size_t) rc && ov[k] != PCRE2_UNSET
                && ov[k + 1] > ov[k])
            {
                luaL_addlstring(b, s + ov[k], ov[k + 1] - ov[k]);
            }
        }
    }

    return GL_OK;

invalid:

    if (b == NULL) {
        gl_log_error(GL_LOG_ERR, 0, "lua script: invalid capturing variable "
                     "name found in \"%.*s\"", (int) len, t);
    }

    return GL_ERROR;
}


/* sub and gsub with a template: (subj, regex, replace, opts, global) */
static int
gl_re_sub_str(lua_State *L)
{
    int           rc, global, count;
    size_t        len, tpl_len, pos, last;
    gl_re_t      *re;
    PCRE2_SIZE    buf[2 * GL_RE_OV_STACK], *ov;
    const char   *s, *tpl;
    luaL_Buffer   b;
    gl_re_ctx_t  *ctx;

    global = lua_toboolean(L, 5);
    lua_settop(L, 4);

    gl_re_tostring(L, 3);

    re = gl_re_get(L, 2, 4, 0);
    if (re == NULL) {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushvalue(L, -3);
        return 3;
    }

    tpl = lua_tolstring(L, 3, &tpl_len);

    if (gl_re_template(tpl, tpl_len, NULL, NULL, NULL, 0) != GL_OK) {
        gl_re_release(re);
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushliteral(L, "failed to compile the replacement template");
        return 3;
    }

    gl_re_tostring(L, 1);
    s = lua_tolstring(L, 1, &len);

    ctx = lua_touserdata(L, GL_RE_UV_CTX);
    ov = gl_re_ovector(L, re, buf);

    luaL_buffinit(L, &b);

    count = 0;
    pos = 0;
    last = 0;

    for ( ;; ) {
        rc = gl_re_exec(ctx, re, s, len, pos, ov);

        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }

        if (rc < 0) {
            gl_re_release(re);
            lua_pushnil(L);
            lua_pushnil(L);
            lua_pushfstring(L, "pcre_exec() failed: %d", rc);
            return 3;
        }

        count++;

        if (ov[0] > last) {
            luaL_addlstring(&b, s + last, ov[0] - last);
        }

        gl_re_template(tpl, tpl_len, &b, s, ov, rc);

        last = ov[1];
        pos = last;

        if (pos == ov[0]) {
            pos++;
            if (pos > len) {
                break;
            }
        }

        if (!global) {
            break;
        }
    }

    gl_re_release(re);

    if (count == 0) {
        lua_pushvalue(L, 1);
        lua_pushinteger(L, 0);
        return 2;
    }

    if (last < len) {
        luaL_addlstring(&b, s + last, len - last);
    }

    luaL_pushresult(&b);
    lua_pushinteger(L, count);

    return 2;
}


/*
 * The primitives of the Lua parts (sub/gsub with a function, and
 * lua/ngx/re.lua's split and opt).
 */

/* compile(regex, opts, match_family) -> regex | nil, err */
static int
gl_re_p_compile(lua_State *L)
{
    lua_settop(L, 3);

    if (gl_re_get(L, 1, 2, lua_toboolean(L, 3)) == NULL) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }

    return 1;
}


/*
 * exec(regex, subj, pos, want) from the 0-based offset pos.  A match
 * gives from, to (0-based, end exclusive) and with want "captures" the
 * captures table, with want "first" group 1 as resty.core's split takes
 * it; else nothing more.  No match gives nil, an error false and the
 * message.
 */
static int
gl_re_p_exec(lua_State *L)
{
    int           rc;
    size_t        len, pos;
    gl_re_t      *re;
    PCRE2_SIZE    buf[2 * GL_RE_OV_STACK], *ov;
    const char   *s, *want;
    gl_re_ctx_t  *ctx;

    re = gl_re_check(L, 1);
    s = luaL_checklstring(L, 2, &len);
    pos = gl_re_offset(luaL_checknumber(L, 3));
    want = luaL_optstring(L, 4, "");

    lua_settop(L, 4);

    ctx = lua_touserdata(L, GL_RE_UV_CTX);
    ov = gl_re_ovector(L, re, buf);

    rc = gl_re_exec(ctx, re, s, len, pos, ov);

    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushnil(L);
        return 1;
    }

    if (rc < 0) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "pcre_exec() failed: %d", rc);
        return 2;
    }

    lua_pushinteger(L, (lua_Integer) ov[0]);
    lua_pushinteger(L, (lua_Integer) ov[1]);

    if (want[0] == 'c') {
        gl_re_push_captures(L, re, s, ov, rc, 0);
        return 3;
    }

    if (want[0] == 'f' && re->ncaptures > 0 && rc > 1) {
        if (ov[2] == PCRE2_UNSET) {
            /* resty.core takes string.sub(subj, 0, -1) then */
            lua_pushvalue(L, 2);

        } else {
            gl_re_push_sub(L, s, ov[2], ov[3]);
        }

        return 3;
    }

    return 2;
}


/* release(regex): frees a regex compiled without "o" now */
static int
gl_re_p_release(lua_State *L)
{
    gl_re_release(gl_re_check(L, 1));

    return 0;
}


/* cache_empty(): no regex went into the cache from match, find, gmatch
   or split yet (resty.core's is_regex_cache_empty) */
static int
gl_re_p_cache_empty(lua_State *L)
{
    gl_re_ctx_t  *ctx;

    ctx = lua_touserdata(L, GL_RE_UV_CTX);
    lua_pushboolean(L, !ctx->match_cached);

    return 1;
}


/* jit_stack_size(n) -> true | nil, err: this worker's JIT stack */
static int
gl_re_p_jit_stack_size(lua_State *L)
{
    lua_Number        d;
    size_t            size;
    gl_re_ctx_t      *ctx;
    pcre2_jit_stack  *stack;

    if (lua_type(L, 1) != LUA_TNUMBER) {
        return luaL_error(L, "bad argument #1 to "
                          "'ngx_lua_ffi_set_jit_stack_size' (cannot "
                          "convert '%s' to 'int')", luaL_typename(L, 1));
    }

    d = lua_tonumber(L, 1);
    size = (d < GL_RE_JIT_STACK_MIN || !(d < 2147483648.0))
           ? GL_RE_JIT_STACK_MIN : (size_t) d;

    ctx = lua_touserdata(L, GL_RE_UV_CTX);

    if (gl_re_match_context(ctx) != GL_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "no memory");
        return 2;
    }

    stack = pcre2_jit_stack_create(GL_RE_JIT_STACK_MIN, size, NULL);
    if (stack == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "pcre jit stack allocation failed");
        return 2;
    }

    pcre2_jit_stack_assign(ctx->mctx, NULL, stack);

    if (ctx->jit_stack != NULL) {
        pcre2_jit_stack_free(ctx->jit_stack);
    }

    ctx->jit_stack = stack;

    lua_pushboolean(L, 1);

    return 1;
}


/*
 * sub and gsub: a replacement function is called from this Lua code, so
 * it may yield; a template goes to C in one call.
 */
static const char  gl_re_sub_lua[] =
    "local compile, exec, release, sub_str, tostring, type, strsub,\n"
    "      concat = ...\n"
    "\n"
    "local function sub_func(subj, regex, replace, opts, global)\n"
    "    local re, err = compile(regex, opts, false)\n"
    "    if not re then\n"
    "        return nil, nil, err\n"
    "    end\n"
    "\n"
    "    subj = tostring(subj)\n"
    "\n"
    "    local len = #subj\n"
    "    local out, n = {}, 0\n"
    "    local count, pos, last = 0, 0, 0\n"
    "\n"
    "    while true do\n"
    "        local from, to, m = exec(re, subj, pos, 'captures')\n"
    "        if from == nil then\n"
    "            break\n"
    "        end\n"
    "\n"
    "        if not from then\n"
    "            release(re)\n"
    "            return nil, nil, to\n"
    "        end\n"
    "\n"
    "        count = count + 1\n"
    "\n"
    "        if from > last then\n"
    "            n = n + 1\n"
    "            out[n] = strsub(subj, last + 1, from)\n"
    "        end\n"
    "\n"
    "        n = n + 1\n"
    "        out[n] = tostring(replace(m))\n"
    "\n"
    "        last = to\n"
    "        pos = to\n"
    "\n"
    "        if to == from then\n"
    "            pos = pos + 1\n"
    "            if pos > len then\n"
    "                break\n"
    "            end\n"
    "        end\n"
    "\n"
    "        if not global then\n"
    "            break\n"
    "        end\n"
    "    end\n"
    "\n"
    "    release(re)\n"
    "\n"
    "    if count == 0 then\n"
    "        return subj, 0\n"
    "    end\n"
    "\n"
    "    if last < len then\n"
    "        n = n + 1\n"
    "        out[n] = strsub(subj, last + 1)\n"
    "    end\n"
    "\n"
    "    return concat(out, '', 1, n), count\n"
    "end\n"
    "\n"
    "local function re_sub(subj, regex, replace, opts)\n"
    "    if type(replace) == 'function' then\n"
    "        return sub_func(subj, regex, replace, opts, false)\n"
    "    end\n"
    "    return sub_str(subj, regex, replace, opts, false)\n"
    "end\n"
    "\n"
    "local function re_gsub(subj, regex, replace, opts)\n"
    "    if type(replace) == 'function' then\n"
    "        return sub_func(subj, regex, replace, opts, true)\n"
    "    end\n"
    "    return sub_str(subj, regex, replace, opts, true)\n"
    "end\n"
    "\n"
    "return re_sub, re_gsub\n";


/* pushes f as a closure over the shared upvalues at base .. base + 4 */
static void
gl_re_push_fn(lua_State *L, lua_CFunction f, int base)
{
    int  i;

    for (i = 0; i < GL_RE_NUPVALUES; i++) {
        lua_pushvalue(L, base + i);
    }

    lua_pushcclosure(L, f, GL_RE_NUPVALUES);
}


void
gl_lua_inject_re_api(lua_State *L)
{
    int           base;
    gl_re_ctx_t  *ctx;

    base = lua_gettop(L) + 1;

    /* the upvalues: context, cache, tostring, regex mt, iterator mt */
    ctx = lua_newuserdata(L, sizeof(gl_re_ctx_t));
    memset(ctx, 0, sizeof(gl_re_ctx_t));
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_re_ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);

    lua_createtable(L, 0, 4);

    lua_getglobal(L, "tostring");

    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_re_gc);
    lua_setfield(L, -2, "__gc");

    /* the iterator metatable: its __call has all five, itself too */
    lua_createtable(L, 0, 1);
    gl_re_push_fn(L, gl_re_gmatch_iter, base);
    lua_setfield(L, -2, "__call");

    /* ngx.re */
    lua_createtable(L, 0, 5);

    gl_re_push_fn(L, gl_re_match, base);
    lua_setfield(L, -2, "match");
    gl_re_push_fn(L, gl_re_find, base);
    lua_setfield(L, -2, "find");
    gl_re_push_fn(L, gl_re_gmatch, base);
    lua_setfield(L, -2, "gmatch");

    if (luaL_loadbuffer(L, gl_re_sub_lua, sizeof(gl_re_sub_lua) - 1,
                        "=ngx.re") != 0)
    {
        /* our own chunk: only a lack of memory gets here */
        gl_log_error(GL_LOG_EMERG, 0, "cannot load ngx.re.sub: %s",
                     lua_tostring(L, -1));
        lua_pop(L, 1);

    } else {
        gl_re_push_fn(L, gl_re_p_compile, base);
        gl_re_push_fn(L, gl_re_p_exec, base);
        gl_re_push_fn(L, gl_re_p_release, base);
        gl_re_push_fn(L, gl_re_sub_str, base);
        lua_getglobal(L, "tostring");
        lua_getglobal(L, "type");
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "sub");
        lua_replace(L, -2);
        lua_getglobal(L, "table");
        lua_getfield(L, -1, "concat");
        lua_replace(L, -2);
        lua_call(L, 8, 2);
        lua_setfield(L, -3, "gsub");
        lua_setfield(L, -2, "sub");
    }

    lua_setfield(L, base - 1, "re");

    /* the primitives, for lua/ngx/re.lua */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 5);
    gl_re_push_fn(L, gl_re_p_compile, base);
    lua_setfield(L, -2, "compile");
    gl_re_push_fn(L, gl_re_p_exec, base);
    lua_setfield(L, -2, "exec");
    gl_re_push_fn(L, gl_re_p_release, base);
    lua_setfield(L, -2, "release");
    gl_re_push_fn(L, gl_re_p_cache_empty, base);
    lua_setfield(L, -2, "cache_empty");
    gl_re_push_fn(L, gl_re_p_jit_stack_size, base);
    lua_setfield(L, -2, "jit_stack_size");
    lua_setfield(L, -2, "golapis.re");
    lua_pop(L, 2);

    lua_settop(L, base - 1);
}
