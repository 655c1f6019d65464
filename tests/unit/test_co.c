/*
 * Unit tests of the coroutine core (src/lua/gl_co.c, included for its
 * statics): a Lua state and a libev loop, no socket.  A few Lua functions
 * registered here use the core the way the API files do (a sleep, a wait
 * queue with a timeout, coroutine.*, ngx.thread.*, ngx.exit); each test
 * runs tasks until the loop has nothing left and compares what the Lua
 * code logged, in order, with what the semantics say.
 */
#include "../../src/lua/gl_co.c"

#include <stdio.h>
#include <lualib.h>


#include "gl_test.h"

#define CHECK_LOG(want)  gl_t_check_log(__LINE__, want)


static struct ev_loop  *gl_t_loop;
static gl_sched_t       gl_t_sched;
static lua_State       *gl_t_L;
static char             gl_t_log[8192];
static size_t           gl_t_log_len;
static gl_queue_t       gl_t_wq;
static int              gl_t_cancels;

typedef struct {
    gl_task_t   task;
    int         done;
    int         rc;
    int         enters;
    int         leaves;
    char        name[16];
} gl_t_task_t;


static void
gl_t_check_log(int line, const char *want)
{
    if (gl_t_log_len == strlen(want) && memcmp(gl_t_log, want,
                                               gl_t_log_len) == 0)
    {
        gl_t_passed++;

    } else {
        gl_t_failed++;
        printf("FAIL %s:%d: the log\n  got:  \"%.*s\"\n  want: \"%s\"\n",
               __FILE__, line, (int) gl_t_log_len, gl_t_log, want);
    }

    gl_t_log_len = 0;
}


/* log(...): the values, space separated, and a "|" */
static int
gl_t_lua_log(lua_State *L)
{
    int          i, n;
    size_t       len;
    const char  *s;

    n = lua_gettop(L);

    for (i = 1; i <= n; i++) {
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        s = lua_tolstring(L, -1, &len);

        if (gl_t_log_len + len + 2 < sizeof(gl_t_log)) {
            if (i > 1) {
                gl_t_log[gl_t_log_len++] = ' ';
            }
            memcpy(gl_t_log + gl_t_log_len, s, len);
            gl_t_log_len += len;
        }

        lua_pop(L, 1);
    }

    if (gl_t_log_len + 1 < sizeof(gl_t_log)) {
        gl_t_log[gl_t_log_len++] = '|';
    }

    return 0;
}


static gl_co_t *
gl_t_self(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_self(L);
    if (co == NULL) {
        luaL_error(L, "not a coroutine of the core");
    }

    return co;
}


static const gl_wait_ops_t  gl_t_sleep_ops = { "sleep", NULL, NULL };

static int
gl_t_lua_sleep(lua_State *L)
{
    gl_co_t  *co;

    co = gl_t_self(L);
    gl_co_wait(co, &gl_t_sleep_ops, luaL_checknumber(L, 1));

    return gl_co_yield(co);
}


static void
gl_t_wq_cancel(gl_co_t *co)
{
    (void) co;
    gl_t_cancels++;
}


static int
gl_t_wq_timedout(gl_co_t *co)
{
    lua_pushnil(co->L);
    lua_pushliteral(co->L, "timeout");
    return 2;
}


static const gl_wait_ops_t  gl_t_wq_ops = { "wq", gl_t_wq_cancel,
                                            gl_t_wq_timedout };

/* wq_wait([timeout]): true when posted, or nil, "timeout" */
static int
gl_t_lua_wq_wait(lua_State *L)
{
    gl_co_t  *co;

    co = gl_t_self(L);
    gl_co_wait(co, &gl_t_wq_ops, luaL_optnumber(L, 1, -1));
    gl_co_waitq_add(&gl_t_wq, co);

    return gl_co_yield(co);
}


/* wq_post(v): wakes the first waiter with v; returns whether there was
   one */
static int
gl_t_lua_wq_post(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_waitq_first(&gl_t_wq);

    if (co != NULL) {
        lua_pushvalue(L, 1);
        lua_xmove(L, co->L, 1);
        gl_co_wake(co, 1);
    }

    lua_pushboolean(L, co != NULL);
    return 1;
}


static int
gl_t_lua_cocreate(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_new(gl_t_self(L), 1, GL_CO_USER);
    (void) co;

    return 1;
}


static int
gl_t_lua_coresume(lua_State *L)
{
    gl_co_t  *cur, *u;

    cur = gl_t_self(L);
    u = gl_co_find(L, 1, cur->task);

    if (u == NULL || u->status != GL_CO_SUSPENDED) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot resume %s coroutine",
                        gl_co_status_names[u ? u->status : GL_CO_DEAD]);
        return 2;
    }

    lua_remove(L, 1);

    return gl_co_resume_user(cur, u, lua_gettop(L));
}


static int
gl_t_lua_coyield(lua_State *L)
{
    return gl_co_yield_user(gl_t_self(L), lua_gettop(L));
}


static int
gl_t_lua_wrap_call(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);

    return gl_t_lua_coresume(L);
}


static int
gl_t_lua_cowrap(lua_State *L)
{
    gl_co_t  *co;

    co = gl_co_new(gl_t_self(L), 1, GL_CO_USER);
    co->wrap = 1;
    lua_pushcclosure(L, gl_t_lua_wrap_call, 1);

    return 1;
}


static int
gl_t_lua_costatus(lua_State *L)
{
    gl_co_t  *cur, *u;

    cur = gl_t_self(L);
    u = gl_co_find(L, 1, cur->task);
    lua_pushstring(L, gl_co_status_names[u ? u->status : GL_CO_DEAD]);

    return 1;
}


static int
gl_t_lua_spawn(lua_State *L)
{
    int       n;
    gl_co_t  *cur, *th;

    cur = gl_t_self(L);
    n = lua_gettop(L);
    th = gl_co_new(cur, 1, GL_CO_THREAD);
    lua_replace(L, 1);
    lua_xmove(L, th->L, n - 1);

    return gl_co_spawn(cur, th, n - 1);
}


static int
gl_t_lua_twait(lua_State *L)
{
    int       i, n;
    gl_co_t  *cur, *th;

    cur = gl_t_self(L);
    n = lua_gettop(L);

    for (i = 1; i <= n; i++) {
        th = gl_co_find(L, i, cur->task);

        if (th->status == GL_CO_ZOMBIE) {
            return gl_co_thread_take(cur, th);
        }

        if (th->status == GL_CO_DEAD) {
            if (i < n) {
                continue;
            }

            lua_pushnil(L);
            lua_pushliteral(L, "already waited or killed");
            return 2;
        }

        th->waited = 1;
    }

    return gl_co_thread_wait(cur);
}


static int
gl_t_lua_tkill(lua_State *L)
{
    gl_co_t  *cur, *th;

    cur = gl_t_self(L);
    th = gl_co_find(L, 1, cur->task);

    if (th->status == GL_CO_ZOMBIE) {
        gl_co_reap(th);
        lua_pushnil(L);
        lua_pushliteral(L, "already terminated");
        return 2;
    }

    if (th->status == GL_CO_DEAD) {
        lua_pushboolean(L, 0);
        return 1;
    }

    gl_co_thread_kill(th);
    lua_pushboolean(L, 1);
    return 1;
}


static int
gl_t_lua_exit(lua_State *L)
{
    return gl_co_exit(gl_t_self(L));
}


static int
gl_t_lua_now(lua_State *L)
{
    lua_pushnumber(L, ev_now(gl_t_loop));
    return 1;
}


static void
gl_t_enter(gl_task_t *t)
{
    ((gl_t_task_t *) t)->enters++;
}


static void
gl_t_leave(gl_task_t *t)
{
    ((gl_t_task_t *) t)->leaves++;
}


static void
gl_t_done(gl_task_t *t, int rc)
{
    gl_t_task_t  *tt = (gl_t_task_t *) t;

    tt->done++;
    tt->rc = rc;

    gl_t_log_len += snprintf(gl_t_log + gl_t_log_len,
                             sizeof(gl_t_log) - gl_t_log_len, "done %s %d|",
                             tt->name, rc);
}


static const gl_task_ops_t  gl_t_ops = {
    gl_t_enter, gl_t_leave, gl_t_done, NULL
};


/* starts a task running the Lua text as its entry function */
static void
gl_t_start(gl_t_task_t *tt, const char *name, const char *code)
{
    memset(tt, 0, sizeof(gl_t_task_t));
    snprintf(tt->name, sizeof(tt->name), "%s", name);
    gl_task_init(&tt->task, &gl_t_sched, gl_t_L, &gl_t_ops, 0);

    if (luaL_loadbuffer(gl_t_L, code, strlen(code), name) != 0) {
        printf("FAIL: %s does not compile: %s\n", name,
               lua_tostring(gl_t_L, -1));
        gl_t_failed++;
        lua_pop(gl_t_L, 1);
        return;
    }

    /* timers count from the loop's clock: bring it up to date (slow
       runs, valgrind) */
    ev_now_update(gl_t_loop);
    gl_task_start(&tt->task, 0);
}


static void
gl_t_run(void)
{
    ev_run(gl_t_loop, 0);
    CHECK(gl_queue_empty(&gl_t_sched.posted));
    CHECK(gl_queue_empty(&gl_t_sched.deferred));
}


static void
gl_t_setup(void)
{
    static const luaL_Reg  fns[] = {
        { "log", gl_t_lua_log }, { "sleep", gl_t_lua_sleep },
        { "wq_wait", gl_t_lua_wq_wait }, { "wq_post", gl_t_lua_wq_post },
        { "cocreate", gl_t_lua_cocreate }, { "coresume", gl_t_lua_coresume },
        { "coyield", gl_t_lua_coyield }, { "cowrap", gl_t_lua_cowrap },
        { "costatus", gl_t_lua_costatus }, { "spawn", gl_t_lua_spawn },
        { "twait", gl_t_lua_twait }, { "tkill", gl_t_lua_tkill },
        { "exit", gl_t_lua_exit }, { "now", gl_t_lua_now },
        { NULL, NULL }
    };
    const luaL_Reg  *f;

    gl_t_loop = ev_loop_new(EVFLAG_AUTO);
    gl_sched_init(&gl_t_sched, gl_t_loop);
    gl_queue_init(&gl_t_wq);

    gl_t_L = luaL_newstate();
    luaL_openlibs(gl_t_L);
    gl_co_init_state(gl_t_L, 4);

    for (f = fns; f->name; f++) {
        lua_register(gl_t_L, f->name, f->func);
    }
}


static void
test_entry(void)
{
    gl_t_task_t  a;

    gl_t_start(&a, "a", "log('hello') return 1");
    CHECK(a.done == 0);     /* posted, not run yet */
    gl_t_run();
    CHECK_LOG("hello|done a 0|");
    CHECK(a.done == 1 && a.rc == GL_OK);
    CHECK(a.enters == 1 && a.leaves == 1);
    CHECK(gl_t_sched.nbusy == 0);

    /* a task runs its next phase from done: here, by hand */
    gl_t_start(&a, "b", "error('boom')");
    gl_t_run();
    CHECK_LOG("done b -1|");
    CHECK(a.rc == GL_ERROR);
}


static void
test_sleep_order(void)
{
    ev_tstamp     t0;
    gl_t_task_t   a, b, c;

    t0 = ev_time();
    gl_t_start(&a, "a", "sleep(0.2) log('a')");
    gl_t_start(&b, "b", "sleep(0.05) log('b') sleep(0.05) log('b2')");
    gl_t_start(&c, "c", "sleep(0) log('c')");
    CHECK(gl_t_sched.nbusy == 3);
    gl_t_run();

    CHECK_LOG("c|done c 0|b|b2|done b 0|a|done a 0|");
    CHECK(ev_time() - t0 >= 0.199);
    CHECK(b.enters == 3 && b.leaves == 3);
    CHECK(gl_t_sched.nbusy == 0);
}


static void
test_yield_to_loop(void)
{
    gl_t_task_t  a, b;

    /* sleep(0) lets the other task run in between */
    gl_t_start(&a, "a", "for i = 1, 3 do log('a', i) sleep(0) end");
    gl_t_start(&b, "b", "for i = 1, 3 do log('b', i) sleep(0) end");
    gl_t_run();
    CHECK_LOG("a 1|b 1|a 2|b 2|a 3|b 3|done a 0|done b 0|");

    /* a plain yield of the entry coroutine or a thread lets what the task
       posted run first (a spawner, another thread), else it goes on at
       once, as lua-nginx-module's posted threads */
    gl_t_start(&a, "a",
        "local function f(n)\n"
        "    log(n .. 1) coyield() log(n .. 2) coyield() log(n .. 3)\n"
        "end\n"
        "log(0) coyield() log(1)\n"
        "spawn(f, 'f')\n"
        "log(2) coyield() log(3)\n"
        "spawn(f, 'g')\n"
        "log(4) coyield() log(5) coyield() log(6)\n");
    gl_t_run();
    CHECK_LOG("0|1|f1|2|f2|3|g1|f3|4|g2|5|g3|6|done a 0|");
}


static void
test_wait_queue(void)
{
    gl_t_task_t  a, b, c;

    /* FIFO wake-ups, each after the poster goes on (not nested in the
       post), and a timeout with its values */
    gl_t_start(&a, "a", "log('a waits') log('a', wq_wait())");
    gl_t_start(&b, "b", "log('b waits') log('b', wq_wait(0.05))");
    gl_t_start(&c, "c", "sleep(0.001) log('post', wq_post('x')) "
                        "log('after post')");
    gl_t_run();
    CHECK_LOG("a waits|b waits|post true|after post|done c 0|a x|done a 0|"
              "b nil timeout|done b 0|");
    CHECK(gl_queue_empty(&gl_t_wq));
    CHECK(gl_t_cancels == 0);
}


static void
test_cancel(void)
{
    gl_t_task_t  a, b;

    gl_t_cancels = 0;
    gl_t_start(&a, "a", "log('a') wq_wait(10) log('never')");
    gl_t_start(&b, "b", "log('b') sleep(10) log('never')");
    gl_sched_run(&gl_t_sched);
    CHECK_LOG("a|b|");
    CHECK(!gl_queue_empty(&gl_t_wq));
    CHECK(gl_t_sched.nbusy == 2);

    /* the connection closed: every wait undone, nothing runs again, the
       loop has nothing left (the 10 s timers are stopped) */
    gl_task_cancel(&a.task);
    gl_task_cancel(&b.task);
    CHECK(gl_queue_empty(&gl_t_wq));
    CHECK(gl_t_cancels == 1);
    CHECK(gl_queue_empty(&a.task.live) && gl_queue_empty(&b.task.live));
    CHECK(gl_t_sched.nbusy == 0);
    gl_t_run();
    CHECK_LOG("");
    CHECK(a.done == 0 && b.done == 0);

    /* a task cancelled while it is posted does not run */
    gl_t_start(&a, "a", "log('never')");
    gl_task_cancel(&a.task);
    gl_t_run();
    CHECK_LOG("");
}


static void
test_user_coroutines(void)
{
    gl_t_task_t  a;

    gl_t_start(&a, "a",
        "local c = cocreate(function(x, y)\n"
        "    log('in', x, y)\n"
        "    local z = coyield(x + y)\n"
        "    sleep(0.001)\n"
        "    log('z', z)\n"
        "    return 'end'\n"
        "end)\n"
        "log(costatus(c))\n"
        "log('r1', coresume(c, 1, 2))\n"
        "log(costatus(c))\n"
        "log('r2', coresume(c, 'zz'))\n"
        "log(costatus(c), coresume(c))\n"
        "local e = cocreate(function() error('bad', 0) end)\n"
        "log('err', coresume(e))\n"
        "local w = cowrap(function(a) local b = coyield(a * 2) return b end)\n"
        "log('wrap', w(4), w(5))\n");
    gl_t_run();
    CHECK_LOG("suspended|in 1 2|r1 true 3|suspended|z zz|r2 true end|"
              "dead false cannot resume dead coroutine|err false bad|"
              "wrap 8 5|done a 0|");

    /* an error in a wrap function kills its caller too */
    gl_t_start(&a, "a",
        "local w = cowrap(function() error('wrapped', 0) end)\n"
        "log('pcall', pcall(w))\n");
    gl_t_run();
    CHECK_LOG("done a -1|");
}


static void
test_threads(void)
{
    gl_t_task_t  a;

    /* spawn runs the thread until it stops; the parent goes on; the task
       is done when the entry and every thread are */
    gl_t_start(&a, "a",
        "local t1 = spawn(function(x) log('t1', x) sleep(0.02) log('t1 end')"
        "    return 'r1' end, 'arg')\n"
        "log('spawned', type(t1))\n"
        "local t2 = spawn(function() log('t2') sleep(0.01) log('t2 end')"
        "    return 'r2', 'r2b' end)\n"
        "log('waited', twait(t1, t2))\n"
        "log('waited', twait(t1))\n"
        "log('again', twait(t2))\n"
        "spawn(function() sleep(0.005) log('late thread') end)\n"
        "log('entry ends')\n");
    gl_t_run();
    CHECK_LOG("t1 arg|spawned thread|t2|t2 end|waited true r2 r2b|t1 end|"
              "waited true r1|again nil already waited or killed|"
              "entry ends|late thread|done a 0|");

    /* zombies, errors in threads, kill */
    gl_t_start(&a, "a",
        "local z = spawn(function() return 'zz' end)\n"
        "log(costatus(z))\n"
        "local e = spawn(function() error('oops', 0) end)\n"
        "log('e', twait(e))\n"
        "local s = spawn(function() sleep(1) log('never') end)\n"
        "log('kill', tkill(s))\n"
        "log('kill2', tkill(s))\n"
        "log('kill z', tkill(z))\n"
        "local n = spawn(function()\n"
        "    local c = cocreate(function() sleep(1) log('never') end)\n"
        "    coresume(c)\n"
        "end)\n"
        "log('kill nested', tkill(n))\n");
    gl_t_run();
    CHECK_LOG("zombie|e false oops|kill true|kill2 false|"
              "kill z nil already terminated|kill nested true|done a 0|");
}


static void
test_exit(void)
{
    gl_t_task_t  a;

    gl_t_cancels = 0;
    gl_t_start(&a, "a",
        "spawn(function() wq_wait(5) log('never') end)\n"
        "spawn(function() sleep(0.001) log('exit') exit() end)\n"
        "sleep(5) log('never')\n");
    gl_t_run();
    CHECK_LOG("exit|done a -4|");
    CHECK(a.rc == GL_DONE);
    CHECK(gl_t_cancels == 1);
    CHECK(gl_queue_empty(&a.task.live));

    /* an error in the entry kills the threads */
    gl_t_start(&a, "a",
        "spawn(function() sleep(5) log('never') end)\n"
        "error('entry dies')\n");
    gl_t_run();
    CHECK_LOG("done a -1|");
}


static void
test_sleep_in_coroutine_of_thread(void)
{
    gl_t_task_t  a, b;

    /* a user coroutine of a thread waits: the spawner goes on, after
       what was posted before it (b); other tasks run meanwhile */
    gl_t_start(&a, "a",
        "local t = spawn(function()\n"
        "    local c = cocreate(function() sleep(0.01) coyield('y') end)\n"
        "    log('thread resumed', coresume(c))\n"
        "end)\n"
        "log('spawn returned')\n"
        "twait(t)\n"
        "log('entry done')\n");
    gl_t_start(&b, "b", "log('b runs')");
    gl_t_run();
    CHECK_LOG("b runs|done b 0|spawn returned|thread resumed true y|"
              "entry done|done a 0|");
}


int
main(void)
{
    gl_t_setup();

    test_entry();
    test_sleep_order();
    test_yield_to_loop();
    test_wait_queue();
    test_cancel();
    test_user_coroutines();
    test_threads();
    test_exit();
    test_sleep_in_coroutine_of_thread();

    lua_close(gl_t_L);
    gl_sched_free(&gl_t_sched);
    ev_loop_destroy(gl_t_loop);

    printf("%d passed, %d failed\n", gl_t_passed, gl_t_failed);

    return gl_t_failed ? 1 : 0;
}
