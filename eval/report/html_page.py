"""``report.html``: one self-contained page of a run (no network, no external file): title, the metrics table,
the plots (embedded PNGs), the depth recommendations and the example sections.

The page's script sorts the table and filters the examples (``report.html#show=fixed`` opens with a filter
applied: ``fixed``, ``broken``, ``improved``, ``worsened`` or ``unchanged``); it records any script error into the element
``#page-errors`` (``data-count`` = number of errors), so a headless browser's DOM dump shows whether it ran cleanly.
"""

from __future__ import annotations

import base64
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from eval.report.results_file import Results

PLOTS = (("recall_curves", "Recall at K"), ("depth_sweep", "Quality against rerank depth"),
         ("quality_latency", "Quality against latency"))
NARROW_PLOTS = {"quality_latency"}  # one-panel plots, shown narrower than the multi-panel ones

STYLE = """
:root { --hit: #1a7f37; --muted: #555; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       margin: 0 auto; padding: 16px 16px 48px; max-width: 1400px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); }
h4 { font-size: 14px; margin: 0 0 6px; color: var(--muted); overflow-wrap: anywhere; }
.meta { color: var(--muted); margin: 0 0 16px; }
.table-wrap { overflow-x: auto; }
table.metrics { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.metrics caption { caption-side: bottom; text-align: left; color: var(--muted); padding-top: 8px; max-width: 1200px; }
table.metrics th, table.metrics td { border-bottom: 1px solid var(--line); padding: 3px 4px; vertical-align: top; }
table.metrics th { background: #f6f8fa; position: sticky; top: 0; }
th.group { text-align: center; border-left: 1px solid var(--line); }
th.wide { white-space: normal; min-width: 7em; }
th.sortable { cursor: pointer; user-select: none; white-space: nowrap; }
th.sortable:hover { background: #eaeef2; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: #000; }
th[aria-sort="descending"]::after { content: " \\2193"; color: #000; }
td.num { text-align: right; white-space: nowrap; }
td.setting { white-space: nowrap; }
td.rsum { font-weight: 600; }
.ci { display: block; font-size: 10.5px; color: var(--muted); }
.sig { color: #b35900; font-weight: 700; }
.ledger { color: var(--muted); }
.plots figure { margin: 0 0 16px; }
.plots img { width: 100%; max-width: 1100px; height: auto; border: 1px solid var(--line); }
.plots img.narrow { max-width: 760px; }
.plots figcaption { color: var(--muted); font-size: 13px; }
.filters { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 12px; }
.filters button { font: inherit; font-size: 14px; padding: 4px 12px; border: 1px solid var(--line); border-radius: 14px;
                  background: #fff; cursor: pointer; }
.filters button[aria-pressed="true"] { background: #1f2328; color: #fff; border-color: #1f2328; }
.filters button:disabled { color: #aaa; cursor: default; }
article.example { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin: 0 0 14px; }
article.example[hidden] { display: none; }
article.example header { margin-bottom: 8px; display: flex; flex-wrap: wrap; gap: 10px; align-items: baseline; }
.qid { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.badge { font-size: 13px; font-weight: 600; padding: 1px 8px; border-radius: 10px; background: #eaeef2; }
.badge.fixed { background: #dafbe1; color: #116329; } .badge.broken { background: #ffebe9; color: #a40e26; }
.badge.improved { background: #ddf4ff; color: #0550ae; } .badge.worsened { background: #fff8c5; color: #7d4e00; }
.example-body { display: grid; grid-template-columns: 220px 1fr; gap: 16px; }
.query blockquote { margin: 0 0 8px; padding: 6px 10px; background: #f6f8fa; border-left: 3px solid #8c959f;
                    overflow-wrap: anywhere; }
.query .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.query .id { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
img.query-image { width: 200px; height: auto; image-rendering: auto; border: 1px solid var(--line); }
.lists { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; min-width: 0; }
ol.cands { list-style: none; margin: 0; padding: 0; }
ol.images { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 6px; }
li.cand { position: relative; border: 3px solid transparent; border-radius: 4px; }
li.cand.hit { border-color: var(--hit); }
li.image img.thumb { width: 100%; height: auto; display: block; }
img.thumb.target { width: 80px; border: 1px solid var(--line); }
li.image .rank { position: absolute; top: 2px; left: 2px; background: rgba(255,255,255,.9); font-size: 12px;
                 font-weight: 700; padding: 0 5px; border-radius: 3px; }
li.image .mark { display: block; text-align: center; font-size: 13px; font-weight: 700; color: #fff; background: var(--hit); }
ol.captions li.cand { display: grid; grid-template-columns: 26px 1fr; gap: 4px; padding: 3px 6px; margin-bottom: 4px;
                      font-size: 14px; border-width: 2px; border-color: #eaeef2; }
ol.captions li.cand.hit { border-color: var(--hit); background: #f0fff4; border-width: 3px; }
ol.captions .rank { font-weight: 700; color: var(--muted); }
ol.captions .text { overflow-wrap: anywhere; }
ol.captions .mark { grid-column: 2; font-size: 13px; font-weight: 700; color: var(--hit); }
.empty { color: var(--muted); font-style: italic; }
#page-errors:empty { display: none; }
#page-errors { color: #a40e26; border: 1px solid #a40e26; padding: 8px; white-space: pre-wrap; }
"""

SCRIPT = """
(function () {
  var errors = document.getElementById('page-errors');
  function record(message) {
    errors.setAttribute('data-count', String(Number(errors.getAttribute('data-count')) + 1));
    errors.textContent += 'script error: ' + message + '\\n';
  }
  window.addEventListener('error', function (event) { record(event.message); });
  try {
    document.querySelectorAll('table.metrics').forEach(function (table) {
      var body = table.tBodies[0];
      table.querySelectorAll('th.sortable').forEach(function (th) {
        th.addEventListener('click', function () {
          var col = Number(th.getAttribute('data-col'));
          var ascending = th.getAttribute('aria-sort') === 'descending';
          table.querySelectorAll('th.sortable').forEach(function (o) { o.removeAttribute('aria-sort'); });
          th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = a.cells[col].getAttribute('data-sort'), y = b.cells[col].getAttribute('data-sort');
            var nx = parseFloat(x), ny = parseFloat(y), order;
            if (isNaN(nx) || isNaN(ny)) { order = isNaN(nx) - isNaN(ny) || x.localeCompare(y); }
            else { order = nx - ny; }
            return ascending ? order : -order;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
    document.querySelectorAll('section.examples').forEach(function (section) {
      var buttons = section.querySelectorAll('.filters button');
      var empty = section.querySelector('.empty');
      buttons.forEach(function (button) {
        button.addEventListener('click', function () {
          var kind = button.getAttribute('data-filter'), shown = 0;
          buttons.forEach(function (b) { b.setAttribute('aria-pressed', String(b === button)); });
          section.querySelectorAll('article.example').forEach(function (article) {
            var show = kind === 'all' || article.getAttribute('data-outcome') === kind;
            article.hidden = !show;
            shown += show ? 1 : 0;
          });
          empty.hidden = shown > 0;
        });
      });
      var wanted = (window.location.hash.match(/show=([a-z]+)/) || [])[1];
      var preset = wanted && section.querySelector('.filters button[data-filter="' + wanted + '"]');
      if (preset && !preset.disabled) { preset.click(); }
    });
  } catch (error) { record(error && error.message ? error.message : String(error)); }
  document.body.setAttribute('data-script', 'done');
})();
"""


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _date(provenance: dict[str, Any]) -> str:
    finished = provenance.get("finished_at")
    try:
        return datetime.fromisoformat(str(finished)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(finished) if finished else "date not recorded"


def _machine(provenance: dict[str, Any]) -> str:
    hardware = provenance.get("hardware")
    if not isinstance(hardware, dict):
        return "machine not recorded"
    gpus = hardware.get("gpus") or []
    gpu_text = ", ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in gpus) or "no GPU"
    cpu = f"{hardware.get('cpu', 'CPU')} ({hardware.get('cpu_count', '?')} cores)"
    return f"{cpu}, {gpu_text}"


def plots_section(plots: dict[str, Path]) -> str:
    """The plots given as name -> PNG path, embedded as data URIs (a note when there are none)."""
    figures = [f'<figure><img class="{"narrow" if name in NARROW_PLOTS else "wide"}" src="{_png_uri(plots[name])}" '
               f'alt="{escape(title)}"><figcaption>{escape(title)}'
               f"</figcaption></figure>" for name, title in PLOTS if name in plots]
    return f'<div class="plots">{"".join(figures)}</div>' if figures else "<p>No plots were written for this run.</p>"


def page(results: Results, table: str, recommendation: str, plots: str, examples: str) -> str:
    """The whole page around the already rendered sections."""
    title = f"rrbench report: {results.experiment}"
    meta = " \u00b7 ".join([results.dataset or "dataset not recorded", _machine(results.provenance),
                            _date(results.provenance)])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body data-script="pending"><div id="page-errors" data-count="0"></div>
<h1>{escape(title)}</h1><p class="meta">{escape(meta)}</p>
<h2>Metrics</h2>{table}
<h2>Plots</h2>{plots}
<h2>Recommended rerank depth</h2>{recommendation}
{examples}
<script>{SCRIPT}</script></body></html>
"""
