"""The progress reporter: a live line on a terminal; elsewhere a line per change and at least every 15 s."""

import io

from installer.cli.common import Reporter


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_without_a_terminal_a_wait_prints_on_change_and_at_least_every_15_s():
    out, clock = io.StringIO(), Clock()
    r = Reporter(stream=out, tty=False, clock=clock)
    for second in range(0, 61):
        clock.t = second
        r.wait(f"up: mongod1; waiting for: mongod2 ({second})", second, 600, key=("mongod2",))
    clock.t = 61
    r.wait("up: mongod1, mongod2; waiting for: mongod3", 61, 600, key=("mongod3",))
    lines = out.getvalue().splitlines()
    stamps = [int(line.rsplit("[", 1)[1].split("/")[0]) for line in lines]
    assert stamps[0] == 0 and stamps[-1] == 61
    assert all(b - a <= 15 for a, b in zip(stamps, stamps[1:]))
    assert len(lines) < 10, "one line per poll would flood a journal"
    assert lines[-1] == "  ... up: mongod1, mongod2; waiting for: mongod3 [61/600 s]"
    assert "\r" not in out.getvalue()


def test_on_a_terminal_a_wait_is_one_live_line_ended_by_the_next_step():
    out = io.StringIO()
    r = Reporter(stream=out, tty=True)
    r.wait("waiting for: mongod2", 1, 600)
    r.wait("waiting for: mongod2", 2, 600)
    r("initiating replica set dbrs")
    text = out.getvalue()
    assert text.count("\r\033[K") == 2 and text.count("\n") == 2
    assert text.endswith("[2/600 s]\n  ... initiating replica set dbrs\n")
