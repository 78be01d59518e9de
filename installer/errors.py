"""The few exceptions the CLI turns into messages and exit codes.

Library code raises these; only the CLI prints and exits. Exit 2 means the
operator's input is wrong and nothing was changed; exit 1 means something
failed while running.
"""


_TOKEN_MAX = 200
_PART_MAX = 400


def bound(text, limit=_PART_MAX):
    """Keep an error line readable whatever the operator passed: a word longer than 200
    characters (a 5000-character --primary) is cut to its start, the whole part to `limit`."""
    text = str(text)
    if len(text) <= _TOKEN_MAX and "\n" not in text:
        return text
    words = []
    for word in text.replace("\n", " ").split(" "):
        if len(word) > _TOKEN_MAX:
            word = f"{word[:160]}…[{len(word)} characters]"
        words.append(word)
    text = " ".join(words)
    if len(text) > limit:
        text = f"{text[:limit - 100]} … {text[-90:]}"
    return text


class DbrsError(Exception):
    """A run-time failure: one line for the operator, exit code 1."""

    exit_code = 1


class InputError(DbrsError):
    """Bad input (spec file, flag, bundle): names the field and the fix; exit 2."""

    exit_code = 2

    def __init__(self, field, problem, fix=None):
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self):
        text = f"{bound(self.field)}: {bound(self.problem)}"
        if self.fix:
            text += f" ({bound(self.fix)})"
        return text


class SpecErrors(InputError):
    """Every problem found in one spec, reported together like borgmatic does."""

    def __init__(self, errors):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.field, first.problem, first.fix)

    def lines(self):
        return [e.line() for e in self.errors]

    def __str__(self):
        return "; ".join(self.lines())


class StepFailed(DbrsError):
    """A step of an apply failed; says which one so the operator can look."""

    def __init__(self, step, detail):
        self.step = step
        self.detail = detail
        super().__init__(f"{step}: {detail}")


class Terminated(DbrsError):
    """SIGTERM or SIGHUP reached a run that must clean up first (kill its tool, drop its `.partial`).

    Raised so every cleanup on the way out runs; the CLI then prints the line
    and ends by the signal itself, so systemd counts `systemctl stop` as a
    clean stop and no OnFailure= alert fires.
    """

    def __init__(self, message, signum):
        self.signum = signum
        super().__init__(message)
