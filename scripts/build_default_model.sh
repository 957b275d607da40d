#!/usr/bin/env bash
# Rebuild models/default from nothing: corpus synthesis, training, LM, tuning, test scores (resumable).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m speech build-default "$@"
