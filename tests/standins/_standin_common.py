"""Shared rules of the mongodump/mongorestore STAND-INS (tests only; never shipped, never a real tool).

They are strict where the real tools are (unknown options, flag
combinations MongoDB rejects) and stricter where dbrs promises something:
no password in argv or in the environment, a --config file that only its
owner can read. They record what they were asked into $DBRS_STANDIN_RECORD
(one JSON line per run) without the password.
"""

import json
import os
import stat
import sys
import time

VERSION = os.environ.get("DBRS_STANDIN_TOOLS_VERSION", "100.10.0")   # the release tool_options.json is of
MAGIC = b"STANDIN-MONGODUMP-ARCHIVE v1\n"
BAD_OPTIONS = 3          # the tools' util.ExitBadOptions


def stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())


def log(msg):
    sys.stderr.write(f"{stamp()}\t{msg}\n")
    sys.stderr.flush()


def die(msg, code=1):
    log(f"Failed: {msg}")
    sys.exit(code)


def options_table():
    """The option tables derived from mongo-tools' sources (see tool_options.json's _source)."""
    with open(os.path.join(os.path.dirname(os.path.realpath(__file__)), "tool_options.json"), encoding="utf-8") as f:
        return json.load(f)


def parse_tool(argv, tool):
    """Parse argv as the real `tool` of the tables' release would: exactly its options, else its error.

    go-flags forms: --opt=value, --opt value, --flag, -x value, -xvalue; an
    optional-value option (--archive, --verbose) takes a value only with `=`.
    A password in argv is refused: dbrs promises it never puts one there.
    """
    table = options_table()["tools"][tool]
    short = {o["short"]: name for name, o in table.items() if "short" in o}
    opts, positional = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--password" or a.startswith("--password=") or (a.startswith("-p") and not a.startswith("--")):
            die("a password was passed in argv (the stand-in refuses it: it would show in ps and the journal)",
                BAD_OPTIONS)
        if a == "--" or not a.startswith("-") or a == "-":
            positional.append(a)
            i += 1
            continue
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
        else:
            name, eq, value = short.get(a[1:2], a[1:2]), bool(a[2:]), a[2:]
            if name == "verbose" and set(value) <= {"v"}:
                eq, value = True, str(len(value) + 1)
        opt = table.get(name)
        if opt is None:
            die(f'error parsing command line options: unknown option "{name}"', BAD_OPTIONS)
        kind = opt["kind"]
        if kind == "flag":
            if eq:
                die(f"error parsing command line options: bool flag `--{name}' cannot have an argument",
                    BAD_OPTIONS)
            opts[name] = True
        elif kind == "optional":
            opts[name] = value if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    die(f"error parsing command line options: expected argument for flag `--{name}'", BAD_OPTIONS)
                value = argv[i]
            if kind == "multi":
                opts.setdefault(name, []).append(value)
            else:
                opts[name] = value
        i += 1
    return opts, positional


def check_tls_files(opts):
    """--sslCAFile / --sslPEMKeyFile must be readable PEM, as the real tools need to build their TLS config."""
    for name, marker in (("sslCAFile", b"-----BEGIN CERTIFICATE-----"), ("sslPEMKeyFile", b"PRIVATE KEY-----")):
        path = opts.get(name)
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            die(f"can't create session: error configuring the connector: open {path}: {e.strerror}")
        if marker not in data:
            die(f"can't create session: error configuring the connector: {path} holds no PEM "
                f"{'certificate' if name == 'sslCAFile' else 'private key'}")


def read_config(opts):
    """The --config YAML: must exist, be owner-only (0600 or stricter), hold known keys and a password."""
    path = opts.get("config")
    if not path:
        die("--config is required by the stand-in: the password must come from a config file", BAD_OPTIONS)
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die(f"error opening config file {path}: {e.strerror}", BAD_OPTIONS)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        die(f"config file {path} has mode {mode:04o}; it holds a password and must be 0600", BAD_OPTIONS)
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in options_table()["config_keys"]:
            die(f"error parsing config file {path}: unknown key {key!r}", BAD_OPTIONS)
        if value.startswith('"'):
            value = json.loads(value)
        values[key] = value
    if opts.get("username") and not values.get("password"):
        die("--username given but the config file holds no password", BAD_OPTIONS)
    kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return values, {"path": path, "mode": f"{mode:04o}", "kind": kind, "keys": sorted(values)}


def record(tool, argv, config_info, password, **extra):
    path = os.environ.get("DBRS_STANDIN_RECORD")
    if not path:
        return
    want = os.environ.get("DBRS_STANDIN_EXPECT_PW_DIGEST")
    import hashlib

    entry = {
        "tool": tool,
        "argv": argv,
        "config": config_info,
        "password_matches": None if not want else hashlib.sha256((password or "").encode()).hexdigest() == want,
        "password_in_env": bool(password) and any(password in v for v in os.environ.values()),
        "password_in_argv": bool(password) and any(password in a for a in argv),
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(entry) + "\n")


def version(tool):
    print(f"{tool} version: {VERSION}\ngit version: stand-in\nGo version: go1.21.0\n   os: linux\n   arch: amd64")
    sys.exit(0)
