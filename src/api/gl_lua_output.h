/*
 * The response as nginx would hold it for the Lua API: what
 * ngx.resp.get_headers and the $sent_http_ variables (gl_lua_var.c) read
 * besides the headers a script set.  nginx adds them in its header
 * filter; golapis's nginx adds them after the FastCGI answer, so they are
 * worked out here from the request (its protocol, its Connection header,
 * the status and headers so far).
 */
#ifndef GL_LUA_OUTPUT_H
#define GL_LUA_OUTPUT_H

#include "gl_core.h"
#include "gl_request.h"

/* the client's HTTP version as nginx counts it: 9, 1000, 1001, 2000 */
int gl_lua_http_version(gl_request_t *r);

/*
 * nginx's r->headers_out.content_type: the Content-Type the script set,
 * or default_type once the header is out (unless the script cleared it
 * or the status is 204); NULL if none
 */
const char *gl_lua_resp_content_type(gl_request_t *r, size_t *len);

/* nginx's Connection answer: "upgrade", "keep-alive" or "close" */
const char *gl_lua_resp_connection(gl_request_t *r);

/* nginx answers with Transfer-Encoding: chunked (r->chunked) */
int gl_lua_resp_chunked(gl_request_t *r);

/* the value of response header name (case-insensitive), or NULL */
const gl_header_t *gl_lua_resp_header(gl_request_t *r, const char *name,
    size_t len);

#endif /* GL_LUA_OUTPUT_H */
