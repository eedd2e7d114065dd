"""Plots from a results.json fixture: PNG and PDF written, PNGs open with PIL at a sane size."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.report.plots import PLOTS, main_settings, write_plots
from eval.report.results_file import load_results

from .conftest import make_results, write_results


@pytest.fixture(scope="module")
def plot_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("plots")
    results = load_results(write_results(directory, make_results()))
    return results, write_plots(results, directory)


def test_every_plot_is_written_as_png_and_pdf(plot_files):
    _, paths = plot_files
    expected = {f"{name}.{ext}" for name, _ in PLOTS for ext in ("png", "pdf")}
    assert {p.name for p in paths} == expected
    for path in paths:
        assert path.stat().st_size > 5_000, path
        if path.suffix == ".pdf":
            assert path.read_bytes()[:5] == b"%PDF-"


def test_pngs_open_with_a_sane_size(plot_files):
    _, paths = plot_files
    for path in (p for p in paths if p.suffix == ".png"):
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert 700 <= width <= 3000 and 400 <= height <= 1500, (path.name, image.size)
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
            assert colours is not None and len(colours) > 50  # not a blank canvas


def test_main_settings_are_stage1_and_each_rule_at_its_largest_depth(plot_files):
    results, _ = plot_files
    assert [s.key for s in main_settings(results)] == ["stage1", "stage2/itm/k=100", "stage2/itm+itc/k=100"]


def test_missing_curves_and_latency_skip_only_their_plots(tmp_path):
    data = make_results()
    data["curves"] = {}
    for setting in data["settings"]:
        setting.pop("ms_per_query")
    paths = write_plots(load_results(write_results(tmp_path, data)), tmp_path)
    assert {p.name for p in paths} == {"depth_sweep.png", "depth_sweep.pdf"}


def test_quality_latency_draws_ledger_latencies_hollow(tmp_path):
    """Latencies not measured in the run (cost ledger) get hollow markers and a legend note (issue 18 case 3)."""
    from eval.report.plots import LEDGER_LEGEND, quality_latency_figure

    data = make_results()
    for setting in data["settings"]:
        setting["latency_source"] = {d: "ledger" if setting["rule"] == "itm" else "this run" for d in ("t2i", "i2t")}
    figure = quality_latency_figure(load_results(write_results(tmp_path, data)))
    ax = figure.axes[0]
    markers = [line for line in ax.lines if line.get_marker() not in ("None", None, "") and line.get_markersize() != 15]
    hollow = [line for line in markers if line.get_markerfacecolor() == "none"]  # (size 15: recommendation rings)
    assert len(hollow) == 6  # the six itm depths
    assert len(markers) - len(hollow) == 1 + 6  # stage 1 and the itm+itc depths are filled
    assert LEDGER_LEGEND in [text.get_text() for text in ax.get_legend().get_texts()]

    measured = quality_latency_figure(load_results(write_results(tmp_path / "m", make_results())))
    assert LEDGER_LEGEND not in [t.get_text() for t in measured.axes[0].get_legend().get_texts()]


REPO = Path(__file__).resolve().parents[3]
DEMO_RESULTS = REPO / "results" / "demo" / "results.json"


def _label_layout(figure):
    """(axes, renderer, label boxes, legend box) of a drawn quality/latency figure, in display pixels."""
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    labels = [(text.get_text(), text.get_window_extent(renderer)) for text in ax.texts]
    return ax, renderer, labels, ax.get_legend().get_window_extent(renderer)


def _marker_centres(ax):
    centres = []
    for line in ax.lines:
        if line.get_marker() not in ("None", None, ""):
            centres += [tuple(p) for p in ax.transData.transform(np.column_stack(line.get_data()))]
    return centres


@pytest.mark.parametrize("source", ["demo", "fixture"])
def test_quality_latency_keeps_legend_off_the_points_and_labels_apart(tmp_path, source):
    """On the demo's committed results.json (and the fixture): the legend is outside the axes, so it covers no
    point; no two point labels overlap, none overlaps the legend or a marker, every label stays inside the axes
    and every depth of the run is labelled (issue 19 item 8)."""
    from eval.report.plots import quality_latency_figure

    path = DEMO_RESULTS if source == "demo" else write_results(tmp_path, make_results())
    results = load_results(path)
    ax, renderer, labels, legend = _label_layout(quality_latency_figure(results))
    frame = ax.get_window_extent(renderer)
    assert not legend.overlaps(frame)  # outside the axes: off every point by construction
    assert not any(legend.contains(x, y) for x, y in _marker_centres(ax))
    boxes = [box for _, box in labels]
    for i, (text, box) in enumerate(labels):
        assert not box.overlaps(legend), text
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        for other_text, other in labels[i + 1:]:
            assert not box.overlaps(other), (text, other_text)
        for x, y in _marker_centres(ax):
            assert not box.contains(x, y), (text, x, y)
    depths = {s.depth for s in results.settings if s.rule is not None}
    written = " ".join(text for text, _ in labels)
    assert all(f"k={k}" in written for k in depths) and "stage 1" in written
    assert len(boxes) == len(set((round(x), round(y)) for x, y in _marker_centres(ax)))  # one label per point


def test_coincident_points_share_one_label(tmp_path):
    """In the demo every rule's k=1 lands on one point (and alpha's and rrf's k=2 on another): one label each, in
    the shared colour the legend explains; a point of one rule keeps its rule's colour."""
    from eval.report.plots import SHARED_LABEL_COLOR, SHARED_LEGEND, quality_latency_figure

    ax = quality_latency_figure(load_results(DEMO_RESULTS)).axes[0]
    texts = [(t.get_text(), t.get_color()) for t in ax.texts]
    names = [text for text, _ in texts]
    assert names.count("k=1") == 1 and names.count("k=2") == 3  # shared by all; itm; itm+itc; alpha = rrf
    assert ("k=1", SHARED_LABEL_COLOR) in texts and ("k=2", SHARED_LABEL_COLOR) in texts
    assert names.count("k=20") == 4 and all(color != SHARED_LABEL_COLOR for text, color in texts if text == "k=20")
    assert SHARED_LEGEND in [t.get_text() for t in ax.get_legend().get_texts()]


def test_depth_sweep_draws_the_ceiling_and_the_recommendation(tmp_path):
    from eval.report.plots import ceiling_points, depth_sweep_figure, recommended_settings
    from eval.report.results_file import load_results

    from .conftest import make_results, write_results

    data = make_results()
    results = load_results(write_results(tmp_path / "x", data))
    stage1 = results.settings[0]
    points = ceiling_points(results, stage1, "t2i", [1, 5, 20])
    assert points == [(k, data["curves"]["stage1"]["t2i"][k - 1]) for k in (1, 5, 20)]
    recommended = recommended_settings(results)
    assert {s.key for s in recommended.values()} == {e["cell"] for e in data["analysis"]["recommendation"].values()}
    fig = depth_sweep_figure(results)
    ceiling_lines = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("ceiling")]
    assert len(ceiling_lines) == 1 and list(ceiling_lines[0].get_ydata())[0] == data["curves"]["stage1"]["t2i"][0]
    rings = [line for line in fig.axes[2].get_lines() if line.get_markersize() == 15]
    assert len(rings) == len(recommended)
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert any(label.startswith("recommended k") for label in labels)
