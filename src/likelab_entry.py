"""The ``likelab`` command's entry point, outside the ``likelab`` package on purpose.

Importing :mod:`likelab.cli` loads torch, scipy, matplotlib and typer, about a second. A Ctrl-C
in that second would otherwise end in a ``KeyboardInterrupt`` traceback printed by Python, before
:func:`likelab.cli.main` could catch it; here it is the same one line and exit status 130 as a
Ctrl-C anywhere else. (A module inside the package could not do this: importing it runs the
package's ``__init__``, which is where the time goes.)
"""

from __future__ import annotations

import signal
import sys


def main() -> int:
    """Run ``likelab`` with ``sys.argv``; exit status 130 for a Ctrl-C during start-up.

    SIGINT is blocked while the CLI is imported and unblocked after: a Ctrl-C in that second is
    held until the imports are done and then raised here. Delivered during them, it could be
    swallowed on the way (torch imports numpy from C and takes any failure, a
    ``KeyboardInterrupt`` included, for "numpy is not available"), leaving a half-imported numpy
    and a command that runs to the end or fails with an internal error instead of stopping.
    """
    block = hasattr(signal, "pthread_sigmask")
    try:
        if block:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            from likelab.cli import INTERRUPTED
            from likelab.cli import main as run
        finally:
            if block:  # a Ctrl-C held meanwhile is raised now, as a KeyboardInterrupt
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    try:
        return run()
    except KeyboardInterrupt:  # after main() returned or before it caught anything
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
