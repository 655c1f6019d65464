/*
 * ngx.on_abort(fn): with lua_check_client_abort on, fn runs as a light
 * thread of the request when the client goes away (nginx closes the
 * FastCGI connection or sends ABORT_REQUEST); the request goes on until
 * its coroutines end, usually because fn calls ngx.exit.  The mechanism is
 * the request's (src/lua/gl_http.c); here is the API.
 */
#include "gl_core.h"
#include "gl_http.h"
#include "gl_lua.h"
#include "gl_module.h"


static int
gl_lua_on_abort(lua_State *L)
{
    gl_http_t  *h;

    h = gl_http_get(L, GL_CTX_REWRITE | GL_CTX_ACCESS | GL_CTX_CONTENT
                       | GL_CTX_HEADER_FILTER | GL_CTX_BODY_FILTER
                       | GL_CTX_LOG);

    return gl_http_on_abort(L, h);
}


static void
gl_lua_abort_inject(lua_State *L)
{
    lua_pushcfunction(L, gl_lua_on_abort);
    lua_setfield(L, -2, "on_abort");
}


gl_module_t  gl_lua_abort_module = {
    .name = "abort",
    .inject = gl_lua_abort_inject,
};
