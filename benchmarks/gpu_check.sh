#!/usr/bin/env bash
# GPU check of the compiled style / mode-collapse / Gram ops (issue 5), for a machine with a CUDA GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root; results also under $OUT if set
#
# 1. rebuilds microvae._C for the torch installed there, for that GPU's architecture;
# 2. runs the CUDA tests (compiled CUDA kernels vs the torch references, gradcheck in float64;
#    torch.library.opcheck and torch.compile(fullgraph=True) of the fused ops; tensor in/out);
# 3. runs the loss benchmark (fused vs eager, CPU and CUDA, in one run) and a few training steps;
# 4. times S2 and label() on CUDA tensors at 128^2 (float32 and float64), checked against NumPy.
# Exits non-zero at the first failure. Needs torch with CUDA, a C++ compiler and nvcc (CUDA_HOME).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

$PY - <<'EOF' | tee -a "$OUT/summary.txt"
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.cuda.get_device_name()}, "
      f"capability {torch.cuda.get_device_capability()}")
EOF

if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
export MAX_JOBS=${MAX_JOBS:-8}
log "build (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
if $PY -c "import Cython, numpy, setuptools" 2>/dev/null; then
    $PY setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
else
    # No Cython: build only the torch extension (all this check needs) with torch's JIT builder.
    $PY - > "$OUT/build.log" 2>&1 <<'EOF' || { tail -40 "$OUT/build.log"; exit 1; }
import glob, os, shutil, sysconfig
from torch.utils import cpp_extension
src = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp") + glob.glob("csrc/cuda/*.cu"))
build = os.path.abspath("build/gpu_check"); os.makedirs(build, exist_ok=True)
mod = cpp_extension.load("_C", src, extra_cflags=["-O3", "-fopenmp", "-DMICROVAE_WITH_CUDA"],
                         extra_cuda_cflags=["-O3", "--expt-relaxed-constexpr", "-DMICROVAE_WITH_CUDA"],
                         extra_ldflags=["-fopenmp"], build_directory=build, is_python_module=True, verbose=True)
shutil.copy(mod.__file__, "microvae/_C" + sysconfig.get_config_var("EXT_SUFFIX"))
EOF
fi
$PY -c "import microvae.ops as o; assert o.cuda_kernels_available(), 'microvae._C was built without CUDA kernels'"

log "CUDA tests"
# pipefail: a failing test fails the script. A skipped CUDA test means the GPU path did not run.
$PY -m pytest tests/test_ops.py tests/test_nn.py tests/test_torch_backend.py tests/test_library_ops.py \
    -q -ra -o addopts="" -p no:cacheprovider 2>&1 \
    | tee "$OUT/tests.log" | tail -5
if grep -Eq "SKIPPED.*(CUDA|_C is not built)" "$OUT/tests.log"; then echo "CUDA tests were skipped" >&2; exit 1; fi

log "loss benchmark: fused vs eager, B = 20, VGG16 blocks 1-4 (CPU and CUDA, one run)"
$PY benchmarks/bench_losses.py --rounds 20 | tee -a "$OUT/summary.txt"

log "training steps on the GPU (paper preset, 128^2, batch 20)"
$PY - <<'EOF' | tee -a "$OUT/summary.txt"
import time, torch
from microvae.synthetic import gaussian_random_field
from microvae.vae import Trainer, load_config
images = gaussian_random_field((128, 128), 3.0, 0.2, n=40, seed=0)
for variant in ({}, {"backend": "torch"}, {"bf16": True}):
    config = load_config("paper", **variant)
    s = Trainer(images, config, seed=0, device=torch.device("cuda"))
    for _ in range(3):
        s.step()
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(20):
        terms = s.step()
    torch.cuda.synchronize()
    print(f"paper preset {variant or 'default'}: {(time.perf_counter() - t0) / 20 * 1e3:.1f} ms/step, "
          f"loss {terms['loss'].item():.4g}")
EOF
log "S2 and labels on the GPU, 128^2 (issue 12 targets: >= 1e5 S2 images/s, >= 1e4 labeled images/s)"
$PY - <<'EOF' | tee -a "$OUT/summary.txt"
import time, numpy as np, torch
from microvae.correlations import s2
from microvae.properties import label
from microvae.synthetic import gaussian_random_field
host = gaussian_random_field((128, 128), 4.0, 0.3, n=2000, seed=0)
ref_s2, ref_labels = s2(host[:64]), label(host[:64])
def rate(fn, n, rounds=5):
    fn(); torch.cuda.synchronize(); best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); best = min(best, time.perf_counter() - t0)
    return n / best
for dtype in (torch.float32, torch.float64):
    name = str(dtype)[6:]
    gpu = torch.as_tensor(host, device="cuda").to(dtype).repeat(10, 1, 1)  # 20000 images
    err = np.abs(s2(gpu[:64]).cpu().double().numpy() - ref_s2).max()
    print(f"S2 periodic {name}: {rate(lambda: s2(gpu), len(gpu)):.3g} images/s (max |diff| vs NumPy {err:.1e})")
    print(f"S2 non-periodic {name}: {rate(lambda: s2(gpu, periodic=False), len(gpu)):.3g} images/s")
    part = gpu[:4000]
    out = label(part[:64])
    err = max(np.nanmax(np.abs(out[k].cpu().numpy() - ref_labels[k])) for k in ("zeta2", "eta2", "E", "D"))
    print(f"labels {name}: {rate(lambda: label(part), len(part), rounds=3):.3g} images/s, "
          f"batch_size=1000: {rate(lambda: label(part, batch_size=1000), len(part), rounds=3):.3g} images/s "
          f"(max |diff| of zeta2, eta2, E, D vs NumPy {err:.1e})")
EOF
log "done; results in $OUT/"
