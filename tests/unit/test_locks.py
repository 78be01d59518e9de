"""The lock file cannot be planted: no symlink is followed, a file of another user is refused."""

import os

import pytest

from installer import locks
from installer.errors import DbrsError

from ..conftest import ROOT_ONLY


def test_symlink_is_never_followed(tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("root:x:0:0\n")
    lock = tmp_path / "dbrs-install.lock"
    lock.symlink_to(victim)
    with pytest.raises(DbrsError) as e:
        with locks.held(str(lock), "dbrs-install"):
            pass
    assert "symbolic link" in str(e.value) and f"rm {lock}" in str(e.value)
    assert victim.read_text() == "root:x:0:0\n"


@ROOT_ONLY
def test_file_of_another_user_is_refused_and_its_pid_not_reported(tmp_path):
    lock = tmp_path / "dbrs-install.lock"
    lock.write_text("4242\n")
    os.chown(lock, 65534, 65534)
    with pytest.raises(DbrsError) as e:
        with locks.held(str(lock), "dbrs-install"):
            pass
    assert "belongs to uid 65534" in str(e.value) and "4242" not in str(e.value)
    assert lock.read_text() == "4242\n"


def test_writable_by_others_is_refused(tmp_path):
    lock = tmp_path / "dbrs-install.lock"
    lock.write_text("")
    lock.chmod(0o666)
    with pytest.raises(DbrsError, match="writable by others"):
        with locks.held(str(lock), "dbrs-install"):
            pass


def test_own_lock_is_created_0600_and_names_the_holder(tmp_path):
    lock = tmp_path / "dbrs-install.lock"
    with locks.held(str(lock), "dbrs-install"):
        assert oct(lock.stat().st_mode & 0o777) == "0o600"
        assert lock.read_text() == f"{os.getpid()}\n"
    with locks.held(str(lock), "dbrs-install"):
        pass
