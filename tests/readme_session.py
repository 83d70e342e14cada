"""The Python session in which tests/test_readme.py runs README.md's ```python blocks.

Run as a script, with the working directory a fresh copy of the repository. It reads one request
per line on stdin, ``{"source": ..., "line": N}`` (a block and the README line it starts on), and
answers one line per request on its original stdout: ``{"stdout": ..., "error": ...}``. Blocks
share one namespace, in order, as a reader pasting them into one interpreter would.

Each top-level statement runs on its own; an expression statement followed directly by comment
lines (``# ...``) is one whose value the README shows, and its ``repr`` must be that text (the
comment lines joined by a space), as in a doctest. The line numbers in a traceback are README.md's.
"""

import ast
import contextlib
import io
import json
import os
import sys
import traceback


def shown_value(lines: list[str], end: int) -> str | None:
    """The value shown by the comment lines right after line ``end`` (1-based), if any."""
    shown = []
    for text in lines[end:]:
        stripped = text.strip()
        if not stripped.startswith("#"):
            break
        shown.append(stripped[1:].strip())
    return " ".join(shown) if shown else None


def run_block(source: str, first_line: int, namespace: dict) -> list[str]:
    """Run one block in ``namespace``; the README's shown values that its expressions did not
    have, as messages."""
    tree = ast.parse(source, filename="README.md")
    ast.increment_lineno(tree, first_line - 1)
    lines = source.splitlines()
    mismatches = []
    for node in tree.body:
        if isinstance(node, ast.Expr):
            code = compile(ast.Expression(node.value), "README.md", "eval")
            value = eval(code, namespace)
            shown = shown_value(lines, node.end_lineno - first_line + 1)
            if shown is not None and repr(value) != shown:
                mismatches.append(
                    f"README.md:{node.lineno}: {ast.unparse(node)!s}\n"
                    f"  the README shows: {shown}\n  it gives:         {value!r}"
                )
        else:
            code = compile(ast.Module([node], type_ignores=[]), "README.md", "exec")
            exec(code, namespace)
    return mismatches


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray fd-1 output must not mix in
    namespace: dict = {"__name__": "__main__"}
    for request in sys.stdin:
        block = json.loads(request)
        printed = io.StringIO()
        error = None
        with contextlib.redirect_stdout(printed):
            try:
                mismatches = run_block(block["source"], block["line"], namespace)
                if mismatches:
                    error = "\n".join(mismatches)
            except BaseException:
                error = traceback.format_exc()
        answers.write(json.dumps({"stdout": printed.getvalue(), "error": error}) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
