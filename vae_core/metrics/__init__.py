"""Metrics: likelihood bounds, disentanglement, reconstruction and sample quality.

Every public name of the submodules is importable from here:

* :mod:`~vae_core.metrics.likelihood` — ``evaluate`` (negative ELBO, its terms, active
  units), ``iwae_nll``, ``active_units``.
* :mod:`~vae_core.metrics.disentanglement` — ``mutual_info_matrix``, ``mig``, ``sap``,
  ``dci`` and their building blocks, as plain functions of codes and integer factors.
* :mod:`~vae_core.metrics.reconstruction` — ``mse``, ``psnr``, ``ssim`` per image and
  ``reconstruction_quality`` of a model on a dataset.
* :mod:`~vae_core.metrics.sample_quality` — ``frechet_distance`` and ``precision_recall``
  of feature sets, and ``sample_quality`` of a model in the features of a classifier
  trained on the dataset (``feature_net``, cached): not comparable with Inception FID.
* :mod:`~vae_core.metrics.sampled` — ``factor_vae_score`` and ``beta_vae_score``, which
  sample images with chosen factors from a ``FactorSampler`` (``DatasetFactorSampler``).
"""

from vae_core.metrics.disentanglement import (MIG_BINS, TEST_FRACTION, check_codes_factors, dci,
                                              dci_from_importance, discrete_entropy, factor_matrix,
                                              histogram_discretize, importance_matrix, mig,
                                              mutual_info_matrix, sap, sap_score_matrix)
from vae_core.metrics.reconstruction import PSNR_MAX, mse, psnr, reconstruction_quality, ssim, ssim_window
from vae_core.metrics.sample_quality import (NOT_COMPARABLE, PR_K, FeatureNet, default_cache_dir, feature_net,
                                             features_of, frechet_distance, generate, precision_recall,
                                             sample_quality)
from vae_core.metrics.sampled import (DatasetFactorSampler, FactorSampler, beta_vae_score, factor_vae_score,
                                      model_representation)
from vae_core.metrics.likelihood import (ACTIVE_UNIT_THRESHOLD, IWAE_K_MAX, active_units, evaluate,
                                         iwae_nll)

__all__ = [
    "ACTIVE_UNIT_THRESHOLD", "IWAE_K_MAX", "active_units", "evaluate", "iwae_nll",
    "MIG_BINS", "TEST_FRACTION", "check_codes_factors", "dci", "dci_from_importance", "discrete_entropy",
    "factor_matrix", "histogram_discretize", "importance_matrix", "mig", "mutual_info_matrix", "sap",
    "sap_score_matrix",
    "PSNR_MAX", "mse", "psnr", "reconstruction_quality", "ssim", "ssim_window",
    "NOT_COMPARABLE", "PR_K", "FeatureNet", "default_cache_dir", "feature_net", "features_of", "frechet_distance",
    "generate", "precision_recall", "sample_quality",
    "DatasetFactorSampler", "FactorSampler", "beta_vae_score", "factor_vae_score", "model_representation",
]
