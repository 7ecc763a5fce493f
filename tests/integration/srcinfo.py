"""What the sources say the programs accept, read from the C files
themselves, so that the man pages and the shell completion are checked
against the code and cannot drift: roictl's command table and each
command's options (src/roictl.c), the configuration's sections, keys and
defaults (src/config.c), each transport plugin's keys (transports/*.c),
the job states (src/store.c) and every program's getopt options.

And a small reader of mdoc pages (man/*): the items (.It) of each section
and subsection."""
import os
import re

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def source(rel):
    with open(os.path.join(TOP, rel)) as f:
        return f.read()


def _block(text, marker, end="};"):
    """The text from marker to the end of its initializer."""
    text = text[text.index(marker):]
    return text[:text.index(end)]


def _strip_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def c_functions(text):
    """{name: body} of the functions defined at file level (K&R-ish style:
    the name starts a line, the body's braces start and end lines)."""
    funcs = {}
    for m in re.finditer(r"^([a-z_][a-z0-9_]*)\(([^)]*)\)\s*\n\{\n(.*?)^\}\n",
                         text, flags=re.M | re.S):
        funcs[m.group(1)] = m.group(3)
    return funcs


def _long_options(body):
    """Long options of a struct option table, and "--x" compared by hand."""
    opts = set(re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument', body))
    opts |= set(re.findall(r'"--([a-z][a-z0-9-]*)"', body))
    return opts


def _short_options(text):
    """Letters of the getopt strings ("+s:jh") and of "-n" compared by hand."""
    letters = set()
    for g in re.findall(r'getopt(?:_long)?\([^,]+,[^,]+,\s*"([^"]*)"', text):
        letters |= set(c for c in g if c.isalnum())
    letters |= set(re.findall(r'"-([a-zA-Z])"', text))
    return letters


def roictl_commands():
    """[(command, {subcommand: options}, options)] from the cmds[] table.
    A command's options are those of its function and of the file's other
    functions it calls (recipient_add, ...); subcommands are the words
    compared with argv[1]."""
    text = _strip_comments(source("src/roictl.c"))
    funcs = c_functions(text)
    table = _block(text, "cmds[] = {", "\n};")
    out = []
    for name, fn in re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*([a-z_0-9]+),', table):
        body = funcs[fn]
        opts = _long_options(body)
        subs = {}
        for sub in re.findall(r'strcmp\(argv\[1\],\s*"([a-z][a-z-]*)"\)', body):
            subs.setdefault(sub, set())
        for callee in re.findall(r"\b([a-z_][a-z0-9_]*)\(", body):
            if callee in funcs and callee not in ("main", fn):
                copts = _long_options(funcs[callee])
                m = re.match(r"%s_([a-z]+)$" % re.escape(fn[4:]), callee)
                if m and m.group(1) in subs:
                    subs[m.group(1)] |= copts
                else:
                    opts |= copts
        out.append((name, subs, opts))
    return out


def roictl_global_options():
    funcs = c_functions(_strip_comments(source("src/roictl.c")))
    return _long_options(funcs["main"]), _short_options(funcs["main"])


def program_options(rel):
    """(long options, short option letters) of a program's main()."""
    text = _strip_comments(source(rel))
    main = c_functions(text).get("main", text)
    return _long_options(main), _short_options(main)


def sysexits():
    vals = {}
    with open("/usr/include/sysexits.h") as f:
        for m in re.finditer(r"#define\s+(EX_[A-Z_]+)\s+(\d+)", f.read()):
            vals[m.group(1)] = int(m.group(2))
    return vals


def exit_codes(rel):
    """Every exit status a program's source can produce: 0 and each EX_*."""
    names = set(re.findall(r"\b(EX_[A-Z_]+)\b", _strip_comments(source(rel))))
    table = sysexits()
    return {0} | {table[n] for n in names if n in table and n != "EX_OK"}


def job_states():
    block = _block(source("src/store.c"), "state_names[JOB_NSTATES]")
    return re.findall(r'=\s*"([a-z_]+)"', block)


# The configuration.

def config_keys():
    """[(section, key, type, field)] of src/config.c's keys[] table."""
    text = source("src/config.c")
    return re.findall(r'\{\s*"([a-z_]+)",\s*"([a-z_]+)",\s*(KEY_[A-Z]+),\s*OFF\(([a-z_]+)\)', text)


def config_choices():
    text = source("src/config.c")
    return dict(re.findall(r'OFF\(([a-z_]+)\),[^}]*"([a-z0-9|x]+)"\s*\}', text))


def config_sections():
    """The sections parse_section() accepts (transport has an argument)."""
    body = c_functions(_strip_comments(source("src/config.c")))["parse_section"]
    return sorted(set(re.findall(r'strcmp\(s,\s*"([a-z]+)"\)', body)))


def config_roles():
    block = _block(source("src/config.c"), "role_names[]")
    return re.findall(r'\{\s*"([a-z]+)",\s*ROLE_', block)


def transport_daemon_keys():
    """Keys of [transport NAME] the daemon takes itself (plugin, profile)."""
    keys = set()
    body = c_functions(_strip_comments(source("src/config.c")))["parse_transport_key"]
    keys |= set(re.findall(r'strcmp\(key,\s*"([a-z_]+)"\)', body))
    keys |= set(re.findall(r'strcmp\(ct->kv\[i\]\.key,\s*"([a-z_]+)"\)', source("src/transport.c")))
    return keys


def transport_plugins():
    """{plugin: keys} of transports/*.c: the keys each config() accepts."""
    out = {}
    for f in sorted(os.listdir(os.path.join(TOP, "transports"))):
        if not f.endswith(".c"):
            continue
        text = _strip_comments(source(os.path.join("transports", f)))
        funcs = c_functions(text)
        cfg = [b for n, b in funcs.items() if n.endswith("_config")]
        if not cfg:
            continue
        body = cfg[0]
        keys = set(re.findall(r'strcmp\(key,\s*"([a-z_]+)"\)', body))
        keys |= set(re.findall(r'\{\s*"([a-z_]+)",\s*offsetof\(', body))
        out[f[:-2]] = keys
    return out


def _c_value(expr):
    """The value of a default's C expression, or None when it is not a
    constant (a macro of the build, a function)."""
    expr = expr.strip()
    m = re.fullmatch(r'xstrdup\("([^"]*)"\)', expr)
    if m:
        return m.group(1)
    m = re.fullmatch(r"LOG_([A-Z]+)", expr)
    if m:
        return {"ERR": "error", "WARNING": "warning", "NOTICE": "notice",
                "INFO": "info", "DEBUG": "debug"}.get(m.group(1))
    e = re.sub(r"\((?:int64_t|long long|size_t|int)\)", "", expr)
    e = re.sub(r"(\d+)(?:LL|L|ULL|U)\b", r"\1", e)
    if not re.fullmatch(r"[\d\s*+\-()<]+", e):
        return None
    return int(eval(e))  # digits and operators only, checked above


def config_defaults():
    """{field: value} assigned in config_defaults()."""
    body = c_functions(source("src/config.c"))["config_defaults"]
    out = {}
    for field, expr in re.findall(r"c->([a-z_]+)\s*=\s*(.*?);", body):
        out[field] = _c_value(expr)
    return out


UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
SIZES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_value(ktype, text, choices=None):
    """A value as written in the man page, in the parser's units."""
    if ktype == "KEY_DURATION":
        m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", text)
        return int(m.group(1)) * UNITS[m.group(2) or "ms"] if m else text
    if ktype == "KEY_SIZE":
        m = re.fullmatch(r"(\d+)([KMG]?)", text)
        return int(m.group(1)) * SIZES[m.group(2)] if m else text
    if ktype in ("KEY_INT", "KEY_MSEC"):
        return int(text) if text.isdigit() else text
    if ktype == "KEY_CHOICE":
        alts = (choices or "").split("|")
        return alts.index(text) if text in alts else text
    return text


# Reading mdoc.

def man_page(name):
    with open(os.path.join(TOP, "man", name)) as f:
        return f.read()


def mdoc_sections(text):
    """{section or subsection title: [lines]}; a subsection's lines also
    belong to its section."""
    out, sh, ss = {}, None, None
    for line in text.splitlines():
        if line.startswith(".Sh "):
            sh, ss = line[4:].strip('"'), None
            out.setdefault(sh, [])
            continue
        if line.startswith(".Ss "):
            ss = line[4:].strip('"')
            out.setdefault(ss, [])
        if sh:
            out[sh].append(line)
        if ss:
            out[ss].append(line)
    return out


def mdoc_items(lines, macro="Cm"):
    """[(words, [lines of the item])] for the items ".It MACRO word ..." at
    the outer level of the lists in lines (nested lists belong to their
    item)."""
    items, depth, cur = [], 0, None
    for line in lines:
        if line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
        if depth == 1 and line.startswith(".It "):
            words = line[4:].split()
            if words and words[0] == macro:
                name = []
                for w in words[1:]:
                    if w[:1].isupper() and w[1:2].islower() and len(w) == 2:
                        break   # the next macro (Ar, Fl, Op, Pq, ...)
                    name.append(w)
                cur = (name, [line])
                items.append(cur)
                continue
            cur = None
        if cur is not None:
            cur[1].append(line)
    return items
