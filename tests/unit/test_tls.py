"""What the spec's tls becomes: mongod.conf's net.tls, client, tool, URI and Mongo Express values, reissue decisions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer import pki, tls
from installer.host import mongo_express, mongod
from installer import spec as specmod
from installer.errors import InputError
from installer.host.target import Target

from ..conftest import PSA

GOLDEN = Path(__file__).parent / "golden" / "psa-primary" / "etc" / "dbrs" / "mongod1" / "mongod.conf"
NOW = 1_790_000_000.0


def conf_with(monkeypatch, server):
    """mongod.conf() of the PSA primary, the template given `server` in place of what the spec would pass."""
    real = mongod.render
    monkeypatch.setattr(mongod, "render", lambda name, **v: real(name, **{**v, "tls": server}))
    spec = specmod.loads(PSA)
    target = Target(spec=spec, members=spec.members[:1], host_members=spec.members[:1])
    return mongod.conf(target, spec.members[0]).decode()


def test_tls_off_leaves_mongod_conf_byte_identical(monkeypatch):
    assert tls.server("off", "mongod1") is None
    assert conf_with(monkeypatch, None) == GOLDEN.read_text()


@pytest.mark.parametrize("spec_tls, step, mode", [
    ("required", None, "requireTLS"), ("preferred", None, "preferTLS"),
    ("required", "allowTLS", "allowTLS"), ("required", "preferTLS", "preferTLS"),
])
def test_mongod_conf_gets_the_net_tls_block(monkeypatch, spec_tls, step, mode):
    text = conf_with(monkeypatch, tls.server(spec_tls, "mongod1", step=step))
    block = (
        "  # TLS with the cluster's own CA (spec: cluster.tls); clients present no certificate, they use SCRAM.\n"
        "  tls:\n"
        f"    mode: {mode}\n"
        "    certificateKeyFile: /etc/dbrs/mongod1/member.pem\n"
        "    CAFile: /etc/dbrs/ca.pem\n"
        "    disabledProtocols: TLS1_0,TLS1_1\n"
        "    allowConnectionsWithoutCertificates: true\n")
    assert text == GOLDEN.read_text().replace("  bindIp: 127.0.0.1,10.0.0.11\n",
                                              "  bindIp: 127.0.0.1,10.0.0.11\n" + block)
    assert "clusterAuthMode" not in text


def test_x509_cluster_auth_is_rendered_under_security(monkeypatch):
    text = conf_with(monkeypatch, tls.server("required", "mongod1", cluster_auth="x509"))
    assert "  authorization: enabled\n  clusterAuthMode: x509\n" in text


def test_yaml_of_the_block_parses_as_mongod_reads_it(monkeypatch):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(conf_with(monkeypatch, tls.server("required", "mongod1")))
    assert doc["net"]["tls"] == {"mode": "requireTLS", "certificateKeyFile": "/etc/dbrs/mongod1/member.pem",
                                 "CAFile": "/etc/dbrs/ca.pem", "disabledProtocols": "TLS1_0,TLS1_1",
                                 "allowConnectionsWithoutCertificates": True}


def test_files_follow_the_spec_folder():
    server = tls.server("required", "mongod2", etc="/srv/other")
    assert (server.certificateKeyFile, server.CAFile) == ("/srv/other/mongod2/member.pem", "/srv/other/ca.pem")


@pytest.mark.parametrize("args, field", [
    (("on",), "cluster.tls"), (("required", "ldap"), "cluster.cluster_auth"),
    (("required", "keyfile", "requireSSL"), "--step"),
    (("off", "x509"), "cluster.cluster_auth"), (("required", "x509", "allowTLS"), "cluster.cluster_auth"),
])
def test_bad_settings_name_the_field(args, field):
    with pytest.raises(InputError) as e:
        tls.check(*args)
    assert e.value.field == field and e.value.fix


def test_rolling_enable_follows_mongodbs_order():
    assert tls.rolling_steps("disabled", "requireTLS") == ["allowTLS", "preferTLS", "requireTLS"]
    assert tls.rolling_steps("allowTLS", "preferTLS") == ["preferTLS"]
    assert tls.rolling_steps("requireTLS", "disabled") == ["preferTLS", "allowTLS", "disabled"]
    assert tls.rolling_steps("preferTLS", "preferTLS") == []


def test_clients_switch_only_once_every_member_prefers_tls():
    ca = "/etc/dbrs/ca.pem"
    for mode in ("disabled", "allowTLS"):
        assert (tls.client_kwargs(mode), tls.tool_args(mode), tls.uri_params(mode), tls.express_env(mode)) == \
            ({}, [], "", {})
    for mode in ("preferTLS", "requireTLS"):
        assert tls.client_kwargs(mode) == {"tls": True, "tlsCAFile": ca}
        assert tls.tool_args(mode) == ["--ssl", f"--sslCAFile={ca}"]
        assert tls.uri_params(mode) == f"&tls=true&tlsCAFile={ca}"
        assert tls.express_env(mode) == {"ME_CONFIG_MONGODB_SSL": "true", "ME_CONFIG_MONGODB_SSLVALIDATE": "true",
                                         "ME_CONFIG_MONGODB_CA_FILE": ca}


def test_uri_escapes_the_ca_path():
    assert tls.uri_params("requireTLS", "/opt/app certs/ca&1.pem") == "&tls=true&tlsCAFile=/opt/app%20certs/ca%261.pem"


def test_tool_args_are_what_mongo_tools_100_10_parse():
    """The stand-ins' option table is derived from mongo-tools 100.10's sources; --tls/--tlsCAFile are not in it."""
    import json

    table = json.loads((Path(__file__).parents[1] / "standins" / "tool_options.json").read_text())["tools"]
    for tool in ("mongodump", "mongorestore"):
        for arg in tls.tool_args("requireTLS"):
            assert arg[2:].split("=")[0] in table[tool], (tool, arg)
        assert "tls" not in table[tool] and "tlsCAFile" not in table[tool]


def test_mongo_express_env_gets_the_tls_values():
    from installer import secrets
    from installer.render import render

    env = tls.express_env("requireTLS")
    text = render("mongo_express/mongo-express.env.j2", bind="127.0.0.1", port=8081, basic_user="u",
                  basic_password="p", db_user="express", db_password="d", hosts=["10.0.0.11:27017"], set_name="dbrs",
                  cookie_secret="c", session_secret="s", tls_env=env).decode()
    assert "ME_CONFIG_MONGODB_SSL=true\nME_CONFIG_MONGODB_SSLVALIDATE=true\nME_CONFIG_MONGODB_CA_FILE=/etc/dbrs/ca.pem\n" \
        in text
    # without TLS the file is what it was (the mongo_express tests' expectations stay)
    spec = specmod.loads(PSA + '\n[mongo_express]\nenabled = true\n')
    sec = secrets.parse_secrets_toml(b'[passwords]\nexpress = "x"\n[mongo_express]\nbasic_auth_password = "y"\n',
                                     b"k", b"b")
    members = tuple(spec.by_role("primary"))
    plain = mongo_express.env(Target(spec=spec, members=members, host_members=members, secrets=sec)).decode()
    assert "SSL" not in plain and "CA_FILE" not in plain


# ------------------------------------------------------------------ certificate decisions

@pytest.fixture(scope="module")
def ca():
    return pki.new_ca("dbrs", NOW)


def names():
    return tls.member_names("mongod1.example", ["10.0.0.11"])


def test_member_names_cover_host_addresses_and_loopback():
    assert names() == ["mongod1.example", "localhost", "10.0.0.11", "127.0.0.1"]
    assert tls.member_names("10.0.0.11", ["10.0.0.11"], local=False) == ["10.0.0.11"]


def test_a_fitting_certificate_is_kept(ca):
    cert = pki.issue_member(ca, "dbrs", "mongod1.example", names(), NOW).cert_pem
    assert tls.certificate_problem(cert, ca.cert_pem, names(), NOW) is None
    assert tls.certificate_problem(cert, ca.cert_pem, [n.upper() for n in names()], NOW) is None


def test_reasons_to_reissue(ca):
    cert = pki.issue_member(ca, "dbrs", "mongod1.example", names(), NOW).cert_pem
    assert tls.certificate_problem(None, ca.cert_pem, names(), NOW) == "no certificate yet"
    assert tls.certificate_problem(b"junk", ca.cert_pem, names(), NOW) == "the file holds no readable certificate"
    moved = tls.member_names("mongod1.example", ["10.0.0.21"])
    assert tls.certificate_problem(cert, ca.cert_pem, moved, NOW) == \
        "it names localhost, mongod1.example, 10.0.0.11, 127.0.0.1, not mongod1.example, localhost, 10.0.0.21, 127.0.0.1"
    assert tls.certificate_problem(cert, pki.new_ca("dbrs", NOW).cert_pem, names(), NOW) == "it was signed by another CA"
    soon = NOW + (pki.LEAF_DAYS - 29.5) * 86400
    assert re.fullmatch(r"it expires in (29|30) days", tls.certificate_problem(cert, ca.cert_pem, names(), soon))
    assert tls.certificate_problem(cert, ca.cert_pem, names(), NOW + (pki.LEAF_DAYS - 31) * 86400) is None
    assert tls.certificate_problem(cert, ca.cert_pem, names(), NOW + (pki.LEAF_DAYS + 2) * 86400) == \
        "it expired 2 days ago"


@pytest.mark.parametrize("tool", ["mongodump", "mongorestore"])
def test_tool_standins_take_the_tls_args_and_check_the_ca_file(tool, tmp_path):
    """The args parse under 100.10's table; a CA file the real tool could not load fails the run."""
    import subprocess
    import sys

    standin = Path(__file__).parents[1] / "standins" / tool
    config = tmp_path / "c.yaml"
    config.write_text('password: "pw"\n')
    config.chmod(0o600)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki.new_ca("dbrs", NOW).cert_pem)

    def run(ca):
        r = subprocess.run([sys.executable, str(standin), "--archive", "--username=backup", f"--config={config}",
                            *tls.tool_args("requireTLS", ca)],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
        r.stderr = r.stderr.decode(errors="replace")
        return r

    missing = run(tmp_path / "nope.pem")
    assert missing.returncode == 1 and "nope.pem: No such file or directory" in missing.stderr
    (tmp_path / "bad.pem").write_text("hello")
    assert "holds no PEM certificate" in run(tmp_path / "bad.pem").stderr
    good = run(ca_file)
    assert "error configuring the connector" not in good.stderr and "error parsing" not in good.stderr, good.stderr
