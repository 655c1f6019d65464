/*
 * nginx's resolver and resolver_timeout directives, and the resolver of
 * each worker (gl_resolver_worker()) that the cosockets ask.
 *
 *   resolver ADDRESS[:PORT] ... [valid=TIME] [ipv4=on|off] [ipv6=on|off];
 *   resolver_timeout TIME;                                  (default 30s)
 *
 * ADDRESS is an IPv4 or IPv6 address (IPv6 in brackets when a port
 * follows); nginx also takes names, which it resolves at start: golapis
 * refuses them with a message.  Without a resolver line, names are
 * resolved as the C library would, with /etc/hosts and /etc/resolv.conf
 * (docs/dns.md).
 *
 * A worker's resolver is made on first use.  A SIGHUP that changes these
 * directives gives the worker a new one at its next lookup; the old one
 * answers the queries it has, then is freed (not sooner: a coroutine
 * waits on each).  exit_worker frees them all.
 */
#include "gl_core.h"
#include "gl_conf.h"
#include "gl_dns.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_lua_resolver.h"
#include "gl_module.h"

#include <arpa/inet.h>
#include <ctype.h>

typedef struct {
    gl_dns_conf_t    dns;           /* resolver_timeout is dns.timeout */
    int              resolver;      /* the directive was given */
} gl_resolver_conf_t;

/* a worker's resolvers */
typedef struct {
    gl_dns_t        *dns;           /* the current one, or NULL */
    gl_dns_t       **old;           /* replaced by a reload, not idle yet */
    int              nold;
    int              cap;
} gl_resolver_worker_t;


/* ---- the directives ------------------------------------------------------ */

static int
gl_lua_resolver_flag(gl_conf_parser_t *cp, const char *arg, const char *value,
    int *field)
{
    if (strcmp(value, "on") == 0) {
        *field = 1;

    } else if (strcmp(value, "off") == 0) {
        *field = 0;

    } else {
        return gl_conf_error(cp, "invalid parameter \"%s\" in \"%s\", it "
                             "must be \"on\" or \"off\"", arg, cp->args[0]);
    }

    return GL_OK;
}


/* a name server: "1.2.3.4", "1.2.3.4:5353", "[::1]", "[::1]:5353", "::1" */
static int
gl_lua_resolver_server(gl_conf_parser_t *cp, const char *arg,
    gl_dns_server_t *s)
{
    long         port;
    char        *end, buf[INET6_ADDRSTRLEN + 1];
    size_t       len;
    const char  *host, *p, *colon;

    port = 53;
    host = arg;

    if (arg[0] == '[') {
        p = strchr(arg, ']');
        if (p == NULL) {
            return gl_conf_error(cp, "invalid address \"%s\" in \"%s\"", arg,
                                 cp->args[0]);
        }

        host = arg + 1;
        len = p - host;
        colon = (p[1] == ':') ? p + 1 : NULL;

        if (p[1] != '\0' && colon == NULL) {
            return gl_conf_error(cp, "invalid address \"%s\" in \"%s\"", arg,
                                 cp->args[0]);
        }

    } else {
        colon = strchr(arg, ':');

        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            /* an IPv6 address without brackets: no port then */
            colon = NULL;
        }

        len = colon ? (size_t) (colon - arg) : strlen(arg);
    }

    if (colon != NULL) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);

        if (!isdigit((u_char) colon[1]) || *end != '\0' || errno
            || port < 1 || port > 65535)
        {
            return gl_conf_error(cp, "invalid port in \"%s\" of \"%s\"", arg,
                                 cp->args[0]);
        }
    }

    if (len == 0 || len >= sizeof(buf)) {
        goto not_ip;
    }

    memcpy(buf, host, len);
    buf[len] = '\0';

    memset(s, 0, sizeof(gl_dns_server_t));
    s->port = (int) port;

    if (host == arg && inet_pton(AF_INET, buf, &s->addr.v4) == 1) {
        s->family = AF_INET;
        return GL_OK;
    }

    if (inet_pton(AF_INET6, buf, &s->addr.v6) == 1) {
        s->family = AF_INET6;
        return GL_OK;
    }

not_ip:

    for (p = arg; *p != '\0' && p != colon; p++) {
        if (!(isalnum((u_char) *p) || *p == '-' || *p == '.')) {
            return gl_conf_error(cp, "invalid address \"%s\" in \"%s\"", arg,
                                 cp->args[0]);
        }
    }

    return gl_conf_error(cp, "\"%s\" takes IP addresses, not names (nginx "
                         "resolves them at start, golapis does not): \"%s\"",
                         cp->args[0], arg);
}


static int
gl_lua_resolver_conf_resolver(gl_conf_parser_t *cp, const gl_command_t *cmd,
    void *mconf)
{
    int                  i;
    double               t;
    const char          *arg;
    gl_resolver_conf_t  *rcf = mconf;

    (void) cmd;

    if (rcf->resolver) {
        return gl_conf_error(cp, "\"%s\" directive is duplicate",
                             cp->args[0]);
    }

    rcf->resolver = 1;
    rcf->dns.ipv4 = 1;
    rcf->dns.ipv6 = 1;

    for (i = 1; i < cp->nargs; i++) {
        arg = cp->args[i];

        if (strncmp(arg, "valid=", 6) == 0) {
            t = gl_conf_parse_time(arg + 6);
            if (t < 0) {
                return gl_conf_error(cp, "invalid parameter \"%s\" in "
                                     "\"%s\"", arg, cp->args[0]);
            }

            rcf->dns.valid = t;
            continue;
        }

        if (strncmp(arg, "ipv4=", 5) == 0) {
            if (gl_lua_resolver_flag(cp, arg, arg + 5, &rcf->dns.ipv4)
                != GL_OK)
            {
                return GL_ERROR;
            }
            continue;
        }

        if (strncmp(arg, "ipv6=", 5) == 0) {
            if (gl_lua_resolver_flag(cp, arg, arg + 5, &rcf->dns.ipv6)
                != GL_OK)
            {
                return GL_ERROR;
            }
            continue;
        }

        if (strchr(arg, '=') != NULL) {
            return gl_conf_error(cp, "invalid parameter \"%s\" in \"%s\"",
                                 arg, cp->args[0]);
        }

        if (rcf->dns.nservers == GL_DNS_MAX_SERVERS) {
            return gl_conf_error(cp, "too many name servers in \"%s\" (at "
                                 "most %d)", cp->args[0], GL_DNS_MAX_SERVERS);
        }

        if (gl_lua_resolver_server(cp, arg,
                                   &rcf->dns.servers[rcf->dns.nservers])
            != GL_OK)
        {
            return GL_ERROR;
        }

        rcf->dns.nservers++;
    }

    if (rcf->dns.nservers == 0) {
        return gl_conf_error(cp, "no name server in \"%s\"", cp->args[0]);
    }

    if (!rcf->dns.ipv4 && !rcf->dns.ipv6) {
        return gl_conf_error(cp, "\"%s\" cannot have both ipv4=off and "
                             "ipv6=off", cp->args[0]);
    }

    return GL_OK;
}


static const char *
gl_lua_resolver_init_conf(gl_conf_t *conf, void *mconf)
{
    gl_resolver_conf_t  *rcf = mconf;

    (void) conf;

    gl_conf_init_value(rcf->dns.timeout, 30);

    if (!rcf->resolver) {
        /* /etc/resolv.conf's servers, A and AAAA, each answer's TTL */
        rcf->dns.ipv4 = 1;
        rcf->dns.ipv6 = 1;
    }

    rcf->dns.max_names = GL_DNS_CACHE_NAMES;

    return NULL;
}


/* ---- a worker's resolvers ------------------------------------------------ */

static gl_resolver_worker_t *
gl_resolver_worker_data(gl_vm_t *vm)
{
    void                  **slot;
    gl_resolver_worker_t   *rw;

    slot = gl_vm_module_data(vm, &gl_lua_resolver_module);

    if (*slot == NULL) {
        rw = calloc(1, sizeof(gl_resolver_worker_t));
        if (rw == NULL) {
            gl_log_error(GL_LOG_ERR, errno, "no memory for the resolver");
            return NULL;
        }

        *slot = rw;
    }

    return *slot;
}


/* an old resolver has answered all it had */
static void
gl_resolver_old_idle(void *data, gl_dns_t *dns)
{
    int                    i;
    gl_resolver_worker_t  *rw;

    rw = data;

    for (i = 0; i < rw->nold; i++) {
        if (rw->old[i] == dns) {
            rw->old[i] = rw->old[--rw->nold];
            break;
        }
    }

    gl_dns_free(dns);
}


gl_dns_t *
gl_resolver_worker(gl_vm_t *vm)
{
    int                    cap;
    gl_dns_t             **old;
    gl_resolver_conf_t    *rcf;
    gl_resolver_worker_t  *rw;

    rw = gl_resolver_worker_data(vm);
    if (rw == NULL) {
        return NULL;
    }

    rcf = gl_conf_module(vm->conf, &gl_lua_resolver_module);

    if (rw->dns != NULL && !gl_dns_conf_same(rw->dns, &rcf->dns)) {
        /* a reload changed the directives: the old one winds down */
        if (rw->nold == rw->cap) {
            cap = rw->cap ? rw->cap * 2 : 4;
            old = realloc(rw->old, cap * sizeof(gl_dns_t *));
            if (old == NULL) {
                gl_log_error(GL_LOG_ERR, errno, "no memory for a new "
                             "resolver: the old one goes on");
                return rw->dns;
            }

            rw->old = old;
            rw->cap = cap;
        }

        rw->old[rw->nold++] = rw->dns;
        gl_dns_on_idle(rw->dns, gl_resolver_old_idle, rw);
        rw->dns = NULL;
    }

    if (rw->dns == NULL) {
        rw->dns = gl_dns_new(vm->loop, &rcf->dns);
    }

    return rw->dns;
}


/* ---- the module's hooks -------------------------------------------------- */

static int
gl_lua_resolver_init_main(gl_conf_t *conf)
{
    (void) conf;

    return gl_dns_init();
}


static void
gl_lua_resolver_exit_worker(gl_vm_t *vm)
{
    int                     i;
    void                  **slot;
    gl_resolver_worker_t   *rw;

    slot = gl_vm_module_data(vm, &gl_lua_resolver_module);
    rw = *slot;

    if (rw == NULL) {
        return;
    }

    gl_dns_free(rw->dns);

    for (i = 0; i < rw->nold; i++) {
        gl_dns_free(rw->old[i]);
    }

    free(rw->old);
    free(rw);
    *slot = NULL;
}


static const gl_conf_bounds_t  gl_lua_resolver_timeout_bounds = {
    0.001, 0, "must be at least 1ms"
};

static const gl_command_t  gl_lua_resolver_commands[] = {

    { "resolver", GL_CONF_1MORE, gl_lua_resolver_conf_resolver,
      GL_CONF_MODULE, 0, NULL },

    { "resolver_timeout", GL_CONF_TAKE1, gl_conf_set_time_slot,
      GL_CONF_MODULE, offsetof(gl_resolver_conf_t, dns.timeout),
      &gl_lua_resolver_timeout_bounds },

    gl_null_command
};


gl_module_t  gl_lua_resolver_module = {
    .name = "resolver",
    .commands = gl_lua_resolver_commands,
    .conf_size = sizeof(gl_resolver_conf_t),
    .init_conf = gl_lua_resolver_init_conf,
    .init_main = gl_lua_resolver_init_main,
    .exit_worker = gl_lua_resolver_exit_worker,
};
