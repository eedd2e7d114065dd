"""`rrbench config --doc` prints plain text: no reST markup of the docstrings, wrapped, one block per key."""

import re

import pytest

from eval.cli import main
from eval.config_doc import config_reference, plain_text, render_reference
from eval.experiment_config import ExperimentConfig

WIDTH = 88


@pytest.fixture(scope="module")
def doc_output():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["config", "--doc"]) == 0
    return buffer.getvalue()


@pytest.mark.parametrize("rst, plain", [
    ("outputs go to ``<output_dir>/<experiment>/``", "outputs go to <output_dir>/<experiment>/"),
    ("the dual encoder (see :class:`EncoderConfig`)", "the dual encoder (see EncoderConfig)"),
    ("see :class:`~stage1_dual.config.IndexConfig`", "see IndexConfig"),
    ("calls :func:`torch.set_num_threads` and :py:meth:`the loader <a.b.load>`",
     "calls torch.set_num_threads and the loader"),
    ("``a`` or ``b``, *not* ``\\``", "a or b, not \\"),
    ("alpha * ITM probability + (1 - alpha) * score, in [0, 2**32)",
     "alpha * ITM probability + (1 - alpha) * score, in [0, 2**32)"),
])
def test_plain_text_removes_rst_markup(rst, plain):
    assert plain_text(rst) == plain


def test_doc_output_has_no_rst_markup(doc_output):
    for markup in ("``", ":class:", ":func:", ":meth:", ":mod:", "`"):
        assert markup not in doc_output, markup
    assert not any(line.startswith("|") for line in doc_output.splitlines())  # not a Markdown table either
    assert "PosixPath(" not in doc_output and "Literal[" not in doc_output


def test_doc_output_is_wrapped_and_lists_every_key(doc_output):
    lines = doc_output.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    rows = config_reference(ExperimentConfig)
    blocks = doc_output.rstrip("\n").split("\n\n")
    intro, keys, fusion_rules = blocks[0], blocks[1:-1], blocks[-1]
    assert intro.startswith("Experiment config keys") and fusion_rules.startswith("Fusion rules")
    assert [block.splitlines()[0] for block in keys] == [row.key for row in rows]
    block = doc_output.split("\nexperiment\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines()[0] == "    type: str; required"
    assert "<output_dir>/<experiment>/" in block
    stage1_encoder = doc_output.split("\nstage1.encoder\n", 1)[1].split("\n\n", 1)[0]
    assert "(see EncoderConfig)" in stage1_encoder


def test_markdown_reference_uses_code_spans_not_rst():
    text = render_reference(config_reference(ExperimentConfig))
    assert "``" not in text and ":class:" not in text
    assert re.search(r"outputs go to `<output_dir>/<experiment>/`", text)


def test_doc_states_the_path_rule_and_describes_every_fusion_rule_and_its_parameters(doc_output):
    from stage2_rerank.fusion_rules import FUSION_RULE_NAMES

    intro = " ".join(doc_output.split("\n\n", 1)[0].split())
    assert "relative paths in a config resolve against the current directory, not the config file's folder" in intro
    fusion_rules = " ".join(doc_output.rstrip("\n").rsplit("\n\n", 1)[1].split())
    for rule in FUSION_RULE_NAMES:
        assert f" {rule}: " in fusion_rules, rule
    assert "1 / (rrf_k + stage-1 rank)" in fusion_rules
    for key, words in (("ablation.alpha", "weight of the ITM probability"), ("ablation.rrf_k", "reciprocal-rank"),
                       ("ablation.stage1_scale", "residual rule")):
        block = doc_output.split(f"\n{key}\n", 1)[1].split("\n\n", 1)[0]
        assert words in " ".join(block.split()), key
