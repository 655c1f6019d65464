/*
 * The API modules golapis is built with (src/api/gl_modules.c).
 */
#ifndef GL_MODULES_H
#define GL_MODULES_H

#include "gl_core.h"
#include "gl_module.h"

/* in the order their hooks run; NULL-terminated */
extern gl_module_t  *gl_modules[];

#endif /* GL_MODULES_H */
