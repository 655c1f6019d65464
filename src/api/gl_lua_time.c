/*
 * The time API: ngx.now, ngx.time, ngx.update_time, ngx.today,
 * ngx.localtime, ngx.utctime, ngx.http_time, ngx.cookie_time and
 * ngx.parse_http_time.
 *
 * nginx reads the clock once per event-loop iteration and every call in
 * that iteration sees the same time; we do the same with the worker's
 * libev loop: ev_now() is the time of the iteration, ev_now_update() is
 * ngx.update_time().  ngx.now() has nginx's millisecond resolution.
 */
#include "gl_core.h"
#include "gl_lua.h"
#include "gl_module.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

/* 9999-12-31, the last day nginx prints (four year digits) */
#define GL_TIME_MAX_DAYS  2932896


static double
gl_lua_time_now(void)
{
    if (gl_vm_self != NULL && gl_vm_self->loop != NULL) {
        return ev_now(gl_vm_self->loop);
    }

    /* no worker loop (start-up code): the clock itself */
    return ev_time();
}


/* the cached time in whole milliseconds, as nginx keeps sec and msec */
static int64_t
gl_lua_time_msec(void)
{
    return (int64_t) floor(gl_lua_time_now() * 1000.0);
}


static time_t
gl_lua_time_sec(void)
{
    int64_t  ms;

    ms = gl_lua_time_msec();

    return (time_t) (ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
}


static int
gl_lua_now(lua_State *L)
{
    int64_t  ms;

    ms = gl_lua_time_msec();
    lua_pushnumber(L, (lua_Number) (ms / 1000) + (ms % 1000) / 1000.0);

    return 1;
}


static int
gl_lua_time(lua_State *L)
{
    lua_pushnumber(L, (lua_Number) gl_lua_time_sec());
    return 1;
}


static int
gl_lua_update_time(lua_State *L)
{
    (void) L;

    if (gl_vm_self != NULL && gl_vm_self->loop != NULL) {
        ev_now_update(gl_vm_self->loop);
    }

    return 0;
}


static int
gl_lua_push_tm(lua_State *L, int utc, int date_only)
{
    char       buf[64];
    time_t     t;
    struct tm  tm;

    t = gl_lua_time_sec();

    if (utc) {
        gmtime_r(&t, &tm);
    } else {
        localtime_r(&t, &tm);
    }

    if (date_only) {
        snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
    } else {
        snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
    }

    lua_pushstring(L, buf);
    return 1;
}


static int
gl_lua_today(lua_State *L)
{
    return gl_lua_push_tm(L, 0, 1);
}


static int
gl_lua_localtime(lua_State *L)
{
    return gl_lua_push_tm(L, 0, 0);
}


static int
gl_lua_utctime(lua_State *L)
{
    return gl_lua_push_tm(L, 1, 0);
}


/*
 * A broken-down UTC time as nginx's formatting sees it: a negative time is
 * the epoch, a time past year 9999 is its last second.
 */
typedef struct {
    int  year, mon, mday, hour, min, sec, wday;   /* mon 1..12 */
} gl_lua_tm_t;


static void
gl_lua_gmtime(int64_t t, gl_lua_tm_t *tm)
{
    int64_t  days, secs, era, doe, yoe, doy, mp, y;

    if (t < 0) {
        t = 0;
    }

    days = t / 86400;
    secs = t % 86400;

    if (days > GL_TIME_MAX_DAYS) {
        days = GL_TIME_MAX_DAYS;
        secs = 86399;
    }

    tm->wday = (int) ((4 + days) % 7);        /* 1970-01-01: a Thursday */
    tm->hour = (int) (secs / 3600);
    tm->min = (int) (secs % 3600 / 60);
    tm->sec = (int) (secs % 60);

    /* the civil date of a day number, counting eras of 400 years from
       0000-03-01 (days is never negative here) */
    days += 719468;
    era = days / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    tm->mday = (int) (doy - (153 * mp + 2) / 5 + 1);
    tm->mon = (int) (mp < 10 ? mp + 3 : mp - 9);
    tm->year = (int) (y + (tm->mon <= 2));
}


static const char  *gl_lua_wdays[] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};

static const char  *gl_lua_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
    "Nov", "Dec"
};


/*
 * The seconds argument of http_time and cookie_time: a number, converted
 * to a C long as LuaJIT's FFI does for lua-resty-core (truncated; out of
 * range or NaN gives LONG_MIN, which prints as the epoch).
 */
static int64_t
gl_lua_time_arg(lua_State *L)
{
    lua_Number  n;

    if (lua_type(L, 1) != LUA_TNUMBER) {
        luaL_error(L, "number argument only");
    }

    n = lua_tonumber(L, 1);

    if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0)) {
        return INT64_MIN;
    }

    return (int64_t) n;
}


static int
gl_lua_http_time(lua_State *L)
{
    char         buf[64];
    gl_lua_tm_t  tm;

    gl_lua_gmtime(gl_lua_time_arg(L), &tm);

    snprintf(buf, sizeof(buf), "%s, %02d %s %4d %02d:%02d:%02d GMT",
             gl_lua_wdays[tm.wday], tm.mday, gl_lua_months[tm.mon - 1],
             tm.year, tm.hour, tm.min, tm.sec);

    lua_pushstring(L, buf);
    return 1;
}


static int
gl_lua_cookie_time(lua_State *L)
{
    char         buf[64];
    gl_lua_tm_t  tm;

    gl_lua_gmtime(gl_lua_time_arg(L), &tm);

    /* two-digit years up to 2037, as nginx (for old browsers) */
    snprintf(buf, sizeof(buf), "%s, %02d-%s-%02d %02d:%02d:%02d GMT",
             gl_lua_wdays[tm.wday], tm.mday, gl_lua_months[tm.mon - 1],
             tm.year > 2037 ? tm.year : tm.year % 100, tm.hour, tm.min,
             tm.sec);

    lua_pushstring(L, buf);
    return 1;
}


/*
 * nginx's HTTP date parser, behaviour for behaviour: it takes
 *     rfc822  "Sun, 06 Nov 1994 08:49:37 GMT"
 *     rfc850  "Sunday, 06-Nov-94 08:49:37 GMT"
 *     asctime "Sun Nov  6 08:49:37 1994"
 * looks at the first letters of the month only, ignores what follows the
 * time (or the year), and checks the day against the month.  Returns -1 on
 * a bad date.  The sum is done in unsigned 64-bit arithmetic as nginx does,
 * so odd dates (day 0, year 0, before 1970) give nginx's odd results.
 */
enum {
    GL_HTTP_DATE_NONE = 0,
    GL_HTTP_DATE_RFC822,
    GL_HTTP_DATE_RFC850,
    GL_HTTP_DATE_ASCTIME
};


static int
gl_lua_digits(const u_char *p, int n, uint64_t *v)
{
    int  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        *v = *v * 10 + (p[i] - '0');
    }

    return 1;
}


static int64_t
gl_lua_parse_http_date(const u_char *s, size_t len)
{
    static const uint64_t  mdays[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    int             fmt;
    int64_t         mon;
    uint64_t        day, year, hour, min, sec, v, days;
    const u_char   *p, *end;

    end = s + len;
    fmt = GL_HTTP_DATE_NONE;
    day = 0;
    year = 0;

    /* the weekday ends at "," or, in asctime, at a space */
    for (p = s; p < end && *p != ','; p++) {
        if (*p == ' ') {
            fmt = GL_HTTP_DATE_ASCTIME;
            break;
        }
    }

    if (p == end) {
        return -1;
    }

    for (p++; p < end && *p == ' '; p++) { /* void */ }

    if (end - p < 18) {
        return -1;
    }

    if (fmt != GL_HTTP_DATE_ASCTIME) {
        if (!gl_lua_digits(p, 2, &day)) {
            return -1;
        }

        p += 2;

        if (*p == ' ') {
            if (end - p < 18) {
                return -1;
            }
            fmt = GL_HTTP_DATE_RFC822;

        } else if (*p == '-') {
            fmt = GL_HTTP_DATE_RFC850;

        } else {
            return -1;
        }

        p++;
    }

    switch (p[0]) {
    case 'J':
        mon = (p[1] == 'a') ? 0 : (p[2] == 'n') ? 5 : 6;
        break;
    case 'F':
        mon = 1;
        break;
    case 'M':
        mon = (p[2] == 'r') ? 2 : 4;
        break;
    case 'A':
        mon = (p[1] == 'p') ? 3 : 7;
        break;
    case 'S':
        mon = 8;
        break;
    case 'O':
        mon = 9;
        break;
    case 'N':
        mon = 10;
        break;
    case 'D':
        mon = 11;
        break;
    default:
        return -1;
    }

    p += 3;

    if ((fmt == GL_HTTP_DATE_RFC822 && *p != ' ')
        || (fmt == GL_HTTP_DATE_RFC850 && *p != '-'))
    {
        return -1;
    }

    p++;

    if (fmt == GL_HTTP_DATE_RFC822) {
        if (!gl_lua_digits(p, 4, &year)) {
            return -1;
        }
        p += 4;

    } else if (fmt == GL_HTTP_DATE_RFC850) {
        if (!gl_lua_digits(p, 2, &year)) {
            return -1;
        }
        year += (year < 70) ? 2000 : 1900;
        p += 2;

    } else {
        /* asctime: " 6" or "06" or "6", then the time, then the year */
        if (*p == ' ') {
            p++;
        }

        if (!gl_lua_digits(p, 1, &day)) {
            return -1;
        }
        p++;

        if (*p != ' ') {
            if (!gl_lua_digits(p, 1, &v)) {
                return -1;
            }
            day = day * 10 + v;
            p++;
        }

        if (end - p < 14) {
            return -1;
        }
    }

    if (*p++ != ' ' || !gl_lua_digits(p, 2, &hour) || p[2] != ':'
        || !gl_lua_digits(p + 3, 2, &min) || p[5] != ':'
        || !gl_lua_digits(p + 6, 2, &sec))
    {
        return -1;
    }

    p += 8;

    if (fmt == GL_HTTP_DATE_ASCTIME) {
        if (*p++ != ' ' || !gl_lua_digits(p, 4, &year)) {
            return -1;
        }
    }

    if (hour > 23 || min > 59 || sec > 59) {
        return -1;
    }

    if (mon == 1 && day == 29) {
        if (year % 4 != 0 || (year % 100 == 0 && year % 400 != 0)) {
            return -1;
        }

    } else if (day > mdays[mon]) {
        return -1;
    }

    /* count months from March (1) so that February comes last */
    mon--;
    if (mon <= 0) {
        mon += 12;
        year--;
    }

    /* days since 0000-03-01 (a Gauss-style count), minus those to the
       epoch; unsigned, wrapping as nginx's does */
    days = 365 * year + year / 4 - year / 100 + year / 400
           + (uint64_t) (367 * mon / 12 - 30) + day - 1
           - 719527 + 31 + 28;

    return (int64_t) (days * 86400 + hour * 3600 + min * 60 + sec);
}


static int
gl_lua_parse_http_time(lua_State *L)
{
    size_t       len;
    int64_t      t;
    const char  *s;

    if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L, "string argument only");
    }

    s = lua_tolstring(L, 1, &len);
    t = gl_lua_parse_http_date((const u_char *) s, len);

    if (t == -1) {
        lua_pushnil(L);
        return 1;
    }

    lua_pushnumber(L, (lua_Number) t);
    return 1;
}


static void
gl_lua_time_inject(lua_State *L)
{
    static const luaL_Reg  funcs[] = {
        { "now", gl_lua_now },
        { "time", gl_lua_time },
        { "update_time", gl_lua_update_time },
        { "today", gl_lua_today },
        { "localtime", gl_lua_localtime },
        { "utctime", gl_lua_utctime },
        { "http_time", gl_lua_http_time },
        { "cookie_time", gl_lua_cookie_time },
        { "parse_http_time", gl_lua_parse_http_time },
    };

    size_t  i;

    for (i = 0; i < gl_nelems(funcs); i++) {
        lua_pushcfunction(L, funcs[i].func);
        lua_setfield(L, -2, funcs[i].name);
    }
}


gl_module_t  gl_lua_time_module = {
    .name = "time",
    .inject = gl_lua_time_inject,
};
