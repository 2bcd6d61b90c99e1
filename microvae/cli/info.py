"""``microvae info``: what was built (C++/CUDA ops, Cython kernels), library versions and the
thread settings every kernel family will use."""
import importlib
import importlib.machinery
import json
import os
import platform
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def register(sub):
    p = sub.add_parser("info", help="what was built (compiled ops, Cython kernels), versions, threads",
                       description="Report the compiled parts of microvae (the torch extension microvae._C "
                                   "with or without CUDA kernels, the Cython kernels), the versions of the "
                                   "libraries it runs on, the GPUs torch sees and the thread counts in force.")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_info)


def compiled_modules():
    """Every compiled module of the package: those with a Cython source (``*.pyx``), the torch
    extension ``microvae._C`` and any other built extension file, each with whether it imports.

    Returns
    -------
    list of dict
        ``{"module", "ok", "error", "file"}`` per module (``error``: the import error text).
    """
    import torch  # noqa: F401  (microvae._C links torch's libraries, which torch loads first)

    names = {"microvae._C"}
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for path in PACKAGE_DIR.rglob("*"):
        if path.suffix == ".pyx" or path.name.endswith(suffixes):
            stem = path.name.split(".")[0]
            rel = path.parent.relative_to(PACKAGE_DIR.parent).parts
            names.add(".".join(rel + (stem,)))
    out = []
    for name in sorted(names):
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            out.append({"module": name, "ok": False, "error": f"{type(exc).__name__}: {exc}", "file": None})
        else:
            out.append({"module": name, "ok": True, "error": None, "file": getattr(mod, "__file__", None)})
    return out


def _version(name):
    try:
        return importlib.import_module(name).__version__
    except ImportError:
        return None


def collect():
    """The report as a dict (see ``microvae info --json``)."""
    import torch
    from threadpoolctl import threadpool_info

    from .. import ops, threads
    from .._version import __version__

    cuda = {"built_with": torch.version.cuda, "available": torch.cuda.is_available(),
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else []}
    import numba

    return {
        "microvae": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "compiled": compiled_modules(),
        "cuda_kernels": ops.cuda_kernels_available(),
        "torch": {"version": torch.__version__, "cuda": cuda, "parallel_backend":
                  "OpenMP" if torch.backends.openmp.is_available() else "native"},
        "versions": {name: _version(name) for name in ("numpy", "scipy", "numba", "threadpoolctl", "dask")},
        "threads": {
            "microvae": threads.get_threads(),
            "source": threads.threads_source(),
            "affinity_cpus": threads.available_cpus(),
            "os_cpus": os.cpu_count(),
            "torch_intra_op": torch.get_num_threads(),
            "torch_inter_op": torch.get_num_interop_threads(),
            "numba": numba.get_num_threads(),
            "numba_threading_layer": numba.config.THREADING_LAYER,
            "env": {k: os.environ.get(k) for k in (threads.ENV_VAR, "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                   "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")},
            "pools": [{"library": p["internal_api"], "threads": p["num_threads"], "file": p["filepath"]}
                      for p in threadpool_info()],
        },
    }


def _info(args):
    from .. import threads

    threads.apply()  # the counts a command would run with (starting numba resets OpenMP's)
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"microvae {info['microvae']} (Python {info['python']}, {info['platform']})")
    print("compiled:")
    for m in info["compiled"]:
        state = "ok" if m["ok"] else f"MISSING ({m['error']})"
        extra = ""
        if m["module"] == "microvae._C" and m["ok"]:
            extra = ", C++ CPU kernels" + (" + CUDA kernels" if info["cuda_kernels"] else " (no CUDA kernels)")
        print(f"  {m['module']:40s} {state}{extra}")
    t, c = info["torch"], info["torch"]["cuda"]
    gpus = ", ".join(c["devices"]) if c["devices"] else "no GPU visible"
    print(f"torch {t['version']} (CUDA {c['built_with']}, {gpus}; CPU parallel backend {t['parallel_backend']})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))
    th = info["threads"]
    print(f"threads: {th['microvae']} ({th['source']}); {th['affinity_cpus']} CPUs in the affinity mask "
          f"of {th['os_cpus']}; torch {th['torch_intra_op']} intra-op / {th['torch_inter_op']} inter-op, "
          f"numba {th['numba']} ({th['numba_threading_layer']} layer)")
    for p in th["pools"]:
        print(f"  {p['library']:10s} {p['threads']} threads  {p['file']}")
    env = ", ".join(f"{k}={v}" for k, v in th["env"].items() if v is not None)
    print(f"  environment: {env or 'no thread variables set'}")
    return 0
