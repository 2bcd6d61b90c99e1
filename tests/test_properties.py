"""Three-point parameters and strong-contrast properties against independent references:
brute-force pair sums, closed-form overlapping disks/spheres statistics integrated by
quadrature, exact sum rules and symmetries, analytic bounds and the worked example of
PHYSICS.md."""
import numpy as np
import pytest

from microvae import synthetic
from microvae.correlations.reference import s3_map_reference
from microvae.properties import (diffusivity, elastic_moduli, parameters_from_functions, parameters_from_samples,
                                 permeability, rock_youngs_modulus, slice_truncation_bound, three_point_parameters,
                                 validity, youngs_modulus)
from microvae.properties.harmonic import harmonic_kernel, slice_harmonic_coefficients


# ---------------------------------------------------------------- references

def _disk_reference(porosity, d, phase="void"):
    """ζ2, η2 of overlapping disks of radius 1 by quadrature of the closed-form S2/S3 (exact
    support r, s < 4R with the local integrand; panels converge to ~1e-6)."""
    phi = porosity if phase == "void" else 1 - porosity
    return parameters_from_functions(lambda r: synthetic.disks_s2(r, 1.0, porosity, phase=phase),
                                     lambda r, s, t: synthetic.disks_s3(r, s, t, 1.0, porosity, phase=phase),
                                     phi, d=d, r_max=4.0, breakpoints=[2.0], n_panels=8, n_theta_panels=6)


def _sphere_s3(r, s, t, porosity):
    """Closed-form void S3 of overlapping spheres (radius 1), evaluating the costly triple
    overlap only where it can be non-zero (all sides below 2R)."""
    v = [synthetic.lens_volume(x, 1.0) for x in (r, s, t)]
    near = (r < 2) & (s < 2) & (t < 2)
    v3 = np.zeros(np.shape(r))
    v3[near] = synthetic.triple_sphere_volume(r[near], s[near], t[near], 1.0)
    rho = synthetic.spheres_density(1.0, porosity)
    return porosity ** 3 * np.exp(rho * (v[0] + v[1] + v[2] - v3))


@pytest.fixture(scope="module")
def sphere_reference():
    """ζ2, η2 of the void phase of overlapping spheres at porosity 0.5 (d = 3), by quadrature."""
    phi = 0.5
    return parameters_from_functions(lambda r: synthetic.spheres_s2(r, 1.0, phi), lambda r, s, t: _sphere_s3(r, s, t, phi),
                                     phi, d=3, r_max=4.0, breakpoints=[2.0], n_panels=4, n_theta_panels=4, order=5,
                                     grading=5)


# ---------------------------------------------------------------- the FFT factorization

def _lattice_vectors(shape):
    """All displacements of a periodic grid in FFT order, as signed (dy, dx) pairs."""
    dy, dx = np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n).astype(int) for n in shape], indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=1)


def _s3_tensor(image):
    """S3(r1, r2) = mean_x I(x) I(x + r1) I(x + r2) for all vector pairs, by explicit shifts."""
    vecs = _lattice_vectors(image.shape)
    shifted = np.stack([np.roll(image, (-dy, -dx), axis=(0, 1)).ravel() for dy, dx in vecs])
    return (image.ravel() * shifted) @ shifted.T / image.size


def test_harmonic_method_equals_brute_force_pair_sums(rng):
    # Odd sides: no Nyquist frequency, so the multipliers have modulus 1 everywhere but q = 0.
    image = (rng.random((11, 13)) < 0.45).astype(float)
    tensor = _s3_tensor(image)
    vecs = _lattice_vectors(image.shape)
    for row in (1, 17, 100):  # spot-check the tensor against the loop-based reference
        np.testing.assert_allclose(tensor[row], s3_map_reference(image, tuple(vecs[row])).ravel(), atol=1e-14)
    phi = image.mean()
    scale = phi * (1 - phi)
    # Σ_{r1, r2} k(r1) k*(r2) S3(r1, r2) per harmonic; its two-point part is φ <|R δ|²> = φ²φ1.
    third = {}
    for m in range(2, 13, 2):
        k = harmonic_kernel(image.shape, m).ravel()
        pair_sum = k @ tensor @ np.conj(k)
        assert abs(pair_sum.imag) < 1e-12
        third[m] = pair_sum.real - phi * scale
    zeta, eta = three_point_parameters(image.astype(np.uint8), d=2, extrapolate=False)
    np.testing.assert_allclose([zeta[0], eta[0]], [phi + third[2] / scale, phi + third[4] / scale], rtol=0,
                               atol=1e-10)
    # d = 3 slices: weights π a_m / m² per harmonic, the two-point part added in closed form.
    ms = np.arange(2, 13, 2)
    i2 = sum(w * third[m] for w, m in zip(np.pi * slice_harmonic_coefficients(2, 12)[ms] / ms ** 2, ms))
    i4 = sum(w * third[m] for w, m in zip(np.pi * slice_harmonic_coefficients(4, 12)[ms] / ms ** 2, ms))
    zeta3, eta3 = three_point_parameters(image.astype(np.uint8), d=3, extrapolate=False, harmonics=12)
    np.testing.assert_allclose(zeta3[0], phi + 9 / 2 * i2 / scale, rtol=0, atol=1e-10)
    np.testing.assert_allclose(eta3[0], 5 * zeta3[0] / 21 + 16 * phi / 21 + 150 / 7 * i4 / scale, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- closed-form references

@pytest.mark.parametrize("porosity", [0.2, 0.5, 0.8])
def test_overlapping_disks_2d_match_quadrature_of_closed_form_s3(porosity):
    # R = 8 px; 4 images of 1024² hold ~10^4 disks, so the sampling spread of the mean is
    # ~2e-3. The reference is the continuum value (quadrature converged to 1e-6).
    ref = np.array(_disk_reference(porosity, d=2))
    images = synthetic.overlapping_disks((1024, 1024), 8, porosity, n=4, seed=int(porosity * 10))
    zeta, eta = three_point_parameters(images, d=2)
    assert np.all(np.abs([zeta.mean(), eta.mean()] - ref) <= 1e-2)
    # Without the resolution extrapolation the pixel staircase costs ~0.2 / R (PHYSICS.md).
    zeta0, eta0 = three_point_parameters(images, d=2, extrapolate=False)
    assert np.all((ref - [zeta0.mean(), eta0.mean()] > 0.01) & (ref - [zeta0.mean(), eta0.mean()] < 0.05))


@pytest.mark.slow
@pytest.mark.parametrize("radius", [16, 32])
def test_overlapping_disks_2d_large_radii(radius):
    ref = np.array(_disk_reference(0.5, d=2))
    images = synthetic.overlapping_disks((128 * radius, 128 * radius), radius, 0.5, n=2, seed=radius)
    zeta, eta = three_point_parameters(images, d=2)
    assert np.all(np.abs([zeta.mean(), eta.mean()] - ref) <= 1e-2)


def test_particle_phase_of_disks_matches_reference():
    # The pore phase may be the particles: ζ2 of the disk phase at fraction 0.2, d = 2.
    ref = np.array(_disk_reference(0.8, d=2, phase="particle"))
    images = 1 - synthetic.overlapping_disks((1024, 1024), 8, 0.8, n=4, seed=3)
    zeta, eta = three_point_parameters(images, d=2)
    assert np.all(np.abs([zeta.mean(), eta.mean()] - ref) <= 1e-2)


@pytest.mark.slow
def test_overlapping_spheres_volume_and_slice_paths_match_quadrature(sphere_reference):
    # 4 volumes of 160³ with R = 8 (~7000 spheres): sampling spread of the mean ~5e-3 on η2.
    vols = synthetic.overlapping_spheres((160, 160, 160), 8, 0.5, n=4, seed=22)
    zeta, eta = three_point_parameters(vols, d=3)
    assert np.all(np.abs([zeta.mean(), eta.mean()] - np.array(sphere_reference)) <= 1e-2)
    planes = np.concatenate([np.moveaxis(v, a, 0)[::4] for v in vols for a in range(3)])
    zeta_s, eta_s = three_point_parameters(planes, d=3)
    assert np.all(np.abs([zeta_s.mean(), eta_s.mean()] - np.array(sphere_reference)) <= 1e-2)


def test_slices_and_volume_of_the_same_spheres_agree():
    # Stereology: for an isotropic medium the planar sections carry the 3D S2 and S3, so the
    # slice path must reproduce the volume path on the same realization (its sampling noise
    # is shared; the remaining difference is discretization).
    vol = synthetic.overlapping_spheres((96, 96, 96), 6, 0.5, n=1, seed=11)
    zeta_v, eta_v = three_point_parameters(vol, d=3)
    planes = np.concatenate([np.moveaxis(vol[0], a, 0)[::3] for a in range(3)])
    zeta_s, eta_s = three_point_parameters(planes, d=3)
    assert abs(zeta_s.mean() - zeta_v[0]) < 1e-2 and abs(eta_s.mean() - eta_v[0]) < 1e-2


def test_quadrature_reproduces_two_point_identities():
    # With S3 = S2(r)S2(s)/φ + φ χ(t), B = φ χ(t) and the angular identities give ζ2 = η2 = φ
    # exactly; the plain integrand converges to it as r_max grows (its slow tail).
    phi = 0.3

    def s2(r):
        return synthetic.spheres_s2(r, 1.0, phi)

    def s3(r, s, t):
        return s2(r) * s2(s) / phi + phi * (s2(t) - phi ** 2)

    for d, tol in ((2, 6e-3), (3, 3e-3)):
        zeta, eta = parameters_from_functions(s2, s3, phi, d=d, r_max=8.0, breakpoints=[2.0], local=False,
                                              n_panels=8, n_theta_panels=8)
        assert abs(zeta - phi) < tol
        assert abs(eta - phi) < 3 * tol


def test_tabulated_quadrature_matches_function_quadrature():
    # parameters_from_samples on the closed-form S3 tabulated on a grid (as one would get
    # from any external estimator) against the panel quadrature.
    phi, R = 0.5, 8.0
    grid = np.arange(0.25, 4 * R + 1e-9, 0.25)
    theta = np.linspace(0, np.pi, 61)
    rr, ss, tt = np.meshgrid(grid, grid, theta, indexing="ij")
    t = np.sqrt(np.maximum(rr ** 2 + ss ** 2 - 2 * rr * ss * np.cos(tt), 0))
    s3 = synthetic.disks_s3(rr, ss, t, R, phi)
    r_s2 = np.arange(0, 8 * R + 1, 0.25)
    for d in (2, 3):
        ref = parameters_from_functions(lambda r: synthetic.disks_s2(r, R, phi),
                                        lambda r, s, t: synthetic.disks_s3(r, s, t, R, phi), phi, d=d, r_max=4 * R,
                                        breakpoints=[2 * R], n_panels=8, n_theta_panels=6)
        got = parameters_from_samples(grid, grid, theta, s3, r_s2, synthetic.disks_s2(r_s2, R, phi), phi, d)
        np.testing.assert_allclose(got, ref, atol=5e-3)


# ---------------------------------------------------------------- exact identities

@pytest.mark.parametrize("kwargs", [dict(d=2), dict(d=3), dict(d=3, periodic=False), dict(d=2, extrapolate=False)])
def test_sum_rules_hold_image_by_image(kwargs):
    images = synthetic.grains((96, 96), 6, 0.3, n=3, seed=5)
    z2, e2 = three_point_parameters(images, **kwargs)
    z1, e1 = three_point_parameters(1 - images, **kwargs)
    np.testing.assert_allclose(z1 + z2, 1.0, atol=1e-12)
    np.testing.assert_allclose(e1 + e2, 1.0, atol=1e-12)


def test_sum_rules_hold_for_volumes():
    vol = synthetic.overlapping_spheres((40, 40, 40), 4, 0.4, n=1, seed=2)
    z2, e2 = three_point_parameters(vol, d=3)
    z1, e1 = three_point_parameters(1 - vol, d=3)
    np.testing.assert_allclose([z1 + z2, e1 + e2], 1.0, atol=1e-12)


def test_phase_symmetric_medium_has_one_half():
    # A Gaussian field cut at its median is phase-inversion symmetric: E[ζ2] = E[η2] = 1/2.
    images = synthetic.gaussian_random_field((512, 512), 6, 0.5, n=6, seed=1)
    zeta, eta = three_point_parameters(images, d=2)
    assert abs(zeta.mean() - 0.5) < 0.01 and abs(eta.mean() - 0.5) < 0.01


def test_nonperiodic_estimator_is_unbiased_on_crops():
    # Crops of a large periodic medium are not periodic; the mean-padded, interior-averaged
    # estimator must reproduce the value of the whole medium (sampling spread ~3e-3).
    big = synthetic.overlapping_disks((1024, 1024), 8, 0.2, n=2, seed=5)
    whole_z, whole_e = three_point_parameters(big, d=3)
    crops = big.reshape(2, 8, 128, 8, 128).transpose(0, 1, 3, 2, 4).reshape(-1, 128, 128)
    zeta, eta = three_point_parameters(crops, d=3, periodic=False)
    assert abs(zeta.mean() - whole_z.mean()) < 8e-3 and abs(eta.mean() - whole_e.mean()) < 8e-3


def test_slice_expansion_truncation_is_within_2e3():
    # Measured against the (numerically) untruncated series on the same images.
    images = np.concatenate([synthetic.grains((128, 128), 8, 0.2, n=24, seed=8),
                             synthetic.overlapping_disks((128, 128), 4, 0.3, n=24, seed=9)])
    zeta, eta = three_point_parameters(images, d=3, extrapolate=False)
    zeta_ref, eta_ref = three_point_parameters(images, d=3, extrapolate=False, harmonics=64)
    assert np.abs(zeta - zeta_ref).max() <= 2e-3 and np.abs(eta - eta_ref).max() <= 2e-3
    bound_z, bound_e = slice_truncation_bound(12)
    assert np.abs(zeta - zeta_ref).max() <= bound_z and np.abs(eta - eta_ref).max() <= bound_e
    # The worst-case bound falls like M^-3.
    ratio = slice_truncation_bound(16)[0] / slice_truncation_bound(32)[0]
    assert 6 < ratio < 10


def test_expansion_weights_reproduce_the_angular_identities():
    # π Σ a_m / m² = ∫ P_l(u) du-weighted identity constants 2/9 (l = 2) and 8/225 (l = 4).
    m = np.arange(1, 4001)
    a2, a4 = slice_harmonic_coefficients(2, 4000)[1:], slice_harmonic_coefficients(4, 4000)[1:]
    np.testing.assert_allclose(np.pi * np.sum(a2 / m ** 2), 2 / 9, rtol=1e-8)
    np.testing.assert_allclose(np.pi * np.sum(a4 / m ** 2), 8 / 225, rtol=1e-8)
    theta = np.linspace(0, np.pi, 9)
    series = np.cos(np.outer(theta, np.arange(4001))) @ slice_harmonic_coefficients(2, 4000)
    np.testing.assert_allclose(series, np.sin(theta) * (3 * np.cos(theta) ** 2 - 1) / 2, atol=2e-4)


def test_single_phase_images_have_no_parameters():
    images = np.zeros((2, 32, 32), dtype=np.uint8)
    images[1] = 1
    zeta, eta = three_point_parameters(images, d=3)
    assert np.all(np.isnan(zeta)) and np.all(np.isnan(eta))


@pytest.mark.parametrize("bad, match", [
    (dict(d=4), "d must be 2 or 3"),
    (dict(harmonics=7), "even integer"),
    (dict(d=2, harmonics=8), "harmonics applies"),
    (dict(periodic=False, margin=40), "margin must be"),
])
def test_bad_options_are_explained(bad, match):
    with pytest.raises(ValueError, match=match):
        three_point_parameters(np.ones((64, 64), dtype=np.uint8), **bad)


def test_bad_images_are_explained():
    with pytest.raises(ValueError, match="binary"):
        three_point_parameters(np.full((16, 16), 2))
    with pytest.raises(ValueError, match="volumes take d=3"):
        three_point_parameters(np.zeros((1, 8, 8, 8), dtype=np.uint8), d=2)
    with pytest.raises(ValueError, match="at least 8 pixels"):
        three_point_parameters(np.eye(6, dtype=np.uint8))


# ---------------------------------------------------------------- properties

def test_worked_example_of_physics_md():
    for d, z, e, k, g, young, dd in ((2, 0.1233, 0.1673, 2.519, 1.633, 3.962, 0.0152),
                                     (3, 0.1139, 0.1494, 2.834, 2.401, 5.616, 0.0849)):
        k_eff, g_eff = elastic_moduli(0.2, z, e, d)
        np.testing.assert_allclose([k_eff, g_eff], [k, g], atol=1e-3)
        np.testing.assert_allclose(youngs_modulus(0.2, z, e, d, relative=False), young, atol=1e-3)
        np.testing.assert_allclose(youngs_modulus(0.2, z, e, d), young / rock_youngs_modulus(d=d), atol=1e-3)
        np.testing.assert_allclose(diffusivity(0.2, z, d), dd, atol=1e-3)


def test_bounds_are_recovered_at_extreme_parameters():
    # ζ2 = η2 = 0 turns the third-order moduli into the Hashin-Shtrikman upper bounds of
    # rock with voids; ζ2 = 1 turns De/D2 into the HS upper bound 2φ2/(3 - φ2).
    K1, G1 = 4.3, 3.8
    phi = np.linspace(0.05, 0.6, 12)
    k_eff, g_eff = elastic_moduli(phi, 0.0, 0.0, 3, K1, G1)
    k_hs = K1 + phi / (-1 / K1 + (1 - phi) / (K1 + 4 * G1 / 3))
    g_hs = G1 + phi / (-1 / G1 + 2 * (1 - phi) * (K1 + 2 * G1) / (5 * G1 * (K1 + 4 * G1 / 3)))
    np.testing.assert_allclose(k_eff, k_hs, rtol=1e-12)
    np.testing.assert_allclose(g_eff, g_hs, rtol=1e-12)
    np.testing.assert_allclose(diffusivity(phi, 1.0, 3), 2 * phi / (3 - phi), rtol=1e-12)
    # Equal diffusivities: a homogeneous medium.
    np.testing.assert_allclose(diffusivity(phi, 0.4, 3, D_ratio=1.0), 1.0, rtol=1e-12)


def test_two_dimensional_moduli_never_go_negative_and_are_flagged():
    phi, zeta = np.meshgrid(np.linspace(0.05, 0.95, 19), np.linspace(0, 1, 21))
    eta = 0.8 * zeta
    k_eff, g_eff = elastic_moduli(phi, zeta, eta, d=2)
    assert np.all(k_eff >= 0) and np.all(g_eff >= 0)
    ok = validity(phi, zeta, eta, d=2)
    connected = (zeta >= 0.5) | (zeta + eta >= 1)
    assert np.all(~ok[connected]) and np.all(ok[~connected])
    assert np.all(k_eff[zeta >= 0.5] == 0)
    assert np.all(youngs_modulus(phi, zeta, eta, d=2) >= 0)
    # In 3D the formulas stay within range for any admissible parameters.
    k3, g3 = elastic_moduli(phi, zeta, eta, d=3)
    assert np.all(k3 > 0) and np.all(g3 > 0) and np.all(validity(phi, zeta, eta, d=3))


def test_permeability_of_debye_medium():
    # S2 = φ2² + φ1 φ2 exp(-r/a): k = 2 φ2 a² / (3 φ1).
    phi, a = 0.25, 6.0
    r = np.arange(0, 60 * a, 0.25)
    s2 = phi ** 2 + phi * (1 - phi) * np.exp(-r / a)
    np.testing.assert_allclose(permeability(s2, phi, r=r), 2 * phi * a * a / (3 * (1 - phi)), rtol=1e-3)
    # Pixel grid (the label path): trapezoid error (h/a)²/12 relative.
    r1 = np.arange(0, 400.0)
    s21 = phi ** 2 + phi * (1 - phi) * np.exp(-r1 / a)
    np.testing.assert_allclose(permeability(s21, phi, voxel_size=0.5), 0.25 * 2 * phi * a * a / (3 * (1 - phi)),
                               rtol=5e-3)


def test_permeability_stops_at_the_first_zero_of_chi():
    phi = 0.3
    r = np.arange(0, 41.0)
    chi = phi * (1 - phi) * np.exp(-r / 5) * np.cos(r / 4)
    k = permeability(np.stack([phi ** 2 + chi] * 2), np.array([phi, phi]))
    crossing = 2 * np.pi  # cos(r/4) = 0
    fine = np.linspace(0, crossing, 20001)
    exact = 2 / (3 * (1 - phi) ** 2) * np.trapezoid(phi * (1 - phi) * np.exp(-fine / 5) * np.cos(fine / 4) * fine, fine)
    np.testing.assert_allclose(k, exact, rtol=0.05)
    assert permeability(phi ** 2 + chi, phi, cutoff=None) < k[0]
    with pytest.raises(ValueError, match="cutoff"):
        permeability(phi ** 2 + chi, phi, cutoff="first")
