"""Torch tensors in, torch tensors out: S2, ζ2/η2 and label() computed with torch.fft on the
tensor's device, compared with the NumPy path (itself checked against brute-force references in
test_correlations.py / test_properties.py). CUDA variants skip without a GPU."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from microvae import synthetic
from microvae.correlations import s2, two_point
from microvae.properties import LABEL_KEYS, label, three_point_parameters

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=[CUDA, pytest.mark.cuda])]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    return synthetic.grains((40, 48), 4, 0.3, n=5, seed=1)


@pytest.fixture(scope="module")
def volumes():
    return synthetic.overlapping_spheres((18, 20, 16), 3, 0.3, n=2, seed=2)


def _check(out, ref, device, dtype, atol):
    assert isinstance(out, torch.Tensor) and out.device.type == device and out.dtype == dtype
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.cpu().double().numpy(), ref, rtol=0, atol=atol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("radial", [True, False])
def test_s2_tensor_equals_numpy(images, volumes, device, periodic, radial):
    for data, ndim in ((images, None), (volumes, None), (images[0], None), (volumes[0], 3)):
        ref = s2(data, periodic=periodic, radial=radial, ndim=ndim)
        t = torch.from_numpy(data).to(device)
        _check(s2(t, periodic=periodic, radial=radial, ndim=ndim), ref, device, torch.float64, 1e-12)
        _check(s2(t.float(), periodic=periodic, radial=radial, ndim=ndim), ref, device, torch.float32, 2e-6)
        _check(s2(t.bool(), periodic=periodic, radial=radial, ndim=ndim), ref, device, torch.float64, 1e-12)
    r_max = 30 if not periodic else 20
    _check(s2(torch.from_numpy(images).to(device), periodic=periodic, r_max=r_max),
           s2(images, periodic=periodic, r_max=r_max), device, torch.float64, 1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_s2_tensor_inverse_fft_route(images, volumes, device, monkeypatch):
    """The route large grids take (inverse FFT + index_add instead of the spectral matrix)."""
    monkeypatch.setattr(two_point, "_MAX_BINNING_ENTRIES", 0)
    two_point._device_constant.cache_clear()
    for data in (images, volumes):
        for periodic in (True, False):
            _check(s2(torch.from_numpy(data).to(device), periodic=periodic), s2(data, periodic=periodic),
                   device, torch.float64, 1e-12)


def test_numpy_in_stays_numpy_out(images):
    assert type(s2(images)) is np.ndarray
    assert all(type(v) is np.ndarray for v in three_point_parameters(images[:2], extrapolate=False))
    assert all(type(v) is np.ndarray for v in label(images[:2]).values())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", [dict(d=3), dict(d=2), dict(d=3, periodic=False), dict(d=3, extrapolate=False),
                                     dict(d=3, harmonics=6)])
def test_three_point_parameters_tensor_equals_numpy(images, device, options):
    ref = three_point_parameters(images, **options)
    t = torch.from_numpy(images).to(device)
    for out_t, out_ref in zip(three_point_parameters(t, **options), ref):
        _check(out_t, out_ref, device, torch.float64, 1e-12)
    for out_t, out_ref in zip(three_point_parameters(t.float(), **options), ref):
        _check(out_t, out_ref, device, torch.float32, 1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("periodic", [True, False])
def test_three_point_parameters_tensor_volumes(volumes, device, periodic):
    ref = three_point_parameters(volumes, periodic=periodic)
    for out_t, out_ref in zip(three_point_parameters(torch.from_numpy(volumes).to(device), periodic=periodic), ref):
        _check(out_t, out_ref, device, torch.float64, 1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_label_tensor_equals_numpy(images, device):
    ref = label(images)
    out = label(torch.from_numpy(images).to(device), batch_size=2)
    assert list(out) == list(LABEL_KEYS)
    for key in LABEL_KEYS:
        assert out[key].device.type == device
        if key in ("valid", "invalid"):  # a flag and a bit mask: exact
            assert out[key].dtype == torch.as_tensor(ref[key]).dtype
            assert out[key].cpu().numpy().tolist() == ref[key].tolist()
        else:
            _check(out[key], ref[key], device, torch.float64, 1e-10)


def test_single_phase_tensor_gives_nan():
    zeta, eta = three_point_parameters(torch.ones(2, 16, 16), extrapolate=False)
    assert torch.isnan(zeta).all() and torch.isnan(eta).all()


def test_tensor_input_errors():
    with pytest.raises(ValueError, match="binary"):
        s2(torch.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        s2(torch.full((8, 8), float("nan")))
    with pytest.raises(TypeError, match="numeric"):
        s2(torch.zeros(8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="empty"):
        s2(torch.zeros(0, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        s2(torch.zeros(8))
    with pytest.raises(ValueError, match="binary"):
        label(torch.full((2, 16, 16), 3.0))


def test_correlations_do_not_import_torch():
    code = ("import sys, numpy as np; import microvae.correlations as c; import microvae.compat.porespy; "
            "c.s2(np.zeros((2, 8, 8), np.uint8)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
