"""FID's Frechet distance: our exact matrix square root against closed forms and scipy."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from adgan.metrics import frechet_distance, frechet_distance_from_statistics, trace_sqrt_product


def _covariance(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def test_diagonal_covariances_give_a_sum_of_squares():
    """With diagonal covariances FID is |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 4.0, 6), rng.uniform(0.1, 4.0, 6)
    want = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance_from_statistics(mu_a, np.diag(a), mu_b, np.diag(b))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_one_dimension_is_the_gaussian_closed_form():
    # (m1 - m2)^2 + (s1 - s2)^2 for N(m1, s1^2) and N(m2, s2^2)
    assert frechet_distance_from_statistics(1.0, 4.0, -2.0, 9.0) == pytest.approx(9.0 + 1.0)


def test_random_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(1)
    for d in (3, 16, 64):
        sa, sb = _covariance(rng, d), _covariance(rng, d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own deprecation notes, not ours
            want = np.trace(scipy.linalg.sqrtm(sa @ sb)).real
        assert trace_sqrt_product(sa, sb) == pytest.approx(want, rel=1e-9)
        assert trace_sqrt_product(sb, sa) == pytest.approx(want, rel=1e-9)


def test_singular_covariances_stay_finite_and_identical_sets_give_zero():
    """Fewer samples than dimensions (as FID on small sets): rank-deficient covariances."""
    rng = np.random.default_rng(2)
    sa, sb = _covariance(rng, 32, rank=5), _covariance(rng, 32, rank=7)
    fid = frechet_distance_from_statistics(np.zeros(32), sa, np.zeros(32), sb)
    assert np.isfinite(fid) and fid >= 0
    features = rng.normal(size=(10, 32))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)


def test_no_warning_and_mismatched_shapes_are_refused():
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytorch-fid's sqrtm call warned about SciPy 1.18
        frechet_distance(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
    with pytest.raises(ValueError, match="differ in shape"):
        frechet_distance_from_statistics(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
