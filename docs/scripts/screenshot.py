"""Refresh docs/report.png, the README's screenshot: the top of a quick demo's page in Chromium.

    python docs/scripts/screenshot.py [--height 2000] [--figures png|svg] [--out docs/report.png]

Runs ``likelab demo --quick`` into a temporary directory, opens its index.html in headless
Chromium at 1280 px wide (the browser is found as ``chromium`` or ``chromium-browser`` on PATH,
or named by $CHROMIUM), keeps the top ``--height`` pixels and writes them as a 256-colour PNG
(Pillow's quantiser), which keeps the file under 400 KB. Needs likelab installed and Chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 1280
LIMIT = 400_000  # bytes: the README's screenshot stays small


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("no Chromium found: install it (apt-get install chromium) or set $CHROMIUM")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=2000, help="pixels kept from the top")
    parser.add_argument("--figures", choices=("png", "svg"), default="png")
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    args = parser.parse_args(argv)
    from PIL import Image

    from likelab.cli import main as likelab

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        with contextlib.redirect_stdout(io.StringIO()):  # the demo's tables: not wanted here
            code = likelab(["demo", "--quick", "--out", str(report), "--figures", args.figures])
        if code:
            return code
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--hide-scrollbars",
                f"--window-size={WIDTH},{args.height}",
                f"--screenshot={shot}",
                (report / "index.html").resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
        )
        image = Image.open(shot).convert("RGB")
        if image.width != WIDTH:
            sys.exit(f"the screenshot is {image.width} px wide, not {WIDTH}: the page scrolls")
        small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.NONE)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        small.save(args.out, optimize=True)
    size = args.out.stat().st_size
    print(f"{args.out}: {image.width}x{image.height}, {size / 1000:.0f} KB")
    if size > LIMIT:
        print(f"warning: over {LIMIT / 1000:.0f} KB; try a smaller --height", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
