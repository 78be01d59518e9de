"""The Vagrant cluster's files are valid: `vagrant validate` (offline, ~4 s) and the provisioning script's syntax.

`--ignore-provider` because validating the libvirt block needs an NFS server
on the machine (its two-way synced folder) and the VirtualBox block needs
VBoxManage; neither belongs on a CI machine. Debian: apt-get install vagrant.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

VAGRANT_DIR = Path(__file__).resolve().parents[2] / "vagrant"


@pytest.fixture
def copy(tmp_path):
    """A copy, so validate's .vagrant/ state never lands in the working tree."""
    for name in ("Vagrantfile", "provision.sh"):
        shutil.copy(VAGRANT_DIR / name, tmp_path / name)
    return tmp_path


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed (apt-get install vagrant)")
def test_vagrant_validate(copy):
    r = subprocess.run(["vagrant", "validate", "--ignore-provider", "--no-tty"], cwd=copy,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Vagrantfile validated successfully." in r.stdout


def test_vagrantfile_defines_the_psa_cluster():
    text = (VAGRANT_DIR / "Vagrantfile").read_text()
    for name, ip, role in (("mongod1", "11", "primary"), ("mongod2", "12", "secondary"), ("mongod3", "13", "arbiter")):
        assert f'{{ name: "{name}", ip: "#{{NETWORK}}.{ip}", role: "{role}" }}' in text
    assert 'NETWORK = "192.168.56"' in text
    assert 'config.vm.provider "libvirt"' in text and 'config.vm.provider "virtualbox"' in text


def test_provision_script_parses_and_refuses_unknown_steps():
    assert subprocess.run(["sh", "-n", str(VAGRANT_DIR / "provision.sh")]).returncode == 0
    r = subprocess.run(["sh", str(VAGRANT_DIR / "provision.sh"), "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr
