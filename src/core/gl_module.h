/*
 * A module: one area of the API (ngx.say and its kin, ngx.re, ngx.shared,
 * ngx.timer, ...), as nginx's ngx_module_t.  Each registers itself by one
 * row in src/api/gl_modules.c; the server knows nothing else of it.
 *
 * Its directives are its commands (gl_conf.h), which write into its own
 * conf struct: gl_conf_load() allocates conf_size bytes zeroed for each
 * config (the fields of its flag, number, size and time slots start
 * GL_CONF_UNSET), frees them with the config, and the module finds them
 * with gl_conf_module(conf, &its_module).
 *
 * Its hooks run in this order: init_conf when a config has been read
 * (for -t too), init_main in the main thread when a config is about to
 * be used (at start and at each SIGHUP), inject for every new Lua state
 * of a worker (each generation, see docs/reload.md), init_worker in the
 * worker's thread before its loop starts, exit_worker after the loop
 * ends; the request hooks during each request.  A NULL hook is skipped.
 */
#ifndef GL_MODULE_H
#define GL_MODULE_H

#include "gl_core.h"
#include "gl_conf.h"

/* modules are defined with designated initializers (.name = ..., .inject
   = ...): the fields left out are NULL or 0 */

struct lua_State;

struct gl_module_s {
    const char   *name;

    /* adds its API to a new Lua state: the ngx table is on top, and must
       be left there */
    void        (*inject)(struct lua_State *L);

    /* per worker: GL_ERROR stops golapis at start-up (logged) */
    int         (*init_worker)(gl_vm_t *vm);
    void        (*exit_worker)(gl_vm_t *vm);

    /* a request's params are in, before any of its Lua runs: GL_OK if
       the module answered it (status_uri), which then ends with no Lua
       at all, not even filters; else GL_DECLINED */
    int         (*request_start)(gl_http_t *h);
    /* a request's content chunk returned: GL_OK if the module started
       more for it in the same phase (luafcgid's main(env, r)), else
       GL_DECLINED */
    int         (*content_done)(gl_http_t *h);
    /* a request ends (or is cancelled): what the module keeps for it
       goes; also called for a request answered with no Lua at all
       (request_start, or no Lua state): h->gen is NULL then */
    void        (*request_end)(gl_http_t *h);

    /* the worker begins to stop (SIGTERM, SIGQUIT), in its thread */
    void        (*stop)(gl_vm_t *vm);
    /* a reload replaced a generation of the worker's Lua state: what the
       module keeps for its old code may end (gen: a gl_lua_gen_t) */
    void        (*retire)(gl_vm_t *vm, void *gen);

    /* its directives, ended by gl_null_command; NULL: none */
    const gl_command_t   *commands;
    /* the size of its conf struct; 0: none */
    size_t                conf_size;

    /*
     * After the file is read: sets the defaults of what was not given in
     * mconf (its conf, NULL without conf_size) and checks it.  Returns
     * NULL, or a message that refuses the config ("file: message");
     * gl_conf_errf() formats one.
     */
    const char  *(*init_conf)(gl_conf_t *conf, void *mconf);

    /*
     * In the main thread, once conf is read and checked, before any
     * worker sees it: at start and at each SIGHUP.  GL_ERROR (logged by
     * the module) refuses conf: golapis exits at start; at SIGHUP the
     * old config stays.
     */
    int          (*init_main)(gl_conf_t *conf);

    /* set by gl_conf_load(): the module's place in the list */
    int                   index;
};

#endif /* GL_MODULE_H */
