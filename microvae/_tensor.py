"""Torch tensors as inputs of the array functions: detection without importing torch, and the
same input checks as :func:`microvae._validate.as_binary_batch`, done on the tensor's device.

A function that accepts tensors keeps NumPy in / NumPy out and torch in / torch out (same
device); torch is imported only when a tensor is passed, so ``import microvae.correlations``
stays light.
"""
import sys

from ._validate import batch_layout

__all__ = ["is_tensor", "as_binary_tensor", "compute_dtype"]


def is_tensor(obj):
    """True for a ``torch.Tensor``. Never imports torch: without it loaded, nothing is a tensor."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def compute_dtype(dtype):
    """Floating dtype the kernels use for a tensor of ``dtype``: float32 stays float32 (and half
    precisions widen to it; cuFFT's half transforms take powers of two only), everything else
    (float64, bool, integers) is computed in float64 like the NumPy path."""
    import torch

    return torch.float32 if dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.float64


def as_binary_tensor(images, ndim=None, name="images"):
    """Validate a binary image tensor and return ``(batch, ndim)``.

    ``batch`` has a batch axis and the floating dtype of :func:`compute_dtype`, on the input's
    device; the shape rules, and the errors for empty, non-finite and non-binary input, are
    those of :func:`~microvae._validate.as_binary_batch`.
    """
    import torch

    if images.is_complex():
        raise TypeError(f"{name} must be a numeric or boolean array, got dtype {images.dtype}")
    add_axis, ndim = batch_layout(images.shape, ndim, name)
    batch = images[None] if add_axis else images
    if batch.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(batch.shape)})")
    batch = batch.to(compute_dtype(images.dtype))
    if not torch.isfinite(batch).all():
        raise ValueError(f"{name} contains NaN or inf values")
    bad = (batch != 0) & (batch != 1)
    if bad.any():
        values = torch.unique(batch[bad])[:5].tolist()
        raise ValueError(
            f"{name} must be binary with 1 = pore and 0 = solid, but holds values such as {values}; "
            "load with microvae.io.load(..., pore_value=...) or threshold grayscale data with "
            "microvae.io.binarize(image, threshold, pore_value)"
        )
    return batch.contiguous(), ndim
