#!/usr/bin/env bash
# The one prepared GPU check (issue 19): everything C2F measures on a lent GPU machine, in one run
# of under 8 minutes on a bare CUDA image (python3 + torch + CUDA, no ffmpeg, no network: see
# ../shared/notes/gpu.md). Each section has its own time limit and writes its own result file as
# it goes, so a run cut short still returns what it measured.
#
#   bash benchmarks/gpu_check.sh prepare   # here, with network: wheels, ffprobe, pre-made videos
#                                          # into benchmarks/gpu_bundle/ (ignored by git)
#   bash benchmarks/gpu_check.sh run       # there: carry benchmarks/gpu_bundle; results in $OUT
#                                          # (the device tool brings back at most 8 files)
#   bash benchmarks/gpu_check.sh dry       # here: the same sections on the CPU at small sizes,
#                                          # results in /tmp/c2f-gpu-dry (proves the script runs)
#
# Sections (seconds allowed): extract_scale (270: pipeline-only vs raw decoding, the whole
# pipeline at the best worker counts, bound_by, efficiency -> results_extract_scale_gpu.json),
# gpu_decode (100: NVDEC vs decord at 360p/720p/1080p -> results_gpu_decode.json), whisper (55:
# whisper-tiny and -small real-time factors, 64 windows in batches of 32, the token step as a CUDA
# graph and eagerly -> results_transcribe_gpu.json), gpu_tests (40: tests/test_gpu.py's value
# precision and Whisper tests: GPU vs CPU value features per clip, graph vs eager vs unbatched
# Whisper tokens -> results_gpu_tests.xml). Every section's output goes to one sections.log (the
# device tool brings back at most 8 files: gpu.csv, sections.log, tuning.json and the results).
set -uo pipefail
MODE=${1:-run}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=$ROOT/benchmarks/gpu_bundle
cd "$ROOT"

prepare() {
  mkdir -p "$BUNDLE"
  local py=$ROOT/.venv/bin/python dl="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d $BUNDLE"
  $py -m pip download $dl decord==0.6.0 open_clip_torch==3.3.0 ftfy wcwidth ffmpeg-python==0.2.0 future || return 1
  # NVDEC: PyNvVideoCodec's package folder alone (its wheel also carries FFmpeg's sources, 27 MB)
  local tmp; tmp=$(mktemp -d)
  $py -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d "$tmp" pynvvideocodec==2.2.4 || return 1
  (cd "$tmp" && unzip -q ./*.whl 'PyNvVideoCodec/*' && tar cf - PyNvVideoCodec | xz -9 > "$BUNDLE/pynvvideocodec.tar.xz")
  # ffprobe, static (probe_video needs it): the npm package @ffprobe-installer/linux-x64 holds one
  (cd "$tmp" && npm pack --silent @ffprobe-installer/linux-x64 >/dev/null && tar xzf ./*.tgz \
    && xz -9 -c package/ffprobe > "$BUNDLE/ffprobe.xz") || return 1
  rm -rf "$tmp"
  # pre-made videos (no ffmpeg there): the 640x360 testsrc2 of extract_scale, and 720p / 1080p
  local ff="ffmpeg -v error -y -f lavfi"
  $ff -i testsrc2=s=640x360:r=30:d=60 -c:v libx264 -preset veryfast -pix_fmt yuv420p "$BUNDLE/testsrc_360p_60s.mp4"
  $ff -i testsrc2=s=1280x720:r=30:d=10 -c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p "$BUNDLE/testsrc_720p_10s.mp4"
  $ff -i testsrc2=s=1920x1080:r=30:d=10 -c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p "$BUNDLE/testsrc_1080p_10s.mp4"
  git rev-parse HEAD > "$BUNDLE/COMMIT"  # the copy sent there has no .git
  du -sh "$BUNDLE"
}

setup() {  # $1: python; installs the bundle where this Python sees it
  local py=$1 site=/tmp/c2f-gpu-site
  mkdir -p "$site" /tmp/c2f-gpu-bin
  $py -m pip install --quiet --no-index --no-deps --target "$site" "$BUNDLE"/*.whl || return 1
  [ "$MODE" = run ] && tar xJf "$BUNDLE/pynvvideocodec.tar.xz" -C "$site"
  if [ "$MODE" = run ] || ! command -v ffprobe >/dev/null; then
    xz -dc "$BUNDLE/ffprobe.xz" > /tmp/c2f-gpu-bin/ffprobe && chmod +x /tmp/c2f-gpu-bin/ffprobe
    export C2F_FFPROBE=/tmp/c2f-gpu-bin/ffprobe
  fi
  export PYTHONPATH=$ROOT:$site${PYTHONPATH:+:$PYTHONPATH}
  export C2F_COMMIT="$(cat "$BUNDLE/COMMIT" 2>/dev/null || echo unknown) (gpu_check $MODE)"
  export C2F_TUNING_CACHE=$OUTDIR/tuning.json
}

section() {  # name, seconds, command...: runs it under its limit, its output appended to $OUTDIR/sections.log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS log=$OUTDIR/sections.log
  echo "== $name (limit ${limit}s)" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
}

case "$MODE" in
  prepare) prepare; exit $? ;;
  run)
    OUTDIR=${OUT:-$ROOT/benchmarks/gpu_out}; PY=python3
    XS=(--videos 24 --workers 8,15 --repeats 1 --device cuda --video "$BUNDLE/testsrc_360p_60s.mp4")
    DEC=("$BUNDLE/testsrc_360p_60s.mp4" "$BUNDLE/testsrc_720p_10s.mp4" "$BUNDLE/testsrc_1080p_10s.mp4")
    WH=(--device cuda --sizes tiny small --seconds 1290 --repeats 3) ;;
  dry)
    OUTDIR=/tmp/c2f-gpu-dry; PY=$ROOT/.venv/bin/python
    XS=(--videos 2 --workers 2 --repeats 1 --device cpu --presets clip-only --video "$ROOT/assets/videos/bikes.mp4")
    DEC=("$ROOT/assets/videos/bikes.mp4")
    WH=(--device cpu --sizes tiny --seconds 30 --threads 1) ;;
  *) echo "usage: $0 prepare|run|dry" >&2; exit 2 ;;
esac
mkdir -p "$OUTDIR"
[ -d "$BUNDLE" ] || { echo "no $BUNDLE: run '$0 prepare' first (here, with network)" >&2; exit 2; }
setup "$PY" || { echo "installing the bundle failed" >&2; exit 1; }
[ "$MODE" = run ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUTDIR/gpu.csv"

section extract_scale 270 $PY benchmarks/extract_scale.py "${XS[@]}" --out "$OUTDIR/results_extract_scale_gpu.json"
section gpu_decode 100 $PY benchmarks/gpu_decode.py "${DEC[@]}" --out "$OUTDIR/results_gpu_decode.json"
section whisper 55 $PY benchmarks/transcribe_speed.py "${WH[@]}" --tokens 96 --out "$OUTDIR/results_transcribe_gpu.json"
section gpu_tests 40 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -k "value or whisper" \
  --junitxml="$OUTDIR/results_gpu_tests.xml"
echo "results in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
