/*
 * A module: one area of the API (ngx.say and its kin, ngx.re, ngx.shared,
 * ngx.timer, ...), as nginx's ngx_module_t.  Each registers itself by one
 * row in src/api/gl_modules.c; the server knows nothing else of it.  Its
 * hooks run in this order: inject for every new Lua state of a worker
 * (each generation, see docs/reload.md), init_worker in the worker's
 * thread before its loop starts, exit_worker after the loop ends; the
 * request hooks during each request.  A NULL hook is skipped.
 */
#ifndef GL_MODULE_H
#define GL_MODULE_H

#include "gl_core.h"

struct lua_State;

struct gl_module_s {
    const char   *name;

    /* adds its API to a new Lua state: the ngx table is on top, and must
       be left there */
    void        (*inject)(struct lua_State *L);

    /* per worker: GL_ERROR stops golapis at start-up (logged) */
    int         (*init_worker)(gl_vm_t *vm);
    void        (*exit_worker)(gl_vm_t *vm);

    /* a request's content chunk returned: GL_OK if the module started
       more for it in the same phase (luafcgid's main(env, r)), else
       GL_DECLINED */
    int         (*content_done)(gl_http_t *h);
    /* a request ends (or is cancelled): what the module keeps for it
       goes */
    void        (*request_end)(gl_http_t *h);

    /* the worker begins to stop (SIGTERM, SIGQUIT), in its thread */
    void        (*stop)(gl_vm_t *vm);
    /* a reload replaced a generation of the worker's Lua state: what the
       module keeps for its old code may end (gen: a gl_lua_gen_t) */
    void        (*retire)(gl_vm_t *vm, void *gen);
};

#endif /* GL_MODULE_H */
