# cython: language_level=3
"""Monte Carlo S3(r, s, theta) sampler (tight loop only; validation lives in three_point.py).

Each (image, r, s, theta) cell is an independent task with its own xoshiro256** stream
seeded from (seed, task index), so results do not depend on the number of threads.
"""
from cython.parallel import prange
from libc.math cimport cos, sin, sqrt, floor, M_PI, fabs
from libc.stdint cimport uint64_t, int64_t

import numpy as np


cdef inline uint64_t _splitmix64(uint64_t* x) noexcept nogil:
    x[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = x[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t _next(uint64_t* s) noexcept nogil:
    cdef uint64_t result = _rotl(s[1] * 5, 7) * 9
    cdef uint64_t t = s[1] << 17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


cdef inline double _uniform(uint64_t* s) noexcept nogil:
    return (_next(s) >> 11) * (1.0 / 9007199254740992.0)


cdef inline int64_t _below(uint64_t* s, int64_t n) noexcept nogil:
    return <int64_t>(_uniform(s) * n)


cdef inline int64_t _wrap(int64_t i, int64_t n) noexcept nogil:
    i = i % n
    return i + n if i < 0 else i


cdef inline int64_t _round(double x) noexcept nogil:
    return <int64_t>floor(x + 0.5)


def sample_s3(const unsigned char[:, :, :, ::1] images, const double[::1] r, const double[::1] s,
              const double[::1] theta, Py_ssize_t n_samples, bint periodic, bint volume,
              uint64_t seed, Py_ssize_t max_tries):
    """Return (hits, trials) arrays of shape (N, len(r), len(s), len(theta)).

    ``images`` is (N, D, H, W); 2D images have D == 1 and ``volume`` False (triangles lie in
    the image plane). Non-periodic sampling rejects triangles leaving the image and gives up
    on a cell after ``max_tries`` draws, so ``trials`` can fall short of ``n_samples``.
    """
    cdef Py_ssize_t N = images.shape[0], D = images.shape[1], H = images.shape[2], W = images.shape[3]
    cdef Py_ssize_t nr = r.shape[0], ns = s.shape[0], nt = theta.shape[0]
    cdef Py_ssize_t n_tasks = N * nr * ns * nt
    hits_arr = np.zeros(n_tasks, dtype=np.int64)
    trials_arr = np.zeros(n_tasks, dtype=np.int64)
    cdef int64_t[::1] hits = hits_arr
    cdef int64_t[::1] trials = trials_arr
    cdef Py_ssize_t task
    for task in prange(n_tasks, nogil=True, schedule="dynamic", chunksize=4):
        _sample_cell(images, r, s, theta, task, n_samples, periodic, volume, seed, max_tries,
                     &hits[task], &trials[task], D, H, W, nr, ns, nt)
    shape = (N, nr, ns, nt)
    return hits_arr.reshape(shape), trials_arr.reshape(shape)


cdef void _sample_cell(const unsigned char[:, :, :, ::1] images, const double[::1] r,
                       const double[::1] s, const double[::1] theta, Py_ssize_t task,
                       Py_ssize_t n_samples, bint periodic, bint volume, uint64_t seed,
                       Py_ssize_t max_tries, int64_t* hits_out, int64_t* trials_out,
                       Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t nr, Py_ssize_t ns, Py_ssize_t nt) noexcept nogil:
    cdef uint64_t state[4]
    cdef uint64_t sm = seed ^ (<uint64_t>task * 0xD1B54A32D192ED03ULL)
    cdef int k
    for k in range(4):
        state[k] = _splitmix64(&sm)
    cdef Py_ssize_t img = task // (nr * ns * nt)
    cdef Py_ssize_t rem = task % (nr * ns * nt)
    cdef double rr = r[rem // (ns * nt)], ss = s[(rem // nt) % ns], th = theta[rem % nt]
    cdef double ux, uy, uz, vx, vy, vz, ax, ay, az, phi, z, rho, psi, norm
    cdef double cth = cos(th), sth = sin(th)
    cdef int64_t x0, y0, z0, x1, y1, z1, x2, y2, z2, hits = 0, trials = 0
    cdef Py_ssize_t tries = 0
    while trials < n_samples and tries < max_tries:
        tries += 1
        if volume:
            # u uniform on the sphere, v uniform on the circle perpendicular to u.
            z = 2.0 * _uniform(state) - 1.0
            phi = 2.0 * M_PI * _uniform(state)
            rho = sqrt(1.0 - z * z)
            ux = rho * cos(phi); uy = rho * sin(phi); uz = z
            if fabs(ux) < 0.9:
                ax = 0.0; ay = -uz; az = uy          # u x e_x
            else:
                ax = uz; ay = 0.0; az = -ux          # u x e_y
            norm = sqrt(ax * ax + ay * ay + az * az)
            ax /= norm; ay /= norm; az /= norm
            psi = 2.0 * M_PI * _uniform(state)
            # v = cos(psi) a + sin(psi) (u x a)
            vx = cos(psi) * ax + sin(psi) * (uy * az - uz * ay)
            vy = cos(psi) * ay + sin(psi) * (uz * ax - ux * az)
            vz = cos(psi) * az + sin(psi) * (ux * ay - uy * ax)
            z0 = _below(state, D)
        else:
            phi = 2.0 * M_PI * _uniform(state)
            ux = cos(phi); uy = sin(phi); uz = 0.0
            vx = -uy; vy = ux; vz = 0.0
            z0 = 0
        y0 = _below(state, H)
        x0 = _below(state, W)
        # Second vertex at distance r along u, third at distance s at angle theta from u.
        x1 = x0 + _round(rr * ux); y1 = y0 + _round(rr * uy); z1 = z0 + _round(rr * uz)
        x2 = x0 + _round(ss * (cth * ux + sth * vx))
        y2 = y0 + _round(ss * (cth * uy + sth * vy))
        z2 = z0 + _round(ss * (cth * uz + sth * vz))
        if periodic:
            x1 = _wrap(x1, W); y1 = _wrap(y1, H); z1 = _wrap(z1, D)
            x2 = _wrap(x2, W); y2 = _wrap(y2, H); z2 = _wrap(z2, D)
        elif (x1 < 0 or x1 >= W or y1 < 0 or y1 >= H or z1 < 0 or z1 >= D or
              x2 < 0 or x2 >= W or y2 < 0 or y2 >= H or z2 < 0 or z2 >= D):
            continue
        trials += 1
        if images[img, z0, y0, x0] and images[img, z1, y1, x1] and images[img, z2, y2, x2]:
            hits += 1
    hits_out[0] = hits
    trials_out[0] = trials
