#!/usr/bin/env bash
# GPU check of the compiled style / mode-collapse / Gram ops (issue 5) and of the S2 / label rates
# (issue 19), for a machine with a CUDA GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root; results also under $OUT if set
#
# 1. rebuilds microvae._C for the torch installed there, for that GPU's architecture;
# 2. runs the CUDA tests (compiled CUDA kernels vs the torch references, gradcheck in float64;
#    torch.library.opcheck and torch.compile(fullgraph=True) of the fused ops; tensor in/out);
# 3. runs the loss benchmark (fused vs eager, CPU and CUDA, in one run) and a few training steps;
# 4. times S2 and label() on CUDA tensors at 128^2 (float32 and float64, periodic and not) beside the
#    torch.fft user baseline, checked against the NumPy path (medians of rounds, with their spread).
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
log "S2 and labels on the GPU, 128^2 (issue 19 targets: >= 1e6 S2 images/s, >= 1e5 labeled images/s)"
$PY - <<'EOF' | tee -a "$OUT/summary.txt"
import time, numpy as np, torch
from microvae.bench import torch_fft_s2
from microvae.correlations import s2
from microvae.properties import label
from microvae.synthetic import gaussian_random_field
host = gaussian_random_field((128, 128), 4.0, 0.3, n=2000, seed=0)
def rate(fn, n, rounds=5):
    fn(); torch.cuda.synchronize(); times = []
    for _ in range(rounds):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); times.append(time.perf_counter() - t0)
    return f"{n / np.median(times):.3g} images/s (rounds {n / max(times):.3g}-{n / min(times):.3g})"
def host_values(x):
    return x.detach().cpu().double().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)
try:  # NumPy references need the compiled CPU core (microvae._spectral, built above with Cython)
    reference = {p: (s2(host[:64], periodic=p), label(host[:64], periodic=p)) for p in (True, False)}
except ImportError as err:
    print(f"no NumPy reference ({err}); float32 compared with float64 on the GPU instead")
    gpu_ref = torch.as_tensor(host[:64], device="cuda").double()
    reference = {p: (s2(gpu_ref, periodic=p), label(gpu_ref, periodic=p)) for p in (True, False)}
gpu64 = torch.as_tensor(host, device="cuda").double().repeat(10, 1, 1)  # 20000 images
for dtype in (torch.float32, torch.float64):
    name = str(dtype)[6:]
    gpu = gpu64.to(dtype)
    print(f"torch.fft user baseline {name} (batches of 256): {rate(lambda: torch_fft_s2(gpu, 64, dtype), len(gpu))}")
    part = gpu[:4000]
    for periodic in (True, False):
        ref_s2, ref_labels = reference[periodic]
        err = np.abs(host_values(s2(gpu[:64], periodic=periodic)) - host_values(ref_s2)).max()
        print(f"S2 periodic={periodic} {name}: {rate(lambda: s2(gpu, periodic=periodic), len(gpu))} "
              f"(max |diff| vs reference {err:.1e})")
        labels = label(part[:64], periodic=periodic)
        err = max(np.nanmax(np.abs(host_values(labels[k]) - host_values(ref_labels[k]))) for k in ("zeta2", "eta2", "E", "D"))
        print(f"labels periodic={periodic} {name}: {rate(lambda: label(part, periodic=periodic), len(part), 3)}; "
              f"batch_size=2000: {rate(lambda: label(part, periodic=periodic, batch_size=2000), len(part), 3)} "
              f"(max |diff| of zeta2, eta2, E, D vs reference {err:.1e})")
EOF
log "done; results in $OUT/"
