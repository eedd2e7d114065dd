#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install rrbench into it.
# Idempotent: does nothing when .venv is up to date with pyproject.toml. Source it or run it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RRBENCH_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.rrbench-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "[setup] creating environment in $VENV" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --progress-bar off -q)
# torch / torchvision: the pair that imports cleanly with open_clip on this platform (README: "Set-up").
case "$(uname -m)" in
  aarch64|arm64) TORCH=("torch==2.9.1" "torchvision==0.24.1") ;;
  *)             TORCH=("torch==2.14.1" "torchvision==0.29.1") ;;
esac
"$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null || "${PIP[@]}" "${TORCH[@]}"
"${PIP[@]}" -e "$ROOT[dev,lite]"
echo "$WANT" > "$STAMP"
echo "[setup] environment ready" >&2
