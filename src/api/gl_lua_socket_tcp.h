/*
 * The TCP cosocket (ngx.socket.tcp, ngx.socket.stream, ngx.socket.connect
 * and ngx.req.socket), and what the UDP cosocket shares with it: where
 * cosockets may be used, how an error becomes the string upstream
 * returns, and how a host becomes an address.
 */
#ifndef GL_LUA_SOCKET_TCP_H
#define GL_LUA_SOCKET_TCP_H

#include "gl_core.h"
#include "gl_lua.h"
#include "gl_dns.h"

#include <sys/socket.h>

/* the phases where a cosocket may be made and wait: lua-nginx-module's
   yieldable ones, and (golapis only) log_by_lua and init_worker_by_lua,
   which run in a task of their own */
#define GL_CTX_COSOCKET  (GL_CTX_YIELDABLE | GL_CTX_LOG | GL_CTX_INIT_WORKER)

/* an errno as lua-nginx-module returns it: strerror in lower case, as
   LuaSocket ("connection refused") */
void gl_socket_push_errno(lua_State *L, int err);

/* a peer's address: a unix socket, or an IP address and port */
typedef struct {
    socklen_t                socklen;
    struct sockaddr_storage  sa;
} gl_socket_addr_t;

/*
 * host (len bytes) to an address: "unix:/path" (port ignored), an IPv4 or
 * IPv6 literal (in brackets or not), or a name looked up by the worker's
 * resolver.
 *   GL_OK:    *addr is filled now
 *   GL_AGAIN: the name is looked up; h(data, res) comes later unless
 *             gl_dns_cancel(*q) first (the caller then picks an address
 *             with gl_socket_pick())
 *   GL_ERROR: err holds the message (a bad unix path, a failed lookup known
 *             now: "NAME could not be resolved (3: Host not found)")
 */
int gl_socket_resolve(const char *host, size_t len, int port,
    gl_socket_addr_t *addr, gl_dns_handler_pt h, void *data,
    gl_dns_query_t **q, char *err, size_t size);

/* an address of an answer, with port: at random among the IPv4 ones if
   any, else among the IPv6 ones; GL_ERROR (err filled) for a failure */
int gl_socket_pick(const char *host, size_t len, int port,
    const gl_dns_result_t *res, gl_socket_addr_t *addr, char *err,
    size_t size);

/* writes the number at idx as upstream's send does, into dst if not
   NULL; returns its length */
size_t gl_socket_num(lua_State *L, int idx, u_char *dst);

/* what send sends of the value at idx, as upstream: a string, a number,
   a boolean, nil, or an array table of strings, numbers and such tables;
   a malloc'd copy (the caller frees it), or NULL with *len 0; raises the
   argument's error */
u_char *gl_socket_send_data(lua_State *L, int idx, size_t *len);

/* "127.0.0.1:80", "[::1]:80", "unix:/path" */
void gl_socket_addr_text(const gl_socket_addr_t *addr, char *buf,
    size_t size);

#endif /* GL_LUA_SOCKET_TCP_H */
