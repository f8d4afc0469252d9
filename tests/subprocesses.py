"""Reading what a test's subprocess prints, shared by the tests that start scripts."""
import threading
import time

import pytest


def wait_for(proc, marker, timeout=240, *, line_start=False):
    """Read ``proc``'s output lines until one holds ``marker`` (begins with it when
    ``line_start``); returns (the ``time.monotonic()`` it was seen, the output read so far).

    The time is None when the process ended, or ``timeout`` seconds passed, before
    the marker; the timeout is checked after each line, so a silent hang is left to
    :func:`finish`'s own timeout.
    """
    seen, t_end = [], time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(marker) if line_start else marker in line:
            return time.monotonic(), "".join(seen)
        if time.monotonic() > t_end:
            break
    return None, "".join(seen)


def finish(proc, timeout=60):
    """Wait for ``proc`` (killing it after ``timeout``); returns (returncode, rest of output, seconds).

    The rest is read through ``proc.stdout`` itself, in a thread: a test that
    waited for a marker line read that text stream, which may already hold the
    lines after the marker in its buffer, and ``communicate(timeout=...)`` would
    read the pipe's file descriptor beneath it and lose them.
    """
    t0 = time.monotonic()
    rest = []
    reader = threading.Thread(target=lambda: rest.append(proc.stdout.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        reader.join(30)
        proc.wait()
        pytest.fail(f"the process did not end within {timeout} s (a hang):\n{''.join(rest)[-3000:]}")
    proc.wait()
    return proc.returncode, "".join(rest), time.monotonic() - t0
