#!/usr/bin/env bash
# The checks that need an accelerator, as one prepared script (run it where CUDA is available):
#
#   OUT=/some/dir bash scripts/device_check.sh            # defaults below
#   DEVICE=cpu STEPS=50 OUT=/tmp/dc bash scripts/device_check.sh   # a dry run of the commands
#
# 1. the gpu-marked tests (tests/test_gpu.py: the pipeline, the GD loop's deferred divergence
#    guard with CUDA's sync debug mode, the no-weight-decay loop, the KKT working-set route);
# 2. benchmarks/bench_gd_loop.py: GD steps/s of train(method="gd") against a plain
#    torch.optim.SGD loop, on the CPU and on CUDA, and the guard read every 64 steps vs 1;
# 3. a slice of the paper-scale modular-addition run (Fig. 2(b), α = 10: p = 97, 40% of the
#    pairs, width 1024, float32, η = 0.002, λ = 1e-4) for STEPS GD steps on DEVICE, with its
#    history and summary in $OUT/modular-addition-paper-slice.
# Each step's output goes to $OUT/*.log; the script stops at the first failure.
set -euo pipefail
OUT=${OUT:-runs/device-check}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-200000}
mkdir -p "$OUT"
python -c "import implicitbias" 2>/dev/null || python -m pip install -q --no-deps -e .
python - <<EOF | tee "$OUT/device.log"
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
EOF
if [ "$DEVICE" != "cpu" ]; then
  python -m pytest -m gpu tests/test_gpu.py -q -rs 2>&1 | tee "$OUT/gpu_tests.log"
fi
python benchmarks/bench_gd_loop.py --quick 2>&1 | tee "$OUT/bench_gd_loop.log"
start=$(date +%s)
python -m implicitbias reproduce modular-addition --scale paper --device "$DEVICE" \
  --alpha 10 --set "steps=$STEPS" --no-progress --out "$OUT/modular-addition-paper-slice" \
  2>&1 | tee "$OUT/paper_slice.log" || true  # a slice of the run does not pass the checks
echo "paper slice: $STEPS steps on $DEVICE in $(( $(date +%s) - start )) s" | tee -a "$OUT/paper_slice.log"
