"""Plots from a results.json fixture: PNG and PDF written, PNGs open with PIL at a sane size."""

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
    markers = [line for line in ax.lines if line.get_marker() not in ("None", None, "")]
    hollow = [line for line in markers if line.get_markerfacecolor() == "none"]
    assert len(hollow) == 6  # the six itm depths
    assert len(markers) - len(hollow) == 1 + 6  # stage 1 and the itm+itc depths are filled
    assert LEDGER_LEGEND in [text.get_text() for text in ax.get_legend().get_texts()]

    measured = quality_latency_figure(load_results(write_results(tmp_path / "m", make_results())))
    assert LEDGER_LEGEND not in [t.get_text() for t in measured.axes[0].get_legend().get_texts()]
