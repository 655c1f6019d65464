/*
 * ngx.re: match, find, gmatch, sub and gsub on PCRE2, with the options,
 * results and error strings of lua-nginx-module running with
 * lua-resty-core; and what lua/ngx/re.lua builds split() and opt() on
 * (package.loaded["golapis.re"], internal).
 *
 * As in resty.core, the API is Lua code (lua/golapis/regex.lua) around a
 * C matcher it calls through LuaJIT's FFI (gl_re_ffi_exec), so a hot
 * ngx.re.find(s, re, "jo") is compiled by the JIT into a table lookup and
 * a C call; and a replacement function of sub/gsub is called from Lua,
 * so it may yield (ngx.sleep, cosockets).  Compiling, the cache and
 * template replacements are C behind the Lua C API.
 *
 * Everything belongs to one Lua state, so to one worker: a context
 * userdata (the match context with the match limit and the JIT stack,
 * the match data) and the cache of the regexes compiled with "o", a table
 * cache[opts][pattern] -> record, bounded by lua_regex_cache_max_entries
 * with a second-chance (CLOCK) eviction.  A record is a Lua table around
 * the compiled regex's userdata; the __gc of the userdata and of the
 * context free the PCRE2 memory.  A regex compiled without "o" is freed by
 * the call that compiled it (or by the GC if that call raised).
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_lib.h"
#include "gl_module.h"

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

/* the upvalues of the C functions */
#define GL_RE_UV_CTX            lua_upvalueindex(1)
#define GL_RE_UV_CACHE          lua_upvalueindex(2)
#define GL_RE_UV_TOSTRING       lua_upvalueindex(3)
#define GL_RE_UV_RE_MT          lua_upvalueindex(4)
#define GL_RE_NUPVALUES         4

/* the slots of a record */
#define GL_RE_REC_RE            1
#define GL_RE_REC_NCAPTURES     2
#define GL_RE_REC_DUPNAMES      3
#define GL_RE_REC_NAMES         4
#define GL_RE_REC_OWNED         5

/* the offsets of a match, when C uses them: on the C stack up to this
   many pairs, else in a userdata */
#define GL_RE_OV_STACK          32


typedef struct gl_re_ctx_s  gl_re_ctx_t;
typedef struct gl_re_s      gl_re_t;

/* a compiled regex: a userdata; one compiled with "o" is also in the
   cache (in the LRU list) until it is evicted */
struct gl_re_s {
    pcre2_code         *code;          /* NULL once freed */
    gl_re_ctx_t        *ctx;
    uint32_t            ncaptures;
    int                 flags;
    unsigned            owned:1;       /* never cached: freed by its call */
    unsigned            cached:1;      /* in the cache now */
    unsigned            used:1;        /* matched since the clock passed */
    gl_re_t            *prev;          /* the cache's list, newest first */
    gl_re_t            *next;
    size_t              opts_len;      /* the cache keys, copied after */
    size_t              pat_len;       /* the struct: opts \0 pattern \0 */
};

struct gl_re_ctx_s {
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
};


/* for the FFI */
int gl_re_ffi_exec(gl_re_t *re, const u_char *s, size_t len, int pos,
    int *caps, int size);


/* the re module's directives */
typedef struct {
    int                 cache_max_entries;  /* lua_regex_cache_max_entries */
    int                 match_limit;        /* lua_regex_match_limit; 0:
                                               PCRE2's default */
} gl_re_conf_t;

gl_module_t  gl_lua_re_module;


static gl_re_conf_t *
gl_re_conf(void)
{
    return gl_vm_self != NULL
           ? gl_conf_module(gl_vm_self->conf, &gl_lua_re_module) : NULL;
}


static int
gl_re_conf_cache_max(void)
{
    gl_re_conf_t  *rcf;

    rcf = gl_re_conf();

    return rcf != NULL ? rcf->cache_max_entries : GL_RE_CACHE_DEFAULT;
}


static uint32_t
gl_re_conf_match_limit(void)
{
    gl_re_conf_t  *rcf;

    rcf = gl_re_conf();

    return rcf != NULL && rcf->match_limit > 0 ? (uint32_t) rcf->match_limit
                                               : 0;
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


/* tostring(v) in place, as resty.core coerces the subject and the
   replacement */
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


/* the messages resty.core's Lua code raises for an argument's type */
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
 * Compiles pat into a record pushed on the stack: a table around a new
 * compiled-regex userdata (see the Lua chunk for its slots).  key != 0
 * keeps room in the userdata for the cache keys (the options string at
 * opts_idx).  On a compile error pushes the message instead and returns
 * NULL.
 */
static gl_re_t *
gl_re_compile(lua_State *L, const char *pat, size_t pat_len, int opts_idx,
    int flags, uint32_t options, int key)
{
    int           errcode, rc;
    char          buf[GL_RE_ERRSTR_SIZE];
    u_char        msg[GL_RE_ERRSTR_SIZE];
    size_t        n, opts_len;
    uint32_t      i, count, size;
    gl_re_t      *re;
    PCRE2_SPTR    entry;
    const char   *opts;
    PCRE2_SIZE    erroff;
    pcre2_code   *code;

    opts = "";
    opts_len = 0;

    if (key) {
        opts = lua_tolstring(L, opts_idx, &opts_len);
    }

    /* the Lua objects first: a lack of memory there leaks nothing */
    lua_createtable(L, 5, 0);

    re = lua_newuserdata(L, sizeof(gl_re_t)
                            + (key ? opts_len + pat_len + 2 : 0));
    memset(re, 0, sizeof(gl_re_t));
    lua_pushvalue(L, GL_RE_UV_RE_MT);
    lua_setmetatable(L, -2);
    lua_rawseti(L, -2, GL_RE_REC_RE);

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

    if (key) {
        re->opts_len = opts_len;
        re->pat_len = pat_len;
        memcpy((char *) (re + 1), opts, opts_len + 1);
        memcpy((char *) (re + 1) + opts_len + 1, pat, pat_len + 1);
    }

    re->ctx = lua_touserdata(L, GL_RE_UV_CTX);
    re->flags = flags;

    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &re->ncaptures);

    if (flags & GL_RE_DFA) {
        /* DFA matching gives the whole match only */
        re->ncaptures = 0;
    }

    lua_pushinteger(L, re->ncaptures);
    lua_rawseti(L, -2, GL_RE_REC_NCAPTURES);
    lua_pushboolean(L, (flags & GL_RE_DUPNAMES) != 0);
    lua_rawseti(L, -2, GL_RE_REC_DUPNAMES);

    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &count);

    if (count > 0) {
        pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &size);
        pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &entry);

        /* { group, name, ... } in the name table's order */
        lua_createtable(L, 2 * count, 0);

        for (i = 0; i < count; i++, entry += size) {
            lua_pushinteger(L, (entry[0] << 8) | entry[1]);
            lua_rawseti(L, -2, 2 * i + 1);
            lua_pushstring(L, (const char *) entry + 2);
            lua_rawseti(L, -2, 2 * i + 2);
        }

    } else {
        lua_pushboolean(L, 0);
    }

    lua_rawseti(L, -2, GL_RE_REC_NAMES);

    if (flags & GL_RE_JIT) {
        rc = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        if (rc != 0) {
            gl_log_error_cycle(GL_LOG_INFO, 0, "pcre2_jit_compile() failed: "
                               "%d in \"%s\", ignored", rc, pat);
        }
    }

    return re;
}


static void
gl_re_list_unlink(gl_re_ctx_t *ctx, gl_re_t *re)
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
gl_re_list_push(gl_re_ctx_t *ctx, gl_re_t *re)
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


/*
 * Drops one entry: the oldest one not used since the clock last passed
 * it (an entry used meanwhile gets a second chance at the head).  Who
 * still holds the record (a gmatch iterator) keeps it until the GC.
 */
static void
gl_re_cache_evict(lua_State *L, gl_re_ctx_t *ctx)
{
    gl_re_t  *re;

    for ( ;; ) {
        re = ctx->tail;
        gl_re_list_unlink(ctx, re);

        if (!re->used) {
            break;
        }

        re->used = 0;
        gl_re_list_push(ctx, re);
    }

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


/* puts the record on top of the stack into cache[opts][pattern] */
static void
gl_re_cache_put(lua_State *L, gl_re_ctx_t *ctx, gl_re_t *re, int pat_idx,
    int opts_idx, int max, int match_family)
{
    if (ctx->count >= max) {
        if (!ctx->warned) {
            ctx->warned = 1;
            gl_log_error_cycle(GL_LOG_WARN, 0, "lua exceeding regex cache "
                               "max entries (%d)", max);
        }

        while (ctx->count >= max && ctx->tail != NULL) {
            gl_re_cache_evict(L, ctx);
        }
    }

    lua_pushvalue(L, opts_idx);
    lua_rawget(L, GL_RE_UV_CACHE);

    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 4);
        lua_pushvalue(L, opts_idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, GL_RE_UV_CACHE);
    }

    lua_pushvalue(L, pat_idx);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);

    re->cached = 1;
    gl_re_list_push(ctx, re);
    ctx->count++;

    if (match_family) {
        ctx->match_cached = 1;
    }
}


/*
 * The record for the pattern at pat_idx with the options at opts_idx,
 * pushed on the stack: from the cache for "o", else compiled now.  On a
 * compile error pushes the message instead and returns NULL.  Raises for
 * a bad option or a pattern that is not a string, as resty.core does.
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
        /* resty.core's #regex passes, its FFI call does not */
        luaL_error(L, "bad argument #1 to 'ngx_lua_ffi_compile_regex' "
                   "(cannot convert 'table' to 'const unsigned char *')");
        break;

    default:
        gl_re_type_error(L, "get length of", "regex", pat_idx);
    }

    pat = lua_tolstring(L, pat_idx, &pat_len);
    ctx = lua_touserdata(L, GL_RE_UV_CTX);

    /* "o" comes only in an options string */
    max = (flags & GL_RE_COMPILE_ONCE) ? gl_re_conf_cache_max() : 0;

    if (max > 0) {
        lua_pushvalue(L, opts_idx);
        lua_rawget(L, GL_RE_UV_CACHE);

        if (lua_istable(L, -1)) {
            lua_pushvalue(L, pat_idx);
            lua_rawget(L, -2);

            if (lua_istable(L, -1)) {
                lua_remove(L, -2);
                lua_rawgeti(L, -1, GL_RE_REC_RE);
                re = lua_touserdata(L, -1);
                lua_pop(L, 1);
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
        lua_pushboolean(L, 1);
        lua_rawseti(L, -2, GL_RE_REC_OWNED);
    }

    return re;
}


/* the compiled regex of the record at idx, checked */
static gl_re_t *
gl_re_check(lua_State *L, int idx)
{
    gl_re_t  *re;

    re = NULL;

    if (lua_istable(L, idx)) {
        lua_rawgeti(L, idx, GL_RE_REC_RE);
        re = lua_touserdata(L, -1);

        if (re != NULL && lua_getmetatable(L, -1)) {
            if (!lua_rawequal(L, -1, GL_RE_UV_RE_MT)) {
                re = NULL;
            }
            lua_pop(L, 1);

        } else {
            re = NULL;
        }

        lua_pop(L, 1);
    }

    if (re == NULL) {
        luaL_error(L, "bad compiled regex");
    }

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
 * of pairs set (at least 1 on a match), PCRE2_ERROR_NOMATCH (-1) or
 * another error; *ovp points at the offsets, in the state's match data:
 * until the next match.
 */
static int
gl_re_exec(gl_re_t *re, const u_char *s, size_t len, size_t pos,
    PCRE2_SIZE **ovp)
{
    int                rc, ws[GL_RE_DFA_WORKSPACE];
    uint32_t           options, pairs;
    gl_re_ctx_t       *ctx;
    pcre2_match_data  *md;

    if (re->code == NULL) {
        return PCRE2_ERROR_NULL;
    }

    ctx = re->ctx;

    if (gl_re_match_context(ctx) != GL_OK) {
        return PCRE2_ERROR_NOMEMORY;
    }

    re->used = 1;

    options = (re->flags & GL_RE_NO_UTF_CHECK) ? PCRE2_NO_UTF_CHECK : 0;

    if (re->flags & GL_RE_DFA) {
        if (ctx->dfa_md == NULL) {
            ctx->dfa_md = pcre2_match_data_create(1, NULL);
            if (ctx->dfa_md == NULL) {
                return PCRE2_ERROR_NOMEMORY;
            }
        }

        md = ctx->dfa_md;
        rc = pcre2_dfa_match(re->code, s, len, pos, options, md, ctx->mctx,
                             ws, GL_RE_DFA_WORKSPACE);

        if (rc == 0) {
            /* more matches than the one pair: the longest is there */
            rc = 1;
        }

    } else {
        pairs = re->ncaptures + 1;

        if (ctx->md_pairs < pairs) {
            if (ctx->md != NULL) {
                pcre2_match_data_free(ctx->md);
                ctx->md_pairs = 0;
            }

            pairs = gl_max(pairs, 16);

            ctx->md = pcre2_match_data_create(pairs, NULL);
            if (ctx->md == NULL) {
                return PCRE2_ERROR_NOMEMORY;
            }

            ctx->md_pairs = pairs;
        }

        md = ctx->md;
        rc = pcre2_match(re->code, s, len, pos, options, md, ctx->mctx);
    }

    *ovp = pcre2_get_ovector_pointer(md);

    return rc;
}


/*
 * The matcher of the Lua chunk: the offsets of the match go into caps
 * (size pairs) as ints, -1 for a group that did not match, as in
 * lua-nginx-module; a negative pos (what the FFI makes of an offset out
 * of an int's range) is a bad offset.
 */
int
gl_re_ffi_exec(gl_re_t *re, const u_char *s, size_t len, int pos,
    int *caps, int size)
{
    int          i, n, rc;
    PCRE2_SIZE  *ov;

    ov = NULL;
    rc = gl_re_exec(re, s, len, pos < 0 ? (size_t) -1 : (size_t) pos, &ov);

    n = gl_min(rc, size);

    for (i = 0; i < 2 * n; i++) {
        caps[i] = ov[i] == PCRE2_UNSET ? -1 : (int) ov[i];
    }

    return rc;
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
                gl_log_error_cycle(GL_LOG_ERR, 0, "the closing bracket in "
                                   "\"%.*s\" variable is missing",
                                   (int) (end - start), t + start);
            }

            return GL_ERROR;
        }

        if (end == start) {
            goto invalid;
        }

        if (!num) {
            if (b == NULL) {
                gl_log_error_cycle(GL_LOG_ERR, 0, "attempt to use named "
                                   "capturing variable \"%.*s\" (named "
                                   "captures not supported yet)",
                                   (int) (end - start), t + start);
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
        gl_log_error_cycle(GL_LOG_ERR, 0, "lua script: invalid capturing "
                           "variable name found in \"%.*s\"", (int) len, t);
    }

    return GL_ERROR;
}


/* sub and gsub with a template: (subj, regex, replace, opts, global) */
static int
gl_re_sub_str(lua_State *L)
{
    int           rc, global, count;
    size_t        len, tpl_len, pos, last, n;
    gl_re_t      *re;
    PCRE2_SIZE    buf[2 * GL_RE_OV_STACK], *ov, *p;
    const char   *s, *tpl;
    luaL_Buffer   b;

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
        if (re->owned) {
            gl_re_free_code(re);
        }

        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushliteral(L, "failed to compile the replacement template");
        return 3;
    }

    gl_re_tostring(L, 1);
    s = lua_tolstring(L, 1, &len);

    /* a copy of the offsets: the buffer's allocations may run finalizers,
       and those Lua code */
    ov = buf;
    if (re->ncaptures + 1 > GL_RE_OV_STACK) {
        ov = lua_newuserdata(L, 2 * sizeof(PCRE2_SIZE)
                                * ((size_t) re->ncaptures + 1));
    }

    luaL_buffinit(L, &b);

    count = 0;
    pos = 0;
    last = 0;

    for ( ;; ) {
        rc = gl_re_exec(re, (const u_char *) s, len, pos, &p);

        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }

        if (rc < 0) {
            if (re->owned) {
                gl_re_free_code(re);
            }

            lua_pushnil(L);
            lua_pushnil(L);
            lua_pushfstring(L, "pcre_exec() failed: %d", rc);
            return 3;
        }

        n = gl_min((size_t) rc, (size_t) re->ncaptures + 1);
        memcpy(ov, p, 2 * sizeof(PCRE2_SIZE) * n);

        count++;

        if (ov[0] > last) {
            luaL_addlstring(&b, s + last, ov[0] - last);
        }

        gl_re_template(tpl, tpl_len, &b, s, ov, (int) n);

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

    if (re->owned) {
        gl_re_free_code(re);
    }

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


/* compile(regex, opts, match_family) -> record | nil, err */
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


/* release(record): frees a regex compiled without "o" now */
static int
gl_re_p_release(lua_State *L)
{
    gl_re_t  *re;

    re = gl_re_check(L, 1);

    if (re->owned) {
        gl_re_free_code(re);
    }

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
    size_t            size;
    lua_Number        d;
    gl_re_ctx_t      *ctx;
    pcre2_jit_stack  *stack;

    if (lua_type(L, 1) != LUA_TNUMBER) {
        /* what the FFI says in resty.core */
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


/* pushes f as a closure over the upvalues at base .. */
static void
gl_re_push_fn(lua_State *L, lua_CFunction f, int base)
{
    int  i;

    for (i = 0; i < GL_RE_NUPVALUES; i++) {
        lua_pushvalue(L, base + i);
    }

    lua_pushcclosure(L, f, GL_RE_NUPVALUES);
}


static void
gl_lua_re_inject(lua_State *L)
{
    int           base, m;
    gl_re_ctx_t  *ctx;

    base = lua_gettop(L) + 1;

    /* the upvalues: the context, the cache, tostring, the regex mt */
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

    /* its errors say "ngx.re:LINE:", LINE in lua/golapis/regex.lua */
    if (gl_lua_lib_load(L, "golapis.regex", "=ngx.re") != GL_OK) {
        /* our own chunk: only a lack of memory (or a broken copy in
           GOLAPIS_LUA_LIB's dir) gets here */
        gl_log_error(GL_LOG_EMERG, 0, "cannot load ngx.re: %s",
                     lua_tostring(L, -1));
        lua_settop(L, base - 1);
        return;
    }

    gl_re_push_fn(L, gl_re_p_compile, base);
    gl_re_push_fn(L, gl_re_p_release, base);
    gl_re_push_fn(L, gl_re_sub_str, base);
    lua_pushvalue(L, base + 1);

    if (lua_pcall(L, 4, 1, 0) != 0) {
        gl_log_error(GL_LOG_EMERG, 0, "cannot load ngx.re: %s",
                     lua_tostring(L, -1));
        lua_settop(L, base - 1);
        return;
    }

    m = lua_gettop(L);

    /* ngx.re */
    lua_createtable(L, 0, 5);
    lua_getfield(L, m, "match");
    lua_setfield(L, -2, "match");
    lua_getfield(L, m, "find");
    lua_setfield(L, -2, "find");
    lua_getfield(L, m, "gmatch");
    lua_setfield(L, -2, "gmatch");
    lua_getfield(L, m, "sub");
    lua_setfield(L, -2, "sub");
    lua_getfield(L, m, "gsub");
    lua_setfield(L, -2, "gsub");
    lua_setfield(L, base - 1, "re");

    /* for lua/ngx/re.lua */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 5);
    lua_getfield(L, m, "get");
    lua_setfield(L, -2, "get");
    lua_getfield(L, m, "split_next");
    lua_setfield(L, -2, "split_next");
    gl_re_push_fn(L, gl_re_p_release, base);
    lua_setfield(L, -2, "release");
    gl_re_push_fn(L, gl_re_p_cache_empty, base);
    lua_setfield(L, -2, "cache_empty");
    gl_re_push_fn(L, gl_re_p_jit_stack_size, base);
    lua_setfield(L, -2, "jit_stack_size");
    lua_setfield(L, -2, "golapis.re");

    lua_settop(L, base - 1);
}


static const char *
gl_lua_re_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_re_conf_t  *rcf = mconf;

    (void) conf;

    gl_conf_init_value(rcf->cache_max_entries, GL_RE_CACHE_DEFAULT);
    gl_conf_init_value(rcf->match_limit, 0);

    return NULL;
}


static const gl_conf_bounds_t  gl_lua_re_bounds = { 0, 1000000000, NULL };

static const gl_command_t  gl_lua_re_commands[] = {

    { "lua_regex_cache_max_entries", GL_CONF_TAKE1, gl_conf_set_num_slot,
      GL_CONF_MODULE, offsetof(gl_re_conf_t, cache_max_entries),
      &gl_lua_re_bounds },

    { "lua_regex_match_limit", GL_CONF_TAKE1, gl_conf_set_num_slot,
      GL_CONF_MODULE, offsetof(gl_re_conf_t, match_limit),
      &gl_lua_re_bounds },

    gl_null_command
};


gl_module_t  gl_lua_re_module = {
    .name = "re",
    .inject = gl_lua_re_inject,
    .commands = gl_lua_re_commands,
    .conf_size = sizeof(gl_re_conf_t),
    .init_conf = gl_lua_re_init_conf
};
