"""Upper bounds checked before anything is allocated or started: the memory limit
(MICROVAE_MAX_MEMORY, else the memory available), the most triangles per S3 cell, the ranges of
moduli and voxel sizes. Each refusal names the limit and comes in one line on the command line."""
import numpy as np
import pytest

from microvae import synthetic
from microvae._validate import check_memory, check_moduli, check_voxel_size, format_bytes, memory_limit
from microvae.cli import main


@pytest.fixture
def two_gib(monkeypatch):
    """A machine with 2 GiB for microvae, whatever this one has."""
    monkeypatch.setenv("MICROVAE_MAX_MEMORY", "2G")


def test_the_memory_limit_comes_from_the_variable_or_the_machine(monkeypatch):
    monkeypatch.delenv("MICROVAE_MAX_MEMORY", raising=False)
    limit, source = memory_limit()
    assert limit is None or limit > 2**20 and "available" in source
    for text, want in (("2G", 2 * 2**30), ("512m", 512 * 2**20), ("1.5T", int(1.5 * 2**40)), ("1000", 1000)):
        monkeypatch.setenv("MICROVAE_MAX_MEMORY", text)
        assert memory_limit() == (want, f"MICROVAE_MAX_MEMORY={text}")
    for bad in ("lots", "-1G", "nanG", "0"):
        monkeypatch.setenv("MICROVAE_MAX_MEMORY", bad)
        with pytest.raises(ValueError, match="is not a size; use bytes or a number with K, M, G or T"):
            memory_limit()


def test_check_memory_names_the_need_the_limit_and_the_way_out(two_gib):
    check_memory(2 * 2**30, "exactly the limit", "-")  # at the limit: allowed
    with pytest.raises(MemoryError, match=r"^10 images would take 3.0 GiB, more than the 2.0 GiB microvae may use "
                                          r"\(MICROVAE_MAX_MEMORY=2G\); use fewer$"):
        check_memory(3 * 2**30, "10 images", "use fewer")
    with pytest.raises(MemoryError, match="would take 909494701772928256.0 TiB"):
        check_memory(10**30, "a huge request", "-")
    assert [format_bytes(n) for n in (5, 2048, 3 * 2**20 + 1)] == ["5 B", "2.0 KiB", "3.0 MiB"]


@pytest.mark.parametrize("make, args", [
    (synthetic.overlapping_disks, ((128, 128), 6, 0.2)),
    (synthetic.grains, ((128, 128),)),
    (synthetic.gaussian_random_field, ((128, 128), 6, 0.2)),
    (synthetic.overlapping_spheres, ((64, 64, 64), 6, 0.2)),
])
def test_synthetic_media_refuse_sizes_beyond_the_limit_before_allocating(two_gib, make, args):
    with pytest.raises(MemoryError, match=r"^1000000000 images of .* px would take .* TiB, more than the 2.0 GiB"):
        make(*args, n=10**9)
    assert make(*args, n=1).shape[0] == 1


def test_a_field_needs_its_working_arrays_within_the_limit(monkeypatch):
    # 4096² pixels: 16 MiB of output, but 40 bytes per pixel of float64 work for the field.
    monkeypatch.setenv("MICROVAE_MAX_MEMORY", "200M")
    with pytest.raises(MemoryError, match=r"1 image of 4096 x 4096 px would take 656.0 MiB"):
        synthetic.gaussian_random_field((4096, 4096), 6, 0.3)


def test_cli_memory_refusals_are_one_line(two_gib, tmp_path, capsys):
    assert main(["data", "synth", "disks", "-n", "1000000000", "-o", str(tmp_path / "s.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("microvae data: error: 1000000000 images of 128 x 128 px would take 14.9 TiB")
    assert "(MICROVAE_MAX_MEMORY=2G); make fewer or smaller images" in err
    assert not (tmp_path / "s.npz").exists()


def test_mrf_sampling_refuses_canvases_beyond_the_limit(two_gib):
    from microvae.mrf import MRF

    model = MRF(S=2, gibbs_S=None).fit(synthetic.grains((32, 32), n=4, seed=0))
    with pytest.raises(MemoryError, match=r"^1 MRF sample of 100000 x 100000 px .* would take 37.3 GiB"):
        model.sample(1, 100_000)
    with pytest.raises(MemoryError, match=r"on canvases of .* px \(burn-in 1000000000\) would take .* "
                                          r"lower the burn-in"):
        model.sample(1, 16, burn_in=10**9)
    assert model.sample(2, 16, seed=0).shape == (2, 16, 16)


def test_s3_draws_at_most_max_samples_per_cell():
    from microvae.correlations import s3
    from microvae.correlations.three_point import MAX_SAMPLES

    image = np.zeros((1, 16, 16), np.uint8)
    with pytest.raises(ValueError, match=r"n_samples=1000000000000 exceeds MAX_SAMPLES = 1e\+09"):
        s3(image, [2], [2], [1.0], n_samples=10**12)
    assert MAX_SAMPLES == 10**9


def test_moduli_and_voxel_sizes_stay_where_float64_holds_the_formulas():
    from microvae.properties import label
    from microvae.properties.strong_contrast import elastic_moduli, permeability

    assert check_moduli(4.3, 3.8) == (4.3, 3.8) and check_voxel_size(2.5) == 2.5
    with pytest.raises(ValueError, match=r"G1=1e\+300 lies outside \[1e-100, 1e\+100\] \(the formulas square"):
        elastic_moduli(0.2, 0.5, 0.5, K1=1e-3, G1=1e300)
    with pytest.raises(ValueError, match=r"K1/G1 = 1e-08 lies outside \[1e-06, 1e\+06\]: no solid"):
        elastic_moduli(0.2, 0.5, 0.5, K1=1e-8, G1=1.0)
    with pytest.raises(ValueError, match=r"voxel_size=1e\+300 lies outside .* \(permeability is in its square"):
        permeability(np.array([0.3, 0.1, 0.09]), 0.3, voxel_size=1e300)
    images = synthetic.overlapping_disks((32, 32), 4, 0.4, n=2, seed=0)
    with pytest.raises(ValueError, match="voxel_size=1e-300 lies outside"):
        label(images, voxel_size=1e-300)
    # Large but representable: the square is finite and k scales with it.
    k = label(images, voxel_size=1e40)["k"]
    assert np.all(np.isfinite(k)) and np.allclose(k, label(images)["k"] * 1e80, rtol=1e-12)
@pytest.mark.parametrize("flags, named", [(["--voxel-size", "1e300"], "--voxel-size 1e+300 lies outside"),
                                          (["--K1", "1e-300", "--G1", "1e300"], "--K1 1e-300 lies outside")])
def test_cli_label_refuses_moduli_and_voxel_sizes_out_of_range(tmp_path, capsys, flags, named):
    np.save(tmp_path / "a.npy", synthetic.overlapping_disks((32, 32), 4, 0.4, n=2, seed=0))
    assert main(["label", str(tmp_path / "a.npy"), "-o", str(tmp_path / "l.csv"), *flags]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1 and not (tmp_path / "l.csv").exists()


def test_vae_sampling_refuses_counts_beyond_the_limit(two_gib, tmp_path):
    from microvae.nn import VAE
    from microvae.vae import sample

    model = VAE(image_size=16, channels=(4, 8), hidden=8, latent=4)
    with pytest.raises(MemoryError, match=r"^1000000000 samples of 16 x 16 px would take 253.3 GiB"):
        sample(model, 10**9, binarize="threshold", seed=0)
    assert sample(model, 3, binarize="threshold", seed=0).shape == (3, 16, 16)
