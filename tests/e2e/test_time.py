"""The time API: ngx.now, ngx.time, ngx.update_time, ngx.today,
ngx.localtime, ngx.utctime, ngx.http_time, ngx.cookie_time and
ngx.parse_http_time, against the real lua-nginx-module where the answer is
deterministic."""

import re
import time

from harness import Golapis, Nginx, http_get, make_docroot

# errors keep the script's basename and line, not its directory
STRIP_DIR = r'''
local function e(ok, err)
    if ok then return "ok " .. tostring(err) end
    return "err " .. tostring(err):gsub("^.-([^/]+%.lua:%d+:)", "%1")
end
'''

FORMATS = STRIP_DIR + r'''
ngx.header["Content-Type"] = "text/plain"
local secs = { 0, 1, 59, 86399, 86400, 951782400, 1290079017, 2147483647,
               2147483648, 2200000000, 4102444800, 253402300799,
               253402300800, 2^40, 2^62, -1, -86400, 1.9, -0.5, 1e300,
               -1e300, 1/0, -1/0, 0/0 }
-- (the index, not the number: ngx.say's NaN formatting is not ours)
for i, s in ipairs(secs) do
    ngx.say(i, " ", ngx.http_time(s), " | ", ngx.cookie_time(s))
end

local dates = {
    "Thu, 18 Nov 2010 11:27:35 GMT",
    "Thursday, 18-Nov-10 11:27:35 GMT",
    "Thu Nov 18 11:27:35 2010",
    "Thu Nov  8 11:27:35 2010",
    "Thu Nov 8 11:27:35 2010",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Mon, 01 Jan 2069 00:00:00 GMT",
    "Monday, 01-Jan-69 00:00:00 GMT",
    "Monday, 01-Jan-70 00:00:00 GMT",
    "x, 29 Feb 2000 00:00:00",
    "x, 29 Feb 2001 00:00:00",
    "x, 29 Feb 1900 00:00:00",
    "x, 30 Feb 2000 00:00:00",
    "x, 31 Apr 2000 00:00:00",
    "x, 31 Aug 2000 00:00:00",
    "x, 00 Nov 2010 11:27:35",
    "x, 31 Dec 1969 23:59:59",
    "x, 31 Dec 1969 23:59:58",
    "x, 01 Jan 0000 00:00:00",
    "x, 31 Dec 9999 23:59:59",
    "x, 01 Jxx 2000 00:00:00",
    "x, 01 Jun 2000 00:00:00",
    "x, 01 Jul 2000 00:00:00",
    "x, 01 Mar 2000 00:00:00",
    "x, 01 May 2000 00:00:00",
    "x, 01 Apr 2000 00:00:00",
    "x, 01 Aug 2000 00:00:00",
    "x, 01 Sep 2000 00:00:00",
    "x, 01 Oct 2000 00:00:00",
    "x, 01 Nov 2000 00:00:00",
    "x, 01 Dec 2000 00:00:00",
    "x, 01 Xyz 2000 00:00:00",
    "x, 01 Jan 2000 24:00:00",
    "x, 01 Jan 2000 23:60:00",
    "x, 01 Jan 2000 23:59:60",
    "x, 01 Jan 2000 23:59:5",
    "x, 01 Jan 2000 23-59:59",
    "x,01 Jan 2000 00:00:00 trailing junk",
    "x,    01 Jan 2000 00:00:00",
    "x, 1 Jan 2000 00:00:00 GMT",
    "x, 01 Jan 2000  00:00:00",
    "x, 01-Jan-2000 00:00:00",
    "x, 01/Jan/2000 00:00:00",
    "Thu Nov 18 11:27:35 10",
    "Thu Nov 118 11:27:35 2010",
    "Thu Nov 18 11:27:35  2010",
    "Thu Novx18 11:27:35 2010",
    "Thu\0Nov 18 11:27:35 2010",
    "x, 01 Jan 2000 00:00:0\0",
    "no comma or space",
    "",
    ",",
    " ",
}
for _, d in ipairs(dates) do
    ngx.say(string.format("%q", d), " => ", tostring(ngx.parse_http_time(d)))
end

-- argument checks
ngx.say(e(pcall(function() local v = ngx.http_time("1"); return v end)))
ngx.say(e(pcall(function() local v = ngx.http_time(); return v end)))
ngx.say(e(pcall(function() local v = ngx.cookie_time("1"); return v end)))
ngx.say(e(pcall(function() local v = ngx.cookie_time(nil); return v end)))
ngx.say(e(pcall(function() local v = ngx.parse_http_time(1); return v end)))
ngx.say(e(pcall(function() local v = ngx.parse_http_time(); return v end)))
ngx.say(e(pcall(ngx.http_time, {})))
ngx.say(e(pcall(ngx.parse_http_time, true)))
ngx.say(ngx.http_time(0, "extra"), " ", ngx.parse_http_time(
    "Thu, 01 Jan 1970 00:00:10 GMT", "extra"))

-- round trips
for _, s in ipairs{ 0, 784111777, 1290079017, 2147483647, 4102444800 } do
    ngx.say(ngx.parse_http_time(ngx.http_time(s)) == s,
            ngx.parse_http_time(ngx.cookie_time(s)) == s)
end
'''

CACHED = r'''
ngx.header["Content-Type"] = "text/plain"

-- one value for the whole loop iteration, as nginx caches it
local t0, s0 = ngx.now(), ngx.time()
local deadline = os.clock() + 0.03
while os.clock() < deadline do end
ngx.say("cached ", ngx.now() == t0, " ", ngx.time() == s0)

-- update_time reads the clock again
ngx.update_time()
local t1 = ngx.now()
ngx.say("updated ", t1 > t0 and t1 - t0 >= 0.02 and t1 - t0 < 5)

-- millisecond resolution, time() is now() without the fraction
local ms = t1 * 1000
ngx.say("msec ", math.abs(ms - math.floor(ms + 0.5)) < 0.01,
        " ", ngx.time() == math.floor(ngx.now()))

-- a sleep is a new loop iteration: the time moves on
ngx.sleep(0.05)
local t2 = ngx.now()
ngx.say("after sleep ", t2 - t1 >= 0.045 and t2 - t1 < 5)

-- the formats
local today, lt, ut = ngx.today(), ngx.localtime(), ngx.utctime()
ngx.say("types ", type(ngx.now()), " ", type(ngx.time()), " ",
        type(today), " ", type(lt), " ", type(ut))
ngx.say("today ", today:match("^%d%d%d%d%-%d%d%-%d%d$") ~= nil)
ngx.say("localtime ",
        lt:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil)
ngx.say("utctime ", ut:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil)
ngx.say("utctime is now ", ut == os.date("!%Y-%m-%d %H:%M:%S", ngx.time()))
ngx.say("localtime is now ", lt == os.date("%Y-%m-%d %H:%M:%S", ngx.time()))
ngx.say("today is localtime's date ", today == lt:sub(1, 10))
ngx.say("http_time of now ", ngx.http_time(ngx.time()) ==
        os.date("!%a, %d %b %Y %H:%M:%S GMT", ngx.time()))
'''

VALUES = r'''
ngx.header["Content-Type"] = "text/plain"
ngx.say(string.format("%.3f", ngx.now()))
ngx.say(ngx.time())
ngx.say(ngx.utctime())
ngx.say(ngx.localtime())
ngx.say(ngx.today())
'''


def _both(files, script):
    g = Golapis(docroot=make_docroot(files))
    n = Nginx(g, lua=True)
    s1, _, b1 = http_get(n.port, "/" + script)
    s2, _, b2 = http_get(n.port, "/ref/" + script)
    return (s1, b1), (s2, b2)


def test_time_formats_differential():
    ours, ref = _both({"fmt.lua": FORMATS}, "fmt.lua")
    assert ref[0] == 200, ref
    assert ours == ref, "golapis:\n%s\nnginx:\n%s" % (
        ours[1].decode(errors="replace"), ref[1].decode(errors="replace"))
    body = ours[1].decode()
    # a few fixed points, so that both being wrong the same way shows too
    assert "7 Thu, 18 Nov 2010 11:16:57 GMT | " \
           "Thu, 18-Nov-10 11:16:57 GMT" in body, body
    assert "Fri, 31 Dec 9999 23:59:59 GMT | Fri, 31-Dec-9999 23:59:59 GMT" \
        in body, body
    assert '"Thu, 18 Nov 2010 11:27:35 GMT" => 1290079655' in body, body
    assert '"x, 29 Feb 2001 00:00:00" => nil' in body, body
    assert "err fmt.lua:79: number argument only" in body, body
    assert "err fmt.lua:83: string argument only" in body, body


def test_time_cached_differential():
    ours, ref = _both({"cached.lua": CACHED}, "cached.lua")
    assert ours == ref, (ours, ref)
    lines = ours[1].decode().splitlines()
    assert ours[0] == 200 and len(lines) == 12, ours
    for line in lines:
        if line.startswith("types "):
            assert line == "types number number string string string", line
        else:
            assert "false" not in line, ours[1].decode()


def test_time_values():
    # the values themselves: close to this machine's clock
    g = Golapis(docroot=make_docroot({"v.lua": VALUES}))
    n = Nginx(g)
    before = time.time()
    status, _, body = http_get(n.port, "/v.lua")
    after = time.time()
    assert status == 200, (status, body)
    now, sec, utc, local, today = body.decode().splitlines()
    assert before - 0.01 <= float(now) <= after + 0.01, (before, now, after)
    assert int(before) <= int(sec) <= int(after), (before, sec, after)
    assert re.match(r"^\d+\.\d{3}$", now), now
    t = int(sec)
    assert utc == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), utc
    assert local == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)), \
        local
    assert today == time.strftime("%Y-%m-%d", time.localtime(t)), today
