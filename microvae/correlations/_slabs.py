"""S2 of one volume in slabs, with memory bounded by the half spectrum of the volume's planes.

A volume's power spectrum needs every plane before the transform along z, but the radial and
directional averages need the correlation only for ``|r_z| <= r_max``, and by ``C(-r) = C(r)``
only for ``r_z >= 0``. So: (1) the 2D real transform of each plane, padded to the grid, is kept
(``A``, ``n_z`` planes); (2) column block by column block, the transform along z, the power,
and the inverse along z, keeping only the planes ``r_z = 0..r_max`` (``B``); (3) each kept
plane is inverted in 2D and binned at once. Peak memory (float64) is about
``16 * (n_z + r_max + 1) * L_y * (L_x // 2 + 1)`` bytes for ``A`` and ``B`` plus blocks of
``_BLOCK_BYTES`` (complex64 storage halves it for ``float32``); the full padded grid is never
held. Memory model and measurements: docs/properties.md ("S2 of large volumes").
"""
import numpy as np
import scipy.fft

_BLOCK_BYTES = 64 * 2 ** 20


def _z_planes(n, grid_z, periodic, r_z):
    """Grid indices along z of the displacements ``r_z`` to evaluate, their signed offsets and
    multiplicities: ``r_z > 0`` stands for ``±r_z`` (``C(-r) = C(r)``), except the periodic
    Nyquist plane ``-n/2``, which is its own mirror."""
    offsets = np.fft.fftfreq(grid_z, 1.0 / grid_z).astype(np.int64)
    keep, mult = [], []
    for i, o in enumerate(offsets):
        if abs(o) > r_z or (not periodic and abs(o) >= n):
            continue
        if o < 0 and -o in offsets:
            continue  # counted by its mirror
        keep.append(i)
        mult.append(1.0 if o == 0 or -o not in offsets else 2.0)
    return np.array(keep), offsets[keep], np.array(mult)


def volume_s2(volume, periodic, edges, r_needed, grid, overlap_axes, *, directional=False, dtype=np.float64,
              workers=1):
    """Bin averages of S2 of one volume ``(n_z, n_y, n_x)`` (uint8) over ``edges`` (pixels).

    ``grid``: the FFT grid (the shape when periodic, else padded past ``r_needed`` per axis);
    ``overlap_axes``: per axis, the number of pixel pairs at each signed grid offset (1D; their
    outer product is the overlap). Returns the bin averages ``(len(edges) - 1,)`` and, with
    ``directional``, S2 along z, y and x for displacements ``0..r_needed[i]``.
    """
    nz, ny, nx = volume.shape
    lz, ly, lx = grid
    wc = lx // 2 + 1
    cdtype = np.complex64 if dtype == np.float32 else np.complex128
    item = np.dtype(cdtype).itemsize
    # (1) 2D transforms of the planes, a block of planes at a time.
    planes = np.empty((nz, ly, wc), dtype=cdtype)
    step = max(1, _BLOCK_BYTES // (item * ly * wc))
    for z in range(0, nz, step):
        block = volume[z:z + step].astype(dtype)
        planes[z:z + step] = scipy.fft.rfft2(block, s=(ly, lx), workers=workers)
    # (2) along z: power, inverse, keep the planes r_z = 0..r_max.
    z_index, z_offset, z_mult = _z_planes(nz, lz, periodic, r_needed[0])
    kept = np.empty((len(z_index), ly, wc), dtype=cdtype)
    step = max(1, _BLOCK_BYTES // (item * lz * wc))
    for y in range(0, ly, step):
        spec = scipy.fft.fft(planes[:, y:y + step], n=lz, axis=0, workers=workers)
        power = spec.real ** 2 + spec.imag ** 2
        del spec
        kept[:, y:y + step] = scipy.fft.ifft(power, axis=0, workers=workers, overwrite_x=True)[z_index]
    del planes
    # (3) each kept plane in 2D, binned at once.
    oy, ox = (np.fft.fftfreq(g, 1.0 / g).astype(np.int64) for g in (ly, lx))
    rows = np.flatnonzero((np.abs(oy) <= r_needed[1]) & (overlap_axes[1] > 0))
    cols = np.flatnonzero((np.abs(ox) <= r_needed[2]) & (overlap_axes[2] > 0))
    sq = oy[rows, None] ** 2 + ox[None, cols] ** 2
    pair_yx = np.multiply.outer(overlap_axes[1][rows], overlap_axes[2][cols])
    n_bins = len(edges) - 1
    sums = np.zeros(n_bins)
    counts = np.zeros(n_bins)
    along = [np.zeros(r + 1) for r in r_needed] if directional else None
    for k, (zi, oz, m) in enumerate(zip(z_index, z_offset, z_mult)):
        corr = scipy.fft.irfft2(kept[k], s=(ly, lx), workers=workers)[np.ix_(rows, cols)]
        pairs = overlap_axes[0][zi] * pair_yx
        value = corr / np.where(pairs > 0, pairs, 1.0)
        b = np.searchsorted(edges, np.sqrt(oz * oz + sq).ravel(), side="right") - 1
        ok = (b >= 0) & (b < n_bins) & (pairs.ravel() > 0)
        sums += m * np.bincount(b[ok], weights=value.ravel()[ok], minlength=n_bins)
        counts += m * np.bincount(b[ok], minlength=n_bins)
        if directional:
            iy0, ix0 = np.flatnonzero(oy[rows] == 0)[0], np.flatnonzero(ox[cols] == 0)[0]
            # C(r) = C(-r): the periodic Nyquist offset -n/2 gives S2 at n/2.
            along[0][abs(oz)] = value[iy0, ix0]
            if oz == 0:
                along[1][np.abs(oy[rows])] = value[:, ix0]
                along[2][np.abs(ox[cols])] = value[iy0, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        radial = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)
    return (radial, along) if directional else radial
