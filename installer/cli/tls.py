"""`dbrs tls`: the cluster's certificates: how long they last, and what an application host needs."""

import sys
import time

import click

from .. import certstore, tls as tlsmod
from .. import spec as specmod
from .common import config_option, handle_errors


@click.group("tls")
def tls():
    """Certificates of the cluster's own CA: expiry, and files for application hosts."""


@tls.command("status")
@config_option
@handle_errors
def status(config):
    """Days left for the CA and each member certificate on this host; exit 1 when one has < 30 days."""
    spec = specmod.load(config)
    lines = certstore.status(spec, config, time.time())
    failed = False
    for line in lines:
        if line.problem:
            failed = True
            click.echo(f"FAIL {line.label}: {line.problem} ({line.path})")
        elif line.days_left is None:
            click.echo(f"--   {line.label}: no certificate (TLS is off) ({line.path})")
        else:
            click.echo(f"OK   {line.label}: {line.days_left:.0f} days left ({line.path})")
    if failed:
        click.echo(f"error: a certificate needs attention (the limit is {tlsmod.RENEW_DAYS} days)", err=True)
        sys.exit(1)


@tls.command("client-bundle")
@click.argument("directory", metavar="DIR")
@click.option("--client-cert", metavar="NAME", help="Also issue a client certificate NAME.pem (certificate + key, 0600).")
@config_option
@handle_errors
def client_bundle(directory, client_cert, config):
    """Write the CA certificate (and optionally a client certificate) into DIR, for an application host."""
    spec = specmod.load(config)
    written = certstore.client_bundle(directory, spec, config, client_cert)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo("copy DIR to the application host; in its connection string (paths as on that host):")
    suffix = tlsmod.uri_params("requireTLS", "DIR/ca.pem")
    if client_cert:
        suffix += f"&tlsCertificateKeyFile=DIR/{client_cert}.pem"
    click.echo(f"  {suffix.lstrip('&')}")


@tls.command("rotate")
@click.option("--ca", "roll_ca", is_flag=True,
              help="Roll the CA itself: a new CA key and certificate (the old one stays trusted until --finish); "
                   "on the host `dbrs init` ran on, with --passphrase-file to re-seal the bundle.")
@click.option("--finish", is_flag=True, help="End a CA roll: drop the old CA from ca.pem once every member presents "
                                             "a certificate of the new one.")
@click.option("--bundle", metavar="FILE", help="Take the CA from this bundle (hosts other than the init host).")
@click.option("--passphrase-file", metavar="FILE", help="The bundle's passphrase (to open --bundle, or to re-seal "
                                                       "bundle.dbrs after --ca/--finish).")
@click.option("--renew-within", "renew_days", type=click.IntRange(min=1, max=3650), default=tlsmod.RENEW_DAYS,
              show_default=True, metavar="DAYS", help="Re-issue a member certificate with fewer days left than this.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS",
              help="How long to wait for each restarted member to be healthy.")
@config_option
@handle_errors
def rotate(roll_ca, finish, bundle, passphrase_file, renew_days, dry_run, wait_s, config):
    """Re-issue this host's member certificates, one member at a time: secondaries and arbiter first, the
    primary last after a step-down; each restarted member is healthy before the next.

    \b
    A rotation acts on the members of THIS host. For a cluster on several hosts run it on each host in turn
    (one host at a time; each run restarts only while every other member is healthy):
      init host:    sudo dbrs tls rotate
      other hosts:  sudo dbrs tls rotate --bundle bundle.dbrs --passphrase-file FILE
    A run cut short resumes where it stopped: run it again (a member already renewed and restarted is skipped).

    \b
    Rolling the CA: on the init host `sudo dbrs tls rotate --ca --passphrase-file FILE` makes a new CA; ca.pem
    then holds the new CA and the old one, so every member trusts both. Copy the re-sealed bundle.dbrs to the
    other hosts and run `dbrs tls rotate --bundle ...` there: members first load the new trust and are given
    new certificates only once every member trusts the new CA (re-run where it says). When every member
    presents a new certificate, `sudo dbrs tls rotate --finish --passphrase-file FILE` on the init host, then
    `dbrs tls rotate --bundle ...` on the others, drops the old CA.
    """
    import os

    from .. import cluster, rotate_run, secrets as secretsmod
    from ..errors import InputError
    from .common import Reporter, load_spec

    if roll_ca and finish:
        raise InputError("--ca", "and --finish are two ends of a CA roll", "run --ca first, --finish after every host")
    if (roll_ca or finish) and bundle:
        raise InputError("--bundle", "cannot start or finish a CA roll (the CA key and bundle.dbrs live on the init "
                         "host)", "run --ca/--finish on the host `dbrs init` ran on")
    if bundle and not passphrase_file:
        raise InputError("--bundle", "needs --passphrase-file", "give the file holding the bundle's passphrase")
    if (roll_ca or finish) and not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(config)), "ca.key")):
        raise InputError("--ca" if roll_ca else "--finish", "needs the CA key, and this host holds no ca.key",
                         "run it on the host `dbrs init` ran on")
    if not dry_run and os.geteuid() != 0:
        raise InputError("dbrs tls rotate", "changes the host and must run as root", "use sudo, or --dry-run")
    spec = load_spec(config)
    if spec.cluster.tls == "off":
        raise InputError("cluster.tls", 'is "off": there are no certificates to rotate',
                         'set tls = "required" in the spec and run dbrs-install first')
    secrets = secretsmod.load(config, keyfile=True)
    passphrase = secretsmod.read_passphrase(passphrase_file) if passphrase_file else None
    opened = cluster.from_bundle(bundle, passphrase_file) if bundle else None
    if opened is not None:
        rotate_run.check_bundle(spec, secrets, config, opened)
    if (roll_ca or finish) and not dry_run:
        if passphrase is None and os.path.exists(os.path.join(os.path.dirname(config), "bundle.dbrs")):
            raise InputError("--passphrase-file", "is needed to re-seal bundle.dbrs with the new CA",
                             "give the file holding the bundle's passphrase")
        if passphrase is not None:
            from .. import upgrade_run

            upgrade_run.open_bundle(config, passphrase)      # a wrong passphrase is refused before anything changes
    reporter = Reporter()
    plan, done, notes = rotate_run.run(
        spec, secrets, config, rotate_run.Host(os.path.dirname(os.path.abspath(config))), ca=roll_ca, finish=finish,
        bundle_ca=None if opened is None else (opened.ca or False), passphrase=passphrase, renew_days=renew_days, dry_run=dry_run,
        progress=reporter, wait_s=wait_s, stamp=cluster.utc_stamp())
    for note in notes:
        click.echo(note)
    if dry_run:
        for step in plan.steps:
            click.echo(f"would     {step.text()}")
    elif done:
        click.echo(f"changed   {len(plan.renews)} certificate(s) renewed; {len(done)} step(s) done")
    if not plan.steps:
        click.echo("unchanged every certificate on this host is good for more than "
                   f"{renew_days} days and loaded")
    for line in plan.waiting:
        click.echo(f"note: {line}", err=True)


@tls.command("enable")
@click.option("--to", "to", type=click.Choice(["off", "preferred", "required"]), default="required", show_default=True,
              help="Where the set goes: required (refuse plaintext), preferred, or off (the same road back).")
@click.option("--bundle", metavar="FILE", help="Take the cluster CA from this bundle (hosts other than the init host).")
@click.option("--passphrase-file", metavar="FILE", help="The bundle's passphrase (to open --bundle, or to re-seal "
                                                       "bundle.dbrs when the spec is written at the end).")
@click.option("--dry-run", is_flag=True, help="Print the next step; change nothing.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS",
              help="How long to wait for each restarted member to be healthy.")
@config_option
@handle_errors
def enable(to, bundle, passphrase_file, dry_run, wait_s, config):
    """Turn TLS on (or off) for a RUNNING set without downtime: disabled -> allowTLS -> preferTLS -> requireTLS,
    one rolling restart per mode, this host's members one at a time (the primary last, after a step-down).

    \b
    Each run does ONE mode on THIS host's members, and only once every member of the set runs the mode before
    it. Run it on each host in turn, then again for the next mode; it says which hosts are behind and what to
    run. A run cut short resumes: run it again. When the whole set runs the target, it writes cluster.tls into
    the spec (generation raised); re-seal the bundle for the other hosts (or pass --passphrase-file).
      init host:    sudo dbrs tls enable
      other hosts:  sudo dbrs tls enable --bundle bundle.dbrs --passphrase-file FILE
    Switch the applications to TLS (`dbrs uri`) once the set runs preferTLS, before requireTLS.
    """
    import os

    from .. import enable_run, install, paths, secrets as secretsmod
    from ..errors import InputError
    from .common import Reporter, load_spec

    if bundle and not passphrase_file:
        raise InputError("--bundle", "needs --passphrase-file", "give the file holding the bundle's passphrase")
    if not dry_run and os.geteuid() != 0:
        raise InputError("dbrs tls enable", "changes the host and must run as root", "use sudo, or --dry-run")
    spec = load_spec(config)
    secrets = secretsmod.load(config, keyfile=True)
    etc = os.path.dirname(os.path.abspath(config))
    if to != "off" and not bundle and not os.path.exists(os.path.join(etc, paths.CA_KEY.name)):
        raise InputError("--bundle", f"is needed: this host holds no cluster CA ({os.path.join(etc, paths.CA_KEY.name)}) "
                         "to issue its members' certificates", "add --bundle bundle.dbrs --passphrase-file FILE "
                         "(the bundle carries the CA); nothing was changed")
    if passphrase_file and not bundle:
        from .. import upgrade_run

        upgrade_run.open_bundle(config, secretsmod.read_passphrase(passphrase_file))   # refused before any change
    host = enable_run.Host(etc, paths.TLS_STEP,
                           install.Options(bundle=bundle, passphrase_file=passphrase_file) if bundle else None)
    step, plan, done, notes = enable_run.run(spec, secrets, config, host, to=to, dry_run=dry_run, progress=Reporter(),
                                             wait_s=wait_s, passphrase_file=None if bundle else passphrase_file)
    if step is not None:
        if dry_run:
            for s in plan.steps:
                click.echo(f"would     {s.text()}")
        elif done:
            click.echo(f"changed   {len(done)} step(s) done; this host's members run {step}")
        if not plan.steps:
            click.echo(f"unchanged this host's members already run {step}")
    for note in notes:
        click.echo(note)
    for line in plan.waiting:
        click.echo(f"note: {line}", err=True)
    if step is not None and not plan.waiting and not dry_run:
        click.echo(f"next: run `sudo dbrs tls enable{'' if to == 'required' else ' --to ' + to}` again for the "
                   "next mode (on each host)")
