#!/usr/bin/env bash
# The README's test command: set up .venv if needed, then run the test suite offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "${RRBENCH_VENV:-$ROOT/.venv}/bin/python" -m pytest -q -p no:cacheprovider "$@"
