# cython: language_level=3
# distutils: language = c++
"""Compiled spectral kernels vectorized across images (csrc/spectral): each SIMD lane holds one
image, so a batch is transformed V images at a time (8 in float64, 16 in float32 on AVX-512)
without moving the data between lanes. Validation and planning live in the Python callers."""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t

cnp.import_array()


cdef extern from "dispatch.h" namespace "microvae_spectral":
    const char* isa_name()
    void s2_binned_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                       const double* fold, int n_orbits, const double* binning, int n_bins, double* out,
                       int threads) nogil
    void s2_binned_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, const int32_t* orbit,
                       const float* fold, int n_orbits, const float* binning, int n_bins, float* out,
                       int threads) nogil
    void harmonic_moments_f64(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1,
                              int x0, int x1, const double* mult_re, const double* mult_im, int n_mult,
                              double* moments, double* phi, const double* box_re, const double* box_im,
                              const int32_t* orbit, const double* fold, int n_orbits, const double* binning,
                              int n_bins, double* s2, int threads) nogil
    void harmonic_moments_f32(const uint8_t* images, int64_t n, int ny, int nx, int Ly, int Lx, int y0, int y1,
                              int x0, int x1, const float* mult_re, const float* mult_im, int n_mult,
                              float* moments, float* phi, const float* box_re, const float* box_im,
                              const int32_t* orbit, const float* fold, int n_orbits, const float* binning,
                              int n_bins, float* s2, int threads) nogil


def instruction_set():
    """The SIMD variant the kernels run: ``"avx512"``, ``"avx2"`` or ``"generic"``."""
    return isa_name().decode()


def s2_binned(const uint8_t[:, :, ::1] images, tuple grid, const int32_t[::1] orbit, fold, binning, int threads):
    """Bin averages of S2 of ``images`` ``(N, ny, nx)`` on the zero-padded FFT ``grid``.

    ``orbit`` (int32, ``Ly * (Lx // 2 + 1)``): the orbit of each half-spectrum element;
    ``fold`` (``Lx // 2 + 1``): Hermitian weight per column; ``binning`` ``(n_orbits, n_bins)``
    C-contiguous, float64 or float32 (which selects the precision, as do ``fold`` and the result).
    """
    cdef int Ly = grid[0], Lx = grid[1]
    cdef int64_t n = images.shape[0]
    cdef int ny = images.shape[1], nx = images.shape[2]
    if Ly < ny or Lx < nx or orbit.shape[0] != Ly * (Lx // 2 + 1) or len(fold) != Lx // 2 + 1:
        raise ValueError("s2_binned: grid, orbit map and fold weights do not match the images")
    cdef int n_orbits = binning.shape[0], n_bins = binning.shape[1]
    out = np.empty((n, n_bins), dtype=binning.dtype)
    cdef double[:, ::1] K64, out64
    cdef const double[::1] fold64
    cdef float[:, ::1] K32, out32
    cdef const float[::1] fold32
    if binning.dtype == np.float64:
        K64, fold64, out64 = binning, fold, out
        with nogil:
            s2_binned_f64(&images[0, 0, 0], n, ny, nx, Ly, Lx, &orbit[0], &fold64[0], n_orbits, &K64[0, 0],
                          n_bins, &out64[0, 0], threads)
    elif binning.dtype == np.float32:
        K32, fold32, out32 = binning, fold, out
        with nogil:
            s2_binned_f32(&images[0, 0, 0], n, ny, nx, Ly, Lx, &orbit[0], &fold32[0], n_orbits, &K32[0, 0],
                          n_bins, &out32[0, 0], threads)
    else:
        raise TypeError(f"s2_binned: binning must be float64 or float32, got {binning.dtype}")
    return out


def harmonic_moments(const uint8_t[:, :, ::1] images, tuple grid, tuple window, mult_re, mult_im, int threads,
                     s2_plan=None):
    """Harmonic moments of 2D images: for each multiplier ``k`` (``mult_re[k] + i mult_im[k]``,
    ``(Ly, Lx)`` in FFT order) the means over ``window`` (``((y0, y1), (x0, x1))`` in image
    pixels) of ``delta (Re f)^2`` and ``delta (Im f)^2``, ``f = ifft2(fft2(delta) R_k)`` on the
    zero-padded ``grid``, ``delta = image - porosity`` on the image.

    ``s2_plan``: optional ``(box_re, box_im, orbit, fold, binning)`` to also return the radial
    S2 bins of the images from the same transform (``box``: the half spectrum of the image's
    support on the grid; the rest as for :func:`s2_binned`). The dtype of ``mult_re`` selects
    the precision. Returns ``(moments (N, 2K), porosity (N,), s2 (N, n_bins) or None)``.
    """
    cdef int Ly = grid[0], Lx = grid[1]
    cdef int64_t n = images.shape[0]
    cdef int ny = images.shape[1], nx = images.shape[2]
    cdef int y0 = window[0][0], y1 = window[0][1], x0 = window[1][0], x1 = window[1][1]
    dtype = mult_re.dtype
    if dtype not in (np.float64, np.float32) or mult_im.dtype != dtype:
        raise TypeError(f"harmonic_moments: multipliers must be float64 or float32, got {dtype}")
    if (Ly < ny or Lx < nx or mult_re.shape[1:] != (Ly, Lx) or mult_im.shape != mult_re.shape
            or not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx)):
        raise ValueError("harmonic_moments: grid, window and multipliers do not match the images")
    cdef int n_mult = mult_re.shape[0]
    moments = np.empty((n, 2 * n_mult), dtype=dtype)
    phi = np.empty(n, dtype=dtype)
    cdef int n_orbits = 0, n_bins = 0
    s2 = None
    if s2_plan is not None:
        box_re, box_im, orbit, fold, binning = s2_plan
        n_orbits, n_bins = binning.shape
        s2 = np.empty((n, n_bins), dtype=dtype)
    else:
        box_re = box_im = fold = np.zeros(1, dtype=dtype)
        binning = np.zeros((1, 1), dtype=dtype)
        orbit = np.zeros(1, dtype=np.int32)
    s2_view = s2 if s2 is not None else np.zeros((1, 1), dtype=dtype)
    cdef const int32_t[::1] orb = np.ascontiguousarray(orbit, dtype=np.int32)
    cdef const double[:, :, ::1] mr64, mi64
    cdef const double[::1] br64, bi64, fo64
    cdef const double[:, ::1] K64
    cdef double[:, ::1] mo64, s64
    cdef double[::1] ph64
    cdef const float[:, :, ::1] mr32, mi32
    cdef const float[::1] br32, bi32, fo32
    cdef const float[:, ::1] K32
    cdef float[:, ::1] mo32, s32
    cdef float[::1] ph32
    if dtype == np.float64:
        mr64, mi64, mo64, ph64 = mult_re, mult_im, moments, phi
        br64, bi64, fo64, K64, s64 = box_re.ravel(), box_im.ravel(), fold, binning, s2_view
        with nogil:
            harmonic_moments_f64(&images[0, 0, 0], n, ny, nx, Ly, Lx, y0, y1, x0, x1, &mr64[0, 0, 0],
                                 &mi64[0, 0, 0], n_mult, &mo64[0, 0], &ph64[0], &br64[0], &bi64[0], &orb[0],
                                 &fo64[0], n_orbits, &K64[0, 0] if n_bins else NULL, n_bins, &s64[0, 0], threads)
    else:
        mr32, mi32, mo32, ph32 = mult_re, mult_im, moments, phi
        br32, bi32, fo32, K32, s32 = box_re.ravel(), box_im.ravel(), fold, binning, s2_view
        with nogil:
            harmonic_moments_f32(&images[0, 0, 0], n, ny, nx, Ly, Lx, y0, y1, x0, x1, &mr32[0, 0, 0],
                                 &mi32[0, 0, 0], n_mult, &mo32[0, 0], &ph32[0], &br32[0], &bi32[0], &orb[0],
                                 &fo32[0], n_orbits, &K32[0, 0] if n_bins else NULL, n_bins, &s32[0, 0], threads)
    return moments, phi, s2
