/* placeholder during development: replaced before commit */
#include "gl_core.h"
#include "gl_lua.h"
int gl_lua_luafcgid(gl_request_t *r) { (void) r; return GL_DECLINED; }
void gl_lua_luafcgid_release(gl_request_t *r) { (void) r; }
