/*
 * Every API module, one row each, as nginx's ngx_modules.c: adding an area
 * of the API is one file in src/api/ and one row here.  The order is the
 * order their hooks run (output first: others use its header tables).
 */
#include "gl_core.h"
#include "gl_modules.h"

extern gl_module_t  gl_lua_output_module;
extern gl_module_t  gl_lua_sleep_module;
extern gl_module_t  gl_lua_re_module;
extern gl_module_t  gl_lua_var_module;
extern gl_module_t  gl_lua_req_module;
extern gl_module_t  gl_lua_string_module;
extern gl_module_t  gl_lua_time_module;
extern gl_module_t  gl_lua_log_module;
extern gl_module_t  gl_lua_misc_module;
extern gl_module_t  gl_lua_shdict_module;
extern gl_module_t  gl_lua_coroutine_module;
extern gl_module_t  gl_lua_thread_module;
extern gl_module_t  gl_lua_semaphore_module;
extern gl_module_t  gl_lua_timer_module;
extern gl_module_t  gl_lua_resolver_module;
extern gl_module_t  gl_lua_abort_module;
extern gl_module_t  gl_lua_socket_tcp_module;
extern gl_module_t  gl_lua_socket_udp_module;
extern gl_module_t  gl_lua_luafcgid_module;
extern gl_module_t  gl_lua_watch_module;
extern gl_module_t  gl_lua_status_module;
extern gl_module_t  gl_slowlog_module;
extern gl_module_t  gl_access_log_module;

gl_module_t  *gl_modules[] = {
    &gl_lua_output_module,
    &gl_lua_sleep_module,
    &gl_lua_re_module,
    &gl_lua_var_module,
    &gl_lua_req_module,
    &gl_lua_string_module,
    &gl_lua_time_module,
    &gl_lua_log_module,
    &gl_lua_misc_module,
    &gl_lua_shdict_module,
    &gl_lua_coroutine_module,
    &gl_lua_thread_module,
    &gl_lua_semaphore_module,
    &gl_lua_timer_module,
    &gl_lua_resolver_module,
    &gl_lua_abort_module,
    &gl_lua_socket_tcp_module,
    &gl_lua_socket_udp_module,
    &gl_lua_luafcgid_module,
    &gl_lua_watch_module,
    &gl_lua_status_module,
    &gl_slowlog_module,
    &gl_access_log_module,
    NULL
};
