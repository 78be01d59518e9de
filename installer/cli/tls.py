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
