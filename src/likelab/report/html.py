"""Self-contained HTML pages: Jinja2 templates with autoescaping, figures as PNG or SVG data.

A page is rendered from a template in ``likelab/report/templates`` with every value escaped
(Jinja2's ``autoescape``): a study, objective or dataset name holding ``<script>`` shows as text.
Figures travel inside the page as ``data:image/png;base64`` or ``data:image/svg+xml;base64`` URIs
(an SVG in an ``<img>`` runs no script and loads nothing, and its styles stay inside it; its text
is drawn as paths, so it needs no font) and tables are real HTML tables, each in a box that
scrolls sideways when it is wider than the page, so the page works offline, from a file, with no
scripts, fonts or styles fetched from anywhere.

The format of the figures is PNG unless a page is built inside :func:`figure_format`
(``likelab demo|report|train --figures svg``).
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from likelab._paths import atomic_write
from likelab.errors import ParameterError

__all__ = [
    "FIGURE_FORMATS",
    "Cell",
    "Figure",
    "Section",
    "Table",
    "check_figure_format",
    "current_figure_format",
    "figure_format",
    "fmt",
    "render",
    "write_page",
]

#: The formats a page's figures can be embedded in (``--figures``).
FIGURE_FORMATS = ("png", "svg")
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
_FORMAT: ContextVar[str] = ContextVar("likelab_figure_format", default="png")


def check_figure_format(fmt: str) -> str:
    """``fmt`` lower-cased when it is one of :data:`FIGURE_FORMATS`, else a ParameterError."""
    value = str(fmt).strip().lower()
    if value not in FIGURE_FORMATS:
        raise ParameterError(
            f"--figures must be one of {', '.join(FIGURE_FORMATS)}, got {str(fmt)!r}"
        )
    return value


@contextmanager
def figure_format(fmt: str) -> Iterator[str]:
    """Within this block, :meth:`Figure.from_matplotlib` embeds figures as ``fmt`` (``png`` or
    ``svg``) unless told otherwise; yields the checked format."""
    token = _FORMAT.set(check_figure_format(fmt))
    try:
        yield _FORMAT.get()
    finally:
        _FORMAT.reset(token)


def current_figure_format() -> str:
    """The format :meth:`Figure.from_matplotlib` uses by default (:func:`figure_format`)."""
    return _FORMAT.get()


_ENV = Environment(
    loader=PackageLoader("likelab.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Figure:
    """A figure embedded in the page: a PNG or SVG as a data URI, its size in CSS pixels, alt
    text, caption."""

    src: str
    width: int
    height: int
    alt: str
    caption: str = ""

    @classmethod
    def from_matplotlib(
        cls, fig: Any, *, alt: str, caption: str = "", dpi: int = 100, format: str | None = None
    ) -> Figure:
        """Render a matplotlib figure and embed it: as ``format`` (``png`` or ``svg``; by
        default the one of the enclosing :func:`figure_format`, else PNG). An SVG is shown at
        the size the PNG would have at ``dpi``."""
        fmt = current_figure_format() if format is None else check_figure_format(format)
        buf = io.BytesIO()
        if fmt == "svg":
            from matplotlib import rc_context

            # self-contained whatever the user's matplotlibrc says: text as paths (no font
            # needed to view it), raster images inside the SVG, not in files beside it
            with rc_context({"svg.fonttype": "path", "svg.image_inline": True}):
                fig.savefig(buf, format="svg", metadata={"Date": None})
            data = buf.getvalue()
            width, height = _svg_size(data, dpi)
        else:
            fig.savefig(buf, format="png", dpi=dpi)
            data = buf.getvalue()
            width, height = _png_size(data)
        uri = f"data:{_MIME[fmt]};base64," + base64.b64encode(data).decode("ascii")
        return cls(src=uri, width=width, height=height, alt=alt, caption=caption)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (bytes 16-24)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


#: CSS pixels per unit of an SVG length (CSS Values 3: 1in = 96px = 72pt).
_SVG_UNITS = {
    "": 1.0,
    "px": 1.0,
    "pt": 96 / 72,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
}
_SVG_LENGTH = re.compile(rb'\s(width|height)="([0-9.]+)\s*([^"]*)"')


def _svg_size(data: bytes, dpi: int = 96) -> tuple[int, int]:
    """Width and height of an SVG's root element in pixels at ``dpi`` (96 is CSS's own pixel;
    100 matches a PNG drawn at 100 dpi), from its ``width``/``height`` lengths."""
    start = data.find(b"<svg")
    if start < 0:
        raise ValueError("not an SVG")
    root = data[start : data.find(b">", start)]
    sizes = {}
    for name, value, unit in _SVG_LENGTH.findall(root):
        unit = unit.decode()
        if unit not in _SVG_UNITS:
            raise ValueError(f"SVG length in unsupported unit {unit!r}")
        sizes[name.decode()] = float(value) * _SVG_UNITS[unit] * dpi / 96
    if set(sizes) != {"width", "height"}:
        raise ValueError("SVG root without width and height")
    return round(sizes["width"]), round(sizes["height"])


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
