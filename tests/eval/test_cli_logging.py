"""``rrbench`` logging: library loggers (faiss, ...) stay at WARNING, rrbench's own stay at INFO; ``-v`` opens both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The real ``config`` subcommand, preceded by what a run does: import faiss (its loader logs ~10 INFO lines)
# and log progress from an rrbench module.
SCRIPT = """
import logging, sys
import eval.commands.config as command
real_run = command.run
def run(args):
    import faiss  # noqa: F401
    logging.getLogger("stage2_rerank.progress").info("rrbench progress line")
    logging.getLogger("eval.progress").debug("rrbench debug line")
    return real_run(args)
command.run = run
from eval.cli import main
sys.exit(main(sys.argv[1:]))
"""


def rrbench(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("name:") or "dataset:" in done.stdout  # the config was printed
    return done.stderr


def test_library_info_lines_hidden_unless_verbose_while_rrbench_progress_shows():
    quiet = rrbench("config", "configs/demo.yaml")
    assert "faiss.loader" not in quiet and "ModuleNotFoundError" not in quiet
    assert "INFO stage2_rerank.progress: rrbench progress line" in quiet
    assert "rrbench debug line" not in quiet
    verbose = rrbench("-v", "config", "configs/demo.yaml")
    assert "INFO faiss.loader:" in verbose
    assert "INFO stage2_rerank.progress: rrbench progress line" in verbose
    assert "DEBUG eval.progress: rrbench debug line" in verbose


def test_a_bad_image_is_a_one_line_user_error(monkeypatch, caplog):
    import eval.commands.config as command
    from eval.cli import main
    from rrbench_base.image_refs import BadImageError

    def run(args):
        raise BadImageError("image photos/cat.jpg: cannot be opened: truncated")

    monkeypatch.setattr(command, "run", run)
    assert main(["config", "configs/demo.yaml"]) == 2
    assert "BadImageError: image photos/cat.jpg: cannot be opened" in caplog.text
