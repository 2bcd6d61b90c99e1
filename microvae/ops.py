"""Compiled torch operators (``microvae._C``, registered as ``torch.ops.microvae``) with
autograd wrappers and pure-torch references.

Importing this module loads the extension. ``backend="auto"`` uses the compiled op where it
is built for the tensor's device and the reference otherwise; ``"torch"`` forces the
reference, ``"cpp"``/``"cuda"`` demand the compiled CPU/CUDA kernel.
"""
import torch

try:
    from . import _C
except ImportError as exc:  # pragma: no cover - only when the package was not built
    _C = None
    _IMPORT_ERROR = exc

__all__ = ["gram", "gram_reference", "compiled_available", "cuda_kernels_available", "resolve_backend"]

BACKENDS = ("auto", "torch", "cpp", "cuda")


def compiled_available():
    """True when the compiled extension ``microvae._C`` is importable."""
    return _C is not None


def cuda_kernels_available():
    """True when the extension was compiled with CUDA kernels (a GPU may still be absent)."""
    return _C is not None and _C.has_cuda()


def resolve_backend(backend, tensor):
    """Pick the implementation for ``tensor``: ``"torch"`` (reference) or ``"compiled"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    on_cuda = tensor.is_cuda
    if backend == "auto":
        if _C is None or (on_cuda and not _C.has_cuda()) or tensor.device.type not in ("cpu", "cuda"):
            return "torch"
        return "compiled"
    if _C is None:
        raise RuntimeError(f"backend={backend!r} needs the compiled extension, which failed to import: {_IMPORT_ERROR}")
    if backend == "cpp" and on_cuda:
        raise ValueError("backend='cpp' runs on CPU tensors; this tensor is on CUDA (use 'cuda' or 'auto')")
    if backend == "cuda":
        if not _C.has_cuda():
            raise RuntimeError("backend='cuda': microvae was built without CUDA kernels")
        if not on_cuda:
            raise ValueError("backend='cuda' needs CUDA tensors")
    return "compiled"


def gram_reference(features):
    """``G[b] = F[b] F[b]^T`` for features ``(B, C, N)``, in plain torch."""
    return torch.bmm(features, features.transpose(1, 2))


class _Gram(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features):
        ctx.save_for_backward(features)
        return torch.ops.microvae.gram_forward(features)

    @staticmethod
    def backward(ctx, grad):
        (features,) = ctx.saved_tensors
        return torch.ops.microvae.gram_backward(grad.contiguous(), features)


def gram(features, backend="auto"):
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
    return _Gram.apply(features)
