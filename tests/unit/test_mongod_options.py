"""The spec's [mongod] table: checked against mongod's own option table before anything changes, then rendered."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from installer import mongod_options
from installer.host import mongod
from installer.errors import SpecErrors
from installer.spec import loads, single_host
from installer.host.target import Target

from ..conftest import PSA, snapshot, write_cluster

REPO = Path(__file__).resolve().parents[2]
GIB = 1024**3


def errors_of(text):
    with pytest.raises(SpecErrors) as e:
        loads(text)
    return e.value.lines()


def test_a_typo_names_the_key_and_the_option_meant():
    lines = errors_of(PSA + '\n[mongod]\nnet.compresion.compressors = "zstd,snappy"\n')
    assert lines == ["mongod.net.compresion.compressors: not a mongod option of MongoDB 8.0 "
                     "(did you mean net.compression.compressors?)"]


@pytest.mark.parametrize("line,where,words", [
    ('storage.wiredTiger.engineConfig.cacheSizeGB = "big"', "mongod.storage.wiredTiger.engineConfig.cacheSizeGB",
     "is not a number"),
    ("storage.wiredTiger.engineConfig.cacheSizeGB = 0.1", "mongod.storage.wiredTiger.engineConfig.cacheSizeGB",
     "below mongod's minimum 0.25"),
    ("net.compression.compressors = 3", "mongod.net.compression.compressors", "is not a string"),
    ('operationProfiling.slowOpThresholdMs = "200"', "mongod.operationProfiling.slowOpThresholdMs", "not an integer"),
    ("setParameter.diagnosticDataColectionEnabled = false", "mongod.setParameter.diagnosticDataColectionEnabled",
     "is not among the 31 startup server parameters dbrs checks for MongoDB 8.0 (did you mean diagnosticDataCollectionEnabled?)"),
    ("setParameter.wiredTigerFileHandleCloseIdleTime = true", "mongod.setParameter.wiredTigerFileHandleCloseIdleTime", "is not an integer"),
    ('security.clusterIpSourceWhitelist = ["10.0.0.0/24"]', "mongod.security.clusterIpSourceWhitelist",
     "deprecated name (write security.clusterIpSourceAllowlist)"),
    ("storage.journal.enabled = true", "mongod.storage.journal.enabled", "not a mongod option"),
    ('net.tls.mode = "requireTLS"', "mongod.net.tls.mode", "does not check yet"),
    ('net.compression.compressors = "zstd,snapy"', "mongod.net.compression.compressors", "unknown compressor"),
    ('storage.wiredTiger.collectionConfig.blockCompressor = "lz4"', "mongod.storage.wiredTiger.collectionConfig.blockCompressor",
     "not one of none, snappy, zlib, zstd"),
    ('operationProfiling.mode = "slow"', "mongod.operationProfiling.mode", "not one of off, slowOp, all"),
    ('net.compression.compressors = "zstd\\nfork: true"', "mongod.net.compression.compressors", "control characters"),
    # found by the black-box attack: written verbatim, every member would have refused to start
    ("operationProfiling.slowOpThresholdMs = 99999999999999999", "mongod.operationProfiling.slowOpThresholdMs",
     "does not fit mongod's 32-bit integer (use -2147483648 to 2147483647)"),
    ("net.maxIncomingConnections = 4294967297", "mongod.net.maxIncomingConnections", "32-bit integer"),
    ("setParameter.wiredTigerCursorCacheSize = 2147483648", "mongod.setParameter.wiredTigerCursorCacheSize",
     "32-bit integer"),
])
def test_wrong_types_bounds_and_unknown_parameters_are_named(line, where, words):
    lines = errors_of(PSA + f"\n[mongod]\n{line}\n")
    assert len(lines) == 1 and lines[0].startswith(where + ":") and words in lines[0], lines


@pytest.mark.parametrize("line,fix", [
    ("net.port = 27018", "members[].port"),
    ('net.bindIp = "0.0.0.0"', "members[].host"),
    ("net.bindIpAll = true", "cluster.allow"),
    ('replication.replSetName = "rs0"', "cluster.name"),
    ("replication.oplogSizeMB = 2048", "cluster.oplog_size_mb"),
    ('security.keyFile = "/tmp/k"', "keyfile"),
    ('security.authorization = "disabled"', "authorization enabled"),
    ('storage.dbPath = "/srv/db"', "/var/lib/dbrs"),
    ("systemLog.verbosity = 2", "logrotate"),
    ("processManagement.fork = true", "systemd"),
    ("setParameter.enableLocalhostAuthBypass = false", "localhost exception"),
])
def test_options_dbrs_owns_are_refused_with_the_spec_field_to_use(line, fix):
    lines = errors_of(PSA + f"\n[mongod]\n{line}\n")
    assert len(lines) == 1 and "is set by dbrs" in lines[0] and fix in lines[0], lines


def test_every_problem_is_reported_at_once_including_per_member_tables():
    text = PSA.replace('role = "secondary"\n', 'role = "secondary"\n[members.mongod]\nnet.maxIncomingConections = 5\n')
    lines = errors_of(text + '\n[mongod]\nnet.port = 1\nstorage.wiredTiger.engineConfig.cacheSizeGB = "x"\n')
    assert sorted(line.split(":")[0] for line in lines) == [
        "members[1].mongod.net.maxIncomingConections", "mongod.net.port",
        "mongod.storage.wiredTiger.engineConfig.cacheSizeGB"]


def test_a_member_mongod_that_is_not_a_table_is_one_error():
    """Found by the black-box attack: the field table and the option check both said it."""
    text = PSA.replace('role = "primary"', 'role = "primary"\nmongod = 5', 1)
    assert text != PSA
    lines = errors_of(text)
    assert len(lines) == 1 and lines[0].startswith("members[0].mongod: 5 is not a table"), lines


@pytest.mark.parametrize("value,ok", [(989, False), (990, True), (51200, True), (1024**3 + 1, False)])
def test_oplog_size_has_mongodbs_bounds(value, ok):
    text = PSA.replace('write_concern = "majority"', f'write_concern = "majority"\noplog_size_mb = {value}')
    if ok:
        assert loads(text).cluster.oplog_size_mb == value
    else:
        assert errors_of(text)[0].startswith("cluster.oplog_size_mb: ")


OPTIONS = '''
[mongod]
net.compression.compressors = "zstd,snappy"
storage.wiredTiger.engineConfig.cacheSizeGB = 2.5
setParameter.diagnosticDataCollectionEnabled = false
operationProfiling.slowOpThresholdMs = 250
'''


def _target(spec, memory=None):
    return Target(spec=spec, members=spec.members, host_members=spec.members, memory_bytes=memory)


def test_options_are_merged_into_every_members_conf_and_members_override():
    text = PSA.replace('role = "secondary"\n', 'role = "secondary"\n[members.mongod]\noperationProfiling.slowOpThresholdMs = 50\n')
    text = text.replace('write_concern = "majority"', 'write_concern = "majority"\noplog_size_mb = 4096')
    spec = loads(text + OPTIONS)
    t = _target(spec)
    confs = {m.name: mongod.conf(t, m).decode() for m in spec.members}
    for name, conf in confs.items():
        assert "\nnet:\n  port: 27017\n" in conf
        assert '\n  compression:\n    compressors: "zstd,snappy"\n' in conf
        assert "\n  wiredTiger:\n    engineConfig:\n      cacheSizeGB: 2.5\n" in conf
        assert "\nsetParameter:\n  diagnosticDataCollectionEnabled: false\n" in conf
        assert "\n  oplogSizeMB: 4096\n" in conf
        assert conf.count("\nnet:") == 1 and conf.count("\nstorage:") == 1
    assert "slowOpThresholdMs: 250" in confs["mongod1"] and "slowOpThresholdMs: 50" in confs["mongod2"]


def test_the_operators_cache_size_wins_over_dbrs_split():
    one = single_host()
    split = mongod.conf(_target(one, 9 * GIB), one.members[0]).decode()
    assert "cacheSizeGB: 2.0" in split and "this host runs more than one data-bearing member" in split
    chosen = loads(_single_text() + OPTIONS)
    conf = mongod.conf(_target(chosen, 9 * GIB), chosen.members[0]).decode()
    assert "cacheSizeGB: 2.5" in conf and "cacheSizeGB: 2.0" not in conf and conf.count("wiredTiger:") == 1


def _single_text():
    from installer.cluster import spec_text

    return spec_text(single_host()).decode()


def _standin_parse(conf, version="8.0"):
    """The strict stand-in mongod's own config check (the same table, mongod's exit code 2)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("standin_mongod", str(REPO / "tests/standins/mongod"))
    spec = importlib.util.spec_from_loader("standin_mongod", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod, mod.typed_options(mod.parse_yaml(conf, "mongod.conf"), version)


def test_the_rendered_conf_passes_the_strict_standin_and_yaml():
    yaml = pytest.importorskip("yaml")
    spec = loads(PSA + OPTIONS)
    conf = mongod.conf(_target(spec), spec.members[0]).decode()
    _, opts = _standin_parse(conf)
    assert opts["net.compression.compressors"] == "zstd,snappy"
    assert opts["setParameter.diagnosticDataCollectionEnabled"] == "false"  # its IDL gives no C++ type: mongod parses it
    doc = yaml.safe_load(conf)
    assert doc["storage"]["wiredTiger"]["engineConfig"]["cacheSizeGB"] == 2.5
    assert doc["setParameter"] == {"diagnosticDataCollectionEnabled": False}


@pytest.mark.parametrize("extra,message", [
    ("net:\n  compresion:\n    compressors: zstd\n", "Unrecognized option: net.compresion.compressors"),
    ("setParameter:\n  diagnosticDataColectionEnabled: false\n", "Unknown --setParameter 'diagnosticDataColectionEnabled'"),
    ("setParameter:\n  wiredTigerFileHandleCloseIdleTime: lots\n", "not a number"),
    ("storage:\n  journal:\n    enabled: true\n", "Unrecognized option: storage.journal.enabled"),
    ("operationProfiling:\n  slowOpThresholdMs: 99999999999999999\n", "out of range"),
    ("net:\n  compression:\n    compressors: zstd,snapy\n", "Invalid network message compressor"),
])
def test_the_standin_refuses_what_the_table_refuses(extra, message):
    mod, _ = _standin_parse("storage:\n  dbPath: /tmp\n")
    with pytest.raises(mod.Fatal) as e:
        mod.typed_options(mod.parse_yaml("storage:\n  dbPath: /tmp\n" + extra, "mongod.conf"), "8.0")
    assert message in str(e.value) and e.value.code == 2


def test_a_bad_mongod_table_stops_dbrs_install_before_anything_changes(staging, run_install):
    write_cluster(staging, PSA + '\n[mongod]\nnet.compresion.compressors = "zstd"\n')
    before = snapshot(staging)
    result = run_install("--root", str(staging), "--role", "primary")
    assert result.exit_code == 2, result.output
    assert "error: mongod.net.compresion.compressors: not a mongod option of MongoDB 8.0" in result.output
    assert "Traceback" not in result.output and snapshot(staging) == before


def test_tables_exist_for_every_supported_version_with_their_sources():
    from installer.spec import VERSIONS

    for v in VERSIONS:
        t = mongod_options.table(v)
        assert t["mongodb"] == v and t["source"]["repository"] == "mongodb/mongo" and t["source"]["files"]
        assert "net.compression.compressors" in t["options"] and "diagnosticDataCollectionEnabled" in t["server_parameters"]
        assert all(e["type"] in ("bool", "int", "float", "string", "string_list", "map", "any")
                   for e in list(t["options"].values()) + list(t["server_parameters"].values()))


IDL = '''
global:
    configs:
        source: [cli, ini, yaml]
server_parameters:
    atStartup: {set_at: [startup, runtime], cpp_vartype: "AtomicWord<bool>", validator: {gte: 1}}
    runtimeOnly: {set_at: runtime, cpp_vartype: int}
    debugOnly: {set_at: startup, cpp_vartype: int, condition: {constexpr: kDebugBuild}}
configs:
    "net.thing": {arg_vartype: Int, validator: {gte: 1, lte: 9}}
    "net.wide": {arg_vartype: Long}
    "net.count": {arg_vartype: Unsigned}
    "net.cliOnly": {arg_vartype: Switch, source: [cli, ini]}
    cliword: {arg_vartype: Switch}
    "security.newName": {arg_vartype: StringVector, deprecated_name: "security.oldName"}
'''


def test_the_generator_reads_idl_configs_and_startup_parameters(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "src/mongo/db").mkdir(parents=True)
    (tmp_path / "src/mongo/db/x.idl").write_text(IDL)
    out = tmp_path / "t.json"
    subprocess.run([sys.executable, str(REPO / "tools/mongod_options/generate.py"), "--dir", str(tmp_path),
                    "--version", "8.0", "--out", str(out), "--drop", "net.gone=reason"], check=True)
    t = json.loads(out.read_text())
    assert t["options"] == {"net.thing": {"type": "int", "min": 1, "max": 9}, "net.wide": {"type": "int", "bits": 64},
                            "net.count": {"type": "int", "min": 0},
                            "security.newName": {"type": "string_list"}}
    assert t["deprecated"] == {"security.oldName": "security.newName"}
    assert t["server_parameters"] == {"atStartup": {"type": "bool", "min": 1}}
    assert t["source"]["files"] == {"src/mongo/db/x.idl": "unknown"} and t["source"]["dropped"] == {"net.gone": "reason"}
