"""Compiled torch operators (``microvae._C``, registered as ``torch.ops.microvae``), their
``torch.library`` registrations and pure-torch references.

Importing this module loads the extension; if that fails it warns once, naming the error, and
every ``backend="auto"`` call uses the references. ``backend="auto"`` uses the compiled op
where it is built for the tensor's device and the reference otherwise; ``"torch"`` forces the
reference, ``"cpp"``/``"cuda"`` demand the compiled CPU/CUDA kernel.

The schemas are defined in C++ (``csrc/microvae.cpp``); this module registers with
``torch.library`` a fake (meta) kernel for each op, so that ``torch.compile`` and
``torch.export`` can trace them, and the autograd formula of each forward op, so that a plain
call of ``torch.ops.microvae.style_layer_forward`` etc. is differentiable (checked by
``torch.library.opcheck`` in tests/test_library_ops.py).
"""
import warnings
from collections.abc import Sequence

import torch

from .choices import BACKENDS, LOSS_MODES

try:
    from . import _C
except ImportError as exc:
    _C = None
    _IMPORT_ERROR = exc
    warnings.warn(f"microvae: the compiled extension microvae._C failed to import ({type(exc).__name__}: {exc}); "
                  "the fused losses fall back to their slower pure-torch references. Rebuild with `make install` "
                  "(or `pip install --no-build-isolation -e .`) against the installed torch.", RuntimeWarning,
                  stacklevel=2)
else:
    _IMPORT_ERROR = None
# A constant, not a call into the extension, so that torch.compile traces resolve_backend.
_HAS_CUDA = _C is not None and _C.has_cuda()

__all__ = ["gram", "gram_reference", "style_layer", "style_layer_reference", "mode_collapse",
           "mode_collapse_reference", "BACKENDS", "LOSS_MODES", "compiled_available", "cuda_kernels_available",
           "resolve_backend"]

def compiled_available() -> bool:
    """True when the compiled extension ``microvae._C`` is importable."""
    return _C is not None


def compiled_import_error() -> ImportError | None:
    """The ``ImportError`` raised by ``import microvae._C``, or None when it imported."""
    return _IMPORT_ERROR


def cuda_kernels_available() -> bool:
    """True when the extension was compiled with CUDA kernels (a GPU may still be absent)."""
    return _HAS_CUDA


def resolve_backend(backend: str, tensor: torch.Tensor) -> str:
    """Pick the implementation for ``tensor``: ``"torch"`` (reference) or ``"compiled"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    on_cuda = tensor.is_cuda
    if backend == "auto":
        if _C is None or (on_cuda and not _HAS_CUDA) or tensor.device.type not in ("cpu", "cuda"):
            return "torch"
        return "compiled"
    if _C is None:
        raise RuntimeError(f"backend={backend!r} needs the compiled extension, which failed to import: {_IMPORT_ERROR}")
    if backend == "cpp" and on_cuda:
        raise ValueError("backend='cpp' runs on CPU tensors; this tensor is on CUDA (use 'cuda' or 'auto')")
    if backend == "cuda":
        if not _HAS_CUDA:
            raise RuntimeError("backend='cuda': microvae was built without CUDA kernels")
        if not on_cuda:
            raise ValueError("backend='cuda' needs CUDA tensors")
    return "compiled"


def gram_reference(features: torch.Tensor) -> torch.Tensor:
    """``G[b] = F[b] F[b]^T`` for features ``(B, C, N)``, in plain torch."""
    return torch.bmm(features, features.transpose(1, 2))


def gram(features: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Batched Gram matrix ``G[b] = F[b] F[b]^T``.

    Parameters
    ----------
    features : Tensor, shape ``(B, C, N)``
        Floating point; ``N`` is the flattened spatial size (no normalization is applied).
    backend : {"auto", "torch", "cpp", "cuda"}

    Returns
    -------
    Tensor, shape ``(B, C, C)``, differentiable. The compiled CUDA forward computes only the
    upper-triangular tiles and mirrors them.
    """
    if features.dim() != 3 or not features.is_floating_point():
        raise ValueError(f"features must be a floating (B, C, N) tensor, got {tuple(features.shape)} "
                         f"of {features.dtype}")
    if resolve_backend(backend, features) == "torch":
        return gram_reference(features)
    return torch.ops.microvae.gram_forward(features)


# The compiled ops' integer code of each of LOSS_MODES (csrc/microvae.cpp).
_MODE_CODES = {"paired": 1, "all_pairs": 2}
# Squared style-vector norms are floored at eps**2 (``torch.nn.functional.normalize``'s eps).
MC_EPS = 1e-12


def _check_style_layer_args(features, ref_gram, mode):
    if mode not in LOSS_MODES:
        raise ValueError(f"mode must be one of {LOSS_MODES}, got {mode!r}")
    if features.dim() != 3 or not features.is_floating_point() or features.shape[0] < 1:
        raise ValueError(f"features must be a floating (B, C, N) tensor with B >= 1, got {tuple(features.shape)} "
                         f"of {features.dtype}")
    c = features.shape[1]
    if ref_gram.dim() != 3 or ref_gram.shape[1:] != (c, c) or ref_gram.shape[0] < 1:
        raise ValueError(f"reference Grams must be (P, {c}, {c}) to match features with C = {c}, "
                         f"got {tuple(ref_gram.shape)}")
    if mode == "paired" and ref_gram.shape[0] != features.shape[0]:
        raise ValueError(f"paired style loss needs one reference per generated image, got {ref_gram.shape[0]} "
                         f"references for {features.shape[0]} images (use mode='all_pairs' to compare every pair)")
    if ref_gram.device != features.device:
        raise ValueError(f"features are on {features.device} but the reference Grams on {ref_gram.device}")


def style_layer_reference(features: torch.Tensor, ref_gram: torch.Tensor, mode: str = "paired",
                          scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-torch ``(loss, gram)`` of :func:`style_layer`: the definition, evaluated directly."""
    _check_style_layer_args(features, ref_gram, mode)
    g = scale * torch.bmm(features, features.transpose(1, 2))
    if mode == "paired":
        return (g - ref_gram).square().sum() / g.shape[0], g
    # O(B + P) form of the mean over all (generated, reference) pairs: the two spreads about
    # the means plus the distance between the means (exact; no large sums cancel).
    gm, rm = g.mean(0), ref_gram.mean(0)
    loss = (g - gm).square().sum() / g.shape[0] + (ref_gram - rm).square().sum() / ref_gram.shape[0] \
        + (gm - rm).square().sum()
    return loss, g


def style_layer(features: torch.Tensor, ref_gram: torch.Tensor, mode: str = "paired", scale: float = 1.0,
                backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Gram matrices of one feature layer and their style loss against reference Grams, fused.

    Parameters
    ----------
    features : Tensor, shape ``(B, C, N)``
        Features of the generated images, float32 or float64 (``N`` = flattened spatial size).
    ref_gram : Tensor, shape ``(P, C, C)``
        Reference (authentic) Gram matrices, same dtype and device.
    mode : {"paired", "all_pairs"}
        ``"paired"`` (``P = B``): ``L = 1/B sum_b ||G_b - R_b||_F^2``. ``"all_pairs"``:
        ``L = 1/(B P) sum_s sum_p ||G_s - R_p||_F^2`` (paper Eq. 8 divided by the number of
        pairs), computed in O(B + P) as the spread of each set about its mean plus the squared
        distance between the means.
    scale : float
        ``G_b = scale * F_b F_b^T``.
    backend : {"auto", "torch", "cpp", "cuda"}

    Returns
    -------
    loss : Tensor, 0-dim
    gram : Tensor, shape ``(B, C, C)``
        Differentiable: a gradient reaching it (e.g. from :func:`mode_collapse`) is added to the
        style gradient before the single backward GEMM of the compiled op.
    """
    _check_style_layer_args(features, ref_gram, mode)
    if resolve_backend(backend, features) == "torch":
        return style_layer_reference(features, ref_gram, mode, scale)
    if features.dtype not in (torch.float32, torch.float64) or ref_gram.dtype != features.dtype:
        raise ValueError(f"compiled style loss takes float32/float64 features and Grams of the same dtype, got "
                         f"{features.dtype} and {ref_gram.dtype}")
    return torch.ops.microvae.style_layer_forward(features, ref_gram, _MODE_CODES[mode], float(scale))


def _check_grams(grams):
    grams = list(grams)
    if not grams:
        raise ValueError("mode-collapse loss needs at least one layer of Gram matrices")
    b = grams[0].shape[0] if grams[0].dim() == 3 else None
    for g in grams:
        if g.dim() != 3 or g.shape[1] != g.shape[2] or not g.is_floating_point():
            raise ValueError(f"Gram matrices must be floating (B, C, C) tensors, got {tuple(g.shape)} of {g.dtype}")
        if g.shape[0] != b:
            raise ValueError(f"every layer must hold the same batch, got batch sizes {[x.shape[0] for x in grams]}")
        if g.dtype != grams[0].dtype or g.device != grams[0].device:
            raise ValueError("all Gram matrices must share dtype and device")
    if b < 2:
        raise ValueError(f"mode-collapse loss compares pairs of images; needs a batch of at least 2, got {b}")
    return grams


def mode_collapse_reference(grams: Sequence[torch.Tensor], eps: float = MC_EPS) -> torch.Tensor:
    """Pure-torch mode-collapse loss: concatenate the style vectors and average their squared cosines."""
    grams = _check_grams(grams)
    s = torch.cat([g.reshape(g.shape[0], -1) for g in grams], dim=1)
    s = torch.nn.functional.normalize(s, dim=1, eps=eps)
    n = s.shape[0]
    cos = s @ s.T
    return cos.triu(1).square().sum() * (2.0 / (n * (n - 1)))


def mode_collapse(grams: Sequence[torch.Tensor], eps: float = MC_EPS, backend: str = "auto") -> torch.Tensor:
    """Mode-collapse loss (paper Eq. 9) of a batch from its per-layer Gram matrices.

    ``L = 2/(B(B-1)) sum_{i<j} cos^2(s_i, s_j)`` where the style vector ``s_i`` concatenates
    the flattened Grams of image ``i`` over all layers (never materialized by the compiled op:
    it sums ``G_l G_l^T`` over layers). Norms below ``eps`` are clamped to ``eps``, as in
    ``torch.nn.functional.normalize``.

    Parameters
    ----------
    grams : sequence of Tensor, each ``(B, C_l, C_l)``, ``B >= 2``
    eps : float
    backend : {"auto", "torch", "cpp", "cuda"}

    Returns
    -------
    Tensor, 0-dim, in [0, 1].
    """
    grams = _check_grams(grams)
    if resolve_backend(backend, grams[0]) == "torch":
        return mode_collapse_reference(grams, eps)
    return torch.ops.microvae.mode_collapse_forward(grams, float(eps))[0]


# --------------------------------------------------------------------------- torch.library
# Fake kernels: output shapes and dtypes only, for tracing with FakeTensors (torch.compile,
# torch.export, meta-device models). They mirror the C++ kernels' outputs exactly.


def _fake_gram_forward(features):
    b, c, _ = features.shape
    return features.new_empty(b, c, c)


def _fake_gram_backward(grad_gram, features):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


def _fake_style_layer_forward(features, ref_gram, mode, scale):
    b, c, _ = features.shape
    return features.new_empty(()), features.new_empty(b, c, c)


def _fake_style_layer_backward(grad_loss, grad_gram, features, gram, ref_gram, mode, scale, ref_grad):
    # The kernel leaves the reference gradient undefined (None in Python) unless asked for it.
    grad_ref = torch.empty_like(ref_gram, memory_format=torch.contiguous_format) if ref_grad else None
    return torch.empty_like(features, memory_format=torch.contiguous_format), grad_ref


# Autograd formulas of the forward ops, in the (setup_context, backward) form of
# torch.library.register_autograd.


def _gram_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _gram_backward(ctx, grad):
    (features,) = ctx.saved_tensors
    return torch.ops.microvae.gram_backward(grad.contiguous(), features)


def _style_layer_setup(ctx, inputs, output):
    features, ref_gram, mode, scale = inputs
    ctx.save_for_backward(features, output[1], ref_gram)
    ctx.mode, ctx.scale = mode, scale
    # An unused output (the Gram when only the style loss is wanted) then arrives as None and
    # costs nothing in the backward.
    ctx.set_materialize_grads(False)


def _style_layer_backward(ctx, grad_loss, grad_gram):
    features, g, ref_gram = ctx.saved_tensors
    if grad_loss is None:
        grad_loss = features.new_zeros(())
    want_ref = ctx.needs_input_grad[1]
    grad_features, grad_ref = torch.ops.microvae.style_layer_backward(
        grad_loss, grad_gram, features, g, ref_gram, ctx.mode, ctx.scale, want_ref)
    return grad_features, (grad_ref if want_ref else None), None, None


def _mode_collapse_setup(ctx, inputs, output):
    grams, eps = inputs
    ctx.save_for_backward(output[1], *grams)
    ctx.eps = eps
    # The second output (the style vectors' dot products) is a by-product for the backward.
    ctx.mark_non_differentiable(output[1])


def _mode_collapse_backward(ctx, grad_loss, grad_inner):
    inner, *grams = ctx.saved_tensors
    return list(torch.ops.microvae.mode_collapse_backward(grad_loss, grams, inner, ctx.eps)), None


def _register():
    lib = "microvae::"
    for name, fake in (("gram_forward", _fake_gram_forward), ("gram_backward", _fake_gram_backward),
                       ("style_layer_forward", _fake_style_layer_forward),
                       ("style_layer_backward", _fake_style_layer_backward)):
        torch.library.register_fake(lib + name, fake)
    # mode_collapse_* need no fake kernel: their C++ kernel is CompositeExplicitAutograd (ATen
    # calls only), which also serves the Meta key and FakeTensors.
    torch.library.register_autograd(lib + "gram_forward", _gram_backward, setup_context=_gram_setup)
    torch.library.register_autograd(lib + "style_layer_forward", _style_layer_backward,
                                    setup_context=_style_layer_setup)
    torch.library.register_autograd(lib + "mode_collapse_forward", _mode_collapse_backward,
                                    setup_context=_mode_collapse_setup)


if _C is not None:
    _register()
