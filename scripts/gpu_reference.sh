#!/usr/bin/env bash
# The single-GPU baseline on a machine with a CUDA GPU: the GPU benchmark (benchmarks/bench_gpu.py) and one
# bench.strong_scaling run per image size at the study's 32K global batch, with what --device cuda does by
# default (bf16 autocast, channels-last, fused Adam, cuDNN autotuning, the events kept on the GPU).
#
#   scripts/gpu_reference.sh [OUT_DIR]        (default results/gpu-reference)
#
# Environment: PYTHON (default python3), SIZES (default "64 224"), MICRO_64 / MICRO_224 (images per forward
# pass; halved and retried when they do not fit), TRAIN_EVENTS (131072), EPOCHS (4: one warm-up, three
# measured), SYSTEM (the records' system name; default the GPU's name), BENCH_FLAGS (more flags for
# bench_gpu.py, e.g. --no-host-data). The benchmark measures eager and torch.compile side by side; the runs
# use the harness's cuda defaults (compile on). Writes bench_gpu.txt/.jsonl, records.jsonl and one log per
# run into OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu-reference}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

"$py" -m benchmarks.bench_gpu --sizes "$(echo ${SIZES:-64 224} | tr ' ' ,)" --steps 10 --repeats 3 \
    --compile both ${BENCH_FLAGS:-} --out "$out/bench_gpu.jsonl" 2>&1 | grep -v -i warn | tee "$out/bench_gpu.txt"

for size in ${SIZES:-64 224}; do
    var=MICRO_$size
    micro=${!var:-$([ "$size" -le 64 ] && echo 4096 || echo 512)}
    while :; do
        log="$out/run${size}.log"
        "$py" -m bench.strong_scaling --device cuda --image-size "$size" --global-batch 32768 \
            --micro-batch "$micro" --epochs "${EPOCHS:-4}" --train-events "${TRAIN_EVENTS:-131072}" \
            --val-events 8192 ${SYSTEM:+--system "$SYSTEM"} --out "$out/records.jsonl" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        if [ "$rc" = 2 ] && grep -q "set --micro-batch" "$log" && [ "$micro" -gt 32 ]; then
            micro=$((micro / 2))
            echo "retrying ${size}x${size} with --micro-batch $micro"
            continue
        fi
        break
    done
done
echo "records: $out/records.jsonl"
