/*
 * Unit tests of the config parser (gl_conf.c): each config is written to
 * a temp file and loaded with a module list of the test's own.  Its
 * module "t" is the proof that an API area with directives is one file:
 * its conf struct, its commands and its hooks are all here, and nothing
 * else in golapis knows of it.  Then the directives of the real modules
 * (gl_modules.c): ngx.re's and ngx.shared's, and the shared dicts that
 * the shdict module's init_main makes.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_log.h"
#include "gl_module.h"
#include "gl_modules.h"
#include "gl_shdict.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>


#include "gl_test.h"

#define CHECK_STR(got, want)                                                 \
    gl_t_check_str(__LINE__, #got, got, want)


static void
gl_t_check_str(int line, const char *expr, const char *got, const char *want)
{
    if (got != NULL && want != NULL && strcmp(got, want) == 0) {
        gl_t_passed++;
        return;
    }

    if (got == NULL && want == NULL) {
        gl_t_passed++;
        return;
    }

    gl_t_failed++;
    printf("FAIL %s:%d: %s\n  got:  %s%s%s\n  want: %s%s%s\n", __FILE__,
           line, expr, got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
           want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
}


/* ---- the test's module: one file, one row ----------------------------- */

typedef struct {
    int                 enabled;        /* t_flag */
    char               *name;           /* t_str */
    char               *dir;            /* t_path */
    int                 count;          /* t_num, 1 to 10 */
    int                 any;            /* t_any: a number, no bounds */
    size_t              size;           /* t_size */
    size_t              small;          /* t_small, 1k to 64k */
    double              timeout;        /* t_time */
    char               *pairs[4][2];    /* t_pair A B, repeatable */
    int                 npairs;
    char               *code;           /* t_block { ... } */
    int                 code_line;
} gl_t_conf_t;

gl_module_t  gl_t_module;

static int   gl_t_init_conf_calls;
static int   gl_t_init_main_calls;


static int
gl_t_set_pair(gl_conf_parser_t *cp, const gl_command_t *cmd, void *mconf)
{
    gl_t_conf_t  *tcf = mconf;

    (void) cmd;

    if (tcf->npairs == 4) {
        return gl_conf_error(cp, "too many \"%s\"", cp->args[0]);
    }

    tcf->pairs[tcf->npairs][0] = gl_conf_strdup(cp->conf, cp->args[1]);
    tcf->pairs[tcf->npairs][1] = gl_conf_strdup(cp->conf, cp->args[2]);

    if (tcf->pairs[tcf->npairs][0] == NULL
        || tcf->pairs[tcf->npairs][1] == NULL)
    {
        return gl_conf_error(cp, "out of memory");
    }

    tcf->npairs++;

    return GL_OK;
}


static int
gl_t_set_block(gl_conf_parser_t *cp, const gl_command_t *cmd, void *mconf)
{
    gl_t_conf_t  *tcf = mconf;

    (void) cmd;

    if (tcf->code != NULL) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate", cp->args[0]);
    }

    tcf->code = gl_conf_strdup(cp->conf, cp->args[1]);
    tcf->code_line = cp->block_line;

    return tcf->code != NULL ? GL_OK : gl_conf_error(cp, "out of memory");
}


static const char *
gl_t_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_t_conf_t  *tcf = mconf;

    gl_t_init_conf_calls++;

    gl_conf_init_value(tcf->enabled, 1);
    gl_conf_init_value(tcf->count, 3);
    gl_conf_init_value(tcf->any, 42);
    gl_conf_init_size(tcf->size, 4096);
    gl_conf_init_size(tcf->small, 2048);
    gl_conf_init_value(tcf->timeout, 2.5);

    if (tcf->name == NULL) {
        tcf->name = gl_conf_strdup(conf, "anon");
        if (tcf->name == NULL) {
            return "out of memory";
        }
    }

    if (tcf->count > 5 && !tcf->enabled) {
        return gl_conf_errf("t_num %d needs t_flag on", tcf->count);
    }

    return NULL;
}


static int
gl_t_init_main(gl_conf_t *conf)
{
    gl_t_conf_t  *tcf;

    gl_t_init_main_calls++;
    tcf = gl_conf_module(conf, &gl_t_module);

    return strcmp(tcf->name, "refuse") == 0 ? GL_ERROR : GL_OK;
}


static const gl_conf_bounds_t  gl_t_count_bounds = { 1, 10, NULL };
static const gl_conf_bounds_t  gl_t_small_bounds = {
    1024, 65536, "must be between 1k and 64k"
};

static const gl_command_t  gl_t_commands[] = {
    { "t_flag", GL_CONF_FLAG, gl_conf_set_flag_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, enabled), NULL },
    { "t_str", GL_CONF_TAKE1, gl_conf_set_str_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, name), NULL },
    { "t_path", GL_CONF_TAKE1, gl_conf_set_path_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, dir), NULL },
    { "t_num", GL_CONF_TAKE1, gl_conf_set_num_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, count), &gl_t_count_bounds },
    { "t_any", GL_CONF_TAKE1, gl_conf_set_num_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, any), NULL },
    { "t_size", GL_CONF_TAKE1, gl_conf_set_size_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, size), NULL },
    { "t_small", GL_CONF_TAKE1, gl_conf_set_size_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, small), &gl_t_small_bounds },
    { "t_time", GL_CONF_TAKE1, gl_conf_set_time_slot, GL_CONF_MODULE,
      offsetof(gl_t_conf_t, timeout), NULL },
    { "t_pair", GL_CONF_TAKE2, gl_t_set_pair, GL_CONF_MODULE, 0, NULL },
    { "t_by_lua_block", GL_CONF_BLOCK, gl_t_set_block, GL_CONF_MODULE, 0,
      NULL },
    /* a module may set a field of the core config too */
    { "t_default_type", GL_CONF_TAKE1, gl_conf_set_str_slot, GL_CONF_CORE,
      offsetof(gl_conf_t, default_type), NULL },
    gl_null_command
};

gl_module_t  gl_t_module = {
    .name = "t",
    .commands = gl_t_commands,
    .conf_size = sizeof(gl_t_conf_t),
    .init_conf = gl_t_init_conf,
    .init_main = gl_t_init_main
};

/* a module without directives or conf, and one with a bug */
static int  gl_t_bare_init_main_calls;

static int
gl_t_bare_init_main(gl_conf_t *conf)
{
    (void) conf;
    gl_t_bare_init_main_calls++;
    return GL_OK;
}

gl_module_t  gl_t_bare_module = {
    .name = "bare",
    .init_main = gl_t_bare_init_main
};

static const gl_command_t  gl_t_noconf_commands[] = {
    { "t_noconf", GL_CONF_TAKE1, gl_conf_set_num_slot, GL_CONF_MODULE, 0,
      NULL },
    gl_null_command
};

gl_module_t  gl_t_noconf_module = {
    .name = "noconf",
    .commands = gl_t_noconf_commands
};

/* the row: what src/api/gl_modules.c holds for golapis */
static gl_module_t  *gl_t_modules[] = {
    &gl_t_bare_module,
    &gl_t_module,
    NULL
};

static gl_module_t  *gl_t_buggy_modules[] = {
    &gl_t_noconf_module,
    NULL
};


/* ---- helpers ---------------------------------------------------------- */

static char  gl_t_dir[64];
static char  gl_t_path[128];
static char  gl_t_err[4096];


static void
gl_t_write(const char *name, const char *text)
{
    FILE  *f;
    char   path[256];

    snprintf(path, sizeof(path), "%s/%s", gl_t_dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(1);
    }

    fputs(text, f);
    fclose(f);
}


static gl_conf_t *
gl_t_load_with(gl_module_t **modules, const char *text)
{
    gl_t_write("golapis.conf", text);
    gl_t_err[0] = '\0';

    return gl_conf_load(gl_t_path, modules, gl_t_err, sizeof(gl_t_err));
}


static gl_conf_t *
gl_t_load(const char *text)
{
    return gl_t_load_with(gl_t_modules, text);
}


/* text must fail with "PATH:LINE: want" (line 0: "PATH: want") */
#define CHECK_FAILS(text, line, want)                                        \
    gl_t_check_fails(__LINE__, gl_t_modules, text, line, want)

static void
gl_t_check_fails(int at, gl_module_t **modules, const char *text, int line,
    const char *want)
{
    char        full[4096];
    gl_conf_t  *conf;

    conf = gl_t_load_with(modules, text);

    if (line) {
        snprintf(full, sizeof(full), "%s:%d: %s", gl_t_path, line, want);
    } else {
        snprintf(full, sizeof(full), "%s: %s", gl_t_path, want);
    }

    if (conf != NULL) {
        gl_t_failed++;
        printf("FAIL %s:%d: loaded, want \"%s\"\n", __FILE__, at, full);
        gl_conf_free(conf);
        return;
    }

    gl_t_check_str(at, text, gl_t_err, full);
}


/* document_root (or a content handler) is required: on the same line */
#define LISTEN0 "listen unix:s.sock;"
#define LISTEN  LISTEN0 " document_root .;\n"


/* ---- the tests -------------------------------------------------------- */

static void
gl_t_defaults(void)
{
    char          want[256];
    gl_conf_t    *conf;
    gl_t_conf_t  *tcf;

    gl_t_init_conf_calls = 0;

    conf = gl_t_load(LISTEN);
    CHECK_STR(gl_t_err, "");
    CHECK(conf != NULL);
    if (conf == NULL) {
        return;
    }

    snprintf(want, sizeof(want), "%s/s.sock", gl_t_dir);
    CHECK(conf->nlisten == 1);
    CHECK_STR(conf->listen[0].path, want);
    CHECK_STR(conf->listen[0].text, "unix:s.sock");
    CHECK(conf->listen[0].mode == -1);
    CHECK(conf->listen[0].host == NULL);

    CHECK_STR(conf->file, gl_t_path);
    CHECK_STR(conf->dir, gl_t_dir);
    CHECK(conf->workers == 0);
    CHECK(conf->worker_connections == 1024);
    CHECK(conf->shutdown_timeout == 30);
    CHECK(conf->housekeeping_interval == 1);
    snprintf(want, sizeof(want), "%s/.", gl_t_dir);
    CHECK_STR(conf->document_root, want);
    CHECK(conf->nscript_ext == 1);
    CHECK_STR(conf->script_ext[0], ".lua");
    CHECK(conf->naccess == 0);
    CHECK(conf->user == NULL);
    CHECK_STR(conf->error_log, "stderr");
    CHECK(conf->log_level == GL_LOG_ERR);
    CHECK(conf->pid == NULL);
    CHECK(conf->lua_package_path == NULL);
    CHECK(conf->lua_package_cpath == NULL);
    CHECK(conf->code_cache == 1);
    CHECK(conf->handlers[GL_PHASE_CONTENT].file == NULL);
    CHECK(conf->handlers[GL_PHASE_CONTENT].code == NULL);
    CHECK_STR(conf->luafcgid_handler, "main");
    CHECK(conf->params_max_size == 64 * 1024);
    CHECK(conf->client_max_body_size == 1024 * 1024);
    CHECK(conf->client_body_buffer_size == 16 * 1024);
    CHECK_STR(conf->client_body_temp_path, "/tmp");
    CHECK_STR(conf->default_type, "text/html");

    /* the module's conf: zeroed, then its init_conf's defaults */
    CHECK(gl_t_init_conf_calls == 1);
    tcf = gl_conf_module(conf, &gl_t_module);
    CHECK(tcf != NULL);
    if (tcf != NULL) {
        CHECK(tcf->enabled == 1);
        CHECK_STR(tcf->name, "anon");
        CHECK(tcf->dir == NULL);
        CHECK(tcf->count == 3);
        CHECK(tcf->any == 42);
        CHECK(tcf->size == 4096);
        CHECK(tcf->small == 2048);
        CHECK(tcf->timeout == 2.5);
        CHECK(tcf->npairs == 0);
        CHECK(tcf->code == NULL);
    }

    /* no conf for a module without conf_size, or not in the list */
    CHECK(gl_conf_module(conf, &gl_t_bare_module) == NULL);
    CHECK(gl_conf_module(conf, &gl_t_noconf_module) == NULL);
    CHECK(gl_t_module.index == 1 && gl_t_bare_module.index == 0);

    gl_conf_free(conf);
    gl_conf_free(NULL);
}


static void
gl_t_values(void)
{
    char          want[256];
    gl_conf_t    *conf;
    gl_t_conf_t  *tcf;

    gl_t_write("handler.lua", "ngx.say(1)\n");

    conf = gl_t_load(
        "# every core directive, and the module's\n"
        "listen unix:s.sock mode=0660;\n"
        "listen 127.0.0.1:9000;\n"
        "listen [::1]:9001;\n"
        "listen 9002;\n"
        "workers 3;\n"
        "worker_connections 20;\n"
        "worker_shutdown_timeout 500ms;\n"
        "housekeeping_interval 2s;\n"
        "document_root .;\n"
        "error_log logs/error.log info;\n"
        "pid /run/x.pid;\n"
        "lua_package_path \"/a/?.lua;;\";\n"
        "lua_package_cpath '/b/?.so;;';\n"
        "lua_code_cache off;\n"
        "content_by_lua_file handler.lua;\n"
        "init_by_lua_block {\n"
        "    local s = \"}\" -- }\n"
        "}\n"
        "luafcgid_handler handle_it;\n"
        "fastcgi_params_max_size 16k;\n"
        "client_max_body_size 2m;\n"
        "client_body_buffer_size 1k;\n"
        "client_body_temp_path tmp;\n"
        "t_default_type text/plain;\n"
        "t_flag off;\n"
        "t_str \"hello world\";\n"
        "t_path sub/dir;\n"
        "t_num 4;\n"
        "t_any 0;\n"
        "t_size 10k;\n"
        "t_small 64k;\n"
        "t_time 1h;\n"
        "t_pair a b;\n"
        "t_pair c 'd e';\n"
        "t_by_lua_block\n"
        "{ return 1 }\n");

    CHECK_STR(gl_t_err, "");
    CHECK(conf != NULL);
    if (conf == NULL) {
        return;
    }

    CHECK(conf->nlisten == 4);
    CHECK(conf->listen[0].mode == 0660);
    CHECK_STR(conf->listen[1].host, "127.0.0.1");
    CHECK(conf->listen[1].port == 9000);
    CHECK(conf->listen[1].path == NULL);
    CHECK_STR(conf->listen[2].host, "::1");
    CHECK(conf->listen[2].port == 9001);
    CHECK(conf->listen[3].host == NULL);
    CHECK(conf->listen[3].port == 9002);

    CHECK(conf->workers == 3);
    CHECK(conf->worker_connections == 20);
    CHECK(conf->shutdown_timeout == 0.5);
    CHECK(conf->housekeeping_interval == 2);
    snprintf(want, sizeof(want), "%s/.", gl_t_dir);
    CHECK_STR(conf->document_root, want);
    snprintf(want, sizeof(want), "%s/logs/error.log", gl_t_dir);
    CHECK_STR(conf->error_log, want);
    CHECK(conf->log_level == GL_LOG_INFO);
    CHECK_STR(conf->pid, "/run/x.pid");
    CHECK_STR(conf->lua_package_path, "/a/?.lua;;");
    CHECK_STR(conf->lua_package_cpath, "/b/?.so;;");
    CHECK(conf->code_cache == 0);

    snprintf(want, sizeof(want), "%s/handler.lua", gl_t_dir);
    CHECK_STR(conf->handlers[GL_PHASE_CONTENT].file, want);
    CHECK_STR(conf->handlers[GL_PHASE_CONTENT].chunkname, "");
    CHECK_STR(conf->handlers[GL_PHASE_INIT].code,
              "\n    local s = \"}\" -- }\n");
    CHECK(conf->handlers[GL_PHASE_INIT].code_len
          == strlen(conf->handlers[GL_PHASE_INIT].code));
    CHECK_STR(conf->handlers[GL_PHASE_INIT].chunkname,
              "=init_by_lua(golapis.conf:17)");

    CHECK_STR(conf->luafcgid_handler, "handle_it");
    CHECK(conf->params_max_size == 16 * 1024);
    CHECK(conf->client_max_body_size == 2 * 1024 * 1024);
    CHECK(conf->client_body_buffer_size == 1024);
    snprintf(want, sizeof(want), "%s/tmp", gl_t_dir);
    CHECK_STR(conf->client_body_temp_path, want);
    CHECK_STR(conf->default_type, "text/plain");

    tcf = gl_conf_module(conf, &gl_t_module);
    CHECK(tcf != NULL);
    if (tcf != NULL) {
        CHECK(tcf->enabled == 0);
        CHECK_STR(tcf->name, "hello world");
        snprintf(want, sizeof(want), "%s/sub/dir", gl_t_dir);
        CHECK_STR(tcf->dir, want);
        CHECK(tcf->count == 4);
        CHECK(tcf->any == 0);
        CHECK(tcf->size == 10240);
        CHECK(tcf->small == 65536);
        CHECK(tcf->timeout == 3600);
        CHECK(tcf->npairs == 2);
        CHECK_STR(tcf->pairs[0][0], "a");
        CHECK_STR(tcf->pairs[0][1], "b");
        CHECK_STR(tcf->pairs[1][0], "c");
        CHECK_STR(tcf->pairs[1][1], "d e");
        CHECK_STR(tcf->code, " return 1 ");
        CHECK(tcf->code_line == 37);
    }

    /* init_main: every module's, in order */
    gl_t_init_main_calls = 0;
    gl_t_bare_init_main_calls = 0;
    CHECK(gl_conf_init_main(conf) == NULL);
    CHECK(gl_t_init_main_calls == 1 && gl_t_bare_init_main_calls == 1);

    gl_conf_free(conf);

    /* a module's init_main refuses the config */
    conf = gl_t_load(LISTEN "t_str refuse;\n");
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(gl_conf_init_main(conf) == &gl_t_module);
        gl_conf_free(conf);
    }

    /* workers auto, error_log without a level, stderr */
    conf = gl_t_load(LISTEN "workers auto;\nerror_log stderr;\n");
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(conf->workers == 0);
        CHECK_STR(conf->error_log, "stderr");
        CHECK(conf->log_level == GL_LOG_ERR);
        gl_conf_free(conf);
    }
}


static void
gl_t_errors(void)
{
    char  text[4096];
    int   i;

    /* the parser */
    CHECK_FAILS(LISTEN "bogus 1;\n", 2, "unknown directive \"bogus\"");
    CHECK_FAILS(LISTEN "\n\nbogus_by_lua_block {\n}\n", 4,
                "unknown directive \"bogus_by_lua_block\"");
    CHECK_FAILS(LISTEN "bogus {\n", 2, "unknown directive \"bogus\"");
    /* lua-nginx-module's own, not golapis's: the message says why */
    CHECK_FAILS(LISTEN "set_by_lua_block $x {\n return 1\n}\n", 2,
                "unknown directive \"set_by_lua_block\": lua-nginx-module's, "
                "which golapis does not have (nginx variables are set in "
                "nginx)");
    CHECK_FAILS(LISTEN "ssl_certificate_by_lua_file x.lua;\n", 2,
                "unknown directive \"ssl_certificate_by_lua_file\": "
                "lua-nginx-module's, which golapis does not have (TLS with "
                "clients stays in nginx)");
    CHECK_FAILS(LISTEN "lua_capture_error_log 32k;\n", 2,
                "unknown directive \"lua_capture_error_log\": "
                "lua-nginx-module's, which golapis does not have (not "
                "implemented)");
    CHECK_FAILS(LISTEN "workers {\n", 2, "unexpected \"{\"");
    CHECK_FAILS(LISTEN ";\n", 2, "unexpected \";\"");
    CHECK_FAILS(LISTEN "}\n", 2, "unexpected \"}\"");
    CHECK_FAILS(LISTEN "workers 2\n", 3,
                "unexpected end of file, expecting \";\"");
    CHECK_FAILS(LISTEN "default_type \"text/plain;\n", 3,
                "unexpected end of file, unterminated string");
    CHECK_FAILS(LISTEN "t_pair 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
                "19 20 21 22 23 24 25 26 27 28 29 30 31 32;\n", 2,
                "too many parameters");
    CHECK_FAILS(LISTEN "content_by_lua_block ngx.say(1)\n", 2,
                "\"{\" expected after a *_by_lua_block directive");
    CHECK_FAILS(LISTEN "content_by_lua_block;\n", 2,
                "unexpected \";\", \"{\" expected after a *_by_lua_block "
                "directive");
    CHECK_FAILS(LISTEN "content_by_lua_block {\n  ngx.say(1)\n", 2,
                "unexpected end of file, the Lua block opened here is not "
                "closed");
    CHECK_FAILS(LISTEN "t_by_lua_block {\n  x = '\n}\n", 3,
                "unfinished string in a Lua block");

    /* the number of arguments */
    CHECK_FAILS(LISTEN "workers 2 3;\n", 2,
                "invalid number of arguments in \"workers\" directive");
    CHECK_FAILS(LISTEN "pid;\n", 2,
                "invalid number of arguments in \"pid\" directive");
    CHECK_FAILS(LISTEN "t_flag on off;\n", 2,
                "invalid number of arguments in \"t_flag\" directive");
    CHECK_FAILS(LISTEN "t_pair a;\n", 2,
                "invalid number of arguments in \"t_pair\" directive");
    CHECK_FAILS(LISTEN "listen a b c d e;\n", 2,
                "invalid number of arguments in \"listen\" directive");

    /* duplicates, in the core and in the module */
    CHECK_FAILS(LISTEN "workers 1;\nworkers 2;\n", 3,
                "\"workers\" directive is duplicate");
    CHECK_FAILS(LISTEN "pid a;\npid b;\n", 3, "\"pid\" directive is duplicate");
    CHECK_FAILS(LISTEN "error_log stderr;\nerror_log stderr;\n", 3,
                "\"error_log\" directive is duplicate");
    CHECK_FAILS(LISTEN "lua_code_cache on;\nlua_code_cache on;\n", 3,
                "\"lua_code_cache\" directive is duplicate");
    CHECK_FAILS(LISTEN "worker_shutdown_timeout 1;\n"
                "worker_shutdown_timeout 1;\n", 3,
                "\"worker_shutdown_timeout\" directive is duplicate");
    CHECK_FAILS(LISTEN "client_max_body_size 1;\nclient_max_body_size 1;\n",
                3, "\"client_max_body_size\" directive is duplicate");
    CHECK_FAILS(LISTEN "default_type a;\nt_default_type b;\n", 3,
                "\"t_default_type\" directive is duplicate");
    CHECK_FAILS(LISTEN "t_num 1;\nt_num 1;\n", 3,
                "\"t_num\" directive is duplicate");
    CHECK_FAILS(LISTEN "t_str 1;\nt_str 1;\n", 3,
                "\"t_str\" directive is duplicate");
    CHECK_FAILS(LISTEN "t_time 1;\nt_time 1;\n", 3,
                "\"t_time\" directive is duplicate");
    CHECK_FAILS(LISTEN "t_size 1;\nt_size 1;\n", 3,
                "\"t_size\" directive is duplicate");
    CHECK_FAILS(LISTEN "t_flag on;\nt_flag on;\n", 3,
                "\"t_flag\" directive is duplicate");
    CHECK_FAILS(LISTEN "content_by_lua_block { }\ncontent_by_lua_block { }\n",
                3, "\"content_by_lua_block\" directive is duplicate");
    CHECK_FAILS(LISTEN "log_by_lua_file a.lua;\nlog_by_lua_block { }\n", 3,
                "\"log_by_lua_block\" directive is duplicate (a log_by_lua "
                "handler is set already)");

    /* the slots' values */
    CHECK_FAILS(LISTEN "lua_code_cache maybe;\n", 2,
                "invalid value \"maybe\" in \"lua_code_cache\", it must be "
                "\"on\" or \"off\"");
    CHECK_FAILS(LISTEN "t_num abc;\n", 2, "invalid number \"abc\" in \"t_num\"");
    CHECK_FAILS(LISTEN "t_num 11;\n", 2, "invalid number \"11\" in \"t_num\"");
    CHECK_FAILS(LISTEN "t_num 0;\n", 2, "invalid number \"0\" in \"t_num\"");
    CHECK_FAILS(LISTEN "t_any -1;\n", 2, "invalid number \"-1\" in \"t_any\"");
    CHECK_FAILS(LISTEN "t_any 3x;\n", 2, "invalid number \"3x\" in \"t_any\"");
    CHECK_FAILS(LISTEN "t_small 1m;\n", 2,
                "\"t_small\" must be between 1k and 64k");
    CHECK_FAILS(LISTEN "client_max_body_size 10q;\n", 2,
                "invalid size \"10q\" in \"client_max_body_size\"");
    CHECK_FAILS(LISTEN "worker_shutdown_timeout soon;\n", 2,
                "invalid time \"soon\" in \"worker_shutdown_timeout\"");
    CHECK_FAILS(LISTEN "housekeeping_interval 5ms;\n", 2,
                "\"housekeeping_interval\" must be at least 10ms");
    CHECK_FAILS(LISTEN "fastcgi_params_max_size 100m;\n", 2,
                "\"fastcgi_params_max_size\" must be between 1k and 64m");
    CHECK_FAILS(LISTEN "fastcgi_params_max_size 1000;\n", 2,
                "\"fastcgi_params_max_size\" must be between 1k and 64m");
    CHECK_FAILS(LISTEN "client_body_buffer_size 100;\n", 2,
                "\"client_body_buffer_size\" must be at least 1k");
    CHECK_FAILS(LISTEN "worker_connections -5;\n", 2,
                "invalid number \"-5\" in \"worker_connections\"");
    CHECK_FAILS(LISTEN "worker_connections 0;\n", 2,
                "invalid number \"0\" in \"worker_connections\"");

    /* the core's own set functions */
    CHECK_FAILS(LISTEN "workers many;\n", 2,
                "invalid value \"many\" in \"workers\", it must be \"auto\" "
                "or a number from 1 to 1024");
    CHECK_FAILS(LISTEN "workers 0;\n", 2,
                "invalid value \"0\" in \"workers\", it must be \"auto\" "
                "or a number from 1 to 1024");
    CHECK_FAILS(LISTEN "error_log stderr loud;\n", 2,
                "invalid log level \"loud\"");
    CHECK_FAILS("listen 70000;\n", 1, "invalid port in \"listen 70000\"");
    CHECK_FAILS("listen a:b;\n", 1, "invalid port in \"listen a:b\"");
    CHECK_FAILS("listen [::1:80;\n", 1,
                "invalid address in \"listen [::1:80\"");
    CHECK_FAILS("listen unix:;\n", 1, "no path in \"listen unix:\"");
    CHECK_FAILS("listen unix:s mode=999;\n", 1, "invalid \"mode=999\"");
    CHECK_FAILS("listen 80 mode=0600;\n", 1,
                "invalid parameter \"mode=0600\"");
    CHECK_FAILS(LISTEN "luafcgid_handler 1abc;\n", 2,
                "invalid Lua name \"1abc\" in \"luafcgid_handler\"");
    CHECK_FAILS(LISTEN "luafcgid_handler a.b;\n", 2,
                "invalid Lua name \"a.b\" in \"luafcgid_handler\"");

    text[0] = '\0';
    for (i = 0; i <= GL_CONF_MAX_LISTEN; i++) {
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "listen %d;\n", 9000 + i);
    }
    CHECK_FAILS(text, GL_CONF_MAX_LISTEN + 1,
                "too many \"listen\" directives (at most 16)");

    /* init_conf: the core's checks, then the module's */
    CHECK_FAILS("workers 1;\n", 0, "no \"listen\" directive");
    snprintf(text, sizeof(text), "document_root \"%s/golapis.conf\" is not a "
             "directory", gl_t_dir);
    CHECK_FAILS(LISTEN0 "\ndocument_root golapis.conf;\n", 0, text);
    CHECK_FAILS(LISTEN0 "\n", 0, "no \"document_root\": it is required "
                "(scripts run only from inside it) unless content_by_lua_file "
                "or content_by_lua_block is set");
    snprintf(text, sizeof(text), "content_by_lua_file \"%s/nowhere.lua\": "
             "No such file or directory", gl_t_dir);
    CHECK_FAILS(LISTEN "content_by_lua_file nowhere.lua;\n", 0, text);
    CHECK_FAILS(LISTEN "t_num 6;\nt_flag off;\n", 0,
                "t_num 6 needs t_flag on");

    /* a GL_CONF_MODULE command in a module without conf_size */
    gl_t_check_fails(__LINE__, gl_t_buggy_modules, LISTEN "t_noconf 1;\n", 2,
                     "\"t_noconf\" directive: the module \"noconf\" has no "
                     "conf");

    /* a file that is not there */
    CHECK(gl_conf_load("/nonexistent/golapis.conf", gl_t_modules, gl_t_err,
                       sizeof(gl_t_err)) == NULL);
    CHECK_STR(gl_t_err, "/nonexistent/golapis.conf: No such file or "
              "directory");
}


/* the directives of golapis's own modules (src/api/gl_modules.c) */
static void
gl_t_api_modules(void)
{
    int                  i, j, k, n;
    gl_conf_t           *conf;
    gl_shdict_t         *d;
    gl_module_t        **a, **b;
    const gl_command_t  *c, *e;

    /* no two modules have a directive of the same name */
    n = 0;
    for (a = gl_modules; *a != NULL; a++) {
        for (c = (*a)->commands; c != NULL && c->name != NULL; c++) {
            n++;
            for (b = gl_modules; *b != NULL; b++) {
                for (e = (*b)->commands; e != NULL && e->name != NULL; e++) {
                    CHECK(e == c || strcmp(e->name, c->name) != 0);
                }
            }
        }
    }
    CHECK(n >= 4);

    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_regex_cache_max_entries -1;\n", 2,
                     "invalid number \"-1\" in "
                     "\"lua_regex_cache_max_entries\"");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_regex_match_limit 2000000000;\n", 2,
                     "invalid number \"2000000000\" in "
                     "\"lua_regex_match_limit\"");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_regex_match_limit 1;\n"
                     "lua_regex_match_limit 1;\n", 3,
                     "\"lua_regex_match_limit\" directive is duplicate");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_shared_dict get 1m;\n", 2,
                     "the dict name \"get\" is reserved");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_shared_dict a.b 1m;\n", 2,
                     "invalid dict name \"a.b\"");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_shared_dict dogs 1k;\n", 2,
                     "invalid size \"1k\" in \"lua_shared_dict\" (at least "
                     "8k)");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_shared_dict dogs 1m;\n"
                     "lua_shared_dict dogs 1m;\n", 3,
                     "duplicate zone \"dogs\"");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "golapis_shared_dict a 1m;\n"
                     "golapis_shared_dict b 1m;\n", 3,
                     "\"golapis_shared_dict\" directive is duplicate");
    gl_t_check_fails(__LINE__, gl_modules,
                     LISTEN "lua_shared_dict dogs;\n", 2,
                     "invalid number of arguments in \"lua_shared_dict\" "
                     "directive");

    {
        char  text[4096];

        strcpy(text, LISTEN);
        for (i = 0; i <= 64; i++) {
            snprintf(text + strlen(text), sizeof(text) - strlen(text),
                     "lua_shared_dict d%d 8k;\n", i);
        }
        gl_t_check_fails(__LINE__, gl_modules, text, 66,
                         "too many shared dicts (at most 64)");
    }

    /* the shdict module's init_main makes the dicts, once */
    conf = gl_t_load_with(gl_modules, LISTEN
                          "lua_regex_cache_max_entries 0;\n"
                          "lua_shared_dict t_dogs 64k;\n"
                          "golapis_shared_dict t_mine 16k;\n");
    CHECK_STR(gl_t_err, "");
    CHECK(conf != NULL);
    if (conf == NULL) {
        return;
    }

    k = (int) gl_shdict_count();
    CHECK(gl_conf_init_main(conf) == NULL);
    CHECK((int) gl_shdict_count() == k + 2);
    d = gl_shdict_find("t_dogs", 6);
    CHECK(d != NULL && gl_shdict_capacity(d) == 64 * 1024);
    d = gl_shdict_find("t_mine", 6);
    CHECK(d != NULL && gl_shdict_capacity(d) == 16 * 1024);
    gl_conf_free(conf);

    /* again, as at a SIGHUP: the same dicts, even at another size */
    conf = gl_t_load_with(gl_modules, LISTEN
                          "lua_shared_dict t_dogs 128k;\n"
                          "golapis_shared_dict t_mine 16k;\n");
    CHECK(conf != NULL);
    if (conf != NULL) {
        j = (int) gl_shdict_count();
        CHECK(gl_conf_init_main(conf) == NULL);
        CHECK((int) gl_shdict_count() == j);
        d = gl_shdict_find("t_dogs", 6);
        CHECK(d != NULL && gl_shdict_capacity(d) == 64 * 1024);
        gl_conf_free(conf);
    }

    gl_shdict_destroy_all();
}


static void
gl_t_parse_values(void)
{
    CHECK(gl_conf_parse_size("0") == 0);
    CHECK(gl_conf_parse_size("10k") == 10240);
    CHECK(gl_conf_parse_size("10K") == 10240);
    CHECK(gl_conf_parse_size("2m") == 2 * 1024 * 1024);
    CHECK(gl_conf_parse_size("1g") == 1024 * 1024 * 1024);
    CHECK(gl_conf_parse_size("") == -1);
    CHECK(gl_conf_parse_size("-1") == -1);
    CHECK(gl_conf_parse_size("1kb") == -1);
    CHECK(gl_conf_parse_size("99999999999999999999") == -1);

    CHECK(gl_conf_parse_time("30") == 30);
    CHECK(gl_conf_parse_time("30s") == 30);
    CHECK(gl_conf_parse_time("500ms") == 0.5);
    CHECK(gl_conf_parse_time("5m") == 300);
    CHECK(gl_conf_parse_time("1h") == 3600);
    CHECK(gl_conf_parse_time("1.5s") == 1.5);
    CHECK(gl_conf_parse_time("soon") == -1);
    CHECK(gl_conf_parse_time("1d") == -1);

    CHECK_STR(gl_conf_phase_directive(GL_PHASE_CONTENT), "content_by_lua");
}


int
main(void)
{
    char  cmd[128];

    snprintf(gl_t_dir, sizeof(gl_t_dir), "/tmp/gl_test_conf.XXXXXX");
    if (mkdtemp(gl_t_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    snprintf(gl_t_path, sizeof(gl_t_path), "%s/golapis.conf", gl_t_dir);

    gl_t_parse_values();
    gl_t_defaults();
    gl_t_values();
    gl_t_errors();
    gl_t_api_modules();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gl_t_dir);
    if (system(cmd) != 0) {
        printf("cannot remove %s\n", gl_t_dir);
    }

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed != 0;
}
