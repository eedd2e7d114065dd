"""`rrbench --help` and each subcommand's `--help` end with example command lines that work as written."""

import contextlib
import io
import shlex
from pathlib import Path

import pytest

from eval.cli import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def help_text(argv: list[str]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return buffer.getvalue()


def example_lines(text: str) -> list[list[str]]:
    """argv (after ``rrbench``) of each example line under ``examples:``, comments and pipes cut off."""
    section = text.split("\nexamples:\n", 1)[1]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("rrbench ")]
    return [shlex.split(line.split(" #")[0].split(" | ")[0])[1:] for line in lines]


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_each_subcommand_help_shows_examples_of_itself(command):
    text = help_text([command, "--help"])
    examples = example_lines(text)
    assert examples, text
    assert all(argv[0] == command for argv in examples), examples
    for line in text.split("\nexamples:\n", 1)[1].splitlines():
        assert not line.strip() or line.startswith("  "), line  # kept as written (RawDescriptionHelpFormatter)


def test_top_level_help_lists_an_example():
    examples = example_lines(help_text(["--help"]))
    assert examples and {argv[0] for argv in examples} <= set(SUBCOMMANDS)


def _all_examples() -> list[list[str]]:
    text = "".join(help_text([command, "--help"]) for command in SUBCOMMANDS) + help_text(["--help"])
    return example_lines(text)


@pytest.mark.parametrize("argv", _all_examples(), ids=" ".join)
def test_examples_parse_and_their_configs_load(argv, monkeypatch):
    """Every example is a valid command line; its config file exists and its overrides are real keys."""
    monkeypatch.chdir(REPO)
    args = build_parser().parse_args(argv)
    if argv[0] == "run" or (argv[0] == "config" and args.config):
        from eval.experiment_config import load_experiment

        load_experiment(args.config, args.overrides)
    elif argv[0] == "data":
        from eval.data.dataset_config import DatasetConfig
        from eval.typed_config import apply_overrides, from_dict, read_yaml

        from_dict(DatasetConfig, apply_overrides(read_yaml(args.config)["dataset"], args.overrides), args.config,
                  prefix="dataset")
    elif argv[0] == "compete":
        from eval.competition.config import load_compete_config

        load_compete_config(args.config, args.overrides)
    elif argv[0] == "report":
        assert all((REPO / path).is_file() for path in args.results if "*" not in str(path)), args.results
