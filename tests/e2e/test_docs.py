"""The documentation keeps up with the code: every directive in the
command tables of src/ has a row in docs/configuration.md, and the
reference names none that golapis does not have."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# { "name", GL_CONF_...  and gl_conf_handler(GL_PHASE_..., "name"), which
# makes name_file and name_block
COMMAND_RE = re.compile(r'\{\s*"([a-z0-9_]+)",\s*GL_CONF_')
HANDLER_RE = re.compile(r'gl_conf_handler\(\s*GL_PHASE_[A-Z_]+,\s*'
                        r'"([a-z_]+)"\s*\)')


def _directives():
    names = set()
    for root, _, files in os.walk(os.path.join(REPO, "src")):
        for f in files:
            if not f.endswith(".c"):
                continue
            with open(os.path.join(root, f)) as fh:
                text = fh.read()
            names.update(COMMAND_RE.findall(text))
            for h in HANDLER_RE.findall(text):
                names.update((h + "_file", h + "_block"))
    return names


def _doc():
    with open(os.path.join(REPO, "docs", "configuration.md")) as f:
        return f.read()


def _documented(name, doc):
    # `name`, `name ...;`, or a family written `prefix_*` / `_suffix`
    if re.search(r"`%s[` ;]" % re.escape(name), doc):
        return True
    for fam in re.findall(r"`([a-z0-9_]+)_\*`", doc):
        if name.startswith(fam + "_"):
            return True
    # "`init_by_lua_block`, `_file`" and "`lua_socket_connect_timeout`,
    # `_send_timeout`": a suffix after a full name on the same line
    for line in doc.splitlines():
        for suffix in re.findall(r"`(_[a-z0-9_]+)[` ;]", line):
            if name.endswith(suffix):
                stem = name[:-len(suffix)]
                if re.search(r"`%s_" % re.escape(stem), line):
                    return True
    return False


def test_every_directive_is_documented():
    names = _directives()
    assert len(names) > 60, sorted(names)
    doc = _doc()
    missing = sorted(n for n in names if not _documented(n, doc))
    assert not missing, "not in docs/configuration.md: %s" % missing


def test_configuration_md_links():
    # the docs it points to exist
    doc = _doc()
    for ref in set(re.findall(r"docs/([a-z0-9_.-]+\.md)", doc)):
        assert os.path.exists(os.path.join(REPO, "docs", ref)), ref
