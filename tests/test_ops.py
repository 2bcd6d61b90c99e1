"""Compiled operators (torch.ops.microvae) against plain-torch references.

Tolerances: float64 checks use ``gradcheck`` (finite differences) and agreement to ~1e-12 with the
reference, which evaluates the same sums in another order; float32 checks allow ~1e-5 relative
error, the rounding of sums over a few thousand products.
"""
import itertools

import pytest
import torch

from microvae import ops

pytestmark = pytest.mark.skipif(not ops.compiled_available(), reason="microvae._C is not built")

CUDA = pytest.mark.skipif(not (torch.cuda.is_available() and ops.cuda_kernels_available()),
                          reason="needs a CUDA GPU and microvae built with CUDA kernels")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=[CUDA, pytest.mark.cuda])]
BACKEND = {"cpu": "cpp", "cuda": "cuda"}
# (B, C, N): single image / channel / pixel, odd sizes, and one larger than a CUDA tile (32).
SHAPES = [(1, 1, 1), (1, 3, 5), (3, 7, 13), (2, 33, 9), (5, 4, 64)]


def _rand(*shape, dtype=torch.float64, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype).to(device)


def _gram_of(b, c, n, device, dtype=torch.float64, seed=1):
    f = _rand(b, c, n, dtype=dtype, device=device, seed=seed)
    return torch.bmm(f, f.transpose(1, 2)) / n


# --------------------------------------------------------------------------- Gram op


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gram_forward_backward_match_bmm(device, shape):
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        f = _rand(*shape, dtype=dtype, device=device).requires_grad_()
        g = ops.gram(f, backend=BACKEND[device])
        f_ref = f.detach().clone().requires_grad_()
        g_ref = torch.bmm(f_ref, f_ref.transpose(1, 2))
        torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol)
        upstream = _rand(*g.shape, dtype=dtype, device=device, seed=3)  # not symmetric on purpose
        (g * upstream).sum().backward()
        (g_ref * upstream).sum().backward()
        torch.testing.assert_close(f.grad, f_ref.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_gram_gradcheck(device):
    f = _rand(2, 5, 7, device=device).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: ops.gram(x, backend=BACKEND[device]), (f,))


def test_gram_non_contiguous_input():
    f = _rand(3, 9, 4).transpose(1, 2)  # (3, 4, 9), not contiguous
    torch.testing.assert_close(ops.gram(f, backend="cpp"), torch.bmm(f, f.transpose(1, 2)))


@pytest.mark.parametrize("bad", [torch.zeros(3, 4), torch.zeros(2, 3, 4, dtype=torch.int64), torch.zeros(1, 2, 3, 4)])
def test_gram_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="features must be a floating"):
        ops.gram(bad)


def test_backend_resolution():
    f = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.gram(f, backend="gpu")
    assert ops.resolve_backend("torch", f) == "torch"
    assert ops.resolve_backend("auto", f) == "compiled"
    if ops.cuda_kernels_available():
        with pytest.raises(ValueError, match="needs CUDA tensors"):
            ops.gram(f, backend="cuda")
    else:
        with pytest.raises(RuntimeError, match="without CUDA kernels"):
            ops.gram(f, backend="cuda")


# --------------------------------------------------------------------------- fused style layer


def _brute_force_all_pairs(f, ref, scale):
    """Eq. 8 literally: mean over every (generated, reference) pair of the squared distance."""
    g = scale * torch.bmm(f, f.transpose(1, 2))
    total = sum((g[s] - ref[p]).square().sum() for s, p in itertools.product(range(len(g)), range(len(ref))))
    return total / (len(g) * len(ref))


@pytest.mark.parametrize("shape", SHAPES)
def test_all_pairs_reference_equals_brute_force(shape):
    b, c, n = shape
    f, ref = _rand(b, c, n), _gram_of(b + 2, c, n, "cpu")
    loss, _ = ops.style_layer_reference(f, ref, "all_pairs", 0.5)
    torch.testing.assert_close(loss, _brute_force_all_pairs(f, ref, 0.5), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["paired", "all_pairs"])
@pytest.mark.parametrize("shape", SHAPES)
def test_style_layer_matches_reference(device, mode, shape):
    b, c, n = shape
    p = b if mode == "paired" else b + 3
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        f = _rand(b, c, n, dtype=dtype, device=device).requires_grad_()
        ref = _gram_of(p, c, n, device, dtype=dtype).requires_grad_()
        f2, ref2 = f.detach().clone().requires_grad_(), ref.detach().clone().requires_grad_()
        loss, g = ops.style_layer(f, ref, mode, 1.0 / (c * n), backend=BACKEND[device])
        loss_r, g_r = ops.style_layer_reference(f2, ref2, mode, 1.0 / (c * n))
        torch.testing.assert_close(loss, loss_r, rtol=tol, atol=tol * 1e-3)
        torch.testing.assert_close(g, g_r, rtol=tol, atol=tol * 1e-3)
        # Gradient through both outputs, as when the Gram also feeds the mode-collapse loss.
        w = _rand(*g.shape, dtype=dtype, device=device, seed=7)
        (3.0 * loss + (g * w).sum()).backward()
        (3.0 * loss_r + (g_r * w).sum()).backward()
        torch.testing.assert_close(f.grad, f2.grad, rtol=tol, atol=tol * 1e-2)
        torch.testing.assert_close(ref.grad, ref2.grad, rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["paired", "all_pairs"])
def test_style_layer_gradcheck(device, mode):
    f = _rand(3, 4, 6, device=device).requires_grad_()
    # A non-symmetric reference: the backward must not rely on references being exact Grams.
    ref = _rand(3 if mode == "paired" else 2, 4, 4, device=device, seed=5).requires_grad_()
    fn = lambda x, r: ops.style_layer(x, r, mode, 0.25, backend=BACKEND[device])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (f, ref))
    assert torch.autograd.gradcheck(lambda x, r: fn(x, r)[0], (f, ref))  # loss only: Gram grad is None


def test_style_layer_without_reference_gradient():
    f = _rand(2, 3, 5).requires_grad_()
    ref = _gram_of(2, 3, 5, "cpu")
    loss, _ = ops.style_layer(f, ref, "paired", 1.0, backend="cpp")
    loss.backward()
    assert ref.grad is None and f.grad is not None and torch.isfinite(f.grad).all()


def test_style_layer_rejects_bad_input():
    f = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError, match="mode must be one of"):
        ops.style_layer(f, torch.zeros(2, 3, 3), "mean")
    with pytest.raises(ValueError, match=r"reference Grams must be \(P, 3, 3\)"):
        ops.style_layer(f, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="one reference per generated image"):
        ops.style_layer(f, torch.zeros(3, 3, 3), "paired")
    with pytest.raises(ValueError, match=r"floating \(B, C, N\)"):
        ops.style_layer(torch.zeros(2, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="same dtype"):
        ops.style_layer(f, torch.zeros(2, 3, 3, dtype=torch.float64), backend="cpp")
    with pytest.raises(ValueError, match="float32/float64"):
        ops.style_layer(f.half(), torch.zeros(2, 3, 3).half(), backend="cpp")
    # The compiled op checks on its own too (it is callable directly through torch.ops).
    with pytest.raises(RuntimeError, match="paired mode needs as many references"):
        torch.ops.microvae.style_layer_forward(f, torch.zeros(3, 3, 3), 1, 1.0)


# --------------------------------------------------------------------------- mode collapse


def _brute_force_mode_collapse(grams):
    s = [torch.cat([g[i].reshape(-1) for g in grams]) for i in range(len(grams[0]))]
    n = len(s)
    pairs = [(s[i] @ s[j] / (s[i].norm() * s[j].norm())) ** 2 for i in range(n) for j in range(i + 1, n)]
    return 2.0 / (n * (n - 1)) * sum(pairs)


def _grams(b, sizes, device, dtype=torch.float64, seed=0):
    return [_gram_of(b, c, 2 * c + 1, device, dtype=dtype, seed=seed + i) for i, c in enumerate(sizes)]


def test_mode_collapse_reference_equals_brute_force():
    grams = [_rand(5, c, c, seed=c) for c in (1, 3, 4)]
    torch.testing.assert_close(ops.mode_collapse_reference(grams), _brute_force_mode_collapse(grams))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("b,sizes", [(2, (1,)), (3, (2, 5)), (6, (3, 7, 33))])
def test_mode_collapse_matches_reference(device, b, sizes):
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        grams = [g.requires_grad_() for g in _grams(b, sizes, device, dtype)]
        grams2 = [g.detach().clone().requires_grad_() for g in grams]
        loss = ops.mode_collapse(grams, backend=BACKEND[device])
        loss_r = ops.mode_collapse_reference(grams2)
        torch.testing.assert_close(loss, loss_r, rtol=tol, atol=tol * 1e-3)
        loss.backward()
        loss_r.backward()
        for g, g2 in zip(grams, grams2):
            torch.testing.assert_close(g.grad, g2.grad, rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_mode_collapse_gradcheck(device):
    grams = [_rand(4, c, c, device=device, seed=c).requires_grad_() for c in (2, 3)]
    assert torch.autograd.gradcheck(lambda *g: ops.mode_collapse(g, backend=BACKEND[device]), grams)


def test_mode_collapse_zero_style_vector_is_finite():
    grams = _grams(4, (3, 5), "cpu")
    for g in grams:
        g[1] = 0.0  # an image with no activation at all
    grams = [g.requires_grad_() for g in grams]
    loss = ops.mode_collapse(grams, backend="cpp")
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(g.grad).all() for g in grams)
    torch.testing.assert_close(loss, ops.mode_collapse_reference([g.detach() for g in grams]))


def test_mode_collapse_identical_and_orthogonal_extremes():
    same = [torch.ones(4, 2, 2, dtype=torch.float64)]
    torch.testing.assert_close(ops.mode_collapse(same, backend="cpp"), torch.tensor(1.0, dtype=torch.float64))
    ortho = [torch.diag_embed(torch.eye(3, dtype=torch.float64))]  # image i: Gram with one entry on (i, i)
    torch.testing.assert_close(ops.mode_collapse(ortho, backend="cpp"), torch.tensor(0.0, dtype=torch.float64))


def test_mode_collapse_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        ops.mode_collapse([torch.zeros(1, 3, 3)])
    with pytest.raises(ValueError, match="same batch"):
        ops.mode_collapse([torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)])
    with pytest.raises(ValueError, match=r"\(B, C, C\)"):
        ops.mode_collapse([torch.zeros(2, 3, 4)])
    with pytest.raises(ValueError, match="at least one layer"):
        ops.mode_collapse([])
