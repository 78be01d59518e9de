"""Mongo Express: planned only for the primary host when enabled, secret env file, hardened unit, real serve.

The serve test installs mongo-express 1.0.0 with the very argv dbrs-install
uses and starts it with the rendered env file against MockupDB acting as a
one-member replica-set primary that checks SCRAM-SHA-256 (the node driver
verifies the server's signature, so a lenient mock could not pass).
"""

import base64
import datetime
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from installer import secrets
from installer.host import facts, mongo_express
from installer import spec as specmod
from installer.host.apply import apply
from installer.host.items import NpmPackage
from installer.host.registry import compare, gather
from installer.host.target import Target

from ..conftest import PSA, SECRETS, snapshot, write_cluster

ENABLED = PSA + "\n[mongo_express]\nenabled = true\nport = 9081\n"
ENV = "etc/dbrs/mongo-express.env"
UNIT = "etc/systemd/system/dbrs-mongo-express.service"
BASIC_PW = "basic-pw-0000000000000000000000"
DB_PW = "express-pw-00000000000000000000"


def install(run_install, root, *args):
    result = run_install("--root", str(root), *args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def express_root(staging):
    write_cluster(staging, ENABLED)
    return staging


def test_rendered_on_the_primary_host_only(express_root, run_install):
    install(run_install, express_root, "--role", "secondary")
    install(run_install, express_root, "--role", "arbiter")
    assert not (express_root / ENV).exists() and not (express_root / UNIT).exists()
    install(run_install, express_root, "--role", "primary")
    assert (express_root / ENV).is_file() and (express_root / UNIT).is_file()


def test_not_rendered_when_disabled(psa_root, run_install):
    install(run_install, psa_root, "--role", "primary")
    assert not (psa_root / ENV).exists() and not (psa_root / UNIT).exists()


def test_env_file_is_root_0600_bound_to_loopback(express_root, run_install):
    install(run_install, express_root, "--role", "primary")
    env_file = express_root / ENV
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = parse_env(env_file.read_text())
    assert env["VCAP_APP_HOST"] == "127.0.0.1"
    assert env["PORT"] == "9081"
    assert env["ME_CONFIG_BASICAUTH_USERNAME"] == "dbrs"
    assert env["ME_CONFIG_BASICAUTH_PASSWORD"] == BASIC_PW
    # data-bearing members only (no arbiter), the express user authenticated against admin
    assert env["ME_CONFIG_MONGODB_URL"] == (
        f"mongodb://express:{DB_PW}@10.0.0.11:27017,10.0.0.12:27017/?replicaSet=dbrs&authSource=admin")
    for key in ("ME_CONFIG_SITE_COOKIESECRET", "ME_CONFIG_SITE_SESSIONSECRET"):
        assert len(env[key]) == 64 and env[key] not in ("cookiesecret", "sessionsecret")


def test_dry_run_never_shows_the_env_file(express_root, run_install):
    before = snapshot(express_root)
    result = install(run_install, express_root, "--role", "primary", "--dry-run")
    assert snapshot(express_root) == before
    assert "--- /etc/dbrs/mongo-express.env\n+++ /etc/dbrs/mongo-express.env\n(secret," in result.output
    assert BASIC_PW not in result.output and DB_PW not in result.output
    assert "+ExecStart=/usr/bin/node /opt/dbrs/mongo-express/node_modules/mongo-express/app.js" in result.output


def test_second_run_changes_nothing(express_root, run_install):
    install(run_install, express_root, "--role", "primary")
    before = snapshot(express_root)
    again = install(run_install, express_root, "--role", "primary")
    assert again.output.splitlines()[-1].startswith("0 changed, ")
    assert snapshot(express_root) == before


def test_missing_basic_auth_password_names_the_field(staging, run_install):
    write_cluster(staging, ENABLED)
    secrets_file = staging / "etc/dbrs/secrets.toml"
    secrets_file.chmod(0o600)
    secrets_file.write_bytes(SECRETS.split(b"[mongo_express]")[0])
    before = snapshot(staging)
    result = run_install("--root", str(staging), "--role", "primary")
    assert result.exit_code == 2
    assert "mongo_express.basic_auth_password" in result.output
    assert snapshot(staging) == before


# ------------------------------------------------------------- plan items

def target(live, packages, spec_text=ENABLED, role="primary"):
    spec = specmod.loads(spec_text)
    sec = secrets.parse_secrets_toml(SECRETS, b"k", b"b")
    members = tuple(spec.by_role(role))
    return Target(spec=spec, members=members, host_members=members, live=live, packages=packages, secrets=sec)


def test_live_host_gets_node_npm_and_the_service():
    items = mongo_express.items(target(live=True, packages=True))
    pkgs = [i for i in items if i.kind == "packages"]
    assert [p.names for p in pkgs] == [("nodejs", "npm")]
    assert [i for i in items if i.kind == "npm"] == [NpmPackage("mongo-express", "1.0.0", "/opt/dbrs/mongo-express")]
    assert [s.unit for s in mongo_express.services(target(True, True))] == ["dbrs-mongo-express.service"]
    # --no-packages: the files, and a look (never an install) whether mongo-express is there
    no_pkgs = mongo_express.items(target(live=True, packages=False))
    assert {i.kind for i in no_pkgs} == {"file", "npm"}
    assert [i.check_only for i in no_pkgs if i.kind == "npm"] == [True]
    assert mongo_express.items(target(True, True, role="secondary")) == []
    assert mongo_express.services(target(True, True, spec_text=PSA)) == []


def test_npm_argv_is_exact_and_shell_free():
    argv = mongo_express.npm_argv("mongo-express", "1.0.0", "/opt/dbrs/mongo-express")
    assert argv == ["npm", "install", "--prefix", "/opt/dbrs/mongo-express", "--omit=dev", "--no-audit",
                    "--no-fund", "--ignore-scripts", "mongo-express@1.0.0"]


def test_npm_item_states():
    item = NpmPackage("mongo-express", "1.0.0", "/opt/dbrs/mongo-express")
    assert compare([item], {item.key: ""})[0].reasons == ["new"]
    assert compare([item], {item.key: "1.0.2"})[0].reasons == ["version 1.0.2->1.0.0"]
    assert compare([item], {item.key: "1.0.0"})[0].status == "unchanged"
    assert facts.parse_npm_package_json('{"name": "x", "version": "1.0.0"}') == "1.0.0"
    assert facts.parse_npm_package_json("not json") == ""


def test_npm_apply_then_fact_converges(tmp_path, monkeypatch):
    """apply runs npm with our argv (a recording stand-in here); the fact then reads the version it installed."""
    bin_dir, log = tmp_path / "bin", tmp_path / "argv"
    bin_dir.mkdir()
    fake = bin_dir / "npm"
    fake.write_text('#!/bin/sh\n# npm stand-in: records argv, installs a package.json\n'
                    f'printf "%s\\n" "$@" > {log}\n'
                    'mkdir -p "$3/node_modules/mongo-express"\n'
                    'echo \'{"name": "mongo-express", "version": "1.0.0"}\' > "$3/node_modules/mongo-express/package.json"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    root = tmp_path / "root"
    item = NpmPackage("mongo-express", "1.0.0", "/opt/dbrs/mongo-express")
    changes = compare([item], gather([item], str(root), live=True))
    assert changes[0].changed
    apply(changes, root=str(root), live=False)
    assert log.read_text().split("\n")[:-1] == mongo_express.npm_argv(
        "mongo-express", "1.0.0", str(root / "opt/dbrs/mongo-express"))[1:]
    assert compare([item], gather([item], str(root), live=True))[0].status == "unchanged"


# ------------------------------------------------------------- the unit

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


@pytest.fixture
def unit_file(express_root, run_install, tmp_path):
    install(run_install, express_root, "--role", "primary")
    out = tmp_path / "verify"
    out.mkdir()
    shutil.copy(express_root / UNIT, out / "dbrs-mongo-express.service")
    return out / "dbrs-mongo-express.service"


@needs_analyze
def test_unit_passes_systemd_analyze_verify(unit_file):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_file)],
                       capture_output=True, text=True, cwd=unit_file.parent)
    # node and app.js are not on every test machine; everything else must be clean
    allowed = re.compile(r"Command /usr/bin/node is not executable")
    problems = [line for line in r.stderr.splitlines() if line.strip() and not allowed.search(line)]
    assert not problems, problems


@needs_analyze
def test_unit_is_sandboxed_but_keeps_what_node_needs(unit_file):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit_file)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 1.5
    active = [line for line in unit_file.read_text().splitlines() if not line.startswith("#")]
    assert "MemoryDenyWriteExecute=yes" not in active   # V8's JIT
    assert "DynamicUser=yes" in active and "EnvironmentFile=/etc/dbrs/mongo-express.env" in active
    assert "CapabilityBoundingSet=" in active


# ------------------------------------------------------------- real serve

def parse_env(text):
    """KEY=VALUE lines as systemd's EnvironmentFile= reads our (unquoted) file."""
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def installed_mongo_express():
    """mongo-express 1.0.0 installed with dbrs's own npm argv, cached between runs (~25 s the first time)."""
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("node/npm not installed (apt-get install nodejs npm)")
    cache = Path(os.environ.get("DBRS_TEST_CACHE", Path.home() / ".cache/dbrs-tests")) / "mongo-express-1.0.0"
    if facts.npm_version(None, str(cache), "mongo-express") != mongo_express.VERSION:
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=60)
        if ping.returncode != 0:
            pytest.skip("npm registry unreachable: " + (ping.stderr.strip().splitlines() or ["npm ping failed"])[-1])
        r = subprocess.run(mongo_express.npm_argv("mongo-express", mongo_express.VERSION, str(cache)),
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    assert facts.npm_version(None, str(cache), "mongo-express") == "1.0.0"
    return cache


class ReplicaSetPrimary:
    """MockupDB answering as the only member (PRIMARY) of set "dbrs", with SCRAM-SHA-256 for `express`."""

    def __init__(self, password):
        from mockupdb import MockupDB

        scram = pytest.importorskip("tests.protocol.scram", reason="tests/protocol/scram.py (SCRAM helper) missing")
        self.scram = scram
        self.creds = scram.credentials(password)
        self.server = MockupDB(auto_ismaster=False)
        self.port = self.server.run()
        self.address = f"127.0.0.1:{self.port}"
        self.conversations = {}
        self.commands = []
        self.server.autoresponds(self.answer)

    def answer(self, request):
        from bson import Binary

        name = next(iter(request.doc), "")
        self.commands.append(name)
        if name.lower() in ("ismaster", "hello"):
            # MongoDB 8.0's hello of a primary; node driver 4.17 speaks wire versions 6..17
            return request.reply(ismaster=True, isWritablePrimary=True, secondary=False, setName="dbrs",
                                 hosts=[self.address], me=self.address, minWireVersion=0, maxWireVersion=25,
                                 saslSupportedMechs=["SCRAM-SHA-256"], maxBsonObjectSize=16 * 1024 * 1024,
                                 maxMessageSizeBytes=48_000_000, maxWriteBatchSize=100_000,
                                 logicalSessionTimeoutMinutes=30,
                                 localTime=datetime.datetime.now(datetime.timezone.utc))
        if name == "saslStart":
            if request.doc.get("mechanism") != "SCRAM-SHA-256":
                return request.command_err(2, "only SCRAM-SHA-256 here")
            conv = self.scram.Conversation(lambda user: self.creds if user == "express" else None)
            cid = len(self.conversations) + 1
            self.conversations[cid] = conv
            return request.reply(conversationId=cid, payload=Binary(conv.start(request.doc["payload"])), done=False)
        if name == "saslContinue":
            try:
                out = self.conversations[request.doc["conversationId"]].step(request.doc["payload"])
            except self.scram.AuthFailed:
                return request.command_err(18, "Authentication failed.")
            return request.reply(conversationId=request.doc["conversationId"], payload=Binary(out), done=True)
        if name == "listDatabases":
            return request.reply(databases=[{"name": "app", "sizeOnDisk": 8192, "empty": False}], totalSize=8192)
        if name == "listCollections":
            return request.reply(cursor={"id": 0, "ns": f"{request.doc['$db']}.$cmd.listCollections", "firstBatch": []})
        if name == "serverStatus":
            return request.reply(host="mongod1", version="8.0.4", uptime=60,
                                 localTime=datetime.datetime.now(datetime.timezone.utc))
        if name in ("ping", "endSessions"):
            return request.reply()
        return request.command_err(59, f"no such command: '{name}'")

    def stop(self):
        self.server.stop()


def get(url, auth=None):
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_serves_on_loopback_behind_basic_auth(installed_mongo_express, tmp_path, run_install):
    import psutil

    mongod = ReplicaSetPrimary(DB_PW)
    web_port = free_port()
    spare = [free_port(), free_port()]
    spec = (PSA.replace('"10.0.0.11"', '"127.0.0.1"').replace('"10.0.0.12"', '"127.0.0.1"')
            .replace('"10.0.0.13"', '"127.0.0.1"'))
    ports = iter([mongod.port] + spare)
    spec = re.sub(r"port = 27017", lambda m: f"port = {next(ports)}", spec)
    spec += f"\n[mongo_express]\nenabled = true\nport = {web_port}\n"
    root = tmp_path / "root"
    write_cluster(root, spec)
    install(run_install, root, "--role", "primary")
    env = parse_env((root / ENV).read_text())
    app = mongo_express.app_js(str(installed_mongo_express))
    proc = subprocess.Popen(["node", app], env={"PATH": os.environ["PATH"], "NODE_ENV": "production", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web_port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = get(url)
                break
            except OSError:
                assert proc.poll() is None, "".join(output)
                assert time.monotonic() < deadline, "mongo-express did not listen in 30 s:\n" + "".join(output)
                time.sleep(0.2)
        assert status == 401
        assert get(url, "dbrs:wrong")[0] == 401
        status, body = get(url, f"dbrs:{BASIC_PW}")
        assert status == 200, "".join(output)
        assert b"Mongo Express" in body and b"8.0.4" in body   # serverStatus from the mock, via SCRAM
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening == [(("127.0.0.1", web_port))], listening
        assert {"saslStart", "saslContinue", "listDatabases", "serverStatus"} <= set(mongod.commands)
    finally:
        proc.terminate()
        proc.wait(10)
        mongod.stop()


def test_no_packages_without_the_tree_says_so_instead_of_start():
    t = target(live=True, packages=False)
    items = mongo_express.items(t) + mongo_express.services(t)
    npm = [i for i in items if i.kind == "npm"][0]
    svc = [i for i in items if i.kind == "service"][0]
    missing = {c.item.key: c for c in compare(items, {npm.key: "", svc.key: facts.ServiceFact("", "inactive")})}
    assert missing[npm.key].status == "skipped" and "--no-packages" in missing[npm.key].reasons[0]
    assert missing[svc.key].status == "skipped" and "start" not in missing[svc.key].reasons
    there = {c.item.key: c for c in compare(items, {npm.key: "1.0.0", svc.key: facts.ServiceFact("", "inactive")})}
    assert there[npm.key].status == "unchanged" and there[svc.key].reasons == ["enable", "start"]


def test_turned_off_is_stopped_disabled_and_its_files_removed():
    t = target(live=True, packages=True, spec_text=PSA)
    items = mongo_express.items(t)
    assert [(i.kind, getattr(i, "path", getattr(i, "unit", ""))) for i in items] == [
        ("service", "dbrs-mongo-express.service"), ("absent", "/etc/dbrs/mongo-express.env"),
        ("absent", "/etc/systemd/system/dbrs-mongo-express.service")]
    present = facts.PathFact(True, "file", b"x", 0o600)
    on = compare(items, {items[0].key: facts.ServiceFact("enabled", "active"), items[1].key: present,
                         items[2].key: present})
    assert [c.reasons for c in on] == [["stop", "disable"], ["remove"], ["remove"]]
    gone = compare(items, {items[0].key: facts.ServiceFact(loaded=False), items[1].key: facts.PathFact(False),
                           items[2].key: facts.PathFact(False)})
    assert not any(c.changed for c in gone)
    assert mongo_express.items(target(True, True, role="secondary", spec_text=PSA)) == []


def test_turning_it_off_converges_under_root(staging, run_install):
    from tests.conftest import write_cluster

    write_cluster(staging, PSA + "[mongo_express]\nenabled = true\n")
    assert run_install("--root", str(staging), "--role", "primary").exit_code == 0
    env = staging / "etc/dbrs/mongo-express.env"
    unit = staging / "etc/systemd/system/dbrs-mongo-express.service"
    assert env.exists() and unit.exists()
    write_cluster(staging, PSA)
    r = run_install("--root", str(staging), "--role", "primary")
    assert r.exit_code == 0
    assert "changed   no file /etc/dbrs/mongo-express.env (remove)" in r.output
    assert not env.exists() and not unit.exists()
    again = run_install("--root", str(staging), "--role", "primary")
    assert "\n0 changed," in again.output
