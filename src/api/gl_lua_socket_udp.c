/*
 * ngx.socket.udp: lua-nginx-module's UDP cosocket (setpeername, send,
 * receive, settimeout, close), its values and error strings.  A socket
 * object is a table holding in [1] a userdata gl_udp_t and in [2] the
 * timeout given; the gl_udp_t is its task's, closed when the task ends.
 * send never waits (a datagram goes whole or fails, as upstream);
 * receive waits on the worker's loop for one datagram, up to the read
 * timeout.  Unix datagram sockets are bound to an abstract address
 * (Linux's autobind), so that the peer can answer.
 */
#include "gl_core.h"
#include "gl_co.h"
#include "gl_log.h"
#include "gl_lua.h"
#include "gl_module.h"
#include "gl_dns.h"
#include "gl_lua_socket_tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GL_UDP_MAX_DATAGRAM  65536

enum {
    GL_UDP_CTX = 1,
    GL_UDP_TIMEOUT = 2
};

typedef struct {
    int                 fd;
    gl_task_t          *task;
    uint64_t            serial;
    struct ev_loop     *loop;
    int                 read_timeout;   /* ms */
    size_t              size;           /* of the datagram asked for */
    ev_io               io;
    ev_timer            timer;
    gl_co_t            *co;             /* waits: resolving or receiving */
    gl_dns_query_t     *dnsq;
    char               *host;
    size_t              hostlen;
    int                 port;
    gl_socket_addr_t    addr;
    gl_task_cleanup_t   cleanup;
} gl_udp_t;

static char  gl_udp_mt_key;
static char  gl_udp_udata_key;

static void gl_udp_cancel(gl_co_t *co);

static const gl_wait_ops_t  gl_udp_ops = {
    "ngx.socket.udp", gl_udp_cancel, NULL
};


static void
gl_udp_close(gl_udp_t *u)
{
    gl_task_cleanup_del(&u->cleanup);

    if (u->loop != NULL) {
        if (ev_is_active(&u->io)) {
            ev_io_stop(u->loop, &u->io);
        }

        if (ev_is_active(&u->timer)) {
            ev_timer_stop(u->loop, &u->timer);
        }
    }

    if (u->dnsq != NULL) {
        gl_dns_cancel(u->dnsq);
        u->dnsq = NULL;
    }

    if (u->fd != -1) {
        close(u->fd);
        u->fd = -1;
    }

    free(u->host);
    u->host = NULL;
    u->task = NULL;
    u->co = NULL;
}


static void
gl_udp_task_cleanup(gl_task_cleanup_t *c)
{
    gl_udp_close((gl_udp_t *) ((u_char *) c - offsetof(gl_udp_t, cleanup)));
}


static void
gl_udp_cancel(gl_co_t *co)
{
    gl_udp_t  *u;

    u = co->wait.data;
    if (u != NULL) {
        u->co = NULL;
        gl_udp_close(u);
    }
}


static int
gl_udp_gc(lua_State *L)
{
    gl_udp_t  *u;

    u = lua_touserdata(L, 1);
    if (u != NULL) {
        gl_udp_close(u);
    }

    return 0;
}


static gl_udp_t *
gl_udp_get(lua_State *L)
{
    gl_udp_t  *u;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, GL_UDP_CTX);
    u = lua_touserdata(L, -1);
    lua_pop(L, 1);

    return u;
}


static void
gl_udp_check_owner(lua_State *L, gl_udp_t *u)
{
    gl_task_t  *t;

    t = gl_task_current();

    if (t == NULL) {
        luaL_error(L, "no request found");
        return;
    }

    if (u->task != NULL && (u->task != t || u->serial != t->serial)) {
        luaL_error(L, "bad request");
    }
}


static int
gl_udp_push_errno(lua_State *L, int err)
{
    lua_pushnil(L);

    if (err) {
        gl_socket_push_errno(L, err);

    } else {
        lua_pushliteral(L, "error");
    }

    return 2;
}


/* socket() and connect() to u->addr: pushes setpeername's values */
static int
gl_udp_connect(gl_udp_t *u, lua_State *L)
{
    int                 fd, err;
    struct sockaddr_un  sun;

    fd = socket(u->addr.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK
                | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err = errno;
        gl_log_error(GL_LOG_ERR, err, "socket() failed");
        return gl_udp_push_errno(L, err);
    }

    if (u->addr.sa.ss_family == AF_UNIX) {
        /* autobind: an abstract name of the kernel's, for the answers */
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;

        if (bind(fd, (struct sockaddr *) &sun, sizeof(sa_family_t)) == -1) {
            err = errno;
            close(fd);
            return gl_udp_push_errno(L, err);
        }
    }

    if (connect(fd, (struct sockaddr *) &u->addr.sa, u->addr.socklen) == -1)
    {
        err = errno;
        close(fd);

        if (gl_vm_self->conf->socket_log_errors) {
            char  text[256];

            gl_socket_addr_text(&u->addr, text, sizeof(text));
            gl_log_error(GL_LOG_ERR, err, "connect() to %s failed", text);
        }

        return gl_udp_push_errno(L, err);
    }

    u->fd = fd;

    lua_pushinteger(L, 1);
    return 1;
}


static void
gl_udp_resolved(void *data, const gl_dns_result_t *res)
{
    int        n;
    char       err[512];
    gl_co_t   *co;
    gl_udp_t  *u;

    u = data;
    u->dnsq = NULL;
    co = u->co;
    u->co = NULL;

    if (gl_socket_pick(u->host, u->hostlen, u->port, res, &u->addr, err,
                       sizeof(err)) != GL_OK)
    {
        lua_pushnil(co->L);
        lua_pushstring(co->L, err);
        gl_co_wake(co, 2);
        return;
    }

    n = gl_udp_connect(u, co->L);
    gl_co_wake(co, n);
}


static int
gl_udp_new(lua_State *L)
{
    if (lua_gettop(L) != 0) {
        return luaL_error(L, "expecting zero arguments, but got %d",
                          lua_gettop(L));
    }

    (void) gl_lua_check_context(L, GL_CTX_COSOCKET);

    lua_createtable(L, 3, 1);
    lua_pushlightuserdata(L, &gl_udp_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);

    return 1;
}


static void gl_udp_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void gl_udp_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);


static int
gl_udp_setpeername(lua_State *L)
{
    int          n, port, rc, timeout;
    char         err[512];
    size_t       len;
    const char  *host;
    gl_co_t     *co;
    gl_udp_t    *u;
    gl_task_t   *t;

    n = lua_gettop(L);
    if (n != 2 && n != 3) {
        return luaL_error(L, "ngx.socket.udp setpeername: expecting 2 or 3 "
                          "arguments (including the object), but seen %d",
                          n);
    }

    t = gl_lua_check_context(L, GL_CTX_COSOCKET);

    luaL_checktype(L, 1, LUA_TTABLE);
    host = luaL_checklstring(L, 2, &len);

    port = 0;

    if (n == 3) {
        port = (int) luaL_checkinteger(L, 3);
        if (port < 0 || port > 65535) {
            lua_pushnil(L);
            lua_pushfstring(L, "bad port number: %d", port);
            return 2;
        }
    }

    u = gl_udp_get(L);

    if (u != NULL) {
        gl_udp_check_owner(L, u);

        if (u->co != NULL) {
            lua_pushnil(L);
            lua_pushliteral(L, "socket busy");
            return 2;
        }

        gl_udp_close(u);

    } else {
        u = lua_newuserdata(L, sizeof(gl_udp_t));
        lua_pushlightuserdata(L, &gl_udp_udata_key);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_setmetatable(L, -2);
        lua_rawseti(L, 1, GL_UDP_CTX);
    }

    memset(u, 0, sizeof(gl_udp_t));
    u->fd = -1;
    u->loop = gl_vm_self->loop;
    u->task = t;
    u->serial = t->serial;
    u->cleanup.handler = gl_udp_task_cleanup;
    ev_init(&u->io, gl_udp_io_cb);
    ev_init(&u->timer, gl_udp_timer_cb);
    u->io.data = u;
    u->timer.data = u;

    lua_rawgeti(L, 1, GL_UDP_TIMEOUT);
    timeout = (int) lua_tointeger(L, -1);
    lua_pop(L, 1);

    u->read_timeout = timeout > 0
                      ? timeout
                      : (int) (gl_vm_self->conf->socket_read_timeout * 1000);

    gl_task_cleanup_add(t, &u->cleanup);

    if (n == 2 && !(len >= 5 && strncasecmp(host, "unix:", 5) == 0)) {
        /* "host:port", as upstream's URL parser reads it; no port: 0 */
        const char  *colon;

        colon = memrchr(host, ':', len);

        if (colon != NULL && memchr(host, ':', colon - host) == NULL) {
            port = atoi(colon + 1);
            len = colon - host;
        }
    }

    u->host = malloc(len + 1);
    if (u->host == NULL) {
        return luaL_error(L, "no memory");
    }
    memcpy(u->host, host, len);
    u->host[len] = '\0';
    u->hostlen = len;
    u->port = port;

    rc = gl_socket_resolve(host, len, port, &u->addr, gl_udp_resolved, u,
                           &u->dnsq, err, sizeof(err));

    if (rc == GL_OK) {
        return gl_udp_connect(u, L);
    }

    if (rc == GL_ERROR) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }

    co = gl_co_self(L);
    if (co == NULL) {
        return luaL_error(L, "cosocket used in a coroutine that golapis "
                          "does not run");
    }

    u->co = co;
    gl_co_wait(co, &gl_udp_ops, -1);
    co->wait.data = u;

    return gl_co_yield(co);
}


static int
gl_udp_send(lua_State *L)
{
    int          err;
    size_t       len;
    ssize_t      n;
    u_char      *buf;
    gl_udp_t    *u;

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "expecting 2 arguments (including the object), "
                          "but got %d", lua_gettop(L));
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "request object not found");
    }

    u = gl_udp_get(L);

    if (u == NULL || u->fd == -1) {
        if (gl_vm_self->conf->socket_log_errors) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to send data on a closed "
                         "socket: u:%p, c:%p", (void *) u, NULL);
        }
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    gl_udp_check_owner(L, u);

    if (u->co != NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "socket busy");
        return 2;
    }

    buf = gl_socket_send_data(L, 2, &len);

    n = send(u->fd, buf ? buf : (u_char *) "", len, MSG_NOSIGNAL);
    err = errno;
    free(buf);

    if (n == -1) {
        return gl_udp_push_errno(L, err);
    }

    if ((size_t) n != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "partial write");
        return 2;
    }

    lua_pushinteger(L, 1);
    return 1;
}


/* one datagram now: GL_OK (pushed), GL_AGAIN, GL_ERROR (pushed) */
static int
gl_udp_recv(gl_udp_t *u, lua_State *L, int *nret)
{
    int       err;
    ssize_t   n;
    u_char    buf[GL_UDP_MAX_DATAGRAM];

    n = recv(u->fd, buf, u->size, 0);

    if (n >= 0) {
        lua_pushlstring(L, (char *) buf, n);
        *nret = 1;
        return GL_OK;
    }

    err = errno;

    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
        return GL_AGAIN;
    }

    *nret = gl_udp_push_errno(L, err);
    return GL_ERROR;
}


static void
gl_udp_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    int        n;
    gl_co_t   *co;
    gl_udp_t  *u;

    (void) revents;

    u = w->data;
    co = u->co;

    if (co == NULL) {
        ev_io_stop(loop, w);
        return;
    }

    if (gl_udp_recv(u, co->L, &n) == GL_AGAIN) {
        return;
    }

    ev_io_stop(loop, &u->io);
    ev_timer_stop(loop, &u->timer);
    u->co = NULL;
    gl_co_wake(co, n);
}


static void
gl_udp_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gl_co_t   *co;
    gl_udp_t  *u;

    (void) revents;

    u = w->data;
    co = u->co;

    ev_io_stop(loop, &u->io);

    if (co == NULL) {
        return;
    }

    if (gl_vm_self->conf->socket_log_errors) {
        gl_log_error(GL_LOG_ERR, 0, "lua udp socket read timed out");
    }

    u->co = NULL;
    lua_pushnil(co->L);
    lua_pushliteral(co->L, "timeout");
    gl_co_wake(co, 2);
}


static int
gl_udp_receive(lua_State *L)
{
    int          nargs, n;
    lua_Number   size;
    gl_co_t     *co;
    gl_udp_t    *u;

    nargs = lua_gettop(L);
    if (nargs != 1 && nargs != 2) {
        return luaL_error(L, "expecting 1 or 2 arguments (including the "
                          "object), but got %d", nargs);
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    u = gl_udp_get(L);

    if (u == NULL || u->fd == -1) {
        if (gl_vm_self->conf->socket_log_errors) {
            gl_log_error(GL_LOG_ERR, 0, "attempt to receive data on a "
                         "closed socket: u:%p, c:%p", (void *) u, NULL);
        }
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    gl_udp_check_owner(L, u);

    if (u->co != NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "socket busy");
        return 2;
    }

    size = luaL_optnumber(L, 2, GL_UDP_MAX_DATAGRAM);
    if (size < 0) {
        /* upstream's size_t makes it huge: the largest datagram */
        size = GL_UDP_MAX_DATAGRAM;
    }
    u->size = (size_t) gl_min(size, (lua_Number) GL_UDP_MAX_DATAGRAM);

    if (gl_udp_recv(u, L, &n) != GL_AGAIN) {
        return n;
    }

    co = gl_co_self(L);
    if (co == NULL) {
        return luaL_error(L, "cosocket used in a coroutine that golapis "
                          "does not run");
    }

    u->co = co;
    gl_co_wait(co, &gl_udp_ops, -1);
    co->wait.data = u;

    ev_io_set(&u->io, u->fd, EV_READ);
    ev_io_start(u->loop, &u->io);
    ev_timer_set(&u->timer, u->read_timeout / 1000.0, 0);
    ev_timer_start(u->loop, &u->timer);

    return gl_co_yield(co);
}


static int
gl_udp_settimeout(lua_State *L)
{
    int        timeout;
    gl_udp_t  *u;

    if (lua_gettop(L) != 2) {
        return luaL_error(L, "ngx.socket settimeout: expecting at least 2 "
                          "arguments (including the object) but seen %d",
                          lua_gettop(L));
    }

    timeout = (int) lua_tonumber(L, 2);

    lua_rawseti(L, 1, GL_UDP_TIMEOUT);

    lua_rawgeti(L, 1, GL_UDP_CTX);
    u = lua_touserdata(L, -1);

    if (u != NULL && gl_vm_self != NULL) {
        u->read_timeout = timeout > 0
                          ? timeout
                          : (int) (gl_vm_self->conf->socket_read_timeout
                                   * 1000);
    }

    return 0;
}


static int
gl_udp_close_method(lua_State *L)
{
    gl_udp_t  *u;

    if (lua_gettop(L) != 1) {
        return luaL_error(L, "expecting 1 argument (including the object) "
                          "but seen %d", lua_gettop(L));
    }

    if (gl_task_current() == NULL) {
        return luaL_error(L, "no request found");
    }

    u = gl_udp_get(L);

    if (u == NULL || u->fd == -1) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    gl_udp_check_owner(L, u);

    if (u->co != NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "socket busy");
        return 2;
    }

    gl_udp_close(u);

    lua_pushinteger(L, 1);
    return 1;
}


static void
gl_udp_inject(lua_State *L)
{
    const luaL_Reg  *f;

    static const luaL_Reg  methods[] = {
        { "setpeername", gl_udp_setpeername },
        { "send", gl_udp_send },
        { "receive", gl_udp_receive },
        { "settimeout", gl_udp_settimeout },
        { "close", gl_udp_close_method },
        { NULL, NULL }
    };

    lua_getfield(L, -1, "socket");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }

    lua_pushcfunction(L, gl_udp_new);
    lua_setfield(L, -2, "udp");
    lua_pop(L, 1);

    lua_pushlightuserdata(L, &gl_udp_mt_key);
    lua_createtable(L, 0, 6);
    for (f = methods; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &gl_udp_udata_key);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gl_udp_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawset(L, LUA_REGISTRYINDEX);
}


gl_module_t  gl_lua_socket_udp_module = {
    .name = "socket_udp",
    .inject = gl_udp_inject,
};
