"""report.html and the example figures: written by `rrbench run` and `rrbench report` from a real tiny run, skipped
with one warning when the per-query file or the dataset is missing, every data text escaped."""

import json
import logging
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.report.build import build_report
from eval.report.example_page import PAGE_NAME
from eval.report.example_queries import ExampleQuery, ExampleSet, RankedList
from eval.report.html_examples import examples_section
from eval.report.html_metrics import metrics_table
from eval.report.html_page import page
from eval.report.results_file import Results, Setting
from eval.report.thumbnails import ThumbnailCache
from eval.data.benchmark import Benchmark, CaptionItem, ImageItem

FIGURES = {f"examples_{d}.{ext}" for d in ("t2i", "i2t") for ext in ("png", "pdf")}
EVIL = 'a <script>alert("x")</script> & \'quotes\' <b>bold</b>'


def test_run_writes_page_and_figures(tiny_run):
    folder = tiny_run.parent
    assert {PAGE_NAME, *FIGURES} <= {p.name for p in folder.iterdir()}
    html = (folder / PAGE_NAME).read_text(encoding="utf-8")
    assert "rerank itm+itc k=10" in html and "stage2/itm+itc/k=10" in html  # analysis.example_cell is honoured
    assert html.count('<article class="example"') == 2 * 6  # analysis.examples per direction
    assert "http://" not in html and "https://" not in html  # self-contained: nothing loaded from the network
    assert html.count("data:image/png;base64,") == 3  # the three plots embedded
    for direction in ("t2i", "i2t"):
        picture = np.asarray(Image.open(folder / f"examples_{direction}.png").convert("L"), dtype=float)
        assert picture.shape[1] > 1000 and picture.std() > 20  # drawn, not blank
        assert (folder / f"examples_{direction}.pdf").read_bytes().startswith(b"%PDF")


def test_report_out_rebuilds_page_from_results_and_caches(tiny_run, tmp_path):
    written = build_report([tiny_run], tmp_path / "out")
    assert {PAGE_NAME, *FIGURES} <= {p.name for p in written}
    assert (tmp_path / "out" / PAGE_NAME).read_text(encoding="utf-8") == (tiny_run.parent / PAGE_NAME).read_text(
        encoding="utf-8")  # same seeded sample, same page


def _copy_run(tiny_run: Path, target: Path, with_per_query: bool = True) -> Path:
    target.mkdir(parents=True)
    shutil.copy(tiny_run, target / "results.json")
    if with_per_query:
        shutil.copy(tiny_run.parent / "per_query.npz", target / "per_query.npz")
    return target / "results.json"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_missing_per_query_file_warns_once_and_skips_the_page(tiny_run, tmp_path, caplog):
    path = _copy_run(tiny_run, tmp_path / "tiny", with_per_query=False)
    with caplog.at_level(logging.WARNING):
        written = build_report([path])
    assert [p.name for p in written if p.name in {PAGE_NAME, *FIGURES}] == []
    assert not (path.parent / PAGE_NAME).exists() and (path.parent / "table.md").exists()  # the rest is written
    [warning] = _warnings(caplog)
    assert "per_query.npz" in warning and "no report.html" in warning


@pytest.mark.parametrize("dataset, reason", [
    ({"format": "flickr8k", "root": "/nonexistent/flickr8k"}, "cannot load"),
    (None, "num_test"),  # a different dataset than the run's: 10 images instead of 12
])
def test_missing_or_changed_dataset_warns_once_and_skips_the_page(tiny_run, tmp_path, caplog, dataset, reason):
    path = _copy_run(tiny_run, tmp_path / "tiny")
    data = json.loads(path.read_text())
    if dataset is None:
        data["provenance"]["config"]["dataset"]["synthetic"]["num_test"] = 10
        reason = "the dataset now has 10 images, the run had 12"
    else:
        data["provenance"]["config"]["dataset"] = dataset
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        written = build_report([path])
    assert not (path.parent / PAGE_NAME).exists() and not [p for p in written if p.name in FIGURES]
    [warning] = _warnings(caplog)
    assert reason in warning, warning


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_data_text_is_escaped(tmp_path):
    images = []
    for i in range(2):
        Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(tmp_path / f"{i}.png")
        images.append(ImageItem(f'img"{i}<', tmp_path / f"{i}.png"))
    captions = [CaptionItem(f"c{i}", EVIL, images[i % 2].id) for i in range(4)]
    bench = Benchmark("evil", "test", images, captions)
    cell = Setting("stage2/itm/k=5", "<i>rerank</i> & co", "itm", 5)
    stage1 = Setting("stage1", "stage 1", None, 0)
    examples = ExampleSet(cell, stage1, {
        "t2i": [ExampleQuery("t2i", 0, "fixed", 2, 1, RankedList((1, 0), (False, True)), RankedList((0, 1), (True, False)))],
        "i2t": [ExampleQuery("i2t", 1, "broken", 1, 2, RankedList((1, 0), (True, False)), RankedList((0, 1), (False, True)))],
    }, {"t2i": {"fixed": 1}, "i2t": {"broken": 1}}, {"t2i": 2, "i2t": 4})
    results = Results(tmp_path / "results.json", "x<y", {"stage1/rsum": 1.0}, [stage1, cell], {})
    html = page(results, metrics_table(results), "", "", examples_section(examples, bench, ThumbnailCache(images), 0))
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<i>rerank" not in html and "&lt;i&gt;rerank&lt;/i&gt; &amp; co" in html
    assert 'alt="image img&quot;0&lt;"' in html  # attributes too
    parser = _Tags()
    parser.feed(html)
    assert parser.tags.count("script") == 1 and "i" not in parser.tags and "<b>bold" not in html


def test_the_run_hands_its_benchmark_to_the_page_and_a_report_reloads_it_the_same_way(tiny_run, tmp_path,
                                                                                        monkeypatch):
    """The runner's page uses the benchmark it already loaded; ``rrbench report`` loads it as the run did
    (``load_experiment_benchmark``), so both pages are the same file."""
    import eval.report.example_source as example_source
    from eval.data.benchmark import Benchmark
    from eval.experiment_config import load_experiment_benchmark
    from eval.report.build import build_report
    from eval.report.results_file import load_results

    loads = []

    def counting(cfg) -> Benchmark:
        loads.append(cfg.experiment)
        return load_experiment_benchmark(cfg)

    monkeypatch.setattr(example_source, "load_experiment_benchmark", counting)
    results = load_results(tiny_run)
    reloaded = build_report([tiny_run], tmp_path / "reloaded")
    assert loads == [results.experiment] and tmp_path / "reloaded" / "report.html" in reloaded
    bench = counting(from_config(results))
    handed = build_report([tiny_run], tmp_path / "handed", bench=bench)
    assert loads == [results.experiment] * 2 and tmp_path / "handed" / "report.html" in handed
    assert (tmp_path / "handed" / "report.html").read_bytes() == (tmp_path / "reloaded" / "report.html").read_bytes()


def from_config(results):
    from eval.experiment_config import ExperimentConfig, with_cache_dirs
    from eval.typed_config import from_dict

    return with_cache_dirs(from_dict(ExperimentConfig, results.provenance["config"], "test"))
