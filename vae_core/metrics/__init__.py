"""Metrics: likelihood bounds, disentanglement, reconstruction and sample quality.

Every public name of the submodules is importable from here:

* :mod:`~vae_core.metrics.likelihood` — ``evaluate`` (negative ELBO, its terms, active
  units), ``iwae_nll``, ``active_units``.
* :mod:`~vae_core.metrics.disentanglement` — ``mutual_info_matrix``, ``mig``, ``sap``,
  ``dci`` and their building blocks, as plain functions of codes and integer factors.
"""

from vae_core.metrics.disentanglement import (MIG_BINS, TEST_FRACTION, check_codes_factors, dci,
                                              dci_from_importance, discrete_entropy, factor_matrix,
                                              histogram_discretize, importance_matrix, mig,
                                              mutual_info_matrix, sap, sap_score_matrix)
from vae_core.metrics.likelihood import (ACTIVE_UNIT_THRESHOLD, IWAE_K_MAX, active_units, evaluate,
                                         iwae_nll)

__all__ = [
    "ACTIVE_UNIT_THRESHOLD", "IWAE_K_MAX", "active_units", "evaluate", "iwae_nll",
    "MIG_BINS", "TEST_FRACTION", "check_codes_factors", "dci", "dci_from_importance", "discrete_entropy",
    "factor_matrix", "histogram_discretize", "importance_matrix", "mig", "mutual_info_matrix", "sap",
    "sap_score_matrix",
]
