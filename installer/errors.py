"""The few exceptions the CLI turns into messages and exit codes.

Library code raises these; only the CLI prints and exits. Exit 2 means the
operator's input is wrong and nothing was changed; exit 1 means something
failed while running.
"""


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
        text = f"{self.field}: {self.problem}"
        if self.fix:
            text += f" ({self.fix})"
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
