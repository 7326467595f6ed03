#!/usr/bin/env bash
# The one-go GPU check: install what the engine and the Coqui reference need, check that CUDA is
# visible, then run `python -m bench gpu` (full-size XTTS-v2 architecture, random seeded weights,
# fp16) inside a hard time budget. Results: results.json, summary.md, gpu-check.log and
# environment.txt in $OUT when it is set (a lent device machine), else bench/results/gpu-check-<gpu>.
#
#   bench/gpu_check.sh --download-wheels   # on a machine with PyPI: the wheels into .whl/ (~28 MB)
#   bench/gpu_check.sh                     # on the GPU machine, from the repository root
#   bench/gpu_check.sh --python .venv/bin/python -- --model tiny --device cpu --levels 1,2
#
# Environment: the GPU machine's python3 already holds a CUDA build of torch (2.11+cu130 on the
# H100/H200 image) and has no network. A venv made from that interpreter would not see its torch,
# so the engine's packages go into an overlay folder on PYTHONPATH instead (ahead of the image's
# own versions), installed with --no-deps from .whl/: exactly the versions requirements/lock.txt
# pins. Without .whl/ they come from the package index; without a CUDA torch, torch does too.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK=$ROOT/requirements/lock.txt
BUDGET=${GPU_CHECK_BUDGET_S:-465}     # whole run, installs included (the check must fit in 8 minutes)
WHEELS=$ROOT/.whl
ENV_DIR=${GPU_CHECK_ENV:-/tmp/tts-gpu-check}
BASE_PY=${GPU_CHECK_BASE_PYTHON:-python3}
WHEEL_PYTHON=${GPU_CHECK_WHEEL_PYTHON:-3.12}   # the GPU image's Python, for --download-wheels
PY=""
OUT_DIR=${OUT:-}
DOWNLOAD=0
PASS=()

# Missing from the GPU image, or at another version there. Versions come from requirements/lock.txt.
# (torch, numpy, scipy, tokenizers, huggingface-hub, safetensors, einops, torchaudio: the image's.)
# torchcodec is never loaded on this path, but coqui-tts refuses to import without it on torch >= 2.9.
PACKAGES=(coqui-tts coqui-tts-trainer coqpit-config transformers regex anyascii ko-speech-tools librosa
          num2words soundfile cffi pycparser soxr inflect more-itertools typeguard torchcodec six)

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --python) PY=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --out) OUT_DIR=$2; shift 2 ;;
        --budget) BUDGET=$2; shift 2 ;;
        --download-wheels) DOWNLOAD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; PASS=("$@"); break ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

START=$(date +%s)
LOG=$(mktemp)
say() { echo "[gpu-check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
elapsed() { echo $(( $(date +%s) - START )); }

pins() {
    local name pin
    for name in "${PACKAGES[@]}"; do
        # lock.txt spells names as the registry does; match - and _ alike, case-insensitively
        pin=$(grep -iE "^${name//-/[-_]}==" "$LOCK" | head -1)
        [ -n "$pin" ] || { echo "no pin for $name in $LOCK" >&2; return 1; }
        echo "$pin"
    done
}

if [ "$DOWNLOAD" = 1 ]; then
    mkdir -p "$WHEELS"
    SPEC_TEXT=$(pins) || exit 1
    mapfile -t SPECS <<< "$SPEC_TEXT"
    python3 -m pip download --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${SPECS[@]}" || exit 1
    du -sh "$WHEELS"
    exit 0
fi

DEVICE=cuda
for ((i = 0; i < ${#PASS[@]}; i++)); do
    [ "${PASS[$i]}" = "--device" ] && [ $((i + 1)) -lt ${#PASS[@]} ] && DEVICE=${PASS[$((i + 1))]}
done

if [ -z "$PY" ]; then
    PY=$BASE_PY
    SITE=$ENV_DIR/site
    mkdir -p "$SITE"
    # A CUDA run needs a CUDA build of torch; a CPU run (the tiny model) takes whatever torch is there.
    NEED='torch.version.cuda'
    [[ $DEVICE == cuda* ]] || NEED='True'
    if ! "$PY" -c "import sys, torch; sys.exit(0 if $NEED else 1)" 2>/dev/null; then
        say "$PY has no suitable torch for $DEVICE: installing torch from the package index"
        "$PY" -m pip install -q --no-cache-dir --target "$SITE" "torch>=2.4" || { say "torch install failed"; exit 2; }
    fi
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            "$WHEELS"/*.whl 2>&1 | tee -a "$LOG" || { say "wheel install failed"; exit 2; }
    else
        SPEC_TEXT=$(pins) || exit 2
        mapfile -t SPECS <<< "$SPEC_TEXT"
        say "no wheels in $WHEELS: installing ${#SPECS[@]} pinned packages from the package index into $SITE"
        "$PY" -m pip install -q --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${SPECS[@]}" \
            2>&1 | tee -a "$LOG" || { say "install failed"; exit 2; }
    fi
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
cd "$ROOT" || exit 2
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if [[ $DEVICE == cuda* ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
    if ! timeout 120 "$PY" -c 'import torch, sys
ok = torch.cuda.is_available()
print("torch", torch.__version__, "cuda", torch.version.cuda, "visible:", ok,
      torch.cuda.get_device_name(0) if ok else "")
sys.exit(0 if ok else 1)' 2>&1 | tee -a "$LOG"; then
        say "CUDA is not visible to torch: stopping"
        exit 2
    fi
fi
if [ -z "$OUT_DIR" ]; then
    SLUG=$("$PY" -c "from bench.gpu_check import _device_slug; print(_device_slug('$DEVICE'))" 2>/dev/null)
    OUT_DIR=$ROOT/bench/results/gpu-check-${SLUG:-$DEVICE}
fi
mkdir -p "$OUT_DIR"
cat "$LOG" > "$OUT_DIR/gpu-check.log" && rm -f "$LOG"
LOG=$OUT_DIR/gpu-check.log  # from here on the log lives beside the results
{ "$PY" -m pip list 2>/dev/null; nvidia-smi 2>/dev/null; } > "$OUT_DIR/environment.txt"

# The Python side gets what is left, less room for its watchdog (45 s) and for writing results.
LEFT=$(( BUDGET - $(elapsed) - 10 ))
PY_BUDGET=$(( LEFT - 55 ))
if [ "$PY_BUDGET" -lt 30 ]; then
    say "only ${LEFT}s left of the ${BUDGET}s budget after installing: stopping"
    exit 2
fi
say "running python -m bench gpu (budget ${PY_BUDGET}s, hard limit ${LEFT}s) -> $OUT_DIR"
timeout -k 10 "$LEFT" "$PY" -m bench gpu --out "$OUT_DIR" --budget-s "$PY_BUDGET" "${PASS[@]}" 2>&1 \
    | grep --line-buffered -v '^\[transformers\]' | tee -a "$LOG"
RC=${PIPESTATUS[0]}
if [ "$RC" -ne 0 ] && [ "$RC" -ne 1 ]; then
    # Killed (124/137: the hard limit; 3: its own watchdog): a phase it left running is marked, with
    # everything it had recorded kept, and summary.md is redrawn.
    case $RC in
        124) HOW="stopped at the hard limit of ${LEFT}s" ;;
        137) HOW="killed by SIGKILL (the hard limit sends one 10s after its stop)" ;;
        *) HOW="ended with exit $RC" ;;
    esac
    "$PY" -m bench.gpu_check ended "$OUT_DIR" "process $HOW $(elapsed)s into the run" 2>&1 | tee -a "$LOG"
fi
say "done, exit $RC"
exit "$RC"
