"""The host side of an install does not load the replica-set client code; the CLI hands it in for live runs."""

import subprocess
import sys

from installer import departed


def test_install_and_a_staging_run_load_no_replset_module(psa_root):
    code = ("import sys\nfrom installer.cli.install import main\n"
            f"sys.argv = ['dbrs-install', '--root', {str(psa_root)!r}, '--role', 'primary']\n"
            "import installer.install\nassert not [m for m in sys.modules if 'replset' in m], 'import'\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m.startswith('installer.replset')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[-1] == "[]"


def test_a_running_departed_member_counts_as_listed_when_nobody_can_ask_the_set(tmp_path):
    conf = tmp_path / "etc/dbrs/mongod9/mongod.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("net:\n  port: 27099\n")
    (unasked,) = departed.found(str(tmp_path), live=True, running={"mongod9"})
    assert unasked.in_set and not departed.decide(set(), [unasked])[0].stop
    (asked,) = departed.found(str(tmp_path), live=True, running={"mongod9"}, listed=lambda port: port != 27099)
    assert not asked.in_set and departed.decide(set(), [asked])[0].stop
