"""What every dbrs command shares: error handling, exit codes, interrupts, progress, --config, JSON output."""

import functools
import json
import os
import shutil
import signal
import sys
import threading
import time

import click

from ..errors import DbrsError, InputError, SpecErrors, Terminated

DEFAULT_CONFIG = "/etc/dbrs/cluster.toml"
MAX_LINE = 600   # an error line never echoes a huge argument or server reply


class Interrupted(BaseException):
    """SIGINT or SIGTERM: unwinds like KeyboardInterrupt so context managers close files and clients."""

    def __init__(self, signum):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _die_by(signum):
    """End by the signal itself, without atexit hooks (pymongo's executor join would print a
    KeyboardInterrupt traceback): a shell then reports 130/143 and systemd sees a clean stop, not a
    failure that would page through OnFailure=. Output is flushed first; files are closed by then."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not turn into a traceback now
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


def _line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "…"


def handle_errors(fn):
    """Known errors become one line on stderr and exit 2 (bad input) or 1 (run time); SIGINT/SIGTERM
    print one line saying what was done and end by that signal (130/143 in a shell); a MongoDB error
    that escaped is still one line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main_thread else None
        if main_thread:
            if previous is not _raise_interrupted:   # the outermost command of this run
                DONE.clear()
            signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            return fn(*args, **kwargs)
        except SpecErrors as e:
            for line in e.lines():
                click.echo(f"error: {_line(line)}", err=True)
            sys.exit(e.exit_code)
        except Terminated as e:
            click.echo(f"error: {_line(e)}", err=True)
            _die_by(e.signum)       # a stop, not a failure: no OnFailure= alert for `systemctl stop`
        except DbrsError as e:
            click.echo(f"error: {_line(e)}", err=True)
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, Interrupted) as e:
            signum = getattr(e, "signum", signal.SIGINT)
            done = (f"{len(DONE)} step(s) done, the last: {DONE[-1]}" if DONE else "nothing was changed yet")
            click.echo(f"interrupted by {signal.Signals(signum).name}: {_line(done)}; run the command again to "
                       "finish (it picks up where it stopped)", err=True)
            _die_by(signum)
        except Exception as e:  # noqa: BLE001 - MongoDB errors that no library call translated
            translated = _mongo_error(e)
            if translated is None:
                raise
            click.echo(f"error: {_line(translated)}", err=True)
            sys.exit(1)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _mongo_error(e):
    if "pymongo" not in sys.modules:
        return None
    from ..replset import connection

    if not isinstance(e, connection.errors().PyMongoError):
        return None
    return str(connection.translate(e, "MongoDB", "a command"))


# What a run has done so far, for the line an interrupt prints (the commands append to it).
DONE = []


class Reporter:
    """Progress on stderr as it happens: step lines at once; a wait as one live line on a terminal, and
    elsewhere (journal, CI, `| tee`) a line when what it waits for changes and at least every EVERY_S."""

    EVERY_S = 10

    def __init__(self, stream=None, tty=None, clock=time.monotonic):
        self.stream = stream
        self.tty = (self._stream().isatty() if tty is None else tty)
        self.clock = clock
        self.live = False
        self.last_key = None
        self.last_at = None

    def _stream(self):
        return self.stream or sys.stderr

    def _write(self, text):
        out = self._stream()
        out.write(text)
        out.flush()

    def __call__(self, text):
        self.end_live()
        self._write(f"  ... {text}\n")
        self.last_key = None

    def step(self, name, status, detail):
        """A finished step of the result, on stdout where the final report goes."""
        self.end_live()
        click.echo(f"{status:9} {name}" + (f": {detail}" if detail else ""))
        sys.stdout.flush()
        if status == "changed":
            DONE.append(name)

    def wait(self, text, elapsed, limit, key=None):
        line = f"  ... {text} [{elapsed:.0f}/{limit:g} s]"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._write("\r\033[K" + line[:width])
            self.live = True
            return
        key = text if key is None else key
        now = self.clock()
        if key != self.last_key or self.last_at is None or now - self.last_at >= self.EVERY_S:
            self._write(line + "\n")
            self.last_key, self.last_at = key, now

    def end_live(self):
        if self.live:
            self._write("\n")
            self.live = False


def load_spec(config):
    """The spec at `config`, with every client of this run armed by it for TLS (the cluster CA sits next to it)."""
    from .. import spec as specmod
    from ..replset import connection

    spec = specmod.load(config)
    etc = os.path.dirname(os.path.abspath(config))
    connection.require_ca(spec, etc)
    connection.use_tls(spec, etc)
    return spec


def config_option(fn):
    return click.option(
        "--config", "config", default=DEFAULT_CONFIG, show_default=True, metavar="FILE",
        help="Cluster spec; keyfile and secrets are read from its folder.",
    )(fn)


def emit_json(data):
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


__all__ = ["handle_errors", "config_option", "emit_json", "InputError", "DEFAULT_CONFIG", "Reporter", "DONE"]
