/*
 * golapis's Lua library, carried by the binary.
 *
 * lua/ in the source tree is the library: resty.core and resty.core.*,
 * the ngx.* modules, luafcgid, and golapis.* chunks the C code runs
 * itself.  At build time scripts/gen-lualib turns each .lua file under
 * lua/ into a row of gl_lua_lib_modules (its text as a string literal),
 * in $(BUILDDIR)/lualib/gl_lua_lib_data.c.  The table is constant: every
 * worker's thread reads it, nobody frees it.
 *
 * gl_lua_lib_open() puts a searcher in package.loaders right after the
 * preload one, before package.path's: for these names ours are loaded,
 * whatever lua_package_path says (Debian's lua-resty-core, on LuaJIT's
 * default path, needs nginx's symbols).  Their chunk names are
 * "@lua/ngx/re.lua" and so on: the file in the source tree, and under
 * $(prefix)/share/golapis/ where make install copies lua/ for reading
 * (not an absolute path, which would name a file that may not be there,
 * or be another version).  The golapis.* chunks keep the names their
 * errors always had ("=ngx.re", "=ngx.shared").
 *
 * GOLAPIS_LUA_LIB=dir in the environment (development, the tests): the
 * library comes from dir instead, as files, so that an edit to lua/ needs
 * no rebuild: dir goes first on package.path (gl_lua.c), the searcher
 * steps aside, and gl_lua_lib_load() reads dir/golapis/NAME.lua.  Those
 * files are then watched for hot reload like any module from the path;
 * the embedded copy changes only with the binary and is not watched.
 */
#ifndef GL_LUA_LIB_H
#define GL_LUA_LIB_H

#include "gl_core.h"

#include <lua.h>

typedef struct {
    const char  *name;      /* "resty.core.base" */
    const char  *path;      /* "lua/resty/core/base.lua" */
    const char  *text;
    size_t       len;
} gl_lua_lib_module_t;

/* generated: sorted by name (strcmp), then a row of NULLs */
extern const gl_lua_lib_module_t  gl_lua_lib_modules[];
extern const size_t               gl_lua_lib_nmodules;

/* the module called name, or NULL if it is not ours */
const gl_lua_lib_module_t *gl_lua_lib_find(const char *name);

/* GOLAPIS_LUA_LIB if set and not empty, else NULL */
const char *gl_lua_lib_dir(void);

/*
 * Inserts our searcher at package.loaders[2], after preload's, the others
 * moving up by one.  Call it once package.loaders holds golapis's path
 * searcher.  Does nothing if there is no package.loaders table.
 */
void gl_lua_lib_open(lua_State *L);

/*
 * Pushes our module name compiled, not run (the golapis.* chunks, which
 * their C code calls with its own arguments); from GOLAPIS_LUA_LIB's dir
 * when set.  chunkname as luaL_loadbuffer's, or NULL for the file's name
 * ("@lua/golapis/regex.lua", or the file in the dir).  Returns GL_OK; or
 * GL_ERROR with the message pushed (not ours, a syntax error, no memory,
 * or the file missing from the dir).
 */
int gl_lua_lib_load(lua_State *L, const char *name, const char *chunkname);

#endif /* GL_LUA_LIB_H */
