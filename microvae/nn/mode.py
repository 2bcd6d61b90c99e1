"""Switching a torch module between training and evaluation mode for a block of code."""
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in evaluation mode for a ``with`` block, then back in the mode it was in.

    ``module.train(previous)`` restores the flag of the module and all its submodules, also when
    the block raises, so a model caught mid-training (a sample check between steps) keeps
    training afterwards, and an evaluated model stays evaluated.

    Parameters
    ----------
    module : torch.nn.Module

    Yields
    ------
    torch.nn.Module
        ``module`` itself.

    Examples
    --------
    >>> import torch
    >>> from microvae.nn import VAE, eval_mode
    >>> vae = VAE(image_size=16, channels=(4,), hidden=8, latent=2)
    >>> with eval_mode(vae), torch.no_grad():
    ...     p = vae.decode(torch.zeros(1, 2))
    >>> vae.training
    True
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
