/*
 * The resolver of a worker (src/api/gl_lua_resolver.c): nginx's resolver
 * and resolver_timeout directives, and a gl_dns_t per worker made from
 * them, for the cosockets.
 */
#ifndef GL_LUA_RESOLVER_H
#define GL_LUA_RESOLVER_H

#include "gl_core.h"
#include "gl_dns.h"
#include "gl_module.h"

extern gl_module_t  gl_lua_resolver_module;

/*
 * The resolver of vm's worker, made on first use from vm->conf; after a
 * reload that changed the resolver directives, a new one (the old one
 * answers its pending queries, then goes).  In the worker's thread only;
 * the worker owns it (freed at exit_worker): do not keep it across a
 * wait, ask again.  NULL on error (logged).
 */
gl_dns_t *gl_resolver_worker(gl_vm_t *vm);

#endif /* GL_LUA_RESOLVER_H */
