/*
 * golapis's Lua library from the binary: the searcher in package.loaders
 * and the loader of the golapis.* chunks (gl_lua_lib.h).
 */
#include "gl_core.h"
#include "gl_lua_lib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>


/* lua_load()'s reader over a file */
typedef struct {
    FILE  *f;
    char   buf[4096];
} gl_lua_lib_file_t;


static int
gl_lua_lib_cmp(const void *key, const void *elt)
{
    return strcmp(key, ((const gl_lua_lib_module_t *) elt)->name);
}


const gl_lua_lib_module_t *
gl_lua_lib_find(const char *name)
{
    return bsearch(name, gl_lua_lib_modules, gl_lua_lib_nmodules,
                   sizeof(gl_lua_lib_module_t), gl_lua_lib_cmp);
}


static char            *gl_lua_lib_env;
static pthread_once_t   gl_lua_lib_once = PTHREAD_ONCE_INIT;


static void
gl_lua_lib_read_env(void)
{
    const char  *dir;

    dir = getenv("GOLAPIS_LUA_LIB");

    if (dir != NULL && dir[0] != '\0') {
        gl_lua_lib_env = strdup(dir);
    }
}


/* read once, at start-up: the environment scripts see is another (env) */
const char *
gl_lua_lib_dir(void)
{
    pthread_once(&gl_lua_lib_once, gl_lua_lib_read_env);

    return gl_lua_lib_env;
}


/*
 * Pushes m's text compiled, under chunkname or "@lua/ngx/re.lua" and so
 * on: tracebacks name the file to open in the tree.  On error pushes the
 * message and returns GL_ERROR.
 */
static int
gl_lua_lib_push(lua_State *L, const gl_lua_lib_module_t *m,
    const char *chunkname)
{
    int  rc;

    if (chunkname != NULL) {
        rc = luaL_loadbuffer(L, m->text, m->len, chunkname);

    } else {
        lua_pushfstring(L, "@%s", m->path);
        rc = luaL_loadbuffer(L, m->text, m->len, lua_tostring(L, -1));
        lua_remove(L, -2);
    }

    return rc == 0 ? GL_OK : GL_ERROR;
}


static const char *
gl_lua_lib_reader(lua_State *L, void *data, size_t *size)
{
    gl_lua_lib_file_t  *rf = data;

    (void) L;

    *size = fread(rf->buf, 1, sizeof(rf->buf), rf->f);

    return *size > 0 ? rf->buf : NULL;
}


/* as gl_lua_lib_push(), from the file at path (GOLAPIS_LUA_LIB) */
static int
gl_lua_lib_push_file(lua_State *L, const char *path, const char *chunkname)
{
    int                 rc;
    gl_lua_lib_file_t   rf;

    rf.f = fopen(path, "r");
    if (rf.f == NULL) {
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return GL_ERROR;
    }

    if (chunkname == NULL) {
        chunkname = lua_pushfstring(L, "@%s", path);
        rc = lua_load(L, gl_lua_lib_reader, &rf, chunkname);
        lua_remove(L, -2);

    } else {
        rc = lua_load(L, gl_lua_lib_reader, &rf, chunkname);
    }

    if (rc == 0 && ferror(rf.f)) {
        lua_pop(L, 1);
        lua_pushfstring(L, "cannot read %s", path);
        rc = -1;
    }

    fclose(rf.f);

    return rc == 0 ? GL_OK : GL_ERROR;
}


/*
 * package.loaders[2]: our module of that name, compiled.  Nothing (no
 * line in require's "not found" message) for the other names, or when
 * GOLAPIS_LUA_LIB is set (upvalue 1), which the path searcher then
 * serves.  Our own text fails to compile only for a lack of memory:
 * raised as the path searcher does.
 */
static int
gl_lua_lib_searcher(lua_State *L)
{
    const char                 *name;
    const gl_lua_lib_module_t  *m;

    name = luaL_checkstring(L, 1);

    if (lua_toboolean(L, lua_upvalueindex(1))) {
        return 0;
    }

    m = gl_lua_lib_find(name);
    if (m == NULL) {
        return 0;
    }

    if (gl_lua_lib_push(L, m, NULL) != GL_OK) {
        return luaL_error(L, "error loading module '%s' from golapis's "
                          "%s:\n\t%s", name, m->path, lua_tostring(L, -1));
    }

    return 1;
}


void
gl_lua_lib_open(lua_State *L)
{
    int  i;

    lua_getglobal(L, "package");

    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "loaders");

        if (lua_istable(L, -1)) {
            for (i = (int) lua_objlen(L, -1); i >= 2; i--) {
                lua_rawgeti(L, -1, i);
                lua_rawseti(L, -2, i + 1);
            }

            lua_pushboolean(L, gl_lua_lib_dir() != NULL);
            lua_pushcclosure(L, gl_lua_lib_searcher, 1);
            lua_rawseti(L, -2, 2);
        }

        lua_pop(L, 1);
    }

    lua_pop(L, 1);
}


int
gl_lua_lib_load(lua_State *L, const char *name, const char *chunkname)
{
    int                         rc;
    const char                 *dir;
    const gl_lua_lib_module_t  *m;

    m = gl_lua_lib_find(name);
    if (m == NULL) {
        lua_pushfstring(L, "no module '%s' in golapis's Lua library", name);
        return GL_ERROR;
    }

    dir = gl_lua_lib_dir();

    if (dir == NULL) {
        return gl_lua_lib_push(L, m, chunkname);
    }

    /* the file under dir: m->path without its "lua/" */
    lua_pushfstring(L, "%s/%s", dir, m->path + sizeof("lua/") - 1);
    rc = gl_lua_lib_push_file(L, lua_tostring(L, -1), chunkname);
    lua_remove(L, -2);

    return rc;
}
