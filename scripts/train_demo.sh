#!/usr/bin/env bash
# Retrain the two synthetic demo models (configs/demo.yaml) from scratch:
#   bash scripts/train_demo.sh [OUT_DIR]          # default OUT_DIR: .cache/rrbench/models
#   stage 1: tiny dual encoder      -> OUT_DIR/stage1_synthetic/best
#   stage 2: tiny BLIP-2 ITM head   -> OUT_DIR/stage2_synthetic/best
# The demo does not need this: its two checkpoints ship in results/demo/models/ (sha256-verified at load), so
# `bash scripts/run_ablation.sh` evaluates exactly the models behind results/demo/. Training is not
# reproducible across CPUs (other kernels, other rounding, diverging runs): use this to measure the spread
# between trainings, then point stage1.encoder.model / stage2.model at OUT_DIR/... to evaluate the retrained pair.
# Each finished run leaves a .trained stamp and is skipped next time; an interrupted run resumes from last/.
# Uses one torch thread per process (faster than two on a shared 2-core machine for these tiny models).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
PY="${RRBENCH_VENV:-$ROOT/.venv}/bin/python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MODELS="${1:-.cache/rrbench/models}"

if [ ! -f "$MODELS/stage1_synthetic/.trained" ]; then
  echo "[train_demo] stage 1: tiny dual encoder on the synthetic train split -> $MODELS/stage1_synthetic" >&2
  "$PY" scripts/train_stage1.py configs/train/stage1_synthetic.yaml --run-dir "$MODELS/stage1_synthetic" \
    --threads 1 --skip-test
  touch "$MODELS/stage1_synthetic/.trained"
fi
if [ ! -f "$MODELS/stage2_synthetic/.trained" ]; then
  echo "[train_demo] stage 2: tiny Q-Former ITM reranker on the synthetic train split -> $MODELS/stage2_synthetic" >&2
  "$PY" scripts/train_stage2.py configs/train/stage2_synthetic.yaml --run-dir "$MODELS/stage2_synthetic" \
    --threads 1 --skip-test
  touch "$MODELS/stage2_synthetic/.trained"
fi
