"""Training loop, checkpoints, resume, sampling and the train/sample CLI."""
import json

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from microvae import vae as T
from microvae.cli import main
from microvae.nn import VAE
from microvae.vae import sampling, trainer

# Models trained for a few steps are collapsed by design; test_collapse_warning checks the warning.
pytestmark = pytest.mark.filterwarnings("ignore::microvae.vae.CollapseWarning")

# A tiny model and quarter-scale style net: seconds per test on a CPU.
TINY = dict(image_size=16, channels=(4, 8), hidden=16, latent=4, style_width=0.0625, batch_size=4, steps=6,
            log_every=2, checkpoint_every=3, sample_every=0, kl_warmup=0, style_start=0, style_warmup=0)


def blobs(n, size=16, porosity=0.3, sigma=1.5, seed=0):
    """Binary images of thresholded smoothed noise (1 = pore)."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, sigma, sigma), mode="wrap")
    thresholds = np.quantile(field.reshape(n, -1), 1 - porosity, axis=1)[:, None, None]
    return (field > thresholds).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    return blobs(12)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_presets_and_overrides():
    quick = T.load_config("quick")
    assert quick.image_size == 64 and T.load_config("quick", image_size=128).image_size == 128
    # The measured defaults (docs/vae.md): strided layout, BCE, fitted latent, matched smoothing.
    assert (quick.downsample, quick.channels, quick.recon, quick.sample_latent, quick.sample_smooth) == \
        ("stride", (32, 32, 64, 64, 96, 96), "bce", "fitted", "matched")
    paper = T.load_config("paper")
    assert (paper.image_size, paper.batch_size, paper.lr, paper.steps, paper.latent, paper.hidden) == \
        (128, 20, 1e-3, 200_000, 16, 256)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        T.load_config("fast")
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['learning_rate'\]"):
        T.load_config("quick", learning_rate=0.1)
    with pytest.raises(ValueError, match="style_mode must be one of"):
        T.load_config("quick", style_mode="sometimes")
    with pytest.raises(ValueError, match="w_st must be a finite number"):
        T.load_config("quick", w_st=float("nan"))


def test_train_writes_run_folder(tmp_path, images):
    result = T.train_vae(images, preset="quick", out_dir=tmp_path / "run", seed=1, progress=False,
                         **{**TINY, "sample_every": 3})
    run = tmp_path / "run"
    assert result.run_dir == run and result.step == 6 and not result.model.training
    assert {p.name for p in run.iterdir()} == {"config.json", "checkpoint.pt", "metrics.jsonl", "samples"}
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    c = result.config
    for r in rows:
        assert {"loss", "recon", "kl", "style", "mc", "seconds_per_step"} <= set(r)
        # style_normalize: the style terms are weighted by the number of pixels.
        expected = r["recon"] + c.w_kl * r["kl"] + 16 * 16 * (c.w_st * r["style"] + c.w_mc * r["mc"])
        assert r["loss"] == pytest.approx(expected, rel=1e-5)
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["image_size"] == 16 and config["data"]["n"] == len(images)
    ckpt = T.load_checkpoint(run)
    assert ckpt["step"] == 6 and len(ckpt["rng"]) == 1


@pytest.mark.parametrize("augment", [False, True])
def test_resume_continues_exactly(tmp_path, images, augment):
    tiny = {**TINY, "augment": augment}
    straight = T.train_vae(images, out_dir=tmp_path / "a", seed=2, progress=False, **tiny)
    T.train_vae(images, out_dir=tmp_path / "b", seed=2, progress=False, **{**tiny, "steps": 3})
    resumed = T.train_vae(images, out_dir=tmp_path / "b", seed=2, progress=False, resume=True, **tiny)
    torch.testing.assert_close(_params(resumed.model), _params(straight.model), rtol=0, atol=0)
    if augment:
        plain = T.train_vae(images, out_dir=tmp_path / "c", seed=2, progress=False, **TINY)
        assert not torch.equal(_params(plain.model), _params(straight.model))
    rows = {}
    for name in "ab":
        for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines():
            r = json.loads(line)
            del r["seconds_per_step"]
            rows.setdefault(name, {})[r["step"]] = r
    # b also logged the end of its first leg (step 3), so its step-4 row averages one step only.
    assert sorted(rows["a"]) == [2, 4, 6] and sorted(rows["b"]) == [2, 3, 4, 6]
    assert rows["a"][2] == rows["b"][2] and rows["a"][6] == rows["b"][6]


def test_resume_drops_metrics_after_the_checkpoint(tmp_path, images):
    T.train_vae(images, out_dir=tmp_path / "r", seed=3, progress=False, **{**TINY, "steps": 4})
    ckpt_step = T.load_checkpoint(tmp_path / "r")["step"]
    assert ckpt_step == 4
    with open(tmp_path / "r" / "metrics.jsonl", "a") as fh:  # as if it crashed after logging step 8
        fh.write(json.dumps({"step": 8, "loss": 1.0}) + "\n")
    T.train_vae(images, out_dir=tmp_path / "r", seed=3, progress=False, resume=True, **TINY)
    steps = [json.loads(r)["step"] for r in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_run_folder_is_never_overwritten_and_resume_is_checked(tmp_path, images):
    run = tmp_path / "run"
    run.mkdir()
    (run / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        T.train_vae(images, out_dir=run, progress=False, **TINY)
    assert (run / "mine.txt").read_text() == "keep"
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        T.train_vae(images, out_dir=run, progress=False, resume=True, **TINY)
    T.train_vae(images, out_dir=tmp_path / "ok", seed=0, progress=False, **{**TINY, "steps": 2})
    with pytest.raises(ValueError, match="w_st=0.05 vs 5.0"):
        T.train_vae(images, out_dir=tmp_path / "ok", seed=0, progress=False, resume=True, **{**TINY, "w_st": 5.0})
    with pytest.raises(ValueError, match="training images differ"):
        T.train_vae(blobs(12, seed=9), out_dir=tmp_path / "ok", seed=0, progress=False, resume=True, **TINY)
    with pytest.raises(ValueError, match="seed=0, got seed=1"):
        T.train_vae(images, out_dir=tmp_path / "ok", seed=1, progress=False, resume=True, **TINY)


def test_bad_training_input(tmp_path, images):
    with pytest.raises(ValueError, match="must be binary"):
        T.train_vae(images * 3, out_dir=tmp_path / "x", progress=False, **TINY)
    with pytest.raises(ValueError, match="image_size=32"):
        T.train_vae(images, out_dir=tmp_path / "x", progress=False, **{**TINY, "image_size": 32})
    with pytest.raises(ValueError, match="at least batch_size=20"):
        T.train_vae(images, out_dir=tmp_path / "x", progress=False, **{**TINY, "batch_size": 20})
    with pytest.raises(TypeError, match="required keyword-only argument: 'out_dir'"):
        T.train_vae(images, **TINY)
    with pytest.raises(ValueError, match="out_dir is required"):
        T.train_vae(images, out_dir=None, **TINY)
    with pytest.raises(ValueError, match="NaN"):
        T.train_vae(np.where(images > 0, np.nan, 0.0), out_dir=tmp_path / "x", progress=False, **TINY)
    assert not (tmp_path / "x").exists()


def test_corrupt_checkpoint(tmp_path, images):
    T.train_vae(images, out_dir=tmp_path / "run", progress=False, **{**TINY, "steps": 2})
    path = tmp_path / "run" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        T.sample(tmp_path / "run", 2)
    torch.save({"something": 1}, path)
    with pytest.raises(ValueError, match="not a microvae VAE checkpoint"):
        T.load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        T.sample(tmp_path / "nothing", 2)


@pytest.mark.parametrize("mode", ["paired", "all_pairs", "prior", "none"])
def test_style_modes_train(tmp_path, images, mode):
    result = T.train_vae(images, out_dir=tmp_path / mode, progress=False, **{**TINY, "style_mode": mode, "steps": 2})
    row = result.history[-1]
    assert np.isfinite(row["loss"])
    assert ("style" in row) == (mode != "none")
    if mode != "none":
        assert row["style"] > 0 and 0 < row["mc"] <= 1


def test_style_normalization(images):
    """Normalized Grams: every layer of the cached authentic Grams has RMS Frobenius norm 1, and
    the unnormalized run keeps the plain F F^T / (C H W) Grams."""
    from microvae.nn.losses import gram_matrices

    s = T.Trainer(images, T.load_config("quick", **TINY), seed=0, device=torch.device("cpu"))
    for g in s.ref_grams:
        assert g.square().sum(dim=(1, 2)).mean().sqrt().item() == pytest.approx(1.0, rel=1e-5)
    raw = T.Trainer(images, T.load_config("quick", **TINY, style_normalize=False), seed=0, device=torch.device("cpu"))
    x = torch.from_numpy(images).float().unsqueeze(1)
    with torch.no_grad():
        expected = gram_matrices(raw.style_net(x))
    for g, e in zip(raw.ref_grams, expected):
        torch.testing.assert_close(g, e)
    assert raw.style_factor == 1.0 and s.style_factor == 16 * 16


def test_kl_warmup_ramps_the_kl_weight(images):
    config = T.load_config("quick", **{**TINY, "style_mode": "none", "kl_warmup": 4, "w_kl": 2.0})
    s = T.Trainer(images, config, seed=0, device=torch.device("cpu"))
    for step, weight in ((1, 0.5), (2, 1.0), (8, 2.0)):
        t = s.step(step)
        assert t["loss"].item() == pytest.approx(t["recon"].item() + weight * t["kl"].item(), rel=1e-6)


def test_style_terms_start_late_and_ramp_up(images):
    config = T.load_config("quick", **{**TINY, "style_start": 2, "style_warmup": 4, "w_st": 0.5, "w_mc": 0.1})
    s = T.Trainer(images, config, seed=0, device=torch.device("cpu"))
    for step in (1, 2):  # off: the style network is not even run
        t = s.step(step)
        assert "style" not in t and "mc" not in t
        assert t["loss"].item() == pytest.approx(t["recon"].item() + t["kl"].item(), rel=1e-6)
    for step, weight in ((4, 0.5), (6, 1.0), (9, 1.0), (None, 1.0)):
        t = s.step(step)
        style = s.style_factor * (0.5 * t["style"].item() + 0.1 * t["mc"].item())
        assert t["loss"].item() == pytest.approx(t["recon"].item() + t["kl"].item() + weight * style, rel=1e-6)


def test_metrics_average_the_style_terms_over_the_steps_that_had_them(tmp_path, images):
    result = T.train_vae(images, out_dir=tmp_path / "run", progress=False,
                         **{**TINY, "style_start": 3, "log_every": 2, "steps": 6})
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and rows == result.history
    assert "style" not in rows[0] and 0 < rows[1]["style"] and 0 < rows[2]["mc"] <= 1


def test_bf16_autocast_changes_the_style_terms_little(images):
    """bfloat16 autocast of the style network: the style terms of one batch agree with float32 to
    2 % (bfloat16 keeps 8 significant bits; the Grams are accumulated in float32)."""
    terms = [T.Trainer(images, T.load_config("quick", **{**TINY, "bf16": bf16}), seed=0,
                       device=torch.device("cpu")).step() for bf16 in (False, True)]
    for k in ("style", "mc"):
        assert terms[1][k].item() == pytest.approx(terms[0][k].item(), rel=0.02)


@pytest.mark.parametrize("encoder_grad", [False, True])
def test_style_encoder_grad(images, encoder_grad):
    """style_encoder_grad=False: the encoder's gradient is that of the plain VAE (recon + KL)."""
    def encoder_grads(**kw):
        config = T.load_config("quick", **{**TINY, "lr": 0.0, **kw})
        s = T.Trainer(images, config, seed=0, device=torch.device("cpu"))
        s.step(1)
        return torch.cat([p.grad.flatten() for p in s.vae.encoder.parameters()])

    plain = encoder_grads(style_mode="none")
    styled = encoder_grads(style_mode="paired", w_st=100.0, style_encoder_grad=encoder_grad)
    assert torch.allclose(plain, styled, rtol=1e-5, atol=1e-7) != encoder_grad


def test_sample(tmp_path, images):
    result = T.train_vae(images, out_dir=tmp_path / "run", progress=False, **{**TINY, "steps": 2})
    a = T.sample(tmp_path / "run", 5, seed=4)
    assert a.shape == (5, 16, 16) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    np.testing.assert_array_equal(a, T.sample(tmp_path / "run" / "checkpoint.pt", 5, seed=4))
    np.testing.assert_array_equal(a, T.sample(result, 5, seed=4))
    # Decoding in other batch sizes changes nothing.
    np.testing.assert_array_equal(a, T.sample(result, 5, seed=4, batch_size=2))
    b = T.sample(result.model, 5, seed=4, binarize="bernoulli")
    assert b.shape == a.shape and not np.array_equal(a, b)
    # The default threshold is the run's porosity-matching one; a bare model has none.
    np.testing.assert_array_equal(a, T.sample(result, 5, seed=4, binarize="threshold", threshold=result.threshold))
    with pytest.raises(ValueError, match="porosity-matching threshold"):
        T.sample(result.model, 2)
    with pytest.raises(ValueError, match="threshold must be in"):
        T.sample(result, 2, binarize="threshold", threshold=1.0)
    with pytest.raises(ValueError, match="binarize must be"):
        T.sample(result, 2, binarize="round")
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        T.sample(result, 0)
    with pytest.raises(TypeError, match="takes a run folder"):
        T.sample(42, 2)


def test_dihedral_transforms_are_the_eight_symmetries_of_the_square():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    turns = torch.arange(8)
    y = T.dihedral(x.expand(8, -1, -1, -1), turns)
    expected = [np.rot90(x[0, 0].numpy(), k) for k in range(4)]
    expected += [np.fliplr(e) for e in expected]
    for got, want in zip(y[:, 0].numpy(), expected):
        np.testing.assert_array_equal(got, want)
    assert len({tuple(v.flatten().tolist()) for v in y}) == 8
    torch.testing.assert_close(T.dihedral(y, turns, inverse=True), x.expand(8, -1, -1, -1))


def test_augmented_style_terms_score_the_output_turned_back(images, monkeypatch):
    """With augment, the paired style term compares the generated image, turned back by the
    inverse transform, with the cached Grams of the untransformed authentic image: a model that
    reproduces its input exactly then has zero style loss whatever the transform."""
    config = T.load_config("quick", **{**TINY, "augment": True, "w_mc": 0.0})
    session = T.Trainer(images, config, seed=0, device=torch.device("cpu"))

    def identity(x, eps, z_prior=None, detach_style=False):
        logits = torch.logit(x.clamp(1e-4, 1 - 1e-4)).requires_grad_(True)
        mu = torch.zeros(len(x), config.latent, requires_grad=True)
        return logits, mu, mu, logits

    monkeypatch.setattr(session, "module", identity)
    monkeypatch.setattr(session, "optimizer", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0))
    assert float(session.step()["style"]) < 1e-6
    # Without turning the output back, the same exact copies would be scored as different.
    forward = T.dihedral
    monkeypatch.setattr(trainer, "dihedral", lambda x, turns, inverse=False: x if inverse else forward(x, turns))
    assert float(session.step()["style"]) > 1e-3


def test_matched_threshold_restores_the_training_porosity():
    """check_samples picks the threshold at which decoded prior draws have the training porosity,
    and flags a decoder whose output does not depend on z as collapsed."""
    torch.manual_seed(0)
    vae = VAE(image_size=16, channels=(4, 8), hidden=16, latent=4)
    z = torch.randn(200, 4, generator=torch.Generator().manual_seed(1 + 7919))
    with torch.no_grad():  # varied but pore-poor probabilities: 3 % of the pixels exceed 0.5
        vae.decoder[-1].bias.sub_(torch.quantile(vae.decode_logits(z).flatten(), 0.97))
    porosity = np.full(10, 0.3)
    porosity[:5] = 0.2
    check = T.check_samples(vae, porosity, n=200, seed=1)
    p = vae.decode(z).detach().numpy()
    assert (p > 0.5).mean() < 0.1 and len(np.unique(p)) > 10_000
    assert abs((p > check.threshold).mean() - 0.25) < 1e-3
    assert abs(check.porosity_mean - 0.25) < 1e-3 and check.data_porosity_std == pytest.approx(0.0527, abs=1e-4)
    with torch.no_grad():  # a decoder that ignores z: every sample the same (structured) image
        vae.decoder_fc[0].weight.zero_()
        vae.decoder_fc[0].bias.normal_(generator=torch.Generator().manual_seed(2))
    collapsed = T.check_samples(vae, porosity, n=50)
    assert collapsed.collapsed and "spread" in collapsed.reason and collapsed.pairwise_correlation > 0.9


def test_matched_smoothing_matches_the_training_interface_density():
    """smooth="matched" picks the grid width whose porosity-matched samples have the specific
    surface closest to the training images' (reference: the same draws, scipy smoothing and a
    plain count of unlike neighbours)."""
    torch.manual_seed(0)
    vae = VAE(image_size=16, channels=(4, 8), hidden=16, latent=4)
    with torch.no_grad():  # pixel-scale texture in the decoded probabilities
        vae.decoder[-1].weight.mul_(20.0)
    z = torch.randn(100, 4, generator=torch.Generator().manual_seed(3 + 7919))
    p = vae.decode(z).detach().squeeze(1).numpy()

    def faces(smooth):
        q = ndi.gaussian_filter(p, (0, smooth, smooth), mode="nearest") if smooth else p
        x = q > np.quantile(q, 1 - 0.3)
        return ((np.diff(x, axis=1) != 0).sum() + (np.diff(x, axis=2) != 0).sum()) / x.size

    target = 0.5 * (faces(0.0) + faces(1.0))
    expected = min(T.SMOOTH_GRID, key=lambda w: abs(faces(w) - target))
    assert 0 < expected < 1
    check = T.check_samples(vae, np.full(8, 0.3), n=100, seed=3, smooth="matched", surface=target)
    assert check.smooth == expected and check.data_surface == target
    assert check.surface == pytest.approx(faces(expected), rel=1e-12)
    # The threshold is the porosity-matching one at that width.
    assert check.porosity_mean == pytest.approx(0.3, abs=2e-3)
    assert T.check_samples(vae, np.full(8, 0.3), n=100, seed=3, smooth="matched", surface=faces(0.0)).smooth == 0
    with pytest.raises(ValueError, match="needs the training images' mean specific surface"):
        T.check_samples(vae, np.full(8, 0.3), n=20, smooth="matched")
    with pytest.raises(ValueError, match="sample_smooth must be .* or 'matched'"):
        T.load_config("quick", sample_smooth="auto")


def test_fit_latent_is_the_moment_match_of_the_aggregate_posterior(images):
    """Mean and covariance of a draw from the mixture mean_i N(mu_i, diag sigma_i^2), against the
    fitted Gaussian; and fitted draws have those moments."""
    torch.manual_seed(0)
    vae = VAE(image_size=16, channels=(4, 8), hidden=16, latent=3)
    fitted = T.fit_latent(vae, images, chunk=5)
    mu, logvar = vae.encode(torch.from_numpy(images).float().unsqueeze(1))
    mu, sd = mu.detach().double().numpy(), (0.5 * logvar).exp().detach().double().numpy()
    rng = np.random.default_rng(0)
    i = rng.integers(0, len(mu), 400_000)
    z = mu[i] + sd[i] * rng.standard_normal((len(i), 3))
    # ddof=1 over images vs the mixture's own covariance: equal up to a factor (n-1)/n on Cov(mu).
    n = len(mu)
    cov_mix = np.cov(z, rowvar=False) + (1 / (n - 1)) * np.cov(mu, rowvar=False, bias=True)
    np.testing.assert_allclose(fitted["mean"], z.mean(0), atol=0.01 * sd.mean() + 0.005)
    np.testing.assert_allclose(fitted["cov"], cov_mix, rtol=0.03, atol=2e-3 * np.abs(cov_mix).max())
    draws = sampling._latent_draws(200_000, 3, torch.Generator().manual_seed(1), fitted).double().numpy()
    # Sampling error of a covariance of 2e5 draws with unit variances: ~1 / sqrt(2e5) = 0.0022; 5 sigma.
    np.testing.assert_allclose(np.cov(draws, rowvar=False), fitted["cov"], rtol=0.03, atol=0.011)


def test_sample_with_fitted_latent_and_smoothing(tmp_path, images):
    result = T.train_vae(images, out_dir=tmp_path / "run", progress=False,
                         **{**TINY, "steps": 3, "sample_latent": "fitted", "sample_smooth": 1.0})
    check = T.load_checkpoint(tmp_path / "run")["samples"]
    assert check["smooth"] == 1.0 and len(check["latent"]["mean"]) == TINY["latent"]
    a = T.sample(tmp_path / "run", 6, seed=2)
    np.testing.assert_array_equal(a, T.sample(result, 6, seed=2))
    np.testing.assert_array_equal(a, T.sample(result, 6, seed=2, latent="fitted", smooth=1.0))
    assert not np.array_equal(a, T.sample(result, 6, seed=2, latent="prior"))
    with pytest.raises(ValueError, match="latent='fitted' needs"):
        T.sample(result.model, 2, latent="fitted", binarize="threshold")
    with pytest.raises(ValueError, match="smooth must be"):
        T.sample(result, 2, smooth=-1.0)
    with pytest.raises(ValueError, match="sample_latent must be"):
        T.load_config("quick", sample_latent="posterior")


def test_collapse_warning(tmp_path, images, monkeypatch):
    monkeypatch.setattr(sampling, "_MIN_SPREAD_RATIO", 1e6)  # every model "collapses"
    with pytest.warns(T.CollapseWarning, match="looks collapsed"):
        T.train_vae(images, out_dir=tmp_path / "run", progress=False, **{**TINY, "steps": 2})


def test_style_center_uses_channel_covariances(images):
    """style_center=True: the cached authentic Grams are the Grams of mean-centred features."""
    from microvae.nn.losses import gram_matrices

    config = T.load_config("quick", **{**TINY, "style_center": True, "style_normalize": False})
    session = T.Trainer(images, config, seed=0, device=torch.device("cpu"))
    x = torch.from_numpy(images).float().unsqueeze(1)
    feats = session.style_net(x)
    centred = gram_matrices([f - f.mean(dim=(2, 3), keepdim=True) for f in feats], backend="torch")
    for got, want in zip(session.ref_grams, centred):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(session.ref_grams[0], gram_matrices(feats, backend="torch")[0], rtol=1e-2)


def test_cli_train_resume_sample(tmp_path, capsys):
    np.save(tmp_path / "imgs.npy", blobs(6, size=64, sigma=3))
    args = ["train", str(tmp_path / "imgs.npy"), "-o", str(tmp_path / "run"), "--no-progress", "--seed", "5",
            "--batch-size", "4", "--steps", "2", "--style-mode", "all_pairs", "--sample-every", "0"]
    assert main(args) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert main(args) == 2  # the run folder is taken
    assert "not empty" in capsys.readouterr().err
    assert main(args[:-6] + ["--steps", "3", "--style-mode", "all_pairs", "--resume"]) == 0
    assert T.load_checkpoint(tmp_path / "run")["step"] == 3
    out = tmp_path / "gen.npz"
    assert main(["sample", str(tmp_path / "run"), "-n", "7", "-o", str(out), "--seed", "1",
                 "--mosaic", str(tmp_path / "gen.png")]) == 0
    with np.load(out) as z:
        assert z["images"].shape == (7, 64, 64) and z["images"].dtype == np.uint8
    assert (tmp_path / "gen.png").stat().st_size > 0
    assert main(["sample", str(tmp_path / "run"), "-n", "7", "-o", str(out)]) == 2  # no silent overwrite
    assert "exists" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, images, capsys):
    np.save(tmp_path / "imgs.npy", images)
    assert main(["train", str(tmp_path / "imgs.npy"), "-o", str(tmp_path / "run"), "--preset", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "imgs.npy"), "-o", str(tmp_path / "run"), "--slices", "3"]) == 2
    assert "--slices applies to a 3D volume" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "missing"), "-n", "3", "-o", str(tmp_path / "s.npy")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_style_loss_reduces_s2_distance_against_plain_vae(tmp_path):
    """The paper's claim on a small synthetic set, same seed and steps: the style terms bring the
    two-point correlation of the (thresholded) samples closer to the authentic images'. With
    this schedule the plain VAE's decoded probabilities stay below 0.5 (every sample solid);
    the style terms restore pore phase. Measured S2 RMS distances, seeds 0/1/2: plain 0.080
    each, style 0.069/0.068/0.070."""
    from microvae.correlations import s2

    imgs = blobs(40, size=32, porosity=0.2, sigma=2.0, seed=0)
    ref = s2(imgs, periodic=False).mean(0)
    config = dict(image_size=32, downsample="pool", recon="sse", channels=(8, 16), hidden=32, latent=8,
                  sample_latent="prior", sample_smooth=0.0, style_width=0.125, batch_size=8, steps=400,
                  log_every=400, sample_every=0, checkpoint_every=0, kl_warmup=100, style_start=150, style_warmup=100)
    distance = {}
    for mode in ("none", "paired"):
        run = T.train_vae(imgs, out_dir=tmp_path / mode, seed=0, progress=False, style_mode=mode, **config)
        # At 0.5: the porosity-matched default threshold would hide the difference this test is about.
        generated = T.sample(run, 200, seed=1, binarize="threshold", threshold=0.5)
        distance[mode] = float(np.sqrt(np.mean((s2(generated, periodic=False).mean(0) - ref) ** 2)))
    assert distance["paired"] < 0.95 * distance["none"], distance


def test_sample_check_is_stored_as_a_plain_dict(tmp_path, images):
    """The checkpoint keeps today's plain dict (keys and order); SampleCheck reads it back, also a
    check stored before latent fitting and smoothing existed."""
    result = T.train_vae(images, out_dir=tmp_path / "run", progress=False, **{**TINY, "steps": 2})
    stored = T.load_checkpoint(tmp_path / "run")["samples"]
    assert type(stored) is dict and list(stored) == [
        "threshold", "smooth", "latent", "porosity_mean", "porosity_std", "data_porosity_mean", "data_porosity_std",
        "pairwise_correlation", "surface", "data_surface", "collapsed", "reason"]
    assert stored == result.samples.to_dict() and T.SampleCheck.from_dict(stored) == result.samples
    assert result.threshold == stored["threshold"]
    older = {k: v for k, v in stored.items() if k not in ("smooth", "latent", "surface", "data_surface")}
    check = T.SampleCheck.from_dict(older)
    assert (check.smooth, check.latent, check.surface, check.threshold) == (0.0, None, None, stored["threshold"])
    assert "surface" not in check.to_dict()
    with pytest.raises(ValueError, match=r"lacks \['threshold'\]"):
        T.SampleCheck.from_dict({k: v for k, v in stored.items() if k != "threshold"})
    with pytest.raises(TypeError, match="seed must be an integer or None, got Generator"):
        T.sample(result, 2, seed=np.random.default_rng(0))


def test_the_old_module_warns_and_reexports(monkeypatch):
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "microvae.train", raising=False)
    with pytest.warns(DeprecationWarning, match="microvae.train is deprecated.*microvae.vae"):
        old = importlib.import_module("microvae.train")
    assert old.__all__ == T.__all__ and all(getattr(old, name) is getattr(T, name) for name in T.__all__)
