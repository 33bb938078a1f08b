"""Disentanglement metrics against known answers and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vae_core.errors import ConfigError
from vae_core.metrics import (dci, dci_from_importance, discrete_entropy, factor_matrix, histogram_discretize,
                              mig, mutual_info_matrix, sap, sap_score_matrix)


def _factors(n=3000, values=(4, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, v, size=n) for v in values], axis=1)


def _perfect(factors, seed=1):
    rng = np.random.default_rng(seed)
    return factors + 0.01 * rng.standard_normal(factors.shape)


# -- mutual_info_matrix ---------------------------------------------------------------------

def test_mutual_info_matrix_by_hand():
    # Codes 0,0,1,1 fall in the first and last of 2 bins; factor a = the bin, b independent.
    codes = np.array([[0.0], [0.0], [1.0], [1.0]])
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    mi = mutual_info_matrix(codes, factors, n_bins=2)
    assert mi.shape == (2, 1)
    assert mi[0, 0] == pytest.approx(math.log(2))
    assert mi[1, 0] == pytest.approx(0.0, abs=1e-12)


def test_mutual_info_matrix_unequal_table_by_hand():
    # Factor: 0,0,0,1 ; code bins: 0,0,1,1.  p(v,z): (0,0)=1/2, (0,1)=1/4, (1,1)=1/4.
    codes = np.array([[0.0], [0.1], [1.0], [0.9]])
    factors = np.array([0, 0, 0, 1])
    expected = (0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5))
                + 0.25 * math.log(0.25 / (0.25 * 0.5)))
    assert mutual_info_matrix(codes, factors, n_bins=2)[0, 0] == pytest.approx(expected)


def test_mutual_info_matrix_agrees_with_sklearn_on_histogram_bins():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(3)
    factors = _factors(500)
    codes = np.concatenate([_perfect(factors), rng.standard_normal((500, 2))], axis=1)
    binned = histogram_discretize(codes, 20)
    expected = [[mutual_info_score(factors[:, k], binned[:, j]) for j in range(codes.shape[1])]
                for k in range(factors.shape[1])]
    np.testing.assert_allclose(mutual_info_matrix(codes, factors), expected, atol=1e-12)


def test_histogram_discretize_matches_disentanglement_lib():
    values = np.array([[0.0], [0.24], [0.26], [0.5], [0.74], [1.0]])
    # 4 equal-width bins over [0, 1]: edges 0, .25, .5, .75; bins numbered from 1.
    assert histogram_discretize(values, 4)[:, 0].tolist() == [1, 1, 2, 3, 3, 4]


def test_entropy_by_hand():
    assert discrete_entropy(np.array([0, 0, 1, 1]))[0] == pytest.approx(math.log(2))
    assert discrete_entropy(np.array([0, 1, 2, 3]))[0] == pytest.approx(math.log(4))
    assert discrete_entropy(np.array([5, 5, 5]))[0] == 0.0


def test_mutual_info_matrix_rejects_bad_input():
    with pytest.raises(ConfigError, match="codes but"):
        mutual_info_matrix(np.zeros((4, 2)), np.zeros((3, 1), dtype=int))
    with pytest.raises(ConfigError, match="integers"):
        mutual_info_matrix(np.zeros((4, 2)), np.full((4, 1), 0.5))
    with pytest.raises(ConfigError, match="finite"):
        mutual_info_matrix(np.full((4, 2), np.nan), np.zeros((4, 1), dtype=int))
