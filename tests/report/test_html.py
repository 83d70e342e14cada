"""The page machinery: figures embedded as PNG or SVG, and the format chosen for a whole page."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from matplotlib.figure import Figure as MplFigure

from likelab.errors import ParameterError
from likelab.report.html import (
    Figure,
    _png_size,
    _svg_size,
    current_figure_format,
    figure_format,
)


def _small(width: float = 2.0, height: float = 1.5) -> MplFigure:
    fig = MplFigure(figsize=(width, height))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [1, 0, 1], label="a <b> & c")
    ax.set_title("t < 1")
    ax.legend()
    return fig


def _payload(src: str, mime: str) -> bytes:
    head = f"data:{mime};base64,"
    assert src.startswith(head)
    return base64.b64decode(src[len(head) :])


@pytest.mark.parametrize("dpi", [100, 120])
def test_png_and_svg_of_one_figure_show_at_the_same_size(dpi):
    fig = _small(2.5, 1.2)
    png = Figure.from_matplotlib(fig, alt="a", dpi=dpi, format="png")
    svg = Figure.from_matplotlib(fig, alt="a", dpi=dpi, format="svg")
    assert (png.width, png.height) == (round(2.5 * dpi), round(1.2 * dpi))
    assert (svg.width, svg.height) == (png.width, png.height)
    assert _png_size(_payload(png.src, "image/png")) == (png.width, png.height)
    data = _payload(svg.src, "image/svg+xml")
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # standalone: no script, nothing fetched (only in-document references such as "#p1a2b")
    text = data.decode()
    assert "<script" not in text.lower()
    for el in root.iter():
        for key, value in el.attrib.items():
            if key.endswith("href"):
                assert value.startswith("#"), (key, value)


def test_svg_text_is_drawn_as_paths_whatever_the_rc_says():
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        svg = Figure.from_matplotlib(_small(), alt="a", format="svg")
    text = _payload(svg.src, "image/svg+xml").decode()
    assert "<text" not in text  # no font needed to view it: the title "t < 1" is glyph paths
    assert "font-family" not in text


def test_svg_size_reads_every_css_unit():
    def svg(w: str, h: str) -> bytes:
        return f'<?xml version="1.0"?>\n<svg xmlns="x" width="{w}" height="{h}"></svg>'.encode()

    assert _svg_size(svg("72pt", "36pt")) == (96, 48)  # CSS: 72pt = 1in = 96px
    assert _svg_size(svg("72pt", "36pt"), dpi=100) == (100, 50)
    assert _svg_size(svg("2in", "1in")) == (192, 96)
    assert _svg_size(svg("300", "150px")) == (300, 150)
    assert _svg_size(svg("2.54cm", "25.4mm")) == (96, 96)
    with pytest.raises(ValueError, match="unit"):
        _svg_size(svg("50%", "10"))
    with pytest.raises(ValueError, match="not an SVG"):
        _svg_size(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="width and height"):
        _svg_size(b'<svg viewBox="0 0 1 1"></svg>')


def test_figure_format_sets_the_default_within_its_block_only():
    fig = _small()
    assert current_figure_format() == "png"
    with figure_format("SVG") as fmt:
        assert fmt == "svg" == current_figure_format()
        assert Figure.from_matplotlib(fig, alt="a").src.startswith("data:image/svg+xml;base64,")
        # an explicit format wins
        assert Figure.from_matplotlib(fig, alt="a", format="png").src.startswith(
            "data:image/png;base64,"
        )
        with figure_format("png"):
            assert current_figure_format() == "png"
        assert current_figure_format() == "svg"
    assert current_figure_format() == "png"
    assert Figure.from_matplotlib(fig, alt="a").src.startswith("data:image/png;base64,")


def test_figure_format_left_by_an_exception_is_reset():
    with pytest.raises(RuntimeError), figure_format("svg"):
        raise RuntimeError("boom")
    assert current_figure_format() == "png"


@pytest.mark.parametrize("bad", ["jpg", "", "pdf", "svgz"])
def test_an_unknown_figure_format_is_a_parameter_error(bad):
    with pytest.raises(ParameterError, match=r"--figures must be one of png, svg"):
        with figure_format(bad):
            pass
    with pytest.raises(ParameterError):
        Figure.from_matplotlib(_small(), alt="a", format=bad)
