#!/usr/bin/env bash
# Install the optional language-model tools, idempotently (used by CI and developers). Decoding with an LM needs
# neither: the beam search runs as TensorFlow ops and reads the LM as arrays (speech.ngram).
#   * KenLM's lmplz, built from the kenlm source package into .tools/kenlm/bin/: builds an LM from text
#     (`speech lm`, the default model's build).
#   * Python: pygtrie, pyctcdecode==0.5.0 (--no-deps: its metadata pins numpy<2, but it works on numpy 2.x), for
#     `--hotwords` only.
# Work already done is skipped. Build failures are reported; the exit status is non-zero only with --strict.
#
# Usage: scripts/install_kenlm.sh [--strict]        (VENV=path overrides the venv, default .venv)
set -uo pipefail

STRICT=0
for arg in "$@"; do
  case "$arg" in
    --strict) STRICT=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install_kenlm: unknown argument $arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
TOOLS="$ROOT/.tools/kenlm"
BIN="$TOOLS/bin"
PYCTCDECODE_VERSION="0.5.0"
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

has_module() { "$PY" -c "import $1" >/dev/null 2>&1; }

# --- 1. pyctcdecode + pygtrie (pure Python) ---------------------------------------------------------
if has_module pygtrie; then log "pygtrie: present"; else
  log "installing pygtrie"
  "$PY" -m pip install -q pygtrie || fail "pygtrie (pip install)"
fi
if [[ "$("$PY" -c 'import importlib.metadata as m; print(m.version("pyctcdecode"))' 2>/dev/null)" == "$PYCTCDECODE_VERSION" ]]; then
  log "pyctcdecode $PYCTCDECODE_VERSION: present"
else
  log "installing pyctcdecode==$PYCTCDECODE_VERSION --no-deps"
  # --no-deps: the numpy<2 pin in its metadata is stale; its real deps (numpy, pygtrie) are handled here.
  "$PY" -m pip install -q --no-deps "pyctcdecode==$PYCTCDECODE_VERSION" || fail "pyctcdecode (pip install)"
fi

# --- 2. lmplz -----------------------------------------------------------------------------------------
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

# --- 3. check ---------------------------------------------------------------------------------------
if "$PY" -c "import numpy, pyctcdecode; pyctcdecode.build_ctcdecoder(['', 'a', ' '])" >/dev/null 2>&1; then
  log "check: pyctcdecode imports and builds a decoder"
else
  fail "check: python -c 'import pyctcdecode' failed"
fi

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "install_kenlm: ${#FAILED[@]} step(s) failed: ${FAILED[*]}" >&2
  echo "install_kenlm: decoding (greedy and LM beam search) still works; building LMs / hotwords will raise clear errors." >&2
  [[ $STRICT -eq 1 ]] && exit 1
  exit 0
fi
log "done (binaries: $BIN)"
