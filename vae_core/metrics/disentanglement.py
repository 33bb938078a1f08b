"""Disentanglement scores of codes against ground-truth factors: MIG, SAP and DCI.

Every function here is a plain function of an ``N×d`` float array of codes (one row per
image, e.g. the posterior means) and an ``N×K`` integer array of factor values; they follow
the original papers and the reference implementation, disentanglement_lib (Locatello et al.,
2019, ``disentanglement_lib/evaluation/metrics/{mig,sap_score,dci,utils}.py``), including
its discretisation, classifiers and train/test splits, so numbers compare with published
tables when the same sample counts are used:

* MIG (Chen et al., 2018): codes discretised into 20 equal-width histogram bins per
  dimension; entropies and mutual information in nats from the contingency table.
  disentanglement_lib scores 10,000 points.
* SAP (Kumar et al., 2018): per (dimension, factor) a one-feature linear SVM
  (``LinearSVC(C=0.01, class_weight="balanced")``) trained on 2/3 and scored on 1/3 of
  the points (10,000 and 5,000 in disentanglement_lib), or with ``continuous_factors`` the
  squared correlation R².
* DCI (Eastwood & Williams, 2018): the importance matrix from one gradient-boosted tree
  classifier per factor (scikit-learn's ``GradientBoostingClassifier`` with its defaults,
  as disentanglement_lib), the same 2/3 : 1/3 split; informativeness is the test accuracy.

The scores that sample from the generative process (FactorVAE, β-VAE) are in
:mod:`vae_core.metrics.sampled`.
"""

from __future__ import annotations

import numpy as np

from vae_core.errors import ConfigError

#: Histogram bins per code dimension for MIG (disentanglement_lib's ``discretizer.num_bins``).
MIG_BINS = 20
#: Fraction of the points held out to score the SAP and DCI classifiers: disentanglement_lib
#: trains on 10,000 and tests on 5,000.
TEST_FRACTION = 1.0 / 3.0


def check_codes_factors(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``codes`` (``N×d`` float) and ``factors`` (``N×K`` int).

    Raises
    ------
    ConfigError
        With one sentence, for arrays of the wrong rank, different lengths, fewer than two
        rows, non-finite codes or non-integer factors.
    """
    codes = np.asarray(codes)
    factors = np.asarray(factors)
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ConfigError(f"The codes must be an N×d array with d ≥ 1, not of shape {codes.shape}.")
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2 or factors.shape[1] == 0:
        raise ConfigError(f"The factors must be an N×K array with K ≥ 1, not of shape {factors.shape}.")
    if len(codes) != len(factors):
        raise ConfigError(f"There are {len(codes)} codes but {len(factors)} factor rows; they must match.")
    if len(codes) < 2:
        raise ConfigError("Disentanglement needs at least two codes.")
    if not np.issubdtype(codes.dtype, np.number) or not np.isfinite(codes).all():
        raise ConfigError("The codes must be finite numbers.")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.issubdtype(factors.dtype, np.number) or not np.all(np.mod(factors, 1) == 0):
            raise ConfigError("The factors must be integers (discretise continuous factors first, "
                              "e.g. with factor_matrix).")
        factors = factors.astype(np.int64)
    return codes.astype(np.float64, copy=False), factors


def factor_matrix(factors: dict, n_bins: int = MIG_BINS) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn a dataset's factors dict into an ``N×K`` integer array.

    Integer factors are re-labelled ``0 … m−1`` in sorted order; a float factor with more
    than ``n_bins`` distinct values (``shapes``' scale, rotation and position) is cut into
    ``n_bins`` equal-width bins over its range, the histogram discretisation
    disentanglement_lib applies to codes. A float factor with at most ``n_bins`` values
    (a grid, as in dSprites) keeps its values.

    Parameters
    ----------
    factors : dict of str to np.ndarray
        ``DatasetSplits.factors``: one array of length N per factor.
    n_bins : int

    Returns
    -------
    (np.ndarray, tuple of str)
        The ``N×K`` int64 array and the factor names in its column order.
    """
    if not factors:
        raise ConfigError("There are no factors.")
    names = tuple(factors)
    columns = []
    for name in names:
        values = np.asarray(factors[name])
        unique, inverse = np.unique(values, return_inverse=True)
        if np.issubdtype(values.dtype, np.integer) or len(unique) <= n_bins:
            columns.append(inverse.reshape(-1))
        else:
            columns.append(histogram_discretize(values[:, None].astype(np.float64), n_bins)[:, 0])
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise ConfigError("The factors have different lengths.")
    return np.stack(columns, axis=1).astype(np.int64), names


def histogram_discretize(values: np.ndarray, n_bins: int = MIG_BINS) -> np.ndarray:
    """Bin every column of ``values`` into ``n_bins`` equal-width bins over its own range.

    disentanglement_lib's ``_histogram_discretize``: the bin edges are ``np.histogram``'s
    and ``np.digitize`` against all but the last edge, so bins are numbered 1 … n_bins and
    the maximum falls in the last bin. A constant column lands in one bin.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        edges = np.histogram(values[:, j], n_bins)[1]
        out[:, j] = np.digitize(values[:, j], edges[:-1])
    return out


def _contingency_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information in nats of two integer label arrays (the plug-in estimate)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    a = a.reshape(-1)
    b = b.reshape(-1)
    n = len(a)
    joint = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1))
    joint = joint.reshape(a.max() + 1, b.max() + 1).astype(np.float64) / n
    pa = joint.sum(1, keepdims=True)
    pb = joint.sum(0, keepdims=True)
    nz = joint > 0
    mi = float(np.sum(joint[nz] * (np.log(joint[nz]) - np.log((pa @ pb)[nz]))))
    return max(mi, 0.0)  # rounding can give −1e-17 for independent labels


def discrete_entropy(factors) -> np.ndarray:
    """Entropy in nats of every column of an ``N×K`` integer array (H(v) = I(v; v))."""
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    return np.array([_contingency_mi(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])


def mutual_info_matrix(codes, factors, n_bins: int = MIG_BINS) -> np.ndarray:
    """Discretised mutual information between every factor and every code dimension.

    The estimate MIG is built on (disentanglement_lib's ``discrete_mutual_info`` after
    ``make_discretizer``): each code dimension is cut into ``n_bins`` equal-width bins over
    its own range (:func:`histogram_discretize`), and I(v_k; z_j) is the plug-in mutual
    information of the resulting contingency table with the factor's values, in nats
    (natural logarithm, as ``sklearn.metrics.mutual_info_score``). Dividing row k by
    ``discrete_entropy(factors)[k]`` gives the normalised MI in [0, 1].

    Parameters
    ----------
    codes : array_like
        ``N×d`` codes (e.g. posterior means), finite.
    factors : array_like
        ``N×K`` integer factor values (a 1-D array is one factor). Continuous factors must
        be discretised first (:func:`factor_matrix`).
    n_bins : int
        Histogram bins per code dimension (20 in disentanglement_lib).

    Returns
    -------
    np.ndarray
        float64 array of shape ``(K, d)``: row k, column j is I(v_k; z_j) in nats.

    Raises
    ------
    ConfigError
        For inputs that do not fit (see :func:`check_codes_factors`) or ``n_bins`` < 1.
    """
    codes, factors = check_codes_factors(codes, factors)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ConfigError(f"n_bins must be a whole number of at least 1, not {n_bins!r}.")
    binned = histogram_discretize(codes, int(n_bins))
    return np.array([[_contingency_mi(factors[:, k], binned[:, j]) for j in range(codes.shape[1])]
                     for k in range(factors.shape[1])])


def mig(codes, factors, n_bins: int = MIG_BINS) -> float:
    """Mutual Information Gap (Chen et al., 2018).

    For every factor, the gap between the largest and second-largest discretised mutual
    information with a code dimension, divided by the factor's entropy, averaged over the
    factors: (1/K) Σ_k (I(v_k; z_(1)) − I(v_k; z_(2))) / H(v_k). 1 when each factor is
    fully captured by one dimension and by no other; 0 when the best two tie (a duplicated
    dimension) or nothing is captured. A factor with a single value (entropy 0) has no
    information to capture and is left out of the mean, instead of disentanglement_lib's
    division by zero.

    Parameters
    ----------
    codes : array_like
        ``N×d`` codes; with d = 1 the second-largest MI is 0.
    factors : array_like
        ``N×K`` integer factor values.
    n_bins : int
        Histogram bins per code dimension (:func:`mutual_info_matrix`).

    Returns
    -------
    float
    """
    codes, factors = check_codes_factors(codes, factors)
    mi = mutual_info_matrix(codes, factors, n_bins)
    entropy = discrete_entropy(factors)
    ordered = -np.sort(-mi, axis=1)
    second = ordered[:, 1] if ordered.shape[1] > 1 else np.zeros(len(ordered))
    keep = entropy > 0
    if not keep.any():
        return 0.0
    return float(np.mean((ordered[keep, 0] - second[keep]) / entropy[keep]))


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 1:
        raise ConfigError("There are too few codes to split into training and test points.")
    return order[n_test:], order[:n_test]


def sap_score_matrix(codes, factors, continuous_factors: bool = False, *,
                     test_fraction: float = TEST_FRACTION, seed: int = 0) -> np.ndarray:
    """The ``(K, d)`` matrix SAP ranks: how well each dimension alone predicts each factor.

    Discrete factors: the test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")``
    trained on the dimension alone (disentanglement_lib); a factor with one value in the
    training points is predicted perfectly by any dimension (a score of 1 everywhere, so
    its gap is 0). Continuous factors: R² = cov(z_j, v_k)² / (var z_j · var v_k) on all the
    points, 0 for a constant dimension or factor.
    """
    if continuous_factors:
        return _r2_matrix(*_check_continuous(codes, factors))
    codes, factors = check_codes_factors(codes, factors)
    n, d = codes.shape
    k_count = factors.shape[1]
    out = np.zeros((k_count, d))
    from sklearn.svm import LinearSVC

    train, test = _split(n, test_fraction, seed)
    for k in range(k_count):
        y_train, y_test = factors[train, k], factors[test, k]
        if len(np.unique(y_train)) < 2:
            out[k] = 1.0
            continue
        for j in range(d):
            # Standardising changes no linear decision but lets the solver converge on
            # codes of any scale (disentanglement_lib feeds raw codes).
            z = codes[:, j]
            scale = z[train].std()
            z = (z - z[train].mean()) / (scale if scale > 0 else 1.0)
            classifier = LinearSVC(C=0.01, class_weight="balanced", max_iter=10_000)
            classifier.fit(z[train, None], y_train)
            out[k, j] = float(np.mean(classifier.predict(z[test, None]) == y_test))
    return out


def sap(codes, factors, continuous_factors: bool = False, *, test_fraction: float = TEST_FRACTION,
        seed: int = 0) -> float:
    """Separated Attribute Predictability (Kumar et al., 2018).

    The mean over factors of the difference between the best and second-best single
    dimension's score in :func:`sap_score_matrix`: classification accuracy of a linear SVM
    on held-out points for discrete factors, R² for ``continuous_factors`` (as
    disentanglement_lib's ``compute_sap``).

    Parameters
    ----------
    codes : array_like
        ``N×d`` codes.
    factors : array_like
        ``N×K`` factor values: integers, or any numbers with ``continuous_factors=True``.
    continuous_factors : bool
        Score by R² instead of classification accuracy.
    test_fraction : float
        Share of the points the SVMs are scored on (1/3: disentanglement_lib's 5,000 of 15,000).
    seed : int
        Seeds the train/test split.

    Returns
    -------
    float
    """
    matrix = sap_score_matrix(codes, factors, continuous_factors, test_fraction=test_fraction, seed=seed)
    ordered = -np.sort(-matrix, axis=1)
    second = ordered[:, 1] if ordered.shape[1] > 1 else np.zeros(len(ordered))
    return float(np.mean(ordered[:, 0] - second))


def _check_continuous(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if (factors.ndim != 2 or not np.issubdtype(factors.dtype, np.number)
            or not np.isfinite(factors).all()):
        raise ConfigError("Continuous factors must be a finite N×K array of numbers.")
    codes, _ = check_codes_factors(codes, np.zeros((len(factors), 1), dtype=np.int64))
    return codes, factors.astype(np.float64)


def _r2_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    out = np.zeros((factors.shape[1], codes.shape[1]))
    for k in range(factors.shape[1]):
        for j in range(codes.shape[1]):
            cov = np.cov(codes[:, j], factors[:, k], ddof=1)
            if cov[0, 0] > 1e-12 and cov[1, 1] > 0:
                out[k, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
    return out


def importance_matrix(codes, factors, *, test_fraction: float = TEST_FRACTION, seed: int = 0
                      ) -> tuple[np.ndarray, float, float]:
    """DCI's ``(d, K)`` importance matrix from gradient-boosted trees, with their accuracies.

    One ``sklearn.ensemble.GradientBoostingClassifier`` (scikit-learn's defaults: 100
    stages of depth-3 trees, as disentanglement_lib's ``compute_importance_gbt``) per factor
    predicts it from all the codes; column k is its impurity-based ``feature_importances_``
    (non-negative, summing to 1 unless no split helped). A factor with one value in the
    training points gets a zero column and accuracy 1.

    Returns
    -------
    (np.ndarray, float, float)
        The importance matrix (rows: code dimensions, columns: factors), and the mean over
        factors of the train and test accuracy.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    codes, factors = check_codes_factors(codes, factors)
    train, test = _split(len(codes), test_fraction, seed)
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    train_acc, test_acc = [], []
    for k in range(factors.shape[1]):
        y = factors[:, k]
        if len(np.unique(y[train])) < 2:
            train_acc.append(1.0)
            test_acc.append(float(np.mean(y[test] == y[train][0])))
            continue
        model = GradientBoostingClassifier(random_state=seed)
        model.fit(codes[train], y[train])
        matrix[:, k] = np.abs(model.feature_importances_)
        train_acc.append(float(np.mean(model.predict(codes[train]) == y[train])))
        test_acc.append(float(np.mean(model.predict(codes[test]) == y[test])))
    return matrix, float(np.mean(train_acc)), float(np.mean(test_acc))


def _entropy_base(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each column of non-negative weights ``p`` (normalised per column) in log base ``base``."""
    p = p / p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=0) / np.log(base)


def dci_from_importance(matrix) -> dict:
    """Disentanglement and completeness of a ``(d, K)`` importance matrix (Eastwood & Williams, 2018).

    Disentanglement: per code dimension 1 − H_K(P_j·) (its importance spread over the K
    factors, entropy in base K), weighted by the dimension's share of the total importance.
    Completeness: per factor 1 − H_d(P_·k) (spread over the d dimensions, base d), weighted
    by the factor's share. As disentanglement_lib, 1e-11 is added before the entropies (a
    dimension with no importance counts as fully spread) and an all-zero matrix weighs
    everything equally. With K = 1 (or d = 1) the entropy base would be 1; disentanglement
    (completeness) is then 1 by definition: one factor cannot be mixed with another.
    """
    m = np.asarray(matrix, dtype=np.float64)
    d, k = m.shape
    weights = m if m.sum() > 0 else np.ones_like(m)
    per_code = 1.0 - _entropy_base(m.T + 1e-11, k) if k > 1 else np.ones(d)
    per_factor = 1.0 - _entropy_base(m + 1e-11, d) if d > 1 else np.ones(k)
    code_share = weights.sum(axis=1) / weights.sum()
    factor_share = weights.sum(axis=0) / weights.sum()
    return {"disentanglement": float(np.sum(per_code * code_share)),
            "completeness": float(np.sum(per_factor * factor_share))}


def dci(codes, factors, *, test_fraction: float = TEST_FRACTION, seed: int = 0) -> dict:
    """DCI: disentanglement, completeness and informativeness (Eastwood & Williams, 2018).

    Parameters
    ----------
    codes : array_like
        ``N×d`` codes.
    factors : array_like
        ``N×K`` integer factor values.
    test_fraction : float
        Share of the points held out for informativeness (1/3, disentanglement_lib's 5,000 of 15,000).
    seed : int
        Seeds the split and the trees.

    Returns
    -------
    dict
        ``disentanglement``, ``completeness`` (:func:`dci_from_importance`),
        ``informativeness`` (mean test accuracy of the per-factor classifiers),
        ``informativeness_train`` and ``importance`` (the ``d×K`` matrix as nested lists).
    """
    matrix, train_acc, test_acc = importance_matrix(codes, factors, test_fraction=test_fraction, seed=seed)
    out = dci_from_importance(matrix)
    out.update(informativeness=test_acc, informativeness_train=train_acc, importance=matrix.tolist())
    return out
