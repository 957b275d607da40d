#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
#   1. a virtual environment (.venv, or $VENV) with requirements.txt (tensorflow-cpu by default), and this package
#      installed editable on top (the `speech` command);
#   2. the offline TTS engines and text packages for the built-in corpus (scripts/install_tts.sh);
#   3. KenLM's lmplz for building LMs (scripts/install_kenlm.sh; decoding with the bundled LM, hotwords included,
#      does not need it);
#   4. apache-beam (requirements-beam.txt) for pipelines/beam_transcribe.py.
# Steps 2-3 need root (apt); what cannot be installed is reported and the rest still works.
# Usage: bash scripts/setup.sh [--minimal]     (--minimal: step 1 only)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Skip the resolver when requirements.txt has not changed since the last successful install.
stamp="$VENV/.requirements.sha1"
want="$(sha1sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing requirements.txt"
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$ROOT/requirements.txt"
  echo "$want" > "$stamp"
fi
# The package itself, editable and without resolving its dependencies again (requirements.txt pinned them):
# the `speech` command in the venv, and the same code as the checkout.
if [[ ! -x "$VENV/bin/speech" ]]; then
  echo "setup: installing the speech package (editable)"
  "$VENV/bin/pip" install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$ROOT"
fi
[[ "${1:-}" == "--minimal" ]] && exit 0
# Apache Beam shares the environment (it moves protobuf to 6.x, which TensorFlow 2.21 accepts).
stamp_beam="$VENV/.requirements-beam.sha1"
want_beam="$(sha1sum "$ROOT/requirements-beam.txt" | cut -d' ' -f1)"
if [[ ! -f "$stamp_beam" || "$(cat "$stamp_beam")" != "$want_beam" ]]; then
  echo "setup: installing requirements-beam.txt"
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$ROOT/requirements-beam.txt"
  echo "$want_beam" > "$stamp_beam"
fi
bash "$ROOT/scripts/install_tts.sh"
bash "$ROOT/scripts/install_kenlm.sh"
echo "setup: done (activate with: source $VENV/bin/activate)"
