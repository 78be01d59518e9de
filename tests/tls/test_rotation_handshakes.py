"""A CA roll with real handshakes against the stand-in mongod: during the overlap a client (or member) whose
CA file holds old + new connects to members of either CA, a member certificate from the new CA verifies, and the
probes `dbrs tls rotate` relies on (does a member trust the new CA? does it present one of its certificates?)
tell the states apart."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import PyMongoError

from installer import pki, rotate_run, rotation, tls

from .conftest import NOW, Member


def hello(port, ca_file):
    c = pymongo.MongoClient("127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=3000,
                            connectTimeoutMS=3000, tls=True, tlsCAFile=str(ca_file))
    try:
        return c.admin.command("hello")
    finally:
        c.close()


@pytest.fixture
def roll(tmp_path, ca):
    """The old CA (the session's), a new one, and CA files holding old only, new only, and new + old."""
    new = pki.new_ca("dbrs", NOW)
    files = {"old": ca.cert_pem, "new": new.cert_pem, "both": rotation.ca_roll_file(new.cert_pem, ca.cert_pem)}
    paths = {}
    for k, pem in files.items():
        paths[k] = tmp_path / f"{k}.pem"
        paths[k].write_bytes(pem)
    return new, files, paths


class Spot:
    def __init__(self, port):
        self.name, self.host, self.port = "m", "127.0.0.1", port


def test_during_the_overlap_old_and_new_certificates_both_verify(members, ca, roll, tmp_path):
    new, files, paths = roll
    old_member = members("mongod1").start()
    new_member = members("mongod2", issued=pki.issue_member(new, "dbrs", "localhost", tls.member_names("localhost"),
                                                            NOW)).start()
    assert pki.signed_by(new_member.issued.cert_pem, new.cert_pem)
    assert hello(old_member.port, paths["both"])["ok"] == 1
    assert hello(new_member.port, paths["both"])["ok"] == 1
    with pytest.raises(PyMongoError):
        hello(new_member.port, paths["old"])        # the reason every member must trust the new CA first


def test_the_rotate_probes_see_trust_and_the_presented_ca(members, ca, roll, tmp_path):
    new, files, paths = roll
    only_old = members("mongod1").start()                            # CA file: the old CA only
    other = tmp_path / "restarted"                                   # another host, restarted with old + new
    (other / "etc").mkdir(parents=True)
    (other / "etc" / "ca.pem").write_bytes(files["both"])
    trusting = Member(other, "mongod2", ca, "requireTLS").start()
    try:
        signing = rotate_run.Files(new, files["both"])
        assert rotate_run.remote_trusts(Spot(only_old.port), signing, "dbrs", NOW) is False
        assert rotate_run.remote_trusts(Spot(trusting.port), signing, "dbrs", NOW) is True
        assert rotate_run.remote_presents(Spot(trusting.port), ca.cert_pem) is True
        assert rotate_run.remote_presents(Spot(trusting.port), new.cert_pem) is False
    finally:
        trusting.stop()
