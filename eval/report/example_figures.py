"""``examples_t2i`` / ``examples_i2t`` (PNG + PDF): a grid figure of a few sampled queries for a paper.

Each row is one query: the query (a wrapped caption for t2i, the image for i2t) with the rank of its first relevant
item before and after and its outcome, then stage 1's top 5 and the chosen cell's top 5. t2i candidates are image
thumbnails, i2t candidates captions drawn as text boxes. Ground truth: a thick green frame and "\u2713 match" in the
label, so it is not shown by colour alone. Drawn with matplotlib's object API (no pyplot state).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from eval.data.benchmark import Benchmark
from eval.report.example_queries import ExampleQuery, ExampleSet, RankedList, rank_text
from eval.report.thumbnails import ThumbnailCache

DPI = 200
WIDTH_IN = 9.0
FONT = 7.5
HIT = "#1a7f37"
MISS = "#8c959f"
HEADER_IN = 0.35  # inches above the first row for the two group headers
T2I_RATIOS = [2.6] + [1.0] * 5 + [0.3] + [1.0] * 5
I2T_RATIOS = [1.6, 5.0, 0.3, 5.0]
CAPTION_LINES = 2  # lines per candidate caption; longer ones end with an ellipsis
QUERY_LINES = 6  # lines of a t2i query caption
LINE_PT = 1.2  # line height of a caption box, in font sizes
BOX_GAP_PT = 1.1  # box padding below and above plus the gap between two boxes, in font sizes


class TextFitter:
    """Word-wraps text to an axes' width as the figure's renderer measures it; each word's width is measured once
    per figure (lines are summed from word widths, a close estimate that keeps the wrapping fast)."""

    def __init__(self, fig: Figure) -> None:
        self.renderer = fig.canvas.get_renderer()
        self._widths: dict[tuple[str, float, bool], float] = {}

    def width(self, piece: str, size: float, bold: bool) -> float:
        """Width in pixels of ``piece`` (no line breaks)."""
        key = (piece, size, bold)
        if key not in self._widths:
            font = FontProperties(size=size, weight="bold" if bold else "normal")
            self._widths[key] = self.renderer.get_text_width_height_descent(piece, font, ismath=False)[0]
        return self._widths[key]

    def line_width(self, line: str, size: float, bold: bool) -> float:
        """Width of a line of words separated by single spaces (leading spaces included)."""
        space = self.width("a a", size, bold) - 2 * self.width("a", size, bold)
        return sum(self.width(w, size, bold) for w in line.split(" ") if w) + space * line.count(" ")

    def fit(self, text: str, ax: Axes, size: float, bold: bool = False, max_lines: int = 0, indent: str = "") -> str:
        """``text`` word-wrapped to the width of ``ax`` (``indent`` before every line after the first); past
        ``max_lines`` (0: no limit) the last line ends with an ellipsis."""
        limit = ax.get_window_extent(self.renderer).width * 0.96

        def fits(line: str) -> bool:
            return self.line_width(line, size, bold) <= limit

        lines: list[str] = []
        for word in text.split():
            candidate = f"{lines[-1]} {word}" if lines else word
            if lines and fits(candidate):
                lines[-1] = candidate
            else:
                lines.append((indent if lines else "") + word)
        if max_lines and len(lines) > max_lines:
            last = lines[max_lines - 1]
            while last.strip() and not fits(last + " \u2026"):
                last = last.rsplit(" ", 1)[0] if " " in last.strip() else last[:-1]
            lines = lines[:max_lines - 1] + [last + " \u2026"]
        return "\n".join(lines) or " "


def _outcome_label(example: ExampleQuery, depth: int, separator: str = " ") -> str:
    return (f"rank {rank_text(example.rank_before, depth)} \u2192 {rank_text(example.rank_after, depth)}{separator}"
            f"({example.outcome})")


def _figure(rows: int, row_height: float, ratios: list[float], hspace: float) -> tuple[Figure, object]:
    height = HEADER_IN + rows * row_height + 0.1
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, len(ratios), width_ratios=ratios, left=0.01, right=0.99, bottom=0.1 / height,
                            top=1 - HEADER_IN / height, wspace=0.08, hspace=hspace)
    return fig, grid


def _group_headers(fig: Figure, first: Axes, last: Axes, second_first: Axes, second_last: Axes,
                   examples: ExampleSet) -> None:
    top = 1 - 0.12 / fig.get_figheight()
    for (a, b), label in (((first, last), examples.reference.label), ((second_first, second_last), examples.cell.label)):
        x = (a.get_position().x0 + b.get_position().x1) / 2
        fig.text(x, top, f"{label}: top 5", ha="center", va="top", fontsize=FONT + 1.5, fontweight="bold")


def _image_candidate(ax: Axes, cache: ThumbnailCache, position: int, rank: int, relevant: bool) -> None:
    ax.imshow(cache.array(position))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(HIT if relevant else MISS)
        spine.set_linewidth(3.5 if relevant else 0.6)
    label = f"#{rank}  \u2713 match" if relevant else f"#{rank}"
    ax.set_title(label, fontsize=FONT, color=HIT if relevant else "black", fontweight="bold" if relevant else "normal",
                 pad=3)


def t2i_figure(examples: ExampleSet, bench: Benchmark, cache: ThumbnailCache, queries: list[ExampleQuery]) -> Figure:
    """The t2i grid: query caption, then stage 1's and the cell's top-5 images."""
    fig, grid = _figure(len(queries), 1.05, T2I_RATIOS, hspace=0.32)
    fitter = TextFitter(fig)
    depth = examples.list_depth["t2i"]
    edges: list[Axes] = []
    for row, example in enumerate(queries):
        text_ax = fig.add_subplot(grid[row, 0])
        text_ax.axis("off")
        text_ax.text(0, 1, _outcome_label(example, depth), va="top", ha="left", fontsize=FONT,
                     fontweight="bold", transform=text_ax.transAxes)
        caption = fitter.fit(bench.captions[example.position].text, text_ax, FONT, max_lines=QUERY_LINES)
        text_ax.text(0, 0.8, caption, va="top", ha="left", fontsize=FONT, transform=text_ax.transAxes, style="italic")
        for offset, ranked in ((1, example.before), (7, example.after)):
            for i in range(5):
                ax = fig.add_subplot(grid[row, offset + i])
                if i < len(ranked.positions):
                    _image_candidate(ax, cache, ranked.positions[i], i + 1, ranked.relevant[i])
                else:
                    ax.axis("off")
                if row == 0 and i in (0, 4):
                    edges.append(ax)
    _group_headers(fig, *edges, examples)
    return fig


def _caption_boxes(ax: Axes, ranked: RankedList, bench: Benchmark, fitter: TextFitter) -> None:
    """The captions stacked top down, each box as tall as its lines, a constant gap between boxes."""
    ax.axis("off")
    size = FONT - 0.5
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    y = 1 - 0.3 * size / height_pt  # the box's padding above the first line
    for i, (position, relevant) in enumerate(zip(ranked.positions, ranked.relevant)):
        mark = "\u2713 match: " if relevant else ""
        text = fitter.fit(f"#{i + 1}  {mark}{bench.captions[position].text}", ax, size, bold=relevant,
                          max_lines=CAPTION_LINES, indent="      ")
        top, y = y, y - (text.count("\n") + 1) * LINE_PT * size / height_pt - BOX_GAP_PT * size / height_pt
        ax.text(0.01, top, text, va="top", ha="left", fontsize=size, transform=ax.transAxes,
                color=HIT if relevant else "black", fontweight="bold" if relevant else "normal",
                bbox={"boxstyle": "round,pad=0.25", "facecolor": "#f0fff4" if relevant else "white",
                      "edgecolor": HIT if relevant else MISS, "linewidth": 2.0 if relevant else 0.6})


def i2t_figure(examples: ExampleSet, bench: Benchmark, cache: ThumbnailCache, queries: list[ExampleQuery]) -> Figure:
    """The i2t grid: query image, then stage 1's and the cell's top-5 captions as text boxes."""
    fig, grid = _figure(len(queries), 1.8, I2T_RATIOS, hspace=0.15)
    fitter = TextFitter(fig)
    depth = examples.list_depth["i2t"]
    heads: list[Axes] = []
    for row, example in enumerate(queries):
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(cache.array(example.position))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(_outcome_label(example, depth, "\n"), fontsize=FONT, fontweight="bold")
        for column, ranked in ((1, example.before), (3, example.after)):
            box_ax = fig.add_subplot(grid[row, column])
            _caption_boxes(box_ax, ranked, bench, fitter)
            if row == 0:
                heads += [box_ax, box_ax]
    _group_headers(fig, *heads, examples)
    return fig


FIGURES = {"t2i": t2i_figure, "i2t": i2t_figure}


def write_example_figures(examples: ExampleSet, bench: Benchmark, cache: ThumbnailCache, out_dir: Path,
                          queries: dict[str, list[ExampleQuery]]) -> list[Path]:
    """``examples_<direction>.png`` and ``.pdf`` in ``out_dir`` for each direction with queries; the paths written."""
    written: list[Path] = []
    for direction, draw in FIGURES.items():
        if not queries.get(direction):
            continue
        fig = draw(examples, bench, cache, queries[direction])
        for suffix in (".png", ".pdf"):
            path = Path(out_dir) / f"examples_{direction}{suffix}"
            fig.savefig(path, dpi=DPI)
            written.append(path)
    return written
