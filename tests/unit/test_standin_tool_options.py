"""The mongodump/mongorestore stand-ins accept exactly the options of the real tools' release.

Their tables (tests/standins/tool_options.json) are derived from
mongo-tools' options.go files by tests/standins/derive_tool_options.py;
every argv dbrs builds must parse under them, and what the real tools
would reject must be rejected.
"""

import json
import os
import subprocess
import sys

import pytest

from installer.backup import dump, mongorestore

from .backup_env import STANDINS

TABLE = json.loads((STANDINS / "tool_options.json").read_text())


def run(tool, *argv, config=None, tmp_path=None):
    args = list(argv)
    if config is not None:
        args.append(f"--config={config}")
    return subprocess.run([sys.executable, str(STANDINS / tool), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)


@pytest.fixture
def config(tmp_path):
    p = tmp_path / "tools.yaml"
    p.write_text('password: "pw"\n')
    os.chmod(p, 0o600)
    return p


def test_table_names_its_source_release():
    assert TABLE["version"] == "100.10.0"
    assert "mongo-tools at tag 100.10.0" in TABLE["_source"]
    dump, rest = TABLE["tools"]["mongodump"], TABLE["tools"]["mongorestore"]
    assert dump["oplog"]["kind"] == "flag" and "oplogReplay" not in dump
    assert rest["nsExclude"]["kind"] == "multi" and rest["archive"]["kind"] == "optional"
    assert "tls" not in dump and "ssl" in dump and "sslCAFile" in dump   # 100.10 spells TLS --ssl*


@pytest.mark.parametrize("tool,bad", [
    ("mongodump", "--oplogReplay"),          # a mongorestore option
    ("mongodump", "--tls"),                  # not an option of the 100.10 tools (they use --ssl)
    ("mongorestore", "--oplog"),             # a mongodump option
    ("mongorestore", "--nsExcludes=app.*"),  # a typo
    ("mongodump", "--gzip=true"),            # a flag takes no value
])
def test_options_the_real_tool_rejects_are_rejected(tool, bad, config):
    r = run(tool, "--host=127.0.0.1", "--username=backup", bad, config=config)
    assert r.returncode == 3, r.stderr
    assert "error parsing command line options" in r.stderr


def test_a_password_in_argv_is_refused(config):
    for form in (["--password=pw"], ["--password", "pw"], ["-ppw"], ["-p", "pw"]):
        r = run("mongodump", "--archive", *form, config=config)
        assert r.returncode == 3 and "password was passed in argv" in r.stderr, form


def test_config_keys_follow_the_tools_strict_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('password: "pw"\nusername: "backup"\n')
    os.chmod(p, 0o600)
    r = run("mongodump", "--archive", "--username=backup", config=p)
    assert r.returncode == 3 and "unknown key 'username'" in r.stderr
    assert TABLE["config_keys"] == ["destinationPassword", "password", "sslPEMKeyPassword", "uri"]


def test_every_argv_dbrs_builds_parses(tmp_path, config):
    sys.path.insert(0, str(STANDINS))
    import _standin_common as c

    argvs = [
        ("mongodump", dump.dump_argv("mongodump", 27017, str(config))),
        ("mongorestore", mongorestore.restore_argv("mongorestore", ["h1:27017", "h2:27017"], str(config), set_name="dbrs",
                                              drop=True)),
        ("mongorestore", mongorestore.restore_argv("mongorestore", ["h1:27017"], str(config), archive_stdin=False,
                                              oplog_dir=str(tmp_path), oplog_limit=(5 << 32) | 1)),
        ("mongorestore", mongorestore.restore_argv("mongorestore", ["h1:27017"], str(config), oplog_replay=False,
                                              ns_include=("app.*",))),
    ]
    for tool, argv in argvs:
        opts, positional = c.parse_tool(list(argv[1:]), tool)
        assert not positional and opts.get("config") == str(config), argv


@pytest.mark.parametrize("tool", ["mongodump", "mongorestore"])
def test_every_option_of_the_release_is_accepted(tool):
    """Exactly, not a subset: an option the real tool takes must not fail a test by the stand-in's doing."""
    sys.path.insert(0, str(STANDINS))
    import _standin_common as c

    for name, o in TABLE["tools"][tool].items():
        if name == "password":
            continue
        argv = [f"--{name}"] if o["kind"] in ("flag", "optional") else [f"--{name}", "x"]
        opts, _ = c.parse_tool(argv, tool)
        assert name in opts, name
