"""salaudit.progress: a log line per interval with rate and time left, and one at the end."""

import io

from salaudit.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_line_per_interval_and_at_the_end_with_rate_and_time_left():
    clock, lines = Clock(), []
    progress = Progress(100, "saliency fold0", log=lines.append, every_s=30, clock=clock, stream=io.StringIO())
    for _ in range(10):
        clock.now += 10  # 10 images every 10 s
        progress.update(10)
    assert lines == [
        "saliency fold0: 30/100 images (30%), 1 images/s, 70 s left",
        "saliency fold0: 60/100 images (60%), 1 images/s, 40 s left",
        "saliency fold0: 90/100 images (90%), 1 images/s, 10 s left",
        "saliency fold0: 100/100 images (100%), 1 images/s, 100 s",
    ]


def test_on_a_terminal_the_line_rewrites_itself(capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    clock, lines = Clock(), []
    progress = Progress(2, "train", unit="batches", log=lines.append, clock=clock, stream=Terminal())
    clock.now = 1.0
    progress.update()
    clock.now = 2.0
    progress.update()
    assert lines == []  # no log lines: the bar
    assert capsys.readouterr().out == "\rtrain: 1/2 batches (50%), 1 batches/s, 1 s left\rtrain: 2/2 batches (100%), 1 batches/s, 2 s\n"
