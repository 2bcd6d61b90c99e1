"""Slow, plain-Python reference of the MRF sampler, for tests and the benchmark baseline.

One pixel at a time: gather the neighbourhood into a feature vector, ask scikit-learn's
``predict_proba`` for P(pore), draw the pixel. The random streams are the compiled kernels'
SplitMix64 streams re-implemented with Python integers, so for the same seed this produces the
same images as :meth:`microvae.mrf.MRF.sample` bit for bit (porosity matching excluded), and a
test can hold the compiled sampler to it. 1 = pore.
"""
import numpy as np

from .._validate import Seed
from .features import causal_offsets, noncausal_offsets
from .model import MRF
from .sampling import canvas_pad, default_burn_in, image_seeds

__all__ = ["SplitMix64", "sample_reference"]

_MASK = (1 << 64) - 1


class SplitMix64:
    """The SplitMix64 generator (Steele, Lea, Flood 2014) as the kernels use it."""

    def __init__(self, seed: int):
        self.state = int(seed) & _MASK

    def next_u64(self) -> int:
        """The next 64-bit output; advances the state by one step."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """A double in [0, 1) from the top 53 bits of the next output."""
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)

    def below(self, n: int) -> int:
        """An integer in [0, n), the next output modulo ``n`` (as the kernels draw it)."""
        return self.next_u64() % n


def sample_reference(model: MRF, n: int, size: int = 128, seed: Seed = None, *,
                     margin: str = "real", burn_in: int | None = None, gibbs_sweeps: int = 0) -> np.ndarray:
    """Draw images like ``model.sample`` does, with a Python loop over pixels.

    ``model`` must come from :meth:`~microvae.mrf.MRF.fit` in this session (it needs the
    scikit-learn trees, which are not saved). Arguments as in :meth:`~microvae.mrf.MRF.sample`
    (a square ``size``; no porosity matching). Thousands of times slower than the compiled
    sampler: use small sizes.
    """
    if model.estimator_ is None:
        raise ValueError("the reference sampler needs a model fitted in this session (scikit-learn trees)")
    if gibbs_sweeps and model.gibbs_S is None:
        raise ValueError("this model has no Gibbs tree (fitted with gibbs_S=None); use gibbs_sweeps=0")
    S = model.S_
    burn_in = default_burn_in(S) if burn_in is None else burn_in
    pad, bottom = canvas_pad(S, burn_in, model.gibbs_S, gibbs_sweeps)
    h, w = pad + size + bottom, size + 2 * pad
    causal = causal_offsets(S)
    noncausal = noncausal_offsets(model.gibbs_S) if gibbs_sweeps and model.gibbs_S is not None else None

    def proba(estimator, canvas, i, j, offsets):
        x = canvas[i + offsets[:, 0], j + offsets[:, 1]].astype(np.float32)[None]
        return estimator.predict_proba(x)[0, 1]

    out = np.empty((n, size, size), dtype=np.uint8)
    for k, seed_k in enumerate(image_seeds(n, seed)[:, 0]):
        rng = SplitMix64(seed_k)
        canvas = np.empty((h, w), dtype=np.uint8)
        if margin == "real":
            tiles = model.tiles_
            t = rng.below(len(tiles))
            r0, c0 = rng.below(tiles.shape[1]), rng.below(tiles.shape[2])
            rows = (r0 + np.arange(h)) % tiles.shape[1]
            cols = (c0 + np.arange(w)) % tiles.shape[2]
            canvas[:] = tiles[t][np.ix_(rows, cols)]
        else:
            for r in range(h):
                for c in range(w):
                    canvas[r, c] = rng.uniform() < model.porosity_
        for i in range(S, h):
            for j in range(S, w - S):
                canvas[i, j] = rng.uniform() < proba(model.estimator_, canvas, i, j, causal)
        for _ in range(gibbs_sweeps):
            for i in range(pad, pad + size):
                for j in range(pad, pad + size):
                    canvas[i, j] = rng.uniform() < proba(model.gibbs_estimator_, canvas, i, j, noncausal)
        out[k] = canvas[pad:pad + size, pad:pad + size]
    return out
