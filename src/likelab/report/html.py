"""Self-contained HTML pages: Jinja2 templates with autoescaping, figures as PNG data.

A page is rendered from a template in ``likelab/report/templates`` with every value escaped
(Jinja2's ``autoescape``): a study, objective or dataset name holding ``<script>`` shows as text.
Figures travel inside the page as ``data:image/png;base64`` URIs and tables are real HTML tables,
so the page works offline, from a file, with no scripts, fonts or styles fetched from anywhere.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from likelab._paths import atomic_write

__all__ = ["Cell", "Figure", "Section", "Table", "fmt", "render", "write_page"]

_ENV = Environment(
    loader=PackageLoader("likelab.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Figure:
    """A figure embedded in the page: a PNG as a data URI, its pixel size, alt text, caption."""

    src: str
    width: int
    height: int
    alt: str
    caption: str = ""

    @classmethod
    def from_matplotlib(cls, fig: Any, *, alt: str, caption: str = "", dpi: int = 100) -> Figure:
        """Render a matplotlib figure to PNG and embed it."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        data = buf.getvalue()
        width, height = _png_size(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return cls(src=uri, width=width, height=height, alt=alt, caption=caption)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (bytes 16-24)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and an optional CSS class (``yes``/``no``/``text``)."""

    text: str
    cls: str = ""


@dataclass
class Table:
    """A real HTML table: a header row and rows of cells (strings are wrapped as cells)."""

    header: Sequence[str]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: Cell | str) -> None:
        self.rows.append([c if isinstance(c, Cell) else Cell(str(c)) for c in cells])


@dataclass
class Section:
    """A section of a page: its anchor, title, and what the template shows in it."""

    id: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, ``–`` where missing or not finite.

    >>> fmt(0.123456), fmt(None), fmt(float("nan")), fmt(12345.6, 4)
    ('0.123', '–', '–', '1.235e+04')
    """
    if x is None:
        return "–"
    x = float(x)
    if not math.isfinite(x):
        return "–" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    return f"{x:.{digits}g}"


def render(template: str, *, title: str, subtitle: str, sections: Iterable[Section], **context):
    """Render ``template`` (a file in ``likelab/report/templates``) to an HTML string."""
    from likelab import __version__

    context.setdefault("seconds", None)
    context.setdefault("intro", "")
    return _ENV.get_template(template).render(
        title=title,
        subtitle=subtitle,
        sections=list(sections),
        version=__version__,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **context,
    )


def write_page(out: str | Path, html: str) -> Path:
    """Write ``out/index.html``, whole or not at all (:func:`likelab._paths.atomic_write`);
    returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    with atomic_write(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
