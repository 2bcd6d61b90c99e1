"""Compiled kernels of the MRF: tree walks, raster-scan and Gibbs sampling, porosity matching.

No validation here (the public layers in :mod:`microvae.mrf.model` and :mod:`microvae.mrf.sampling`
check and explain); the kernels assume contiguous ``uint8`` images with 1 = pore and trees exported
by :func:`microvae.mrf.trees.export_tree`: flat arrays indexed by node, ``left``/``right``
children (-1 at leaves), the ``feature`` tested and its ``threshold`` (``x <= threshold`` goes
left, as in scikit-learn), plus ``proba`` = P(pore) at each node. :func:`tree_proba` walks that
form; the samplers walk the compact form of :func:`flatten_tree`.

The per-image kernels release the GIL and :func:`over_images` runs them on chunks of the batch
in threads (``numba.get_num_threads()`` of them). This is the parallel loop over images that a
``prange`` would give, but a plain ``njit`` kernel compiles in about half the time of a parallel
one, which every fresh checkout (and CI) pays once. Random numbers come from one SplitMix64
stream per image, seeded by the caller, so an image depends only on its own seed: results are
identical whatever the number of threads and whichever other images share the batch.
:mod:`microvae.mrf.reference` re-implements the same streams in plain Python to check these
kernels bit for bit.
"""
import numpy as np
from numba import get_num_threads, njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0


@njit
def _next_u64(state):
    """SplitMix64 (Steele, Lea, Flood 2014): advance ``state[0]`` and return 64 random bits."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit
def _uniform(state):
    """Uniform double in [0, 1) from the top 53 bits."""
    return np.float64(_next_u64(state) >> np.uint64(11)) * _INV_2_53


@njit
def _below(state, n):
    """Integer in [0, n) (modulo reduction; the bias, < n / 2**64, is negligible for image sizes)."""
    return np.int64(_next_u64(state) % np.uint64(n))


def over_images(kernel, n, *args):
    """Call ``kernel(lo, hi, *args)`` for contiguous chunks ``[lo, hi)`` of ``n`` images, one
    chunk per thread; returns the list of results in order."""
    from concurrent.futures import ThreadPoolExecutor

    threads = max(1, min(n, get_num_threads()))
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    chunks = list(zip(bounds[:-1], bounds[1:]))
    if threads == 1:
        return [kernel(lo, hi, *args) for lo, hi in chunks]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda c: kernel(c[0], c[1], *args), chunks))


def flatten_tree(tree, offsets, width):
    """Walk-ready form of an exported tree for binary images ``width`` pixels wide.

    Returns ``(root, nodes, proba)``. Row ``nodes[node] = (lin, child0, child1)`` holds the
    flat offset ``di * width + dj`` of the neighbour the node tests and the child taken when
    that pixel is 0 or 1; a child that is a leaf is stored as ``~leaf`` (negative). ``root`` is
    0, or ``~0`` when the whole tree is one leaf. One 12-byte row per level, indexed by the pixel
    value, makes a descent a chain of two loads per level with no data-dependent branch: the
    trees are dozens of levels deep (mean path ~40 on Berea) and the pixel outcomes near random,
    so branches would mispredict at nearly every level.

    The test ``pixel <= threshold`` of scikit-learn becomes an index by the pixel value, which is
    the same decision for every threshold in [0, 1) (trees grown on 0/1 tables split at 0.5).
    """
    left, right = tree["left"], tree["right"]
    leaf = left < 0
    inner = np.flatnonzero(~leaf)
    threshold = tree["threshold"][inner]
    if np.any((threshold < 0) | (threshold >= 1)):
        raise ValueError("tree thresholds must lie in [0, 1) for binary neighbourhoods")
    code = np.where(leaf, ~np.arange(len(left)), np.arange(len(left)))
    nodes = np.zeros((len(left), 3), dtype=np.int32)
    off = np.asarray(offsets, dtype=np.int64)[tree["feature"][inner]]
    nodes[inner, 0] = off[:, 0] * width + off[:, 1]
    nodes[inner, 1] = code[left[inner]]
    nodes[inner, 2] = code[right[inner]]
    root = np.int64(~0 if leaf[0] else 0)
    return root, nodes, np.ascontiguousarray(tree["proba"], dtype=np.float64)


@njit
def _walk(flat, base, root, nodes, proba):
    """P(pore) for the pixel at flat index ``base`` of a binary canvas (see :func:`flatten_tree`)."""
    node = root
    while node >= 0:
        node = np.int64(nodes[node, 1 + flat[base + nodes[node, 0]]])
    return proba[~node]


@njit(cache=True)
def tree_proba(X, left, right, feature, threshold, proba):
    """P(pore) for every row of a predictor table ``X`` (M, K), e.g. to compare with
    scikit-learn's ``predict_proba``."""
    out = np.empty(X.shape[0])
    for m in range(X.shape[0]):
        node = 0
        while left[node] >= 0:
            if X[m, feature[node]] <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        out[m] = proba[node]
    return out


@njit(cache=True)
def _seed_canvas(flat, h, w, state, tiles, noise_porosity):
    """Fill the ``h x w`` canvas with a periodically wrapped training tile at a random offset
    (when ``tiles`` holds any) or with Bernoulli(noise_porosity) noise."""
    if tiles.shape[0] > 0:
        t = _below(state, tiles.shape[0])
        th, tw = tiles.shape[1], tiles.shape[2]
        r0 = _below(state, th)
        c0 = _below(state, tw)
        for r in range(h):
            for c in range(w):
                flat[r * w + c] = tiles[t, (r0 + r) % th, (c0 + c) % tw]
    else:
        for r in range(h * w):
            flat[r] = 1 if _uniform(state) < noise_porosity else 0


@njit(cache=True, nogil=True)
def sample_images(seeds, out_h, out_w, pad, bottom, reach, tiles, noise_porosity,
                  c_root, c_nodes, c_proba, g_root, g_nodes, g_proba, sweeps):
    """Draw ``len(seeds)`` images of ``out_h x out_w`` pixels.

    Per image, on a canvas of ``(pad + out_h + bottom) x (out_w + 2 pad)`` pixels (the trees
    flattened for that width): seed the canvas (:func:`_seed_canvas`); raster-scan rows
    ``reach .. end`` and columns ``reach .. width - reach`` (``reach`` = the causal
    neighbourhood's half-width), drawing each pixel ~ Bernoulli(P(pore | causal neighbourhood));
    then ``sweeps`` Gibbs sweeps in raster order over the output window with the non-causal tree
    (``pad`` and ``bottom`` must cover its reach); return the window
    ``[pad:pad + out_h, pad:pad + out_w]``. The seeded top, left and right strips are read but
    never returned; the ``pad - reach`` sampled pixels next to them are the burn-in.
    """
    n = seeds.shape[0]
    out = np.empty((n, out_h, out_w), dtype=np.uint8)
    h = pad + out_h + bottom
    w = out_w + 2 * pad
    for k in range(n):
        state = np.empty(1, dtype=np.uint64)
        state[0] = seeds[k]
        flat = np.empty(h * w, dtype=np.uint8)
        _seed_canvas(flat, h, w, state, tiles, noise_porosity)
        for i in range(reach, h):
            for j in range(reach, w - reach):
                p = _walk(flat, i * w + j, c_root, c_nodes, c_proba)
                flat[i * w + j] = 1 if _uniform(state) < p else 0
        for _ in range(sweeps):
            for i in range(pad, pad + out_h):
                for j in range(pad, pad + out_w):
                    p = _walk(flat, i * w + j, g_root, g_nodes, g_proba)
                    flat[i * w + j] = 1 if _uniform(state) < p else 0
        canvas = flat.reshape((h, w))
        out[k] = canvas[pad:pad + out_h, pad:pad + out_w]
    return out


@njit(cache=True)
def _match_one(img, target, state):
    """Flip interface pixels of one image until it holds exactly ``target`` pore pixels.

    Each pass collects the pixels of the surplus phase that touch the other phase (4-
    neighbourhood), scores them by how many of their 8 neighbours already hold the other phase
    (plus a uniform draw that breaks ties at random), and flips the best-scoring quarter (at
    least one, at most the remaining deficit). Filling concavities and eroding protrusions
    first changes the porosity while disturbing the morphology least. An image that is entirely
    one phase has no interface; then any pixel may flip.
    """
    h, w = img.shape
    count = 0
    for r in range(h):
        for c in range(w):
            count += img[r, c]
    cand = np.empty(h * w, dtype=np.int64)
    score = np.empty(h * w)
    while count != target:
        grow = count < target
        want = np.uint8(1 if grow else 0)
        m = 0
        for r in range(h):
            for c in range(w):
                if img[r, c] == want:
                    continue
                touching = 0
                for dr in range(-1, 2):
                    for dc in range(-1, 2):
                        rr, cc = r + dr, c + dc
                        if (dr != 0 or dc != 0) and 0 <= rr < h and 0 <= cc < w and img[rr, cc] == want:
                            touching += 1
                edge = ((r > 0 and img[r - 1, c] == want) or (r < h - 1 and img[r + 1, c] == want)
                        or (c > 0 and img[r, c - 1] == want) or (c < w - 1 and img[r, c + 1] == want))
                if edge:
                    cand[m] = r * w + c
                    score[m] = touching + _uniform(state)
                    m += 1
        if m == 0:
            for r in range(h):
                for c in range(w):
                    if img[r, c] != want:
                        cand[m] = r * w + c
                        score[m] = _uniform(state)
                        m += 1
        need = abs(target - count)
        take = min(need, max(1, m // 4))
        order = np.argsort(-score[:m])
        for q in range(take):
            idx = cand[order[q]]
            img[idx // w, idx % w] = want
        count += take if grow else -take


@njit(cache=True, nogil=True)
def match_counts(images, targets, seeds):
    """In place: bring image ``k`` to ``targets[k]`` pore pixels (:func:`_match_one`)."""
    for k in range(images.shape[0]):
        state = np.empty(1, dtype=np.uint64)
        state[0] = seeds[k]
        _match_one(images[k], targets[k], state)
