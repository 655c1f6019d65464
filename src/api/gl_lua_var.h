/*
 * ngx.var's variables for C code (the access log's $variables): a name is
 * looked up once, when the config is read; its value then comes straight
 * from the request when ngx.var reads it from a param or a request header
 * (gl_request_param, gl_request_header), else from ngx.var's own
 * function, on a Lua stack.
 */
#ifndef GL_LUA_VAR_H
#define GL_LUA_VAR_H

#include "gl_core.h"

#include <lua.h>

typedef struct {
    const char   *param;    /* the value is this param's, or NULL */
    unsigned      empty:1;  /* with param: an empty one is "", not nil */
    unsigned      header:1; /* the value is the first request header named
                               as the variable after its "http_" ("_" for
                               "-", any case) */
} gl_lua_var_ref_t;

/*
 * A name ngx.var knows as one of nginx's variables (name lower-case, as
 * nginx's; a core one such as "remote_addr" or a prefixed one such as
 * "http_x_id", "cookie_id", "arg_page"): GL_OK with ref filled in.
 * GL_DECLINED for any other name (for ngx.var, a custom fastcgi_param).
 */
int gl_lua_var_ref(const char *name, size_t len, gl_lua_var_ref_t *ref);

/* pushes onto L the value of ngx.var[name] for h, or nil; returns 1.  It
   may raise a Lua error (no memory) */
int gl_lua_var_push(lua_State *L, gl_http_t *h, const char *name,
    size_t len);

#endif /* GL_LUA_VAR_H */
