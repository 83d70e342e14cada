"""The ``likelab`` command's entry point, outside the ``likelab`` package on purpose.

Importing :mod:`likelab.cli` loads torch, scipy, matplotlib and typer, about a second. A Ctrl-C
in that second would otherwise end in a ``KeyboardInterrupt`` traceback printed by Python, before
:func:`likelab.cli.main` could catch it; here it is the same one line and exit status 130 as a
Ctrl-C anywhere else. (A module inside the package could not do this: importing it runs the
package's ``__init__``, which is where the time goes.)
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run ``likelab`` with ``sys.argv``; exit status 130 for a Ctrl-C during start-up."""
    try:
        from likelab.cli import INTERRUPTED
        from likelab.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    try:
        return run()
    except KeyboardInterrupt:  # after main() returned or before it caught anything
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
