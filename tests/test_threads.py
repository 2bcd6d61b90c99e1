"""One thread setting for torch, numba, OpenMP/BLAS and scipy.fft (microvae.threads). Settings
that change process-wide state run in a subprocess."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from microvae import threads

CLEAN = {k: v for k, v in os.environ.items()
         if k not in ("MICROVAE_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "NUMBA_NUM_THREADS",
                      "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _run(code, args=(), **env):
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                         env={**CLEAN, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_follows_env_then_affinity(monkeypatch):
    for var in ("MICROVAE_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "_threads", None)
    cpus = len(os.sched_getaffinity(0))
    assert threads.available_cpus() == cpus and threads.default_threads() == cpus
    monkeypatch.setenv("OMP_NUM_THREADS", "1,1")  # nested-levels form: the outer level counts
    assert threads.default_threads() == 1
    monkeypatch.setenv("MICROVAE_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert threads.default_threads() == 1  # microvae's own variable wins
    monkeypatch.delenv("MICROVAE_NUM_THREADS")
    assert threads.default_threads() == cpus  # never more than the CPUs this process may use
    assert threads.get_threads() == cpus and "OMP_NUM_THREADS" in threads.threads_source()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_are_named(monkeypatch, value):
    monkeypatch.setenv("MICROVAE_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"MICROVAE_NUM_THREADS must be a positive integer thread count, got '{value}'"):
        threads.default_threads()
    monkeypatch.delenv("MICROVAE_NUM_THREADS")
    with pytest.raises(ValueError, match="threads must be a positive integer thread count, got 0"):
        threads.set_threads(0)


def test_set_threads_reaches_every_kernel_family():
    code = """
import json, microvae, torch, numba, numpy, scipy.fft
import microvae.correlations  # loads the Cython kernels' OpenMP runtime
from threadpoolctl import threadpool_info
old = microvae.set_threads(1)
numba.njit(parallel=True)(lambda a: a.sum())(numpy.ones(4))  # starting numba's pool must not undo it
microvae.threads.apply()
print(json.dumps({"old": old, "now": microvae.get_threads(), "torch": torch.get_num_threads(),
                  "numba": numba.get_num_threads(), "env": __import__("os").environ["OMP_NUM_THREADS"],
                  "pools": sorted({p["num_threads"] for p in threadpool_info()})}))
"""
    got = _run(code)
    assert got["old"] == len(os.sched_getaffinity(0))
    assert got == {**got, "now": 1, "torch": 1, "numba": 1, "env": "1", "pools": [1]}


def test_numba_pool_is_sized_by_set_threads_before_import():
    got = _run("import json, microvae; microvae.set_threads(1); import numba; "
               "print(json.dumps([numba.config.NUMBA_NUM_THREADS, numba.get_num_threads()]))")
    assert got == [1, 1]


def test_passive_wait_policy_set_by_set_threads_not_by_import():
    code = ("import json, os, microvae; before = os.environ.get('OMP_WAIT_POLICY'); microvae.set_threads(); "
            "print(json.dumps([before, os.environ.get('OMP_WAIT_POLICY')]))")
    assert _run(code) == [None, "PASSIVE"]  # importing changes nothing process-wide
    assert _run(code, OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "ACTIVE"]  # the user's setting wins


def test_fft_workers_follow_the_setting(monkeypatch):
    import scipy.fft

    from microvae.correlations import s2

    seen = []
    real = scipy.fft.rfftn

    def spy(*args, **kwargs):
        if "workers" in kwargs:  # the image FFTs (one small set-up FFT of the binning has none)
            seen.append(kwargs["workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.fft, "rfftn", spy)
    monkeypatch.setattr(threads, "_threads", 1)
    images = (np.random.default_rng(0).random((2, 16, 16)) < 0.4).astype(np.uint8)
    s2(images)
    s2(images, workers=2)
    assert seen[0] == 1 and seen[-1] == 2
    assert threads.fft_workers() == 1 and threads.fft_workers(-1) == -1


def test_mrf_tree_threads_follow_the_setting(monkeypatch):
    """The MRF grows its cross-validation trees on a thread pool sized by the one setting, not by
    the machine's core count."""
    import concurrent.futures

    from microvae.mrf.model import _parallel_map

    sizes = []

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers=None, **kwargs):
            sizes.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Recording)
    for setting in (1, 3, os.cpu_count() + 1):
        monkeypatch.setattr(threads, "_threads", setting)
        assert _parallel_map(abs, list(range(-8, 0))) == list(range(8, 0, -1))
        assert sizes.pop() == min(8, setting)  # one thread per item at most


def test_cli_threads_option():
    out = subprocess.run([sys.executable, "-m", "microvae", "--threads", "1", "info", "--json"], capture_output=True,
                         text=True, timeout=120, env=CLEAN)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["threads"]
    assert info["microvae"] == 1 and info["torch_intra_op"] == 1 and info["numba"] == 1
    assert info["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    bad = subprocess.run([sys.executable, "-m", "microvae", "--threads", "0", "info"], capture_output=True, text=True,
                         timeout=120, env=CLEAN)
    assert bad.returncode == 2 and "argument --threads: must be an integer >= 1" in bad.stderr


def test_dask_workers_get_their_share(monkeypatch):
    """Nanny-started Dask workers run with OMP_NUM_THREADS=1 (Dask's default) where the parent set
    no count, which microvae's default follows: one kernel thread per worker thread instead of one
    per CPU each."""
    distributed = pytest.importorskip("distributed")
    for var in ("MICROVAE_NUM_THREADS", "OMP_NUM_THREADS"):  # workers inherit the parent's environment
        monkeypatch.delenv(var, raising=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env=CLEAN) as cluster, distributed.Client(cluster) as client:
        shares = client.run(lambda: __import__("microvae").get_threads())
    assert sorted(shares.values()) == [1, 1]


def test_cli_cluster_splits_the_threads_among_its_workers(monkeypatch):
    """After set_threads (every microvae command) the parent's OMP_NUM_THREADS would override
    Dask's default of 1 in every worker; `microvae label --processes P` gives each its share."""
    pytest.importorskip("distributed")
    from microvae.labeling import local_client

    monkeypatch.setattr(threads, "_threads", 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads.worker_env(2) == dict.fromkeys(
        ("MICROVAE_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "2")
    assert threads.worker_env(8)["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="processes must be an integer >= 1"):
        threads.worker_env(0)
    monkeypatch.setattr(threads, "_threads", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with local_client(2) as client:
        shares = client.run(lambda: __import__("microvae").get_threads())
        client.cluster.close()
    assert sorted(shares.values()) == [1, 1]
