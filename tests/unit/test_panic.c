/*
 * A Lua panic (an error outside any protected call) is logged before
 * LuaJIT ends the process (src/lua/gl_lua.c's gl_lua_panic): the test
 * panics in a child process and reads its error log.
 */
#include "gl_core.h"
#include "gl_log.h"
#include "gl_lua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define gl_t_no_leak_check()  __lsan_disable()
#else
#define gl_t_no_leak_check()
#endif

#include "gl_test.h"


int
main(void)
{
    int        status;
    char       path[] = "/tmp/gl-test-panic-XXXXXX", buf[4096];
    pid_t      pid;
    FILE      *f;
    size_t     n;
    lua_State  *L;

    if (mkstemp(path) == -1) {
        perror("mkstemp");
        return 1;
    }

    pid = fork();

    if (pid == 0) {
        if (gl_log_open(path, GL_LOG_ERR) != GL_OK) {
            _exit(3);
        }

        /* the process ends with its state open, on purpose */
        gl_t_no_leak_check();
        L = luaL_newstate();
        lua_atpanic(L, gl_lua_panic);
        lua_pushliteral(L, "boom");
        lua_error(L);
        _exit(4);       /* not reached: LuaJIT exits after the handler */
    }

    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);

    f = fopen(path, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f) {
        fclose(f);
    }
    unlink(path);

    CHECK(strstr(buf, "[emerg]") != NULL);
    CHECK(strstr(buf, "PANIC: unprotected error in call to Lua API (boom): "
                      "golapis exits with status 1") != NULL);

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
