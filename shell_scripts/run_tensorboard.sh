#!/usr/bin/env bash
# TensorBoard over all trainings on localhost:8989, as the original LightNAS.
# Usage: shell_scripts/run_tensorboard.sh [logdir] [port]   (or LOGDIR=... PORT=... env vars)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
logdir="${1:-${LOGDIR:-$here/trainings}}"
port="${2:-${PORT:-8989}}"
if ! command -v tensorboard >/dev/null 2>&1; then
  echo "error: tensorboard is not installed; run: pip install -e \".[test]\" (or pip install tensorboard)" >&2
  exit 2
fi
echo "TensorBoard on http://localhost:$port over $logdir"
exec tensorboard --logdir "$logdir" --port "$port" --host localhost
