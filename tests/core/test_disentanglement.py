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


# -- MIG ------------------------------------------------------------------------------------

def test_mig_by_hand():
    factors = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    informative = factors.astype(float)
    independent = np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=float)
    assert mig(np.stack([informative, independent], 1), factors, n_bins=2) == pytest.approx(1.0)
    # A second dimension that knows some of the factor: z1 = 1 only for half of factor 1.
    partial = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=float)
    p = {(0, 0): 4 / 8, (1, 0): 2 / 8, (1, 1): 2 / 8}
    pv, pz = {0: 0.5, 1: 0.5}, {0: 6 / 8, 1: 2 / 8}
    i_partial = sum(q * math.log(q / (pv[v] * pz[z])) for (v, z), q in p.items())
    expected = (math.log(2) - i_partial) / math.log(2)
    assert mig(np.stack([informative, partial], 1), factors, n_bins=2) == pytest.approx(expected)


def test_mig_known_representations():
    factors = _factors()
    perfect = _perfect(factors)
    assert mig(perfect, factors) > 0.95
    assert mig(np.zeros((len(factors), 3)), factors) == 0.0
    duplicated = perfect[:, [0, 0, 1, 1, 2, 2]]
    assert mig(duplicated, factors) == pytest.approx(0.0, abs=1e-12)
    assert mig(perfect[:, [2, 0, 1]], factors) == pytest.approx(mig(perfect, factors))
    # Rescaling a dimension moves its histogram bins with it: MIG does not change.
    assert mig(perfect * [1.0, 100.0, -3.0], factors) == pytest.approx(mig(perfect, factors))


# -- SAP ------------------------------------------------------------------------------------

def test_sap_is_the_mean_gap_of_its_score_matrix():
    factors = _factors(900)
    rng = np.random.default_rng(5)
    codes = _perfect(factors) + 0.8 * rng.standard_normal(factors.shape)
    matrix = sap_score_matrix(codes, factors)
    ordered = np.sort(matrix, axis=1)
    assert sap(codes, factors) == pytest.approx(np.mean(ordered[:, -1] - ordered[:, -2]))


def test_sap_continuous_is_r_squared_by_hand():
    z = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    v = np.array([1.0, 2.0, 4.0, 3.0])

    def r2(a, b):
        a, b = a - a.mean(), b - b.mean()
        return (a @ b) ** 2 / ((a @ a) * (b @ b))

    expected = [[r2(z[:, 0], v), r2(z[:, 1], v)]]
    np.testing.assert_allclose(sap_score_matrix(z, v, continuous_factors=True), expected)
    assert sap(z, v, continuous_factors=True) == pytest.approx(abs(expected[0][0] - expected[0][1]))


def test_sap_known_representations():
    binary = _factors(1200, values=(2, 2, 2))
    perfect = _perfect(binary)
    # Accuracy-based SAP: the matching dimension predicts its binary factor perfectly, the
    # others at chance (1/2), so the gap is 1/2.
    assert np.sort(sap_score_matrix(perfect, binary), axis=1)[:, -1] == pytest.approx(1.0)
    assert sap(perfect, binary) == pytest.approx(0.5, abs=0.05)
    assert sap(perfect, binary, continuous_factors=True) == pytest.approx(1.0, abs=0.01)
    factors = _factors()
    assert sap(_perfect(factors), factors) > 0.3  # a linear SVM on one feature cannot cut 4-5 classes cleanly
    assert sap(np.zeros((len(factors), 3)), factors) == 0.0
    assert sap(np.zeros((len(factors), 3)), factors, continuous_factors=True) == 0.0
    assert sap(perfect[:, [0, 0, 1, 1, 2, 2]], binary) == pytest.approx(0.0, abs=1e-12)
    assert sap(perfect[:, [1, 2, 0]], binary) == pytest.approx(sap(perfect, binary))


# -- DCI ------------------------------------------------------------------------------------

def test_dci_from_importance_by_hand():
    assert dci_from_importance(np.eye(3)) == pytest.approx({"disentanglement": 1.0, "completeness": 1.0})
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx(
        {"disentanglement": 0.0, "completeness": 0.0}, abs=1e-9)
    # One dimension carries 3/4 of its importance for factor 0 and 1/4 for factor 1; the other none.
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert dci_from_importance([[3.0, 1.0], [0.0, 0.0]]) == pytest.approx(
        {"disentanglement": 1 - h, "completeness": 1.0}, abs=1e-9)
    # Factor 0 split evenly over two dimensions, factor 1 explained by nothing.
    assert dci_from_importance([[1.0, 0.0], [1.0, 0.0]]) == pytest.approx(
        {"disentanglement": 1.0, "completeness": 0.0}, abs=1e-9)
    # Three dimensions, two factors: the entropies are in base K for D and base d for C.
    assert dci_from_importance([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]) == pytest.approx(
        {"disentanglement": 0.0, "completeness": 1.0}, abs=1e-9)
    assert dci_from_importance([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])["completeness"] == pytest.approx(0.0, abs=1e-9)
    # Weights: dimension 0 (importance 2) perfectly disentangled, dimension 1 (importance 2) evenly split.
    three = np.array([[2.0, 0.0], [1.0, 1.0]])
    assert dci_from_importance(three)["disentanglement"] == pytest.approx(0.5, abs=1e-9)


def test_dci_known_representations():
    factors = _factors(450)
    perfect = _perfect(factors)
    scores = dci(perfect, factors)
    assert scores["disentanglement"] > 0.95 and scores["completeness"] > 0.95
    assert scores["informativeness"] == pytest.approx(1.0)
    assert np.asarray(scores["importance"]).shape == (3, 3)
    constant = dci(np.zeros((len(factors), 3)), factors)
    assert constant["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert constant["completeness"] == pytest.approx(0.0, abs=1e-6)
    permuted = dci(perfect[:, [2, 0, 1]], factors)
    assert permuted["disentanglement"] == pytest.approx(scores["disentanglement"], abs=0.01)
    assert permuted["completeness"] == pytest.approx(scores["completeness"], abs=0.01)
    duplicated = dci(perfect[:, [0, 0, 1, 1, 2, 2]], factors)
    assert duplicated["completeness"] < 0.9 * scores["completeness"]


def test_factor_matrix_keeps_integers_and_bins_floats():
    rng = np.random.default_rng(0)
    factors = {"shape": np.array([3, 1, 3, 2] * 25), "x": rng.uniform(0, 1, 100),
               "grid": np.tile(np.linspace(0, 1, 5), 20)}
    matrix, names = factor_matrix(factors, n_bins=10)
    assert names == ("shape", "x", "grid")
    assert matrix[:4, 0].tolist() == [2, 0, 2, 1]
    assert len(np.unique(matrix[:, 1])) == 10
    assert sorted(np.unique(matrix[:, 2])) == [0, 1, 2, 3, 4]
