#!/usr/bin/env bash
# The main job: one experiment config through stage 1, stage 2 and the whole ablation grid, then the report.
#   bash scripts/run_ablation.sh                         # embedded default: configs/demo.yaml (synthetic, offline)
#   bash scripts/run_ablation.sh CONFIG [key.sub=value ...]
# Sets up .venv if needed. The demo's two models ship in results/demo/models/ (no training); for the Flickr8k-lite
# configs (flickr8k_lite, flickr8k_zh_lite), whose models this project trains, it trains them first when missing.
# Resumable: a rerun reuses every cache (embeddings, vision features, pair scores) and recomputes nothing that
# finished.
# Outputs: results/<experiment>/ (results.json, table.md/.tex/.csv, plots, TREC runs and qrels).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
CONFIG="${1:-configs/demo.yaml}"
[ $# -gt 0 ] && shift
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
case "$(basename "$CONFIG")" in
  flickr8k_lite.yaml)    bash scripts/train_flickr8k_lite.sh ;;
  flickr8k_zh_lite.yaml) bash scripts/train_flickr8k_lite.sh zh ;;
esac
exec "${RRBENCH_VENV:-$ROOT/.venv}/bin/rrbench" run "$CONFIG" "$@"
