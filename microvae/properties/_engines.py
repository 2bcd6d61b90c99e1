"""Array engines of the harmonic estimator (:mod:`microvae.properties.harmonic`): the same steps
on a chunk of images (fluctuations, forward transform, inverse transforms under the multipliers,
window sums) with SciPy FFTs and a numba reduction (:class:`NumpyOps`, volumes, and the reference
of the compiled path), the compiled kernel (:class:`KernelOps`, 2D NumPy batches) or ``torch.fft``
(:class:`TorchOps`, tensors on their device).
"""
import numba
import numpy as np
import scipy.fft

from ..threads import fft_workers, kernel_threads
from .multipliers import spherical_multipliers

__all__ = ["NumpyOps", "KernelOps", "TorchOps", "NumpyArrays", "FFTOps", "padded_grid"]


def _fluctuations(batch, periodic, grid):
    """``δ = I - φ2`` per image, zero-padded to ``grid`` for the non-periodic estimator."""
    n = len(batch)
    phi = batch.reshape(n, -1).mean(axis=1)
    delta = batch.astype(np.float64) - phi.reshape((n,) + (1,) * (batch.ndim - 1))
    if not periodic:
        padded = np.zeros((n,) + grid)
        padded[(slice(None),) + tuple(slice(0, s) for s in batch.shape[1:])] = delta
        delta = padded
    return phi, delta


def padded_grid(shape: tuple[int, ...], periodic: bool) -> tuple[int, ...]:
    """The transform grid of the estimator: the image itself, or zero-padded to at least twice
    each side (no wrap-around) for ``periodic=False``."""
    if periodic:
        return tuple(shape)
    return tuple(scipy.fft.next_fast_len(2 * n, real=True) for n in shape)


@numba.njit(cache=True)
def _weighted_squares(delta, field, lo, hi):
    """Per image: ``Σ δ (Re f)²`` and ``Σ δ (Im f)²`` over the window ``lo <= index < hi``.

    ``delta`` and ``field`` are ``(N, D, H, W)`` (2D images with D = 1). One pass without
    temporaries; serial, since it is memory bound and far cheaper than the FFTs around it
    (threading it only added scheduling overhead in measurements).
    """
    out = np.zeros((delta.shape[0], 2))
    for i in range(delta.shape[0]):
        s_re = 0.0
        s_im = 0.0
        for z in range(lo[0], hi[0]):
            for y in range(lo[1], hi[1]):
                for x in range(lo[2], hi[2]):
                    v = field[i, z, y, x]
                    w = delta[i, z, y, x]
                    s_re += w * v.real * v.real
                    s_im += w * v.imag * v.imag
        out[i, 0] = s_re
        out[i, 1] = s_im
    return out


class FFTOps:
    """The estimator's steps on a chunk as separate array operations (fluctuations, forward
    transform, one inverse transform and window sum per multiplier); subclasses supply them."""

    def fluctuations(self, part, periodic, grid):
        raise NotImplementedError

    def fftn(self, delta):
        raise NotImplementedError

    def moments(self, delta, spec, multipliers, window):
        raise NotImplementedError

    def spherical(self, grid, degrees):
        return spherical_multipliers(grid, degrees)

    def phi_and_moments(self, part, periodic, grid, multipliers, window, s2_plan=None):
        """Porosity and moments of each image; S2 is not shared on this path (None)."""
        phi, delta = self.fluctuations(part, periodic, grid)
        return phi, self.moments(delta, self.fftn(delta), multipliers, window), None


class NumpyArrays:
    """The array helpers of the estimator for NumPy results (every engine but torch's)."""

    def const(self, value):
        return value

    where = staticmethod(np.where)
    concat = staticmethod(np.concatenate)
    contiguous = staticmethod(np.ascontiguousarray)


class NumpyOps(NumpyArrays, FFTOps):
    """Array operations of the estimator for NumPy batches: SciPy FFTs, a numba reduction.
    Volumes take this path; for 2D images it is the reference of :class:`KernelOps`."""

    def __init__(self, workers):
        self.workers = fft_workers(workers)

    def chunk_size(self, per_chunk, n):
        return per_chunk
    fluctuations = staticmethod(_fluctuations)

    def fftn(self, delta):
        return scipy.fft.fftn(delta, axes=tuple(range(1, delta.ndim)), workers=self.workers)

    def moments(self, delta, spec, multipliers, window):
        """``<δ (U δ)²>`` over the observed window for each real multiplier ``U``; the complex
        ``multipliers`` pack two real ones each (real, imaginary part). Shape (N, 2 len(multipliers))."""
        axes = tuple(range(1, delta.ndim))
        as4 = (lambda a: a[:, None]) if delta.ndim == 3 else (lambda a: a)
        lo = np.array([0] * (4 - delta.ndim) + [w.start for w in window], dtype=np.int64)
        hi = np.array([1] * (4 - delta.ndim) + [w.stop for w in window], dtype=np.int64)
        n_obs = float(np.prod(hi - lo))
        d4 = as4(delta)
        buf = np.empty_like(spec)
        out = np.empty((len(delta), 2 * len(multipliers)))
        for k, mult in enumerate(multipliers):
            np.multiply(spec, mult, out=buf)
            field = scipy.fft.ifftn(buf, axes=axes, workers=self.workers, overwrite_x=True)
            out[:, 2 * k:2 * k + 2] = _weighted_squares(d4, as4(field), lo, hi) / n_obs
        return out


class KernelOps(NumpyArrays):
    """2D NumPy batches: :func:`microvae._spectral.harmonic_moments` does a whole batch in one
    call (fluctuations, forward transform, the pruned inverse transforms, window sums; V images
    per SIMD vector, each group's transforms in cache), and S2 from the same forward transform."""

    def __init__(self, workers):
        self.threads = kernel_threads(workers)

    def chunk_size(self, per_chunk, n):
        return n  # the kernel's memory does not grow with the batch

    def phi_and_moments(self, part, periodic, grid, multipliers, window, s2_plan=None):
        from .. import _spectral

        re, im = _converted_multipliers(multipliers, "split", lambda m: (np.ascontiguousarray(m.real),
                                                                         np.ascontiguousarray(m.imag)))
        moments, phi, curves = _spectral.harmonic_moments(part, grid, tuple((w.start, w.stop) for w in window),
                                                          re, im, self.threads, s2_plan)
        return phi, moments, curves


class TorchOps(FFTOps):
    """The same operations for a torch tensor, with ``torch.fft`` on the tensor's device and in
    its floating dtype; the multipliers are the cached NumPy ones, copied to the device once."""

    def __init__(self, like):
        import torch

        self.torch = torch
        self.device, self.dtype = like.device, like.dtype
        self.cdtype = torch.complex64 if like.dtype == torch.float32 else torch.complex128
        # GPUs need big batches to fill.
        self.chunk_scale = 8 if like.device.type == "cuda" else 1

    def chunk_size(self, per_chunk, n):
        return per_chunk * self.chunk_scale

    def const(self, value):
        return self.torch.as_tensor(value, dtype=self.dtype, device=self.device)

    def where(self, cond, a, b):
        return self.torch.where(cond, self.const(a) if isinstance(a, float) else a, b)

    def concat(self, parts):
        return self.torch.cat(parts)

    def contiguous(self, x):
        return x.contiguous()

    def fluctuations(self, batch, periodic, grid):
        n = len(batch)
        phi = batch.reshape(n, -1).mean(dim=1)
        delta = batch - phi.reshape((n,) + (1,) * (batch.ndim - 1))
        if not periodic:
            pad = []
            for size, g in zip(reversed(batch.shape[1:]), reversed(grid)):
                pad += [0, g - size]
            delta = self.torch.nn.functional.pad(delta, pad)
        return phi, delta

    def fftn(self, delta):
        return self.torch.fft.fftn(delta, dim=tuple(range(1, delta.ndim)))

    def moments(self, delta, spec, multipliers, window):
        dims = tuple(range(1, delta.ndim))
        mults = _device_multipliers(multipliers, self.device, self.cdtype)
        observed = (slice(None),) + tuple(window)
        d_obs = delta[observed][..., None]
        n_obs = float(np.prod(d_obs.shape[1:-1]))
        out = []
        for mult in mults:
            field = self.torch.fft.ifftn(spec * mult, dim=dims)[observed]
            # (Re f)² and (Im f)² in one pass, as the last axis of the real view.
            out.append((self.torch.view_as_real(field).square() * d_obs).sum(dim=dims) / n_obs)
        return self.torch.cat(out, dim=1)


_CONVERTED_MULTIPLIERS: dict[tuple, tuple] = {}


def _converted_multipliers(multipliers, key, convert):
    """``convert(multipliers)`` of the (lru-cached, read-only) multiplier arrays, cached by their
    identity and ``key`` (device copies, split real and imaginary parts)."""
    full_key = (id(multipliers), key)
    hit = _CONVERTED_MULTIPLIERS.get(full_key)
    if hit is None or hit[0] is not multipliers:
        if len(_CONVERTED_MULTIPLIERS) >= 8:
            _CONVERTED_MULTIPLIERS.clear()
        hit = (multipliers, convert(multipliers))
        _CONVERTED_MULTIPLIERS[full_key] = hit
    return hit[1]


def _device_multipliers(multipliers, device, cdtype):
    """Device copies of the multiplier arrays."""
    import torch

    return _converted_multipliers(multipliers, (str(device), cdtype),
                                  lambda m: torch.tensor(m, dtype=cdtype, device=device))
