"""S2 of one volume in slabs, with memory bounded by the half spectrum of the volume's planes.

A volume's power spectrum needs every plane before the transform along z, but the radial and
directional averages need the correlation only for ``|r_z| <= r_max``, and by ``C(-r) = C(r)``
only for ``r_z >= 0``. So: (1) the 2D real transform of each plane, padded to the grid, is kept
(``A``, ``n_z`` planes); (2) column block by column block, the transform along z, the power,
and the inverse along z, keeping only the planes ``r_z = 0..r_max`` (``B``); (3) each kept
plane is inverted in 2D and binned at once. Peak memory (float64) is about
``16 * (n_z + r_max + 1) * L_y * (L_x // 2 + 1)`` bytes for ``A`` and ``B`` plus blocks of
``_BLOCK_BYTES`` (complex64 storage halves it for ``float32``); the full padded grid is never
held. Memory model and measurements: docs/properties.md, section 7.
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
        planes[z:z + step] = scipy.fft.rfft2(volume[z:z + step].astype(dtype), s=(ly, lx), workers=workers)
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
    # (3) the kept planes in 2D, a block at a time, binned at once. Squared radii are integers:
    # a table maps them to bins (n_bins: outside every bin).
    oy, ox = (np.fft.fftfreq(g, 1.0 / g).astype(np.int64) for g in (ly, lx))
    rows = np.flatnonzero((np.abs(oy) <= r_needed[1]) & (overlap_axes[1] > 0))
    cols = np.flatnonzero((np.abs(ox) <= r_needed[2]) & (overlap_axes[2] > 0))
    sq = oy[rows, None] ** 2 + ox[None, cols] ** 2
    inv_yx = 1.0 / np.multiply.outer(overlap_axes[1][rows], overlap_axes[2][cols])
    n_bins = len(edges) - 1
    largest = int(np.max(z_offset ** 2)) + int(sq.max())
    table = np.searchsorted(edges, np.sqrt(np.arange(largest + 1)), side="right") - 1
    table[(table < 0) | (table >= n_bins)] = n_bins
    sums = np.zeros(n_bins + 1)
    counts = np.zeros(n_bins + 1)
    along = [np.zeros(r + 1) for r in r_needed]
    iy0, ix0 = np.flatnonzero(oy[rows] == 0)[0], np.flatnonzero(ox[cols] == 0)[0]
    step = max(1, _BLOCK_BYTES // (8 * ly * lx))
    for k in range(0, len(z_index), step):
        zi, oz, m = z_index[k:k + step], z_offset[k:k + step], z_mult[k:k + step]
        corr = scipy.fft.irfft2(kept[k:k + step], s=(ly, lx), workers=workers)
        if len(rows) < ly or len(cols) < lx:
            corr = corr[:, rows][:, :, cols]
        value = corr * (m / overlap_axes[0][zi])[:, None, None] * inv_yx
        b = table[oz[:, None, None] ** 2 + sq].ravel()
        sums += np.bincount(b, weights=value.ravel(), minlength=n_bins + 1)
        counts += np.bincount(b, weights=np.repeat(m, sq.size), minlength=n_bins + 1)
        if directional:
            # C(r) = C(-r): the periodic Nyquist offset -n/2 gives S2 at n/2.
            along[0][np.abs(oz)] = value[:, iy0, ix0] / m
            if oz[0] == 0:
                along[1][np.abs(oy[rows])] = value[0, :, ix0]
                along[2][np.abs(ox[cols])] = value[0, iy0, :]
    sums, counts = sums[:n_bins], counts[:n_bins]
    with np.errstate(invalid="ignore", divide="ignore"):
        radial = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)
    return (radial, along) if directional else radial
