/*
 * What every unit test here shares: its counters, CHECK, and the last
 * line tests/run reads ("N passed, N failed").  Included by the test
 * files (each its own program).
 */
#ifndef GL_TEST_H
#define GL_TEST_H

#include <stdio.h>

static int  gl_t_passed;
static int  gl_t_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            gl_t_passed++;                                                   \
        } else {                                                             \
            gl_t_failed++;                                                   \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                    \
    } while (0)

#endif /* GL_TEST_H */
