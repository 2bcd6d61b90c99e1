"""One thread count for every kernel family: torch, numba, OpenMP (the Cython and C++ kernels,
MKL/OpenBLAS) and ``scipy.fft`` workers.

Several jobs on one machine (a training run beside a labeling run, Dask workers) each start
one thread per CPU in every library by default, and those pools spin while they wait: two
such jobs on two cores ran 14x slower than alone (BENCHMARKS.md, "Concurrent jobs"). Give
each job its share instead:

- ``microvae.set_threads(n)`` in Python, ``--threads N`` on the command line, or
  ``MICROVAE_NUM_THREADS=N`` in the environment;
- by default, ``OMP_NUM_THREADS`` when set, else the number of CPUs this process may run on
  (``os.sched_getaffinity``: ``taskset``, cgroup cpusets and batch schedulers shrink it).

The count applies to the libraries already imported at once and, through the standard
environment variables, to those imported later (numba: at most the count in force when it was
first imported, the size of its pool). Neither torch nor numba is imported here.

:func:`set_threads` (and so every ``microvae`` command) also sets ``OMP_WAIT_POLICY=PASSIVE``
unless it is set: idle OpenMP threads then sleep instead of spinning, which is what keeps
concurrent jobs near their fair share (below). OpenMP runtimes read it once, when they load, so
call ``microvae.set_threads()`` before importing torch; it also reaches child processes.

Why: idle OpenMP threads spin for a while before they sleep (libgomp's and Intel's default).
With two jobs on the same cores each job's spinning threads take the CPU from the other's
working ones: 2.6 s instead of 0.21 s per training step beside a second torch job on 2 cores,
against 0.39 s with ``PASSIVE`` (BENCHMARKS.md, "Concurrent jobs").
"""
import os
import sys

__all__ = ["set_threads", "check_threads", "get_threads", "default_threads", "available_cpus", "threads_source",
           "fft_workers", "kernel_threads", "apply", "worker_env", "ENV_VAR"]

ENV_VAR = "MICROVAE_NUM_THREADS"
# Read by OpenMP runtimes (libgomp: torch, the Cython kernels, numba's omp layer), MKL, OpenBLAS
# and numba when they start; set so that libraries imported after set_threads start right.
_STARTUP_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_threads = None


def available_cpus() -> int:
    """Number of CPUs this process may run on (its affinity mask; all CPUs where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _parse(value, source):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a positive integer thread count, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{source} must be a positive integer thread count, got {value!r}")
    return n


def check_threads(n: int, name: str = "threads") -> int:
    """``n`` as an int; ``ValueError`` unless ``1 <= n <=`` :func:`available_cpus` (threads beyond
    the CPUs only take turns)."""
    n = _parse(n, name)
    if n > available_cpus():
        raise ValueError(f"{n} threads exceed the {available_cpus()} CPUs this process may run on: threads "
                         f"beyond the CPUs only take turns; use at most {available_cpus()}")
    return n


def default_threads() -> int:
    """``MICROVAE_NUM_THREADS``, else ``OMP_NUM_THREADS``, else :func:`available_cpus`; never
    more than the available CPUs."""
    for var in (ENV_VAR, "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            # OMP_NUM_THREADS may be a list for nested levels ("4,2"); the outer level counts.
            return min(_parse(value.split(",")[0], var), available_cpus())
    return available_cpus()


def threads_source() -> str:
    """Where :func:`get_threads` comes from, in words (for ``microvae info``)."""
    if _threads is not None:
        return "set_threads / --threads"
    for var in (ENV_VAR, "OMP_NUM_THREADS"):
        if os.environ.get(var, "").strip():
            return f"{var}, capped at the affinity mask"
    return "CPUs in the affinity mask"


def get_threads() -> int:
    """The thread count in force: the last :func:`set_threads`, else :func:`default_threads`."""
    return _threads if _threads is not None else default_threads()


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads in every kernel family (``None``: :func:`default_threads`).

    Applies at once to torch (intra-op threads), numba (at most the pool it started with,
    ``NUMBA_NUM_THREADS``), every OpenMP/BLAS runtime loaded in the process (via threadpoolctl)
    and sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` (and, unless set,
    ``OMP_WAIT_POLICY=PASSIVE``) for libraries loaded later and for child processes.
    ``scipy.fft`` calls of microvae use :func:`fft_workers`.

    Returns
    -------
    int
        The previous count, so that ``set_threads(old)`` restores it.

    Raises
    ------
    ValueError
        ``n`` below 1 or above :func:`available_cpus`.
    """
    global _threads
    new = default_threads() if n is None else check_threads(n)
    old, _threads = get_threads(), new
    for var in _STARTUP_VARS:
        os.environ[var] = str(_threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # a user's own setting wins (ACTIVE spins)
    if "numba" not in sys.modules:
        # numba sizes its pool from this once, at import; starting its OpenMP layer then also
        # resets the process's OpenMP count (torch's) to it, which is then the right one.
        os.environ["NUMBA_NUM_THREADS"] = str(_threads)
    apply()
    return old


def apply() -> None:
    """Re-apply the count to the libraries loaded now.

    Needed after something resets them: numba's OpenMP threading layer shares torch's libgomp,
    and starting it sets the process's OpenMP count to numba's own.
    """
    n = get_threads()
    # numba first: launching its threading layer may reset the OpenMP count torch then sets.
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def worker_env(processes: int, threads_per_worker: int = 1) -> dict:
    """Environment for ``processes`` worker processes that share this job's threads.

    Dask's nanny gives its workers ``OMP_NUM_THREADS=1`` only where the parent has not set it;
    after :func:`set_threads` (every ``microvae`` command) the parent's count would reach every
    worker, ``processes`` times the machine. Each worker gets ``get_threads() // processes``
    threads (at least ``threads_per_worker``, one kernel thread per task it runs at once).
    Pass the result as ``env=`` to ``distributed.LocalCluster``.
    """
    from ._validate import check_int

    processes = check_int(processes, "processes", minimum=1)
    threads_per_worker = check_int(threads_per_worker, "threads_per_worker", minimum=1)
    share = str(max(threads_per_worker, get_threads() // processes))
    return {var: share for var in (ENV_VAR, *_STARTUP_VARS)}


def fft_workers(workers: int | None = None) -> int:
    """``scipy.fft`` ``workers`` argument: ``workers`` when given, else :func:`get_threads`."""
    return get_threads() if workers is None else workers


def kernel_threads(workers: int | None = None) -> int:
    """Threads of microvae's compiled kernels for a ``workers`` argument: as :func:`fft_workers`,
    with negative values counted back from the available CPUs as ``scipy.fft`` does (-1: all)."""
    n = fft_workers(workers)
    return n if n > 0 else max(1, available_cpus() + 1 + n)
