"""The demo page (``likelab demo --quick``), study and training pages, and a real browser."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.cli_support import make_study_store

from likelab.cli import main
from likelab.report.demo import STEPS

SECTIONS = ["underflow", "landscape", "properness", "xor", "next-word", "study"]


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The quick demo, run once through the CLI for the whole module."""
    out = tmp_path_factory.mktemp("demo") / "report"
    code, stdout, err = _cli("demo", "--quick", "--out", str(out))
    assert code == 0, err
    assert "step 1/6: underflow" in err and "step 6/6: writing the page" in err  # no TTY: lines
    return out, stdout


class _Page(HTMLParser):
    """Collects what the tests check: section ids, images, scripts, links, external URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.tables = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a)
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_quick_demo_writes_a_page_with_every_section(demo):
    out, stdout = demo
    assert "local minima" in stdout and "index.html" in stdout
    for name in ("index.html", "summary.md", "summary.json", "underflow.png", "landscape.png"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["landscape"]["objectives"]["log"]["local_minima"] == 1
    page = _parse(out / "index.html")
    assert page.sections == SECTIONS
    assert len(STEPS) == 6
    assert page.tables >= len(SECTIONS)
    assert len(page.images) >= len(SECTIONS)


def test_the_page_is_self_contained(demo):
    out, _ = demo
    page = _parse(out / "index.html")
    assert "script" not in page.tags and "link" not in page.tags
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert int(img["width"]) > 0 and int(img["height"]) > 0 and img["alt"]
    # the only links are the table of contents' anchors
    assert all(u.startswith(("#", "data:")) for u in page.urls), page.urls
    assert "url(" not in (out / "index.html").read_text()


def test_the_numbers_in_the_text_are_those_of_the_run(demo):
    out, _ = demo
    text = " ".join(" ".join(_parse(out / "index.html").text).split())
    summary = json.loads((out / "summary.json").read_text())
    f32 = summary["underflow"]["thresholds"]["float32"]
    assert f"exactly 0 from n = {f32['zero_at']}" in text
    lin = summary["landscape"]["objectives"]["linear"]
    assert f"has {lin['local_minima']} local minima" in text
    assert f"μ = {lin['argmin']['loc']:.4f}" in text
    # the study's fit count is that of the store
    import duckdb

    with duckdb.connect(str(out / "demo-study.duckdb"), read_only=True) as con:
        fits = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT cell_key, replicate, objective FROM results)"
        ).fetchone()[0]
    assert f"{fits:,} fits" in text


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "no Chromium found: install Debian's chromium package (apt-get install chromium) "
            "to open the report in a real browser"
        )
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extras)")
    return path


#: What the page's layout looks like at a window width: does the page itself scroll sideways
#: (it must not), and is every table in a box of its own that scrolls instead?
_LAYOUT = """() => {
    const root = document.documentElement;
    return {
        page_scroll: root.scrollWidth - root.clientWidth,
        tables: [...document.querySelectorAll('table')].map(t => {
            const box = t.parentElement;
            return {
                boxed: box.classList.contains('table-wrap'),
                overflow: getComputedStyle(box).overflowX,
                box_right: box.getBoundingClientRect().right,
                scrolls: box.scrollWidth > box.clientWidth,
            };
        }),
        widest_image: Math.max(0, ...[...document.images].map(
            i => i.getBoundingClientRect().right)),
        width: root.clientWidth,
    };
}"""


def _open_in_chromium(page_path: Path, shot: Path | None = None, widths=(1280, 800)):
    """Open a page headless; return (console errors, failed or external requests, facts);
    ``facts["layout"][w]`` is :data:`_LAYOUT` at a window ``w`` pixels wide."""
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": widths[0], "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: requests.append(r.url))
            page.on(
                "request",
                lambda r: None if r.url.startswith(("file:", "data:")) else requests.append(r.url),
            )
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            facts = page.evaluate(
                """() => ({
                    images: [...document.images].map(i => [i.complete, i.naturalWidth]),
                    sections: [...document.querySelectorAll('section')].map(s => s.id),
                    scripts: document.querySelectorAll('script').length,
                    text: document.body.innerText,
                })"""
            )
            if shot is not None:
                page.screenshot(path=str(shot), full_page=True)
            facts["layout"] = {}
            for width in widths:
                page.set_viewport_size({"width": width, "height": 900})
                facts["layout"][width] = page.evaluate(_LAYOUT)
        finally:
            browser.close()
    return errors, requests, facts


def _fits_the_window(facts) -> None:
    """No page-level horizontal scroll at any width tried; every table in a scrolling box
    that ends inside the window; no image wider than the window."""
    for width, layout in facts["layout"].items():
        assert layout["width"] == width
        assert layout["page_scroll"] == 0, (width, layout)
        assert layout["widest_image"] <= width, (width, layout)
        for table in layout["tables"]:
            assert table["boxed"] and table["overflow"] == "auto", (width, table)
            assert table["box_right"] <= width, (width, table)


def test_the_quick_demo_opens_in_headless_chromium(demo, tmp_path):
    out, _ = demo
    shot = tmp_path / "report.png"
    errors, requests, facts = _open_in_chromium(out / "index.html", shot)
    assert errors == []
    assert requests == []  # nothing fetched from the network
    assert facts["sections"] == SECTIONS
    assert facts["images"] and all(ok and width > 0 for ok, width in facts["images"])
    assert shot.stat().st_size > 10_000
    _fits_the_window(facts)


def test_a_table_wider_than_the_window_scrolls_in_its_own_box(tmp_path):
    """A table far wider than any window (24 long columns), drawn by the macro every section's
    tables go through, in the page template every page uses."""
    from likelab.report.html import _ENV, Table, render, write_page

    wide = Table(header=[f"a long column header number {i}" for i in range(24)], caption="w")
    for r in range(3):
        wide.add(*(f"{r * i:,}.123456789 ± 0.000001" for i in range(24)))
    table = _ENV.get_template("macros.html").module.table(wide)
    html = render("page.html", title="t", subtitle="s", sections=[])
    page = write_page(tmp_path, html.replace("</main>", f"{table}</main>"))
    errors, requests, facts = _open_in_chromium(page, widths=(1280, 800, 480))
    assert errors == [] and requests == []
    _fits_the_window(facts)
    for layout in facts["layout"].values():
        assert [t["scrolls"] for t in layout["tables"]] == [True]  # it does not fit: it scrolls


STUDY = """
name: "<script>alert('x')</script> & co"
seed: 3
dgps:
  - family: normal
    params: {loc: 0, scale: 1}
    contamination: {eps: [0, 0.1], dgp: "normal:loc=6,scale=1"}
sample_sizes: [20, 50]
replicates: 30
block: 30
model: {family: normal}
objectives: [log, "dpd:beta=0.5"]
"""


@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    return make_study_store(tmp_path_factory.mktemp("study"), STUDY, "evil")[1]


def test_a_study_name_with_a_script_tag_shows_as_text(study_store, tmp_path):
    out = tmp_path / "page"
    code, _, err = _cli("report", str(study_store), "--out", str(out), "--theory")
    assert code == 0, err
    html = (out / "index.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(" in html
    page = _parse(out / "index.html")
    assert "script" not in page.tags
    text = "".join(page.text)
    assert "<script>alert('x')</script> & co" in text  # shown, as text, unchanged
    # per parameter (loc, scale) the measures with their Monte Carlo intervals; the
    # nested-loop plot; √n × EmpSE beside the asymptotic SD (--theory), relative efficiency
    # (beside the ARE), relative MSE, bias and the model SE's relative error vs n; the
    # measures vs contamination; the zip plot of coverage
    assert len(page.images) == 2 + 1 + 1 + 4 + 1 + 1
    # each comparison with log is labelled for what it measures, in the table and the text
    assert "rel. efficiency vs log: EmpSE² ratio, ignores bias (MCSE)" in text
    assert "rel. MSE vs log: MSE ratio, includes bias (MCSE)" in text
    assert "relative MSE against log (MSE ratio, includes bias)" in " ".join(text.split())


def test_the_study_page_in_chromium_runs_no_script(study_store, tmp_path):
    out = tmp_path / "page"
    assert _cli("report", str(study_store), "--out", str(out))[0] == 0
    errors, requests, facts = _open_in_chromium(out / "index.html")
    assert errors == [] and requests == []
    assert facts["scripts"] == 0
    assert "<script>alert('x')</script> & co" in facts["text"]
    assert all(ok and width > 0 for ok, width in facts["images"])
    _fits_the_window(facts)


def _images_are(page: _Page, fmt: str) -> None:
    mime = {"png": "image/png", "svg": "image/svg+xml"}[fmt]
    assert page.images
    for img in page.images:
        assert img["src"].startswith(f"data:{mime};base64,"), img["src"][:40]
        assert int(img["width"]) > 0 and int(img["height"]) > 0


def test_study_report_with_svg_figures(study_store, tmp_path):
    png, svg = tmp_path / "png", tmp_path / "svg"
    assert _cli("report", str(study_store), "--out", str(png))[0] == 0
    code, _, err = _cli("report", str(study_store), "--out", str(svg), "--figures", "svg")
    assert code == 0, err
    _images_are(_parse(png / "index.html"), "png")
    page = _parse(svg / "index.html")
    _images_are(page, "svg")
    # the same figures, shown at the same size, and nothing written beside the page
    sizes = [(i["width"], i["height"]) for i in page.images]
    assert sizes == [(i["width"], i["height"]) for i in _parse(png / "index.html").images]
    assert sorted(p.name for p in svg.iterdir()) == ["index.html"]
    errors, requests, facts = _open_in_chromium(svg / "index.html")
    assert errors == [] and requests == [] and facts["scripts"] == 0
    assert all(ok and width > 0 for ok, width in facts["images"])  # the browser drew them
    _fits_the_window(facts)


@pytest.mark.parametrize("command", ["report", "demo"])
def test_an_unknown_figure_format_is_refused_before_any_work(command, tmp_path, study_store):
    out = tmp_path / "out"
    args = [str(study_store)] if command == "report" else ["--quick"]
    code, _, err = _cli(command, *args, "--out", str(out), "--figures", "jpg")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: --figures must be one of png, svg")
    assert not out.exists() or not any(out.iterdir())


def test_demo_passes_figures_to_the_whole_run(monkeypatch, tmp_path):
    """`likelab demo --figures svg` reaches run_demo, which draws every section under it."""
    import likelab.report.demo as demo_module
    from likelab.report.html import current_figure_format

    seen = {}

    def body(out, *, quick, seed, on_step, figures):
        seen["figures"], seen["current"] = figures, current_figure_format()
        return demo_module.DemoReport(
            out=Path(out),
            page=Path(out) / "index.html",
            store=Path(out) / "s.duckdb",
            quick=quick,
            seconds=0.0,
            sections=[],
        )

    monkeypatch.setattr(demo_module, "_run_demo", body)
    code, _, err = _cli(
        "demo", "--quick", "--out", str(tmp_path / "o"), "--figures", "svg", "--json"
    )
    assert code == 0, err
    assert seen == {"figures": "svg", "current": "svg"}
    code, _, err = _cli("demo", "--quick", "--out", str(tmp_path / "o"), "--json")
    assert code == 0, err
    assert seen == {"figures": "png", "current": "png"}


@pytest.mark.parametrize("figures", ["png", "svg"])
def test_walkthrough_figure_files_follow_the_format(tmp_path, figures):
    from likelab.report.walkthrough import write_walkthrough

    walk = write_walkthrough(tmp_path, seed=1, figures=figures)
    other = "png" if figures == "svg" else "svg"
    assert f"underflow.{figures}" in walk.files and f"landscape.{figures}" in walk.files
    for name in walk.files:
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(f"*.{other}"))
    summary = (tmp_path / "summary.md").read_text()
    assert f"`underflow.{figures}`" in summary and f".{other}`" not in summary
    if figures == "svg":
        head = (tmp_path / "underflow.svg").read_text()[:400]
        assert "<svg" in head


def test_report_of_a_missing_store_is_one_line_and_exit_2(tmp_path):
    code, _, err = _cli("report", str(tmp_path / "nope.duckdb"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and "does not exist" in err


@pytest.mark.parametrize(
    "dataset,objectives,model,images,phrase,figures",
    [
        # known P(Y|X): predicted vs true probabilities, reliability, learning curves
        ("xor:flip=0.1", "log,linear", "mlp:8", 3, "mean |p̂ − p|", "png"),
        # unknown: reliability and learning curves, and the accuracies in the text
        ("iris", "log,brier", "logistic", 2, "Test accuracy by objective", "svg"),
    ],
)
def test_train_report(tmp_path, dataset, objectives, model, images, phrase, figures):
    out = tmp_path / "train"
    code, _, err = _cli(
        "train",
        "--dataset",
        dataset,
        "--objectives",
        objectives,
        "--model",
        model,
        "--epochs",
        "3",
        "--seeds",
        "1",
        "--report",
        str(out),
        "--figures",
        figures,
    )
    assert code == 0, err
    page = _parse(out / "index.html")
    assert page.sections == ["training"]
    assert len(page.images) == images
    _images_are(page, figures)
    assert phrase in " ".join(" ".join(page.text).split())


def test_report_of_a_file_that_is_not_a_study_store_is_one_line_and_exit_2(tmp_path):
    import duckdb

    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    for path in (other, text):
        code, _, err = _cli("report", str(path))
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith("error:")
