"""README.md, read as a newcomer reads it: every command it shows runs, in the order shown, on a
fresh clone.

The clone is a copy of the repository's tracked files (``git ls-files``, as ``git clone`` gives
them: no ``.venv``, no store, no report left by an earlier run) in a temporary directory, which
is the working directory of every command:

- every ```bash block is split into commands (a trailing ``\\`` continues a line; ``# ...``
  ends one). ``likelab ARGS`` runs in-process (``likelab.cli.main``) and must exit with status 0,
  or with the status its comment names (``# exit status 1``). Comment lines directly below a
  command show what it prints: each must appear in its output (stdout or stderr, runs of spaces
  and line breaks aside).
- ``make demo``, ``make test``, ``make lint``, ``make bench``, ``source .venv/bin/activate`` and
  ``pip install ...`` set up the environment this test already runs in: they are recognised and
  not run. Any other command (a pipe, a redirection, ``.venv/bin/likelab``, another program) fails
  the test, so no kind of command is ever skipped silently.
- every ```python block runs in one Python session (tests/readme_session.py), in order with the
  commands and with the same working directory; later blocks use earlier blocks' names, as in one
  interpreter. An expression followed directly by ``# ...`` lines must have that ``repr``.

A ```sh, ```shell, ```console or ```py block is refused: write ```bash or ```python. Blocks in any
other language (```yaml, ```text, ...) are shown, not run.

Every command really runs, so the README's examples are sized to run in seconds while still
showing what they are there for (the whole README: about 75 CPU-seconds, most of it training and
the two runs of the seed study); a bigger study belongs in examples/, described, not run.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: The set-up commands the README shows (argv prefixes): how the environment this test runs in
#: was made, so not run here.
SETUP = (
    ("make", "demo"),
    ("make", "test"),
    ("make", "lint"),
    ("make", "bench"),
    ("source", ".venv/bin/activate"),
    ("pip", "install"),
)
#: Code-block languages that are a shell or Python under another name: refused, so that no
#: runnable block escapes the test by its spelling.
MISSPELT = {"sh", "shell", "console", "zsh", "shell-session", "terminal", "py", "pycon", "python3"}
FENCE = re.compile(r"^(\s*)```\s*([^\s`]*)")
SHELL_SYNTAX = {"|", "||", "&", "&&", ";", ";;", ">", ">>", "<", "<<", "(", ")"}


@dataclass
class Command:
    """One command of a ```bash block."""

    line: int  # README.md line it starts on
    text: str  # as written, continuations joined, comment removed
    argv: list[str]
    status: int = 0  # the exit status the README says it has
    shows: list[str] = field(default_factory=list)  # the comment lines below it


@dataclass
class Snippet:
    """One ```python block."""

    line: int  # README.md line of its first line of code
    source: str


def split_comment(line: str) -> tuple[str, str]:
    """``line`` without its trailing shell comment, and the comment (a ``#`` that starts a word
    outside quotes, as in bash)."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
        i += 1
    return line.rstrip(), ""


def bash_commands(body: list[str], first_line: int) -> list[Command]:
    """The commands of a ```bash block whose first line is README.md line ``first_line``."""
    commands: list[Command] = []
    last = None  # the command that comment lines directly below belong to
    k = 0
    while k < len(body):
        stripped = body[k].strip()
        if not stripped:
            last = None
            k += 1
            continue
        if stripped.startswith("#"):
            if last is not None:
                last.shows.append(stripped[1:].strip())
            k += 1
            continue
        start, text = first_line + k, body[k].rstrip()
        while text.endswith("\\"):
            k += 1
            if k == len(body):
                raise ValueError(f"README.md:{start}: the block ends inside a continued line")
            text = text[:-1].rstrip() + " " + body[k].strip()
        k += 1
        code, comment = split_comment(text)
        lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        syntax = sorted(SHELL_SYNTAX.intersection(lexer)) + [c for c in "$`" if c in code]
        if syntax:
            raise ValueError(
                f"README.md:{start}: `{code}` uses shell syntax ({' '.join(syntax)}) that the "
                "README test does not run; show one plain command per line"
            )
        status = re.search(r"\bexit status (\d+)", comment)
        last = Command(start, code, shlex.split(code), int(status[1]) if status else 0)
        commands.append(last)
    return commands


def readme_steps(text: str) -> list[Command | Snippet]:
    """Every command and Python block of a README, in order."""
    lines = text.splitlines()
    steps: list[Command | Snippet] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence[1], fence[2].lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md:{i + 1}: a code block that is never closed")
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]
        ]
        if lang in MISSPELT:
            raise ValueError(
                f"README.md:{i + 1}: a ```{lang} block: write ```bash or ```python, which the "
                "README test runs"
            )
        if lang == "bash":
            steps.extend(bash_commands(body, i + 2))
        elif lang == "python":
            steps.append(Snippet(i + 2, "\n".join(body) + "\n"))
        i = end + 1
    return steps


def is_setup(argv: list[str]) -> bool:
    return any(tuple(argv[: len(prefix)]) == prefix for prefix in SETUP)


def squeeze(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------- the README itself
def test_the_readme_shows_only_commands_this_test_runs_or_knows():
    steps = readme_steps(README.read_text())
    commands = [s for s in steps if isinstance(s, Command)]
    assert commands and any(isinstance(s, Snippet) for s in steps)
    unknown = [
        f"README.md:{c.line}: {c.text}"
        for c in commands
        if c.argv[0] != "likelab" and not is_setup(c.argv)
    ]
    assert not unknown, (
        "commands that are neither `likelab ...` (run by tests/test_readme.py) nor a known set-up "
        "command (SETUP there; `likelab`, not `.venv/bin/likelab`, after `source "
        ".venv/bin/activate`):\n" + "\n".join(unknown)
    )
    setup = {c.text for c in commands if is_setup(c.argv)}
    assert {"make demo", "make test"} <= setup  # the README's two commands


class PythonSession:
    """README.md's Python blocks, in one interpreter (tests/readme_session.py) in ``cwd``."""

    def __init__(self, cwd: Path):
        import torch

        import likelab

        env = dict(os.environ)
        # the likelab under test, wherever it is imported from (a checkout's src/ or site-packages)
        source = str(Path(likelab.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        env.setdefault("MPLBACKEND", "Agg")
        env["OMP_NUM_THREADS"] = str(torch.get_num_threads())  # as many as this test uses
        self.stderr = open(cwd.parent / "python-session.stderr", "w+")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "readme_session.py")],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def run(self, snippet: Snippet) -> dict:
        request = {"source": snippet.source, "line": snippet.line}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.stderr.seek(0)
            return {"stdout": "", "error": "the Python session died:\n" + self.stderr.read()}
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.stderr.close()


def fresh_clone(dest: Path) -> Path:
    """A copy of the files ``git clone`` would give (the work tree's tracked files, as edited)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: which files a fresh clone has is unknown")
    for name in listed.decode().split("\0"):
        if name and (ROOT / name).is_file():  # a tracked file deleted here is not in a clone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def run_steps(steps: list[Command | Snippet], clone: Path, capsys) -> list[tuple[float, str]]:
    """Run ``steps`` in order with ``clone`` as the working directory (the caller's chdir):
    AssertionError at the first that fails; else the seconds each took."""
    from likelab.cli import main

    session = PythonSession(clone)
    timings = []
    try:
        for step in steps:
            start = time.perf_counter()
            if isinstance(step, Snippet):
                answer = session.run(step)
                assert answer["error"] is None, (
                    f"README.md:{step.line}: the Python block fails:\n{answer['error']}"
                )
                what = f"README.md:{step.line}: ```python"
            elif step.argv[0] == "likelab":
                capsys.readouterr()
                status = main(step.argv[1:])
                out, err = capsys.readouterr()
                assert status == step.status, (
                    f"README.md:{step.line}: `{step.text}` exited with status {status}, not "
                    f"{step.status}; stderr:\n{err[-3000:]}"
                )
                printed = squeeze(out + "\n" + err)
                for shown in step.shows:
                    assert squeeze(shown) in printed, (
                        f"README.md:{step.line}: `{step.text}` does not print what the README "
                        f"shows below it: {shown!r}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
                    )
                what = f"README.md:{step.line}: {step.text}"
            else:
                assert is_setup(step.argv), f"README.md:{step.line}: `{step.text}` is not run"
                continue
            timings.append((time.perf_counter() - start, what))
    finally:
        session.close()
    return timings


def test_every_readme_command_runs_in_order_on_a_fresh_clone(tmp_path, monkeypatch, capsys):
    steps = readme_steps(README.read_text())
    clone = fresh_clone(tmp_path / "clone")
    assert (clone / "README.md").read_text() == README.read_text()
    assert not list(clone.rglob("*.duckdb")) and not (clone / ".venv").exists()
    monkeypatch.chdir(clone)
    timings = run_steps(steps, clone, capsys)
    with capsys.disabled():  # where the time goes: pytest -s shows it
        for seconds, what in timings:
            print(f"{seconds:6.1f} s  {what}")


# ---------------------------------------------------------------------- the runner
def run_text(text: str, tmp_path: Path, monkeypatch, capsys) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "data.txt").write_text("1.5\n0.5\n2.0\n1.0\n")
    monkeypatch.chdir(clone)
    run_steps(readme_steps(text), clone, capsys)


def test_the_runner_runs_commands_and_blocks_in_order_in_the_clone(tmp_path, monkeypatch, capsys):
    run_text(
        "```bash\n"
        "likelab fit data.txt --family normal --objective log --json\n"
        "likelab fit missing.txt --family normal  # exit status 2, no such file\n"
        "# error: data file 'missing.txt' does not exist\n"
        "make test\n"
        "```\n"
        "```python\n"
        "from pathlib import Path\n"
        "sorted(p.name for p in Path().iterdir())\n"
        "# ['data.txt']\n"
        "```\n",
        tmp_path,
        monkeypatch,
        capsys,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```bash\nlikelab fit missing.txt --family normal\n```", "exited with status 2, not 0"),
        ("```bash\nlikelab fit data.txt --family normal  # exit status 1\n```", "not 1"),
        ("```bash\nlikelab objectives\n# no such line\n```", "does not print what"),
        ("```bash\nlikelab fit data.txt --family normal\n```\n```python\n1 +\n```", "fails"),
        ("```python\n1 + 1\n# 3\n```", "the README shows: 3"),
        ("```bash\ncat data.txt\n```", "is not run"),
    ],
)
def test_the_runner_fails_on_what_does_not_run_as_shown(
    tmp_path, monkeypatch, capsys, text, message
):
    with pytest.raises(AssertionError, match=message):
        run_text(text, tmp_path, monkeypatch, capsys)


# ---------------------------------------------------------------------- the parser
def test_the_parser_joins_continuations_and_reads_comments():
    text = "\n".join(
        [
            "prose",
            "```bash",
            "# a comment above any command is prose",
            "likelab fit a.csv --family normal \\",
            "    --objective 'log' --truth \"0.9 x # not a comment\"   # the fit",
            "# printed: one line",
            "#   and its second line",
            "",
            "# prose again",
            "likelab fit b.csv  # exit status 1",
            "make demo",
            "```",
            "  ```python",
            "  x = 1",
            "  x",
            "  # 1",
            "  ```",
            "```yaml",
            "likelab: never run",
            "```",
        ]
    )
    steps = readme_steps(text)
    assert [type(s) for s in steps] == [Command, Command, Command, Snippet]
    fit, failing, demo, snippet = steps
    assert fit.line == 4
    assert fit.argv == [
        "likelab", "fit", "a.csv", "--family", "normal", "--objective", "log",
        "--truth", "0.9 x # not a comment",
    ]  # fmt: skip
    assert fit.status == 0 and fit.shows == ["printed: one line", "and its second line"]
    assert failing.status == 1 and failing.shows == []
    assert is_setup(demo.argv) and not is_setup(fit.argv)
    assert snippet.line == 14 and snippet.source == "x = 1\nx\n# 1\n"


@pytest.mark.parametrize(
    "block",
    [
        "```bash\nlikelab objectives | head\n```",
        "```bash\nlikelab fit data.csv > out.txt\n```",
        "```bash\nlikelab fit $DATA\n```",
        "```bash\nlikelab objectives && likelab families\n```",
        "```sh\nlikelab objectives\n```",
        "```console\n$ likelab objectives\n```",
        "```bash\nlikelab fit a.csv \\\n```",
        "```bash\nlikelab objectives\n",
    ],
)
def test_the_parser_refuses_what_it_would_not_run(block):
    with pytest.raises(ValueError, match=r"README\.md:"):
        readme_steps(block)


def test_a_python_session_checks_the_values_the_readme_shows(tmp_path):
    (tmp_path / "clone").mkdir()
    session = PythonSession(tmp_path / "clone")
    try:
        ok = session.run(Snippet(10, "import math\nx = math.sqrt(4)\nprint('hi')\nx\n# 2.0\n"))
        assert ok == {"stdout": "hi\n", "error": None}
        shared = session.run(Snippet(20, "x + 1\n# 3.0\n"))  # names carry over between blocks
        assert shared["error"] is None
        wrong = session.run(Snippet(30, "x\n# 3.0\n"))
        assert "README.md:30" in wrong["error"] and "2.0" in wrong["error"]
        failing = session.run(Snippet(40, "y = 1\n1 / 0\n"))
        assert 'File "README.md", line 41' in failing["error"]
        assert "ZeroDivisionError" in failing["error"]
    finally:
        session.close()
