"""The example section of the page, one per direction: each sampled query, stage 1's top list beside the chosen
cell's, ground truth marked by a green frame, a check mark and the word "match" (never by colour alone), the rank
of the first relevant item before and after, and filter buttons by outcome (``example_queries.OUTCOMES``).

Every text that comes from the data (captions, ids, labels) is HTML-escaped here.
"""

from __future__ import annotations

from html import escape

from eval.analysis.per_query import DIRECTIONS
from eval.data.benchmark import Benchmark
from eval.report.example_queries import OUTCOME_TEXT, OUTCOMES, ExampleQuery, ExampleSet, RankedList, rank_text
from eval.report.thumbnails import ThumbnailCache

TITLES = {"t2i": "Text-to-image examples (caption query, image candidates)",
          "i2t": "Image-to-text examples (image query, caption candidates)"}
MATCH = '<span class="mark">\u2713 match</span>'


def _image(cache: ThumbnailCache, bench: Benchmark, position: int, css: str) -> str:
    alt = escape(bench.images[position].id)
    return f'<img class="{css}" src="{cache.uri(position)}" alt="image {alt}" title="{alt}">'


def _candidate(kind: str, position: int, rank: int, relevant: bool, bench: Benchmark, cache: ThumbnailCache) -> str:
    body = (_image(cache, bench, position, "thumb") if kind == "image"
            else f'<span class="text">{escape(bench.captions[position].text)}</span>')
    hit = " hit" if relevant else ""
    return f'<li class="cand {kind}{hit}"><span class="rank">{rank}</span>{body}{MATCH if relevant else ""}</li>'


def _ranked_list(title: str, ranked: RankedList, direction: str, bench: Benchmark, cache: ThumbnailCache) -> str:
    kind = "image" if direction == "t2i" else "caption"
    items = "".join(_candidate(kind, p, i + 1, r, bench, cache)
                    for i, (p, r) in enumerate(zip(ranked.positions, ranked.relevant)))
    return f'<div class="list"><h4>{escape(title)}</h4><ol class="cands {kind}s">{items}</ol></div>'


def _query(example: ExampleQuery, bench: Benchmark, cache: ThumbnailCache) -> str:
    if example.direction == "t2i":
        caption = bench.captions[example.position]
        target = bench.image_index[caption.image_id]
        return (f'<div class="query"><div class="label">Query caption</div><blockquote>{escape(caption.text)}'
                f'</blockquote><div class="label">Its image</div>{_image(cache, bench, target, "thumb target")}</div>')
    image = bench.images[example.position]
    return (f'<div class="query"><div class="label">Query image</div>{_image(cache, bench, example.position, "query-image")}'
            f'<div class="id">{escape(image.id)}</div></div>')


def _example(example: ExampleQuery, examples: ExampleSet, bench: Benchmark, cache: ThumbnailCache) -> str:
    depth = examples.list_depth[example.direction]
    before, after = rank_text(example.rank_before, depth), rank_text(example.rank_after, depth)
    item = (bench.captions[example.position] if example.direction == "t2i" else bench.images[example.position]).id
    header = (f'<header><span class="badge {example.outcome}">{example.outcome}</span> '
              f'<span class="qid">{escape(item)}</span> <span class="ranks">first relevant item at rank '
              f'<b>{before}</b> \u2192 <b>{after}</b></span></header>')
    lists = (_ranked_list(f"{examples.reference.label}: top {len(example.before.positions)}", example.before,
                          example.direction, bench, cache)
             + _ranked_list(f"{examples.cell.label}: top {len(example.after.positions)}", example.after,
                            example.direction, bench, cache))
    return (f'<article class="example" data-outcome="{example.outcome}">{header}<div class="example-body">'
            f'{_query(example, bench, cache)}<div class="lists">{lists}</div></div></article>')


def _filters(direction: str, queries: list[ExampleQuery]) -> str:
    shown = {kind: sum(q.outcome == kind for q in queries) for kind in OUTCOMES}
    buttons = [f'<button type="button" data-filter="all" aria-pressed="true">all ({len(queries)})</button>']
    for kind in OUTCOMES:
        disabled = " disabled" if not shown[kind] else ""
        buttons.append(f'<button type="button" data-filter="{kind}" aria-pressed="false" '
                       f'title="{escape(OUTCOME_TEXT[kind])}"{disabled}>{kind} ({shown[kind]})</button>')
    return f'<div class="filters" role="group" aria-label="show {direction} examples">{"".join(buttons)}</div>'


def examples_section(examples: ExampleSet, bench: Benchmark, cache: ThumbnailCache, seed: int) -> str:
    """Both directions' example sections (see the module docstring)."""
    parts = []
    for d in DIRECTIONS:
        queries = examples.queries[d]
        counts = examples.counts[d]
        overall = ", ".join(f"{kind} {counts.get(kind, 0)}" for kind in OUTCOMES)
        note = (f"<b>{escape(examples.reference.label)}</b> beside <b>{escape(examples.cell.label)}</b> "
                f"(<code>{escape(examples.cell.key)}</code>). All {sum(counts.values())} queries: {overall}. "
                f"Shown: {len(queries)} drawn with seed {seed}, taking fixed, broken, improved, worsened and "
                f"unchanged queries in turn. A rank above {examples.list_depth[d]} means the relevant item was "
                f"not retrieved. Ground truth: green frame and \u201c\u2713 match\u201d.")
        articles = "".join(_example(q, examples, bench, cache) for q in queries)
        parts.append(f'<section class="examples" id="examples-{d}"><h2>{TITLES[d]}</h2><p class="note">{note}</p>'
                     f'{_filters(d, queries)}<p class="empty" hidden>No example of this kind in the sample.</p>'
                     f"{articles}</section>")
    return "".join(parts)
