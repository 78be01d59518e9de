"""The rotation plan (pure): who restarts, in which order, what resumes, and when a CA roll may move on."""

from installer import pki, rotation
from installer.rotation import MemberCert


def psa(**over):
    """The PSA set with mongod1 PRIMARY; keyword NAME=dict overrides that member's fields."""
    base = {"mongod1": dict(host="h1", state="PRIMARY"), "mongod2": dict(host="h2", state="SECONDARY"),
            "mongod3": dict(host="h3", state="ARBITER")}
    return [MemberCert(name, **{**base[name], "local": True, **over.get(name, {})}) for name in base]


def actions(plan):
    return [(s.action, s.member) for s in plan.steps]


def test_secondaries_and_arbiter_first_primary_last_after_a_stepdown():
    p = rotation.decide(psa(mongod1={"problem": "it expires in 20 days"}, mongod2={"problem": "it expires in 20 days"},
                            mongod3={"problem": "it expires in 21 days"}))
    assert actions(p) == [("renew", "mongod2"), ("renew", "mongod3"), ("stepdown", "mongod1"), ("renew", "mongod1")]
    assert p.waiting == [] and "expires in 20 days" in p.steps[0].text()


def test_nothing_to_do_when_every_certificate_is_fine_and_loaded():
    assert actions(rotation.decide(psa())) == []


def test_a_resumed_run_skips_renewed_members_and_restarts_one_that_never_loaded_its_new_file():
    """Cut short after mongod2 was renewed and mongod3's file written, before mongod3 restarted."""
    p = rotation.decide(psa(mongod1={"problem": "it expires in 2 days"}, mongod3={"stale": True}))
    assert actions(p) == [("restart", "mongod3"), ("stepdown", "mongod1"), ("renew", "mongod1")]


def test_only_this_hosts_members_and_no_stepdown_when_the_primary_is_elsewhere():
    members = psa(mongod1={"local": False, "problem": "x"}, mongod3={"local": False, "problem": "x"},
                  mongod2={"problem": "it expires in 3 days"})
    assert actions(rotation.decide(members)) == [("renew", "mongod2")]


def test_unhealthy_set_is_refused_naming_the_member():
    problem = rotation.check_healthy(psa(mongod2={"state": "DOWN"}))
    assert "mongod2 down" in problem and "one at a time" in problem
    assert rotation.check_healthy(psa()) is None


def test_ca_roll_holds_new_certificates_until_every_member_trusts_the_new_ca():
    members = psa(mongod1={"problem": "it was signed by another CA", "stale": True},
                  mongod2={"local": False, "trusts_new": False, "presents_new": False},
                  mongod3={"local": False, "trusts_new": False, "presents_new": False})
    p = rotation.decide(members, rolling_ca=True)
    assert actions(p) == [("stepdown", "mongod1"), ("restart", "mongod1")], "trust first, the old certificate stays"
    assert any("held back until mongod2, mongod3" in w for w in p.waiting)
    assert any("h2 and h3" in w and "--bundle" in w for w in p.waiting)

    trusted = [MemberCert(**{**m.__dict__, "trusts_new": True}) for m in members]
    assert actions(rotation.decide(trusted, rolling_ca=True)) == [("stepdown", "mongod1"), ("renew", "mongod1")]


def test_finish_waits_for_every_member_to_present_a_new_ca_certificate():
    members = psa(mongod2={"local": False, "presents_new": False}, mongod3={"stale": True})
    problem = rotation.finish_problem(members)
    assert "mongod2, mongod3" in problem and "h2 and h3" in problem
    assert rotation.finish_problem(psa()) is None


def test_ca_file_of_a_roll_puts_the_signing_ca_first():
    old, new = pki.new_ca("dbrs", 1.8e9), pki.new_ca("dbrs", 1.8e9)
    pem = rotation.ca_roll_file(new.cert_pem, old.cert_pem)
    assert pki.split_pem(pem) == [new.cert_pem, old.cert_pem]
    leaf = pki.issue_member(new, "dbrs", "h1", [], 1.8e9)
    assert pki.signed_by(leaf.cert_pem, pem), "the first certificate of the CA file is the signer"


def test_install_during_a_ca_roll_keeps_an_old_ca_certificate_and_issues_new_ones_from_the_new_ca():
    """dbrs-install with the re-sealed bundle must not hand a member a new-CA certificate before every member
    trusts that CA (that is rotate's job, which checks); a member without a certificate gets one of the new CA."""
    from installer import tls

    old, new = pki.new_ca("dbrs", 1.8e9), pki.new_ca("dbrs", 1.8e9)
    rolling = pki.Issued(new.key_pem, rotation.ca_roll_file(new.cert_pem, old.cert_pem))
    names = tls.member_names("h1")
    current = pki.issue_member(old, "dbrs", "h1", names, 1.8e9).key_file()
    assert tls.member_certificate(rolling, "dbrs", "h1", (), current, 1.8e9 + 86400) == (None, None)
    issued, why = tls.member_certificate(rolling, "dbrs", "h1", (), None, 1.8e9 + 86400)
    assert why == "no certificate yet" and pki.signed_by(issued.cert_pem, new.cert_pem)
    stranger = pki.issue_member(pki.new_ca("dbrs", 1.8e9), "dbrs", "h1", names, 1.8e9).key_file()
    assert tls.member_certificate(rolling, "dbrs", "h1", (), stranger, 1.8e9 + 86400)[1] == "it was signed by another CA"


def modes(*values):
    return dict(zip(("mongod1", "mongod2", "mongod3"), values))


def test_enable_moves_every_member_one_mode_before_any_goes_further():
    step, plan = rotation.enable_step(psa(), modes("disabled", "disabled", "disabled"), "requireTLS")
    assert step == "allowTLS"
    assert actions(plan) == [("restart", "mongod2"), ("restart", "mongod3"), ("stepdown", "mongod1"),
                             ("restart", "mongod1")]
    assert "net.tls.mode allowTLS" in plan.steps[0].text()

    step, plan = rotation.enable_step(psa(), modes("allowTLS", "allowTLS", "disabled"), "requireTLS")
    assert step == "allowTLS" and actions(plan) == [("restart", "mongod3")], "a re-run resumes with the laggard"

    step, plan = rotation.enable_step(psa(), modes("preferTLS", "preferTLS", "preferTLS"), "requireTLS")
    assert step == "requireTLS" and len(plan.steps) == 4
    assert rotation.enable_step(psa(), modes(*["requireTLS"] * 3), "requireTLS") == (None, rotation.Plan())


def test_enable_on_one_host_waits_for_the_others_before_the_next_mode():
    members = psa(mongod1={"local": False}, mongod3={"local": False})
    step, plan = rotation.enable_step(members, modes("allowTLS", "preferTLS", "allowTLS"), "requireTLS")
    assert step == "preferTLS" and plan.steps == [], "mongod2 (here) is ahead: nothing to restart"
    assert plan.waiting and "h1 and h3" in plan.waiting[0]


def test_disable_goes_the_same_road_back():
    step, plan = rotation.enable_step(psa(), modes(*["requireTLS"] * 3), "disabled")
    assert step == "preferTLS" and [s.member for s in plan.steps] == ["mongod2", "mongod3", "mongod1", "mongod1"]
