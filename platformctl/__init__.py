

def _interrupted_while_starting(signum, frame):  # noqa: ARG001 - a signal handler's signature
    import os
    import sys

    print("interrupted", file=sys.stderr)
    os._exit(130)


def _guard_start() -> None:
    """Run as the `platformctl` command (console script, or `python -m platformctl.cli`, whose
    argv[0] is "-m" while the package loads): a Ctrl-C during the seconds of imports is one line
    and exit 130; platformctl.cli restores Python's handler once loaded, and its entry point
    turns a later KeyboardInterrupt into the same. Imported as a library, nothing is touched."""
    import signal
    import sys
    from pathlib import Path

    if sys.argv and (sys.argv[0] == "-m" or Path(sys.argv[0]).name == "platformctl"):
        signal.signal(signal.SIGINT, _interrupted_while_starting)


_guard_start()
