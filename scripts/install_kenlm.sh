#!/usr/bin/env bash
# Install the optional language-model tool, idempotently (used by CI and developers). Decoding with an LM (and
# hotwords) needs none: the beam search runs as TensorFlow ops and reads the LM as arrays (speech.ngram).
#   * KenLM's lmplz, built from the kenlm source package into .tools/kenlm/bin/: builds an LM from text
#     (`speech lm`, the default model's build).
# Work already done is skipped. Build failures are reported; the exit status is non-zero only with --strict.
#
# Usage: scripts/install_kenlm.sh [--strict]        (VENV=path overrides the venv, default .venv)
set -uo pipefail

STRICT=0
for arg in "$@"; do
  case "$arg" in
    --strict) STRICT=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install_kenlm: unknown argument $arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
TOOLS="$ROOT/.tools/kenlm"
BIN="$TOOLS/bin"
FAILED=()

log() { echo "install_kenlm: $*"; }
fail() { echo "install_kenlm: FAILED: $*" >&2; FAILED+=("$1"); }

if [[ ! -x "$PY" ]]; then
  echo "install_kenlm: no Python at $PY (set VENV=...)" >&2
  exit 1
fi

# apt packages are installed only when something is missing, and only if we can (root + apt-get).
APT_DONE=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if ! command -v apt-get >/dev/null; then
    log "apt-get not found; please install: ${missing[*]}"
    return 1
  fi
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  log "apt-get install ${missing[*]}"
  if [[ $APT_DONE -eq 0 ]]; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    APT_DONE=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- lmplz -----------------------------------------------------------------------------------------
if [[ -x "$BIN/lmplz" ]]; then
  log "lmplz: present in $BIN"
else
  # A function with explicit checks: `set -e` is ignored inside a command whose status is tested (|| fail).
  build_tools() {
    apt_install build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
      libboost-test-dev libeigen3-dev zlib1g-dev libbz2-dev liblzma-dev || return 1
    local src="$TOOLS/src"
    mkdir -p "$BIN" || return 1
    if [[ ! -f "$src/CMakeLists.txt" ]]; then
      # The PyPI sdist of kenlm carries the full C++ source, including lmplz.
      local dl
      dl="$(mktemp -d)" || return 1
      # --no-build-isolation skips building an isolated env just to read metadata; retry with it if that fails.
      if ! { "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$dl" kenlm \
             || "$PY" -m pip download -q --no-deps --no-binary :all: -d "$dl" kenlm; } \
          || ! tar -xzf "$dl"/kenlm-*.tar.gz -C "$dl"; then
        rm -rf "$dl"
        return 1
      fi
      rm -rf "$src" && mv "$dl"/kenlm-*/ "$src" && rm -rf "$dl" || return 1
    fi
    log "building lmplz with cmake (under a minute)"
    cmake -S "$src" -B "$TOOLS/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 >"$TOOLS/cmake.log" 2>&1 \
      || { tail -20 "$TOOLS/cmake.log" >&2; return 1; }
    cmake --build "$TOOLS/build" --target lmplz -j "$(nproc)" >"$TOOLS/build.log" 2>&1 \
      || { tail -30 "$TOOLS/build.log" >&2; return 1; }
    cp "$TOOLS/build/bin/lmplz" "$BIN/"
  }
  build_tools || fail "lmplz (see $TOOLS/cmake.log and $TOOLS/build.log)"
fi

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "install_kenlm: ${#FAILED[@]} step(s) failed: ${FAILED[*]}" >&2
  echo "install_kenlm: decoding (greedy, LM beam search, hotwords) still works; building LMs will raise clear errors." >&2
  [[ $STRICT -eq 1 ]] && exit 1
  exit 0
fi
log "done (binaries: $BIN)"
