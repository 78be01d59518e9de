"""What every dbrs command shares: error handling, exit codes, --config, JSON output."""

import functools
import json
import sys

import click

from ..errors import DbrsError, InputError, SpecErrors

DEFAULT_CONFIG = "/etc/dbrs/cluster.toml"


def handle_errors(fn):
    """Known errors become one line on stderr and exit 2 (bad input) or 1 (run time)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecErrors as e:
            for line in e.lines():
                click.echo(f"error: {line}", err=True)
            sys.exit(e.exit_code)
        except DbrsError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def config_option(fn):
    return click.option(
        "--config", "config", default=DEFAULT_CONFIG, show_default=True, metavar="FILE",
        help="Cluster spec; keyfile and secrets are read from its folder.",
    )(fn)


def emit_json(data):
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


__all__ = ["handle_errors", "config_option", "emit_json", "InputError", "DEFAULT_CONFIG"]
