"""A departed member that the running set still lists is found through hello on loopback (no credentials)."""

from installer import departed
from installer.replset import local


def _conf(tmp_path, port):
    p = tmp_path / "mongod.conf"
    p.write_text(f"net:\n  port: {port}\n  bindIp: 127.0.0.1\n")
    return p


def test_listed_while_the_set_config_names_it(standin, tmp_path):
    rs = standin.initiated().start()
    assert departed.listed_in_set(_conf(tmp_path, rs.member("mongod3").port), local.listed) is True


def test_not_listed_before_initiate_or_when_down(standin, tmp_path):
    rs = standin.start()
    assert departed.listed_in_set(_conf(tmp_path, rs.member("mongod2").port), local.listed) is False
    rs.member("mongod2").stop()
    assert departed.listed_in_set(_conf(tmp_path, rs.member("mongod2").port), local.listed) is False


def test_a_member_no_other_member_answers_for_is_not_counted(standin, tmp_path):
    """Found on real hosts: the arbiter removed by `dbrs reconfigure` never hears of it (the other hosts'
    firewalls already drop it), so its own hello lists it forever; the set cannot hear it either, so
    stopping it takes nothing from the set and dbrs-install on its host must prune it."""
    rs = standin.initiated().start()
    rs.member("mongod1").stop()
    rs.member("mongod2").stop()
    assert departed.listed_in_set(_conf(tmp_path, rs.member("mongod3").port), local.listed) is False
