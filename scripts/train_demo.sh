#!/usr/bin/env bash
# Train the two synthetic demo models (configs/demo.yaml) from scratch, unless already trained:
#   stage 1: tiny dual encoder      -> .cache/rrbench/models/stage1_synthetic/best
#   stage 2: tiny BLIP-2 ITM head   -> .cache/rrbench/models/stage2_synthetic/best
# Each finished run leaves a .trained stamp and is skipped next time; an interrupted run resumes from last/.
# Uses one torch thread per process (faster than two on a shared 2-core machine for these tiny models).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
PY="${RRBENCH_VENV:-$ROOT/.venv}/bin/python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MODELS=.cache/rrbench/models

if [ ! -f "$MODELS/stage1_synthetic/.trained" ]; then
  echo "[train_demo] stage 1: tiny dual encoder on the synthetic train split" >&2
  "$PY" scripts/train_stage1.py configs/train/stage1_synthetic.yaml --run-dir "$MODELS/stage1_synthetic" \
    --threads 1 --skip-test
  touch "$MODELS/stage1_synthetic/.trained"
fi
if [ ! -f "$MODELS/stage2_synthetic/.trained" ]; then
  echo "[train_demo] stage 2: tiny Q-Former ITM reranker on the synthetic train split" >&2
  "$PY" scripts/train_stage2.py synthetic --run-dir "$MODELS/stage2_synthetic" --threads 1 --no-eval
  touch "$MODELS/stage2_synthetic/.trained"
fi
