"""Lua files that cannot be loaded as they are: a watched script or module
replaced by a directory, a FIFO, an unreadable file, a file above the size
bound, a dangling symlink.  Each is logged once with its path and reason,
does not hold other reloads back (another script edited meanwhile shows),
its requests get a clear status at once, and once it is a normal script
again it is served.  And the first load of a script obeys the hold-still
rule: a script first requested while being written is not cached half.
"""

import os
import shutil
import time

from harness import Golapis, Nginx, http_get, make_docroot, mktemp, wait_for

# the machine may be slow (a sanitizer build): time limits scale with it
SLACK = 4 if os.environ.get("GL_SANITIZER") else 1

MAX_FILE = 64 * 1024 * 1024     # GL_HOUSE_MAX_FILE


def _backdate(path):
    """Files written an hour ago: the first load caches them at once."""
    t = time.time() - 3600
    for name in os.listdir(path):
        os.utime(os.path.join(path, name), (t, t))


def _setup(interval=0.1, mods=None):
    www = os.path.realpath(make_docroot({
        "a.lua": 'ngx.say("a 1")\n',
        "b.lua": 'ngx.say("b 1")\n',
        "m.lua": 'ngx.say("m ", require("fmod").v)\n',
    }, copy_scripts=False))
    _backdate(www)
    extra = "housekeeping_interval %s;\n" % interval
    moddir = None
    if mods is not None:
        moddir = os.path.realpath(mktemp("mods-"))
        for name, text in mods.items():
            with open(os.path.join(moddir, name), "w") as f:
                f.write(text)
        _backdate(moddir)
        extra += 'lua_package_path "%s/?.lua;;";\n' % moddir
    g = Golapis(extra, docroot=www, workers=2)
    n = Nginx(g)
    return g, n, www, moddir


def _get(n, path):
    status, headers, body = http_get(n.port, path, timeout=5 * SLACK)
    return status, body


def _both(n, path, want):
    """path gives `want` (status, body) from both workers (a connection
    per request goes to the next worker in turn)."""
    for _ in range(4):
        got = _get(n, path)
        assert got == want, "%s: expected %r, got %r" % (path, want, got)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _unusable(make, reason, status, module=False):
    """A watched script (or module) is replaced by what make(path) makes;
    the log names it once with `reason`, another script's edit still
    shows, a request for it gets `status`, and a normal file in its place
    is served again."""
    interval = 0.1
    mod = "return { v = %d }\n"
    g, n, www, moddir = _setup(interval, mods={"fmod.lua": mod % 1})
    if module:
        path, uri = os.path.join(moddir, "fmod.lua"), "/m.lua"
        want1, want2 = (200, b"m 1\n"), (200, b"m 2\n")
        good = mod % 2
    else:
        path, uri = os.path.join(www, "a.lua"), "/a.lua"
        want1, want2 = (200, b"a 1\n"), (200, b"a 2\n")
        good = 'ngx.say("a 2")\n'
    _both(n, uri, want1)
    _both(n, "/b.lua", (200, b"b 1\n"))

    mark = g.mark()
    _remove(path)
    make(path)
    time.sleep(interval)

    # other reloads go on meanwhile
    _write(os.path.join(www, "b.lua"), 'ngx.say("b 2")\n')
    wait_for(lambda: _get(n, "/b.lua") == (200, b"b 2\n"), 3 * SLACK,
             what="b.lua's edit while %s %s" % (path, reason))
    _both(n, "/b.lua", (200, b"b 2\n"))

    line = 'cannot load "%s": %s' % (path, reason)
    wait_for(lambda: line in g.log_since(mark), 3 * SLACK,
             what="%r in the log" % line)

    # the file itself: a clear status, at once
    t0 = time.monotonic()
    for _ in range(4):
        got = _get(n, uri)
        assert got[0] == status, "%s (%s): expected %s, got %r" % (
            uri, reason, status, got)
    assert time.monotonic() - t0 < 2 * SLACK, "requests were slow"

    time.sleep(4 * interval)
    log = g.log_since(mark)
    assert log.count(line) == 1, \
        "expected one %r line:\n%s" % (line, log)

    # a normal file again: served
    _remove(path)
    _write(path, good)
    wait_for(lambda: _get(n, uri) == want2, 3 * SLACK,
             what="%s served again" % uri)
    _both(n, uri, want2)
    _both(n, "/b.lua", (200, b"b 2\n"))
    assert g.running(), "golapis died"
    rc = g.stop()
    assert rc == 0, "golapis exit status %s:\n%s" % (rc, g.tail())


def test_directory():
    # a directory is not run: 403, as golapis's script lookup says for
    # anything but a regular file (nginx gives 403 for a directory)
    _unusable(os.mkdir, "is a directory", 403)


def test_fifo():
    # opening it for reading would wait for a writer, for ever
    _unusable(os.mkfifo, "is not a regular file", 403)


def test_module_fifo():
    # require's search must not open it blocking either
    _unusable(os.mkfifo, "is not a regular file", 500, module=True)


def test_module_directory():
    _unusable(os.mkdir, "is a directory", 500, module=True)


def test_too_large():
    def huge(path):
        with open(path, "w") as f:
            f.write('ngx.say("huge")\n')
        os.truncate(path, MAX_FILE + 1)     # sparse
    _unusable(huge, "too large (%d bytes, at most %d)"
              % (MAX_FILE + 1, MAX_FILE), 500)


def test_dangling_symlink():
    # the script lookup resolves symlinks: a dangling one is not found
    _unusable(lambda p: os.symlink(p + ".nowhere", p),
              "a dangling symbolic link", 404)


def test_unreadable():
    # root reads a mode 000 file all the same: EACCES cannot be made so
    if os.geteuid() == 0:
        return

    def unreadable(path):
        with open(path, "w") as f:
            f.write('ngx.say("secret")\n')
        os.chmod(path, 0)
    # golapis could not read the script it was asked to run: 500 (the
    # lookup, which stats it, finds a regular file)
    _unusable(unreadable, "Permission denied", 500)


def test_first_load_half_written():
    """A script first requested while being written may run as it is (it
    is not cached: it is young); once it is complete, every request gets
    the whole script, without waiting for a reload."""
    interval = 0.5
    g, n, www, _ = _setup(interval)
    path = os.path.join(www, "h.lua")
    full = ('ngx.say("begin")\n'
            '-- ' + "filler " * 40 + '\n'
            'ngx.say("end")\n')
    half = full[:full.index("\n") + 1 + 100]
    halves = []
    with open(path, "w") as f:
        f.write(half)
        f.flush()
        for _ in range(4):
            halves.append(_get(n, "/h.lua"))
        f.write(full[len(half):])
    assert halves[0] == (200, b"begin\n"), halves
    # at once, and for a while: both workers, never the half
    end = time.monotonic() + 2 * interval
    got = []
    while time.monotonic() < end:
        got.append(_get(n, "/h.lua"))
    bad = [r for r in got if r != (200, b"begin\nend\n")]
    assert not bad, "after the write, the half script was served: %r" % (
        bad[:4],)
    rc = g.stop()
    assert rc == 0, "golapis exit status %s:\n%s" % (rc, g.tail())


def test_config_file_not_regular():
    # the config file (or an include) that is a directory or a FIFO is
    # refused at once, not read as gigabytes or waited on
    from harness import golapis_cmd, mktemp
    d = mktemp("conf-")
    fifo = os.path.join(d, "fifo.conf")
    os.mkfifo(fifo)
    for path, why in ((d, "is a directory"),
                      (fifo, "is not a regular file")):
        rc, out, err = golapis_cmd(["-t", "-c", path], timeout=5)
        assert rc == 1 and "%s: %s" % (path, why) in err, (path, rc, err)
