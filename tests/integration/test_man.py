"""The man pages (man/*, mdoc): each renders without a warning (mandoc's
lint and man-db/groff, the check lintian runs), and each says what the code
accepts, read from the sources (srcinfo.py): every roictl command,
subcommand and option and every exit status, every section, key and
default of roigate.conf and of each transport plugin, every option of every
program, every field and value of the manifest schema.  A command, option
or key added to the code fails here, naming it, until its page says it."""
import json
import os
import re
import subprocess

import pytest

import srcinfo
from srcinfo import TOP, man_page, mdoc_items, mdoc_sections

PAGES = sorted(f for f in os.listdir(os.path.join(TOP, "man"))
               if re.search(r"\.[1-8]$", f))

# Every program and its page; a program whose source is not on this branch
# yet has its page written from the design, checked once the source lands.
PROGRAMS = {
    "roigated": ("src/roigated.c", "roigated.8"),
    "roictl": ("src/roictl.c", "roictl.1"),
    "roigate-render": ("src/roigate-render.c", "roigate-render.1"),
    "roigate-verify": ("src/roigate-verify.c", "roigate-verify.1"),
    "roigate-exporter": ("src/roigate-exporter.c", "roigate-exporter.8"),
}


def test_every_page_expected_is_there():
    want = {p for _, p in PROGRAMS.values()} | {"roigate.conf.5", "roigate-manifest.5"}
    assert want <= set(PAGES), f"man/ lacks {sorted(want - set(PAGES))}"


@pytest.mark.parametrize("page", PAGES)
def test_page_lints_clean_with_mandoc(page):
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", os.path.join(TOP, "man", page)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout and not r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_man_without_warnings(page):
    """What lintian runs on every page of a package."""
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                        os.path.join(TOP, "man", page)],
                       capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80"))
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert "NAME" in subprocess.run(["man", "-l", os.path.join(TOP, "man", page)],
                                    capture_output=True, text=True).stdout


# roictl(1).

def _roictl_items():
    return mdoc_items(mdoc_sections(man_page("roictl.1"))["COMMANDS"])


def test_roictl_page_has_every_command_and_subcommand():
    documented = {tuple(w[:2]) if len(w) > 1 else (w[0],) for w, _ in _roictl_items()}
    missing = []
    for cmd, subs, _ in srcinfo.roictl_commands():
        if subs:
            missing += [f"roictl {cmd} {s}" for s in subs if (cmd, s) not in documented]
        elif (cmd,) not in documented:
            missing.append(f"roictl {cmd}")
    assert not missing, ("man/roictl.1 (COMMANDS) has no '.It Cm ...' item for: "
                         + ", ".join(missing))


def test_roictl_page_has_every_option_of_every_command():
    items = _roictl_items()
    missing = []
    for cmd, subs, opts in srcinfo.roictl_commands():
        wanted = [((cmd,), opts)] + [((cmd, s), o) for s, o in subs.items()]
        for key, options in wanted:
            text = "\n".join(l for w, lines in items if tuple(w[:len(key)]) == key
                             for l in lines)
            missing += [f"roictl {' '.join(key)} --{o}" for o in sorted(options)
                        if not re.search(r"Fl -%s\b" % re.escape(o), text)]
    assert not missing, ("man/roictl.1 does not describe, in the command's item: "
                         + ", ".join(missing))


def test_roictl_page_has_the_global_options():
    longs, shorts = srcinfo.roictl_global_options()
    text = "\n".join(mdoc_sections(man_page("roictl.1"))["DESCRIPTION"])
    missing = [f"--{o}" for o in sorted(longs) if not re.search(r"Fl -%s\b" % o, text)]
    missing += [f"-{c}" for c in sorted(shorts) if not re.search(r"Fl %s\b" % c, text)]
    assert not missing, "man/roictl.1 DESCRIPTION lacks options: " + ", ".join(missing)


@pytest.mark.parametrize("prog", ["roictl", "roigate-render"])
def test_every_exit_status_is_in_the_page(prog):
    src, page = PROGRAMS[prog]
    lines = mdoc_sections(man_page(page))["EXIT STATUS"]
    listed = {int(l.split()[1]) for l in lines if re.match(r"\.It \d+$", l)}
    missing = sorted(srcinfo.exit_codes(src) - listed)
    assert not missing, f"man/{page} EXIT STATUS has no '.It N' for: {missing}"


def test_roictl_page_names_every_job_state():
    text = "\n".join(l for w, lines in _roictl_items() if w == ["list"] for l in lines)
    missing = [s for s in srcinfo.job_states() if not re.search(r"\b%s\b" % s, text)]
    assert not missing, f"man/roictl.1 'list --state' does not name states {missing}"


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_program_options_are_in_its_page(prog):
    src, page = PROGRAMS[prog]
    if not os.path.exists(os.path.join(TOP, src)):
        pytest.skip(f"{src} is not on this branch yet")
    longs, shorts = srcinfo.program_options(src)
    text = man_page(page)
    missing = [f"--{o}" for o in sorted(longs) if not re.search(r"Fl -%s\b" % re.escape(o), text)]
    missing += [f"-{c}" for c in sorted(shorts)
                if not re.search(r"(Fl|Op Fl) [a-zA-Z]*%s" % c, text)]
    assert not missing, f"man/{page} does not describe {prog} options: " + ", ".join(missing)


# roigate.conf(5).

def _conf_sections():
    return mdoc_sections(man_page("roigate.conf.5"))


def _section_name(sec):
    return "[transport NAME]" if sec == "transport" else f"[{sec}]"


def test_conf_page_has_every_section():
    secs = _conf_sections()
    missing = [_section_name(s) for s in srcinfo.config_sections() if _section_name(s) not in secs]
    assert not missing, "man/roigate.conf.5 has no '.Ss' for sections: " + ", ".join(missing)


def _conf_items(title):
    """{key: the .It line} of a subsection's outer list."""
    return {w[0]: lines[0] for w, lines in mdoc_items(_conf_sections().get(title, []))}


def test_conf_page_has_every_key_of_every_section():
    missing = []
    for sec, key, _, _ in srcinfo.config_keys():
        if key not in _conf_items(f"[{sec}]"):
            missing.append(f"[{sec}] {key}")
    missing += [f"[roles] {r}" for r in srcinfo.config_roles() if r not in _conf_items("[roles]")]
    tr = _conf_items("[transport NAME]")
    missing += [f"[transport NAME] {k}" for k in sorted(srcinfo.transport_daemon_keys())
                if k not in tr]
    assert not missing, ("man/roigate.conf.5 has no '.It Cm KEY' item in its section for: "
                         + ", ".join(missing))


def _plugin_blocks():
    """{plugin: {key, ...}} of the "Plugin .Cm NAME ," lists of
    [transport NAME]."""
    lines = _conf_sections()["[transport NAME]"]
    out, cur = {}, None
    for i, line in enumerate(lines):
        if line == "Plugin" and lines[i + 1].startswith(".Cm "):
            cur = lines[i + 1].split()[1]
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return {p: {w[0] for w, _ in mdoc_items(ls)} for p, ls in out.items()}


def test_conf_page_has_every_transport_plugins_keys():
    blocks = _plugin_blocks()
    missing = []
    for plugin, keys in srcinfo.transport_plugins().items():
        if plugin not in blocks:
            missing.append(f"plugin {plugin} (no 'Plugin\\n.Cm {plugin} ,' list)")
            continue
        missing += [f"[transport {plugin}] {k}" for k in sorted(keys - blocks[plugin])]
    assert not missing, "man/roigate.conf.5 does not describe: " + ", ".join(missing)


def test_conf_page_defaults_are_the_codes():
    """Each default written '.It Cm KEY Pq Li VALUE' (or Pa, or 'none') is
    the value config_defaults() sets, in the parser's units."""
    defaults = srcinfo.config_defaults()
    choices = srcinfo.config_choices()
    wrong = []
    for sec, key, ktype, field in srcinfo.config_keys():
        line = _conf_items(f"[{sec}]").get(key)
        if line is None:
            continue    # reported by the test above
        m = re.search(r"Pq (?:(Li|Pa) )?(.*)$", line)
        if not m:
            wrong.append(f"[{sec}] {key}: no '(default)' on its .It line")
            continue
        written = m.group(2)
        code = defaults.get(field, "(unset)")
        if code is None:
            continue    # a path of the build (LIBDIR, DATADIR): said in words
        if written == "none":
            if code != "(unset)":
                wrong.append(f"[{sec}] {key}: page says none, code says {code!r}")
            continue
        if srcinfo.parse_value(ktype, written, choices.get(field)) != code:
            wrong.append(f"[{sec}] {key}: page says {written!r}, config.c says {code!r}")
    assert not wrong, "man/roigate.conf.5 defaults differ from config_defaults(): " + "; ".join(wrong)


def test_conf_page_defaults_are_accepted_by_the_daemon(tmp_path):
    """The defaults, written as the page writes them, make a file that
    `roigated -n` accepts (the units and spellings are the parser's)."""
    lines = []
    for sec, key, ktype, _ in srcinfo.config_keys():
        m = re.search(r"Pq (?:Li )(\S+)$", _conf_items(f"[{sec}]").get(key, ""))
        if m and ktype != "KEY_PATH":
            lines.append((sec, f"{key} = {m.group(1)}"))
    conf = tmp_path / "roigate.conf"
    text, last = "", None
    for sec, kv in lines:
        if sec != last:
            text += f"[{sec}]\n"
            last = sec
        text += kv + "\n"
    text += (f"[daemon]\nstate_dir = {tmp_path}/state\nsocket = {tmp_path}/s.sock\n"
             f"transport_dir = {srcinfo.os.environ.get('ROIGATE_BUILD', TOP + '/build')}/transports\n"
             f"template_dir = {TOP}/templates\n")
    conf.write_text(text)
    build = os.environ.get("ROIGATE_BUILD", os.path.join(TOP, "build"))
    r = subprocess.run([os.path.join(build, "roigated"), "-n", "-f", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# roigate-manifest(5).

def _schema_paths():
    with open(os.path.join(TOP, "examples", "manifest.schema.json")) as f:
        schema = json.load(f)
    defs = schema.get("$defs", schema.get("definitions", {}))
    paths, enums = set(), set()

    def res(n):
        while "$ref" in n:
            n = defs[n["$ref"].split("/")[-1]]
        return n

    def walk(n, path):
        n = res(n)
        enums.update(v for v in n.get("enum", []) if isinstance(v, str))
        if "items" in n:
            walk(n["items"], path + "[]")
        elif "properties" in n:
            for k, v in n["properties"].items():
                walk(v, (path + "." if path else "") + k)
        else:
            for alt in n.get("oneOf", []) + n.get("anyOf", []):
                walk(alt, path)
            paths.add(path)
    walk(schema, "")
    return {p[:-2] if p.endswith("[]") else p for p in paths}, enums


def test_manifest_page_has_every_schema_field_and_value():
    text = man_page("roigate-manifest.5")
    named = set(re.findall(r"Cm (\S+)", text))
    paths, enums = _schema_paths()
    missing = sorted(p for p in paths if p not in named)
    missing += sorted(f"value {v}" for v in enums if not re.search(r"\b%s\b" % re.escape(v), text))
    assert not missing, "man/roigate-manifest.5 does not name: " + ", ".join(missing)
