"""What a Ctrl-C does to a `platformctl` command: one line, exit 130, and the cleanups of what
the command started (a `--base` worktree and its review process), never a traceback.

The SDK runs the program in an asyncio event loop with worker threads; a KeyboardInterrupt
raised inside it can leave the loop logging from its callbacks or a thread waiting for ever. So
the command's SIGINT handler does not raise: it runs the registered cleanups, says
`interrupted` and leaves at once (os._exit). Child processes of the same terminal get the signal
too and do the same."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

_CLEANUPS: dict[int, Callable[[], None]] = {}


def on_interrupt(cleanup: Callable[[], None]) -> int:
    """Run `cleanup` if the command is interrupted; returns a key for `done`."""
    key = id(cleanup)
    _CLEANUPS[key] = cleanup
    return key


def done(key: int) -> None:
    """The cleanup ran on its own (the normal path): not again on an interrupt."""
    _CLEANUPS.pop(key, None)


def handler(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    for cleanup in list(_CLEANUPS.values()):
        try:
            cleanup()
        except Exception:  # noqa: BLE001, S110 - best effort on the way out
            pass
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing to flush into
        pass
    print("interrupted", file=sys.stderr, flush=True)
    os._exit(130)
