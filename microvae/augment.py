"""Data augmentation of the VAE's training images by the symmetries of the square."""
import torch

__all__ = ["dihedral"]


def dihedral(x: torch.Tensor, turns: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Images ``x`` ``(B, C, H, W)`` (square) under the symmetries of the square: image ``i`` is
    rotated by ``turns[i] % 4`` quarter turns, then mirrored left-right when ``turns[i] >= 4``;
    ``inverse`` undoes that transform."""
    out = torch.empty_like(x)
    for t in range(8):
        sel = (turns == t).nonzero().flatten().to(x.device)
        if not len(sel):
            continue
        y = x[sel]
        if inverse:
            y = torch.rot90(y.flip(-1) if t >= 4 else y, -(t % 4), dims=(-2, -1))
        else:
            y = torch.rot90(y, t % 4, dims=(-2, -1))
            y = y.flip(-1) if t >= 4 else y
        out[sel] = y
    return out
