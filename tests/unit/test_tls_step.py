"""The host-local rolling TLS step (/var/lib/dbrs/tls-mode): mongod.conf and every client follow it, not cluster.tls,
while `dbrs tls enable` is under way; it goes once the spec says the same."""

import pytest

from installer import paths, spec as specmod, tls
from installer.replset import connection

from ..conftest import PSA, snapshot, write_cluster
from .test_connection_tls import dialed  # noqa: F401  (the fixture)
from .test_install_tls import TLS_PSA, _with_ca


def _step(root, mode):
    p = root / str(paths.TLS_STEP).lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(mode + "\n")
    return p


def test_install_renders_the_step_and_issues_the_certificate_under_an_off_spec(staging, run_install):
    _with_ca(staging, PSA)
    _step(staging, "allowTLS")
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    conf = (staging / "etc/dbrs/mongod2/mongod.conf").read_text()
    assert "mode: allowTLS" in conf
    assert (staging / "etc/dbrs/mongod2/member.pem").exists()
    assert (staging / str(paths.TLS_STEP).lstrip("/")).exists()


def test_the_step_goes_once_the_spec_says_the_same(staging, run_install):
    _with_ca(staging, TLS_PSA)
    step = _step(staging, "requireTLS")
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert not step.exists()
    assert "mode: requireTLS" in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_a_step_file_with_garbage_is_refused_naming_it(staging, run_install):
    _with_ca(staging, PSA)
    _step(staging, "x" * 5000)
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert "tls-mode: holds" in r.output and len(r.output) < 600
    assert snapshot(staging) == before


@pytest.mark.parametrize("spec_tls,step,dials_tls", [
    ("off", None, False), ("off", "allowTLS", False), ("off", "preferTLS", True), ("off", "requireTLS", True),
    ("required", "allowTLS", False), ("required", None, True)])
def test_clients_dial_tls_only_from_prefer(dialed, tmp_path, spec_tls, step, dials_tls):
    text = PSA.replace('write_concern = "majority"\n', f'write_concern = "majority"\ntls = "{spec_tls}"\n', 1)
    step_path = tmp_path / "tls-mode"
    if step:
        step_path.write_text(step)
    connection.use_tls(specmod.loads(text), tmp_path, step_path)
    connection.client("127.0.0.1", 27017)
    assert ("tls" in dialed[-1]) is dials_tls


def test_backup_tools_follow_the_step(tmp_path, monkeypatch):
    from installer.backup import full

    step_path = tmp_path / "tls-mode"
    step_path.write_text("preferTLS\n")
    monkeypatch.setattr(paths, "TLS_STEP", step_path)
    assert full.tls_args(specmod.loads(PSA), tmp_path / "cluster.toml") == ["--ssl", f"--sslCAFile={tmp_path / 'ca.pem'}"]
    step_path.write_text("allowTLS\n")
    assert full.tls_args(specmod.loads(PSA), tmp_path / "cluster.toml") == []


def test_setting_tls_edits_the_spec_in_place_and_raises_the_generation(tmp_path):
    from installer import spec_edit

    path = write_cluster(tmp_path, PSA.replace("[cluster]\n", "[cluster]\n# our cluster\n", 1))
    out = spec_edit.change(str(path), None, spec_edit.setting_tls("required"))
    text = path.read_text()
    assert "# our cluster" in text and text.count("tls =") == 1
    got = specmod.load(path)
    assert got.cluster.tls == "required" and got.cluster.generation == out.generation == 2
    spec_edit.change(str(path), None, spec_edit.setting_tls("off"))
    assert specmod.load(path).cluster.tls == "off" and path.read_text().count("tls =") == 1


def test_enable_refuses_bundle_without_passphrase_and_non_root(tmp_path, run_dbrs, monkeypatch):
    path = write_cluster(tmp_path, PSA)
    r = run_dbrs("tls", "enable", "--bundle", "b.dbrs", "--config", str(path))
    assert r.exit_code == 2 and "--bundle: needs --passphrase-file" in r.output
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    r = run_dbrs("tls", "enable", "--config", str(path))
    assert r.exit_code == 2 and "must run as root" in r.output
    r = run_dbrs("tls", "enable", "--to", "sideways", "--config", str(path))
    assert r.exit_code == 2 and "--to" in r.output


def test_enable_prepares_one_member_conf_and_certificate_at_the_step(staging):
    """What the restart of one member loads: its mongod.conf at the step and its certificate; the other members'
    files stay as they are (they restart later, one at a time)."""
    from installer import enable_run, install

    _with_ca(staging, PSA)
    step = _step(staging, "allowTLS")
    host = enable_run.Host(staging / "etc/dbrs", step, install.Options(root=str(staging)))
    host.prepare("mongod2")
    assert "mode: allowTLS" in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()
    assert (staging / "etc/dbrs/mongod2/member.pem").exists()
    assert not (staging / "etc/dbrs/mongod1/mongod.conf").exists()
    assert not (staging / "etc/dbrs/mongod1/member.pem").exists()


@pytest.mark.parametrize("plain,tls_ok,up,want", [
    (True, False, True, "disabled"), (False, True, True, "requireTLS"), (False, False, True, None),
    (True, True, True, "allowTLS"), (True, True, False, "preferTLS")])
def test_an_arbiter_read_from_the_wire_never_lets_the_roll_guess(plain, tls_ok, up, want):
    assert tls.mode_from_probe(plain, tls_ok, up) == want


def test_an_arbiter_that_refuses_getparameter_is_read_from_its_conf_here_or_the_wire_elsewhere(monkeypatch, tmp_path):
    """Real mongod: an arbiter holds no users, so getParameter is refused; the roll still needs its mode."""
    from installer import enable_run
    from installer.errors import DbrsError

    spec = specmod.loads(PSA)
    arb = next(m for m in spec.members if m.arbiter)

    def refused(*a, **kw):
        raise DbrsError("Authentication failed")

    monkeypatch.setattr(connection, "connect_member", refused)
    monkeypatch.setattr(enable_run, "probe", lambda m: (True, True))
    (tmp_path / arb.name).mkdir()
    (tmp_path / arb.name / "mongod.conf").write_text("net:\n  tls:\n    mode: preferTLS\n")

    class Pw:
        def password(self, user):
            return "pw"

    class Here(enable_run.Host):
        def is_local(self, name):
            return True

        def started_at(self, name):
            return 4e9

    assert enable_run.member_mode(spec, Pw(), arb, Here(tmp_path), up=True) == "preferTLS"
    assert enable_run.member_mode(spec, Pw(), arb, enable_run.Host(tmp_path / "elsewhere"), up=True) == "allowTLS"
    with pytest.raises(DbrsError):
        enable_run.member_mode(spec, Pw(), spec.members[0], Here(tmp_path))


def test_enable_without_the_ca_asks_for_the_bundle_before_anything(tmp_path, run_dbrs, monkeypatch):
    path = write_cluster(tmp_path, PSA)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    r = run_dbrs("tls", "enable", "--config", str(path))
    assert r.exit_code == 2 and "--bundle: is needed" in r.output and "ca.key" in r.output


def test_a_spec_edit_re_seal_keeps_the_cluster_ca_in_the_bundle(tmp_path):
    """The other hosts issue their member certificates with the CA the bundle carries: a re-seal without it
    (dbrs tls enable's last step, dbrs member) would leave them unable to install a TLS cluster."""
    from installer import pki, secrets as secretsmod, spec_edit

    path = write_cluster(tmp_path, PSA)
    sec = secretsmod.load(path, keyfile=True)
    ca = pki.new_ca("dbrs", 1.8e9)
    bundle = tmp_path / "etc/dbrs/bundle.dbrs"
    bundle.write_bytes(secretsmod.seal_bundle(path.read_text(), sec, "correct horse battery",
                                              {"ca.key": ca.key_pem, "ca.pem": ca.cert_pem}))
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    spec_edit.change(str(path), str(pw), spec_edit.setting_tls("required"))
    opened = secretsmod.open_bundle(bundle.read_bytes(), "correct horse battery")
    assert opened.files.get("ca.key") == ca.key_pem and 'tls = "required"' in opened.spec_text


def test_a_step_file_that_holds_the_members_below_the_spec_is_said(staging, run_install):
    """Found by the black-box attack: a left-over step file made a fresh install under tls = "required" write
    every mongod.conf without TLS, and no line said why."""
    _with_ca(staging, TLS_PSA)
    (staging / "var/lib/dbrs").mkdir(parents=True)
    (staging / "var/lib/dbrs/tls-mode").write_text("disabled\n")
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "note      tls mode: the members run disabled from /var/lib/dbrs/tls-mode" in r.output
    assert "not the spec's requireTLS" in r.output and "delete the file if no roll is under way" in r.output
