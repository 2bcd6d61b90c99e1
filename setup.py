"""Build microvae: Cython correlation kernels and the torch extension ``microvae._C``.

CUDA kernels are compiled whenever torch is a CUDA build and a CUDA toolkit (nvcc) is found,
even on a machine without a GPU; otherwise the CPU-only extension is built with a one-line
notice. Environment knobs: ``CUDA_HOME``, ``TORCH_CUDA_ARCH_LIST``, ``MAX_JOBS``,
``MICROVAE_NO_CUDA=1`` (force the CPU-only build).
"""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

# torch resolves CUDA_HOME when cpp_extension is imported and guesses /usr/local on machines
# without a driver; point it at a real toolkit first.
if "CUDA_HOME" not in os.environ and os.path.isfile("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# Without a visible GPU torch would compile for every architecture it knows; default to the
# data-centre and consumer generations users run (Volta..Hopper), plus PTX for newer ones.
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "7.0;8.0;8.6;8.9;9.0+PTX")

import torch
from torch.utils import cpp_extension

HERE = os.path.dirname(os.path.abspath(__file__))
OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []


def _cuda_toolkit():
    """Return the nvcc path if CUDA kernels can be built, else None (with a reason printed)."""
    if os.environ.get("MICROVAE_NO_CUDA") == "1":
        print("microvae: MICROVAE_NO_CUDA=1, building the CPU-only extension")
        return None
    if torch.version.cuda is None:
        print("microvae: torch is a CPU build, building the CPU-only extension")
        return None
    home = cpp_extension.CUDA_HOME
    nvcc = os.path.join(home, "bin", "nvcc") if home else None
    if not nvcc or not os.path.isfile(nvcc):
        print("microvae: no CUDA toolkit found (set CUDA_HOME), building the CPU-only extension")
        return None
    return nvcc


def _pip_cuda_includes():
    """Headers of the pip-installed CUDA libraries (nvidia-* wheels), which some toolkits lack."""
    try:
        import nvidia
    except ImportError:
        return []
    roots = [os.path.join(p, "*", "include") for p in nvidia.__path__]
    return sorted(d for r in roots for d in glob.glob(r))


def torch_extension():
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    # No -std flag: BuildExtension picks the standard the installed torch headers need.
    cxx = ["-O3"] + OPENMP
    if _cuda_toolkit():
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        return cpp_extension.CUDAExtension(
            "microvae._C",
            sources,
            include_dirs=_pip_cuda_includes(),
            define_macros=[("MICROVAE_WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=OPENMP,
        )
    return cpp_extension.CppExtension(
        "microvae._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=OPENMP
    )


# C++ sources compiled into a Cython module beside its .pyx: the spectral kernels, one
# translation unit per instruction set (csrc/spectral/dispatch.cpp picks one at run time).
CPP_SOURCES = {"microvae._spectral": sorted(glob.glob("csrc/spectral/*.cpp"))}


def cython_extensions():
    pyx = sorted(glob.glob("microvae/**/*.pyx", recursive=True))
    exts = []
    for p in pyx:
        name = os.path.splitext(p)[0].replace(os.sep, ".")
        cpp = CPP_SOURCES.get(name, [])
        exts.append(Extension(
            name,
            [p] + cpp,
            # Absolute: torch's BuildExtension compiles with ninja from the build directory.
            include_dirs=[np.get_include(), os.path.join(HERE, "csrc", "spectral")],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3"] + OPENMP + (["-std=c++17", "-Wno-psabi"] if cpp else []),
            extra_link_args=OPENMP,
            language="c++" if cpp else None,
            depends=sorted(glob.glob("csrc/spectral/*.h") + glob.glob("csrc/spectral/*.inc")) if cpp else [],
        ))
    return cythonize(exts, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False,
                                                                    "cdivision": True, "initializedcheck": False})


setup(
    ext_modules=cython_extensions() + [torch_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
)
