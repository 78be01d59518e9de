"""A dbrs the units cannot see (a venv under /root or /home, ProtectHome=yes) is refused before anything changes."""

import pytest

from installer import install
from installer.host import facts
from installer.errors import InputError


@pytest.mark.parametrize("path,hidden", [
    ("/root/dbrs/v/bin/dbrs", True),
    ("/home/ann/dbrs/v/bin/dbrs", True),
    ("/run/user/1000/v/bin/dbrs", True),
    ("/opt/dbrs/bin/dbrs", False),
    ("/usr/bin/dbrs", False),
    ("/homestead/bin/dbrs", False),
])
def test_hidden_from_units(path, hidden):
    assert (install.hidden_from_units([path]) == path) is hidden


def test_an_editable_install_from_a_home_folder_is_refused_too():
    assert install.hidden_from_units(["/opt/dbrs/bin/dbrs", "/usr/bin/python3", "/root/dbrs/installer"]) \
        == "/root/dbrs/installer"


def test_the_interpreter_of_the_script_counts(tmp_path):
    script = tmp_path / "dbrs"
    script.write_text("#!/home/ann/v/bin/python3\nimport sys\n")
    with pytest.raises(InputError) as e:
        install.check_units_can_run(str(script), "/opt/dbrs/lib/python3/site-packages/installer")
    assert "/home/ann/v/bin/python3" in str(e.value)


def test_dbrs_install_exits_2_with_the_fix_and_changes_nothing(monkeypatch, run_install, tmp_path):
    """The README's old quickstart from /root: `v/bin/dbrs-install` would have installed units that never run."""
    monkeypatch.setattr(facts, "dbrs_bin", lambda: "/root/dbrs/v/bin/dbrs")
    def planned(*a, **k):
        raise AssertionError("the refusal must come before any plan or preflight")

    monkeypatch.setattr(install.plan, "desired", planned)
    monkeypatch.setattr(install.preflight, "read", planned)
    from click.testing import CliRunner
    from installer.cli.install import main

    r = CliRunner().invoke(main, ["--dry-run"])
    assert r.exit_code == 2, r.output
    [line] = r.output.splitlines()
    assert line.startswith("error: dbrs: /root/dbrs/v/bin/dbrs is in a home folder")
    assert "203/EXEC" in line and "/opt/dbrs" in line and "nothing was changed" in line
