"""*_by_lua_block in golapis's config: the scanner that finds the block's
closing brace past Lua strings, long brackets and comments; the line
numbers of the chunk names and of the config errors; -t.

golapis only (`golapis -t -c FILE`, and requests straight over FastCGI);
where nginx's behaviour is the model (chunk names, error lines), the
comments say what nginx does with the same text."""

import os
import re

from harness import Golapis, fcgi_get, golapis_cmd, mktemp, wait_for


def conf_file(body, name="golapis.conf"):
    """A config in a fresh dir: a listen line, then body (which starts on
    line 2).  Returns its path."""
    d = mktemp("conf-")
    path = os.path.join(d, name)
    with open(path, "w", newline="") as f:
        f.write("listen unix:%s/golapis.sock; document_root %s;\n" % (d, d)
                + body)
    return path


def check(body):
    """golapis -t on a config holding body; returns (rc, stderr)."""
    path = conf_file(body)
    rc, out, err = golapis_cmd(["-t", "-c", path])
    return rc, out + err


def check_fails(body, line, message):
    """-t must fail with "golapis.conf:LINE: ..." containing message."""
    rc, err = check(body)
    assert rc == 1, "-t passed: %r\n%s" % (body, err)
    want = "golapis.conf:%d: " % line
    assert want in err and message in err, \
        "want %r and %r in:\n%s\nconfig:\n%s" % (want, message, err,
                                                 number(body))
    return err


def number(body):
    """body with its config line numbers, for failure messages."""
    return "\n".join("%3d  %s" % (i, line) for i, line in
                     enumerate(("listen ...;\n" + body).split("\n"), 1))


def line_of(body, text, nth=1):
    """The config line (listen is line 1) of the nth line holding text."""
    seen = 0
    for i, line in enumerate(body.split("\n"), 2):
        if text in line:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError("%r not in the config" % text)


def serve(body, workers=1):
    g = Golapis(conf_extra=body, workers=workers)
    return g


def get(g, uri="/x"):
    return fcgi_get(g.sock, "/x", params={"REQUEST_URI": uri})


# ---------------------------------------------------------------------------
# what the scanner must skip

TRICKY = r'''
content_by_lua_block {
    -- a comment with a brace } and a quote ' and a "
    local t = {a = {b = {c = {}}}, "{", '}', "\"}", '\'}', "\\", '\\'}
    ngx.say(#t, " ", t[1], t[2], t[3], t[4], t[5], t[6], #t.a.b.c)
    ngx.say([[ } ]], [==[ ]] } ]=] ]==], [=["}"']']=])
    --[[ a long comment
         } } {
    ]]
    --[==[ ]] } ]=] ]==]
    ngx.say("a\
}")
    local s = 'it'..'s' .. "}" -- three strings: it, s, then }
    ngx.say(s)
    ngx.say(t[ [[1]] ] == nil and "idx" or "?", ("x"):rep(2), 10 - -1)
    ngx.say("# not a config comment; nor is this ;") -- }
    ngx.say(("%d"):format(#"abc"), " ${x} #{y} $z")
}
'''


def test_braces_strings_comments():
    g = serve(TRICKY)
    s, _, body = get(g)
    assert s == 200, (s, body, g.log())
    assert body == (b'6 {}"}\'}\\\\0\n'
                    b' }  ]] } ]=] "}"\']\'\n'
                    b'a\n}\n'
                    b'its}\n'
                    b'idxxx11\n'
                    b'# not a config comment; nor is this ;\n'
                    b'3 ${x} #{y} $z\n'), body


def test_block_then_more_directives():
    # what follows a block is read as config again: a block that ends
    # early or late would make these fail
    body = ('content_by_lua_block { ngx.say("one", [[}]], "{") }'
            '\ndefault_type text/x-after;\n'
            'log_by_lua_block {\n    -- }\n}\n'
            'client_max_body_size 2k;\n')
    rc, err = check(body)
    assert rc == 0, err
    g = serve(body)
    s, h, b = get(g)
    assert (s, b) == (200, b"one}{\n"), (s, b)
    assert h["content-type"] == "text/x-after", h


def test_empty_block():
    g = serve("content_by_lua_block {}\nrewrite_by_lua_block {\n}\n")
    s, _, b = get(g)
    assert (s, b) == (200, b""), (s, b)


def test_nested_block_many_lines():
    # a block of 200 lines with nested functions and tables
    lines = ["content_by_lua_block {", "    local out = {}"]
    for i in range(60):
        lines.append("    local function f%d(x) return {v = {x}} end" % i)
        lines.append("    out[#out + 1] = f%d(%d).v[1]" % (i, i))
        lines.append("    -- } %d {" % i)
    lines.append('    ngx.say(#out, " ", out[60])')
    lines.append("}")
    g = serve("\n".join(lines) + "\n")
    s, _, b = get(g)
    assert (s, b) == (200, b"60 59\n"), (s, b)


# ---------------------------------------------------------------------------
# line numbers: chunk names and config errors

def _error_line(g):
    """(config line, block line, message) of the request's Lua error."""
    s, _, b = get(g)
    assert s == 500, (s, b)
    m = wait_for(lambda: re.search(
        r"runtime error: content_by_lua\(golapis\.conf:(\d+)\):(\d+): "
        r"(.*)", g.log()), 5, what="the runtime error line")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_error_line_in_block():
    # nginx names the chunk "content_by_lua(nginx.conf:LINE)", LINE that
    # of the block's "{", and Lua counts lines from that "{" on
    body = ("content_by_lua_block {\n" + "    local a = 1\n" * 20
            + "    local s = [[\n\n]]\n"
            + '    error("boom on 25")\n}\n')
    g = serve(body)
    line = _conf_line(g, "content_by_lua_block")
    got, want = _error_line(g), (line, 25, "boom on 25")
    assert got == want, "got %r, want %r" % (got, want)


def _conf_line(g, text):
    with open(g.conf_path) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(text)


AFTER = r'''
rewrite_by_lua_block {
    --[[ a long comment
         of three lines ]]
    local s = [==[
    ]==]
    local e = "an escaped \
newline"
    -- }
}
access_by_lua_block
{
    local x = 1
}
content_by_lua_block {
    local a = 1
    error("boom on 3")
}
'''


def test_error_line_after_blocks():
    # every line of the blocks before counts
    g = serve(AFTER)
    line = _conf_line(g, "content_by_lua_block")
    got, want = _error_line(g), (line, 3, "boom on 3")
    assert got == want, "got %r, want %r" % (got, want)


def test_chunk_line_brace_on_next_line():
    # nginx: "content_by_lua_block\n\n{\n..." names the chunk by the line
    # of the "{" (where Lua's line 1 is), not that of the directive
    g = serve('content_by_lua_block\n\n{\n    local a = 1\n'
              '    error("boom on 3")\n}\n')
    line = _conf_line(g, "{")
    got, want = _error_line(g), (line, 3, "boom on 3")
    assert got == want, "got %r, want %r" % (got, want)


def test_conf_error_line_after_blocks():
    # a config error after multi-line blocks points at its own line
    body = AFTER + "bogus_directive 1;\n"
    check_fails(body, line_of(body, "bogus_directive"),
                'unknown directive "bogus_directive"')
    body = AFTER + "workers\n  many\n;\n"
    check_fails(body, line_of(body, "workers"), 'invalid value "many"')


def test_crlf_config():
    body = ('content_by_lua_block {\r\n    local a = "}"\r\n'
            '    error("boom on 3")\r\n}\r\nworkers 1;\r\n')
    path = conf_file(body)
    rc, out, err = golapis_cmd(["-t", "-c", path])
    assert rc == 0, err
    g = serve(body.replace("workers 1;\r\n", ""))
    line = _conf_line(g, "content_by_lua_block")
    got, want = _error_line(g), (line, 3, "boom on 3")
    assert got == want, "got %r, want %r" % (got, want)


# ---------------------------------------------------------------------------
# config errors

def test_unterminated_block():
    # the line of the "{" that is not closed
    body = 'rewrite_by_lua_block { }\ncontent_by_lua_block {\n  ngx.say(1)\n'
    check_fails(body, 3, "the Lua block opened here is not closed")
    # a "}" in a string or comment does not close it
    body = 'content_by_lua_block {\n  ngx.say("}")\n  -- }\n  --[[ } ]]\n'
    check_fails(body, 2, "the Lua block opened here is not closed")
    body = 'content_by_lua_block\n\n  {\n  ngx.say(1)\n'
    check_fails(body, 4, "the Lua block opened here is not closed")


def test_unterminated_string_or_long_bracket():
    body = 'content_by_lua_block {\n  ngx.say("abc)\n}\n'
    check_fails(body, 3, "unfinished string in a Lua block")
    body = "content_by_lua_block {\n  local a = 1\n  ngx.say('abc)\n}\n"
    check_fails(body, 4, "unfinished string in a Lua block")
    # nginx: "Lua code block missing the closing long bracket" at the line
    # where the long bracket opens
    body = 'content_by_lua_block {\n  ngx.say([[ \n } \n}\n\n'
    check_fails(body, 3, "long string or comment")
    body = 'content_by_lua_block {\n  --[==[ \n } ]] \n}\n\n'
    check_fails(body, 3, "long string or comment")


def test_block_needs_brace():
    check_fails('content_by_lua_block ngx.say(1)\n', 2, '"{" expected')
    # no ";" after a block, as in nginx
    check_fails('content_by_lua_block {\n  ngx.say(1)\n};\n', 4,
                'unexpected ";"')


def test_duplicate_handler():
    one = 'content_by_lua_block { ngx.say(1) }\n'
    check_fails(one + 'content_by_lua_block { ngx.say(2) }\n', 3,
                '"content_by_lua_block" directive is duplicate')
    check_fails(one + 'content_by_lua_file x.lua;\n', 3,
                '"content_by_lua_file" directive is duplicate')
    check_fails('log_by_lua_file a.lua;\nlog_by_lua_block { }\n', 3,
                '"log_by_lua_block" directive is duplicate')
    check_fails('init_by_lua_block { }\ninit_by_lua_block { }\n', 3,
                '"init_by_lua_block" directive is duplicate')
    # one handler in each phase is fine
    rc, err = check("".join("%s_by_lua_block { local x = 1 }\n" % p for p in
                            ("init", "init_worker", "rewrite", "access",
                             "content", "header_filter", "body_filter",
                             "log")))
    assert rc == 0, err


def test_unknown_by_lua_directive():
    # nginx: unknown directive "content_by_lua_thing" in FILE:LINE, with a
    # block or a plain argument alike
    for text in ('content_by_lua_thing x;\n',
                 'content_by_lua_thing {\n  ngx.say(1)\n}\n',
                 'foo_by_lua_block {\n  ngx.say(1)\n}\n',
                 'content_by_lua_blocks {\n  ngx.say(1)\n}\n',
                 'content_by_lua_files x.lua;\n'):
        body = "workers 1;\n" + text
        name = text.split()[0]
        check_fails(body, 3, 'unknown directive "%s"' % name)


def test_missing_file():
    rc, err = check('workers 1;\ncontent_by_lua_file nowhere.lua;\n')
    assert rc == 1 and "nowhere.lua" in err and "No such file" in err, err


def test_syntax_error_in_block():
    body = 'workers 1;\ncontent_by_lua_block {\n    local x = = 1\n}\n'
    rc, err = check(body)
    # -t compiles the handlers (nginx -t does not)
    assert rc == 1, err
    assert ("content_by_lua(golapis.conf:3):2: unexpected symbol near '='"
            in err), err
    # without -t golapis starts, and the requests fail with the same
    # message in the log
    g = serve('content_by_lua_block {\n    local x = = 1\n}\n')
    line = _conf_line(g, "content_by_lua_block")
    s, _, b = get(g)
    assert s == 500, (s, b)
    want = ("failed to load inline Lua code: content_by_lua(golapis.conf:%d)"
            ":2: unexpected symbol near '='" % line)
    wait_for(lambda: want in g.log(), 5, what=want)
