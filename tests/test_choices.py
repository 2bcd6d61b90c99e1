"""The named choices (microvae.choices): defined once, torch-free, and what the CLI and the
library both accept."""
import subprocess
import sys

import pytest

from microvae import choices
from microvae.cli import build_parser


def test_choices_import_without_torch():
    code = "import sys, microvae.choices; assert 'torch' not in sys.modules, 'torch was imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_fused_losses_use_the_shared_modes():
    from microvae import ops
    from microvae.nn import losses

    assert ops.BACKENDS is choices.BACKENDS and ops.LOSS_MODES is losses.LOSS_MODES is choices.LOSS_MODES
    assert set(choices.LOSS_MODES) < set(choices.STYLE_MODES)


@pytest.mark.parametrize("argv,offered", [
    (["train", "x.npy", "-o", "run", "--style-mode"], choices.STYLE_MODES),
    (["train", "x.npy", "-o", "run", "--recon"], choices.RECON_LOSSES),
    (["train", "x.npy", "-o", "run", "--backend"], choices.BACKENDS),
    (["sample", "run", "-n", "2", "-o", "x.npy", "--binarize"], choices.BINARIZE),
    (["sample", "run", "-n", "2", "-o", "x.npy", "--latent"], choices.LATENTS),
])
def test_the_command_line_offers_the_library_choices(capsys, argv, offered):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "bogus"])
    assert f"(choose from {', '.join(map(repr, offered))})" in capsys.readouterr().err
