"""Headless latent-space operations on plain NumPy arrays (codes are ``N×d`` ``float32``).

One module per concern; this package re-exports their public names, so
``from vae_core.latent import interpolate`` works as well as the full path:

``codec``
    :func:`encode_dataset` and :func:`decode`: batched, device-aware, cancellable.
``paths``
    :func:`lerp`, :func:`slerp`, :data:`EASINGS` and :func:`interpolate` (keyframe paths).
``expressions``
    latent arithmetic: :func:`parse_expression`, the operand classes, :class:`LatentResolver`
    and :func:`evaluate_expression` (syntax in that module's docstring).
``edits``
    :func:`attribute_vector`, :func:`apply_attribute`, :func:`traverse`,
    :func:`traversal_dims`, :func:`traversal_grid` and :func:`sample_prior`.
``neighbors``
    :class:`NeighborIndex` and :func:`nearest_neighbors` (exact k-NN).
``posterior``
    q(z|x) on the map (:func:`posterior_ellipse`, :func:`ellipse_outline`,
    :func:`posterior_cloud`), the prior's holes (:func:`holes_map`) and pixel samples of
    p(x|z) (:func:`likelihood_samples`).
``inpaint``
    :func:`inpaint` / :func:`iter_inpaint`: fill missing pixels, observed ones kept exactly.

Nothing here imports Qt.
"""

from vae_core.errors import Cancelled, ExpressionError
from vae_core.latent.codec import decode, encode_dataset
from vae_core.latent.edits import (apply_attribute, attribute_vector, sample_prior, traversal_dims, traversal_grid,
                                   traverse)
from vae_core.latent.expressions import (Expression, IndexOperand, LabelOperand, LatentResolver, MeanOperand,
                                         NamedOperand, Operand, OperandContext, Term, evaluate_expression,
                                         parse_expression)
from vae_core.latent.inpaint import INPAINT_METHODS, InpaintStep, inpaint, iter_inpaint
from vae_core.latent.neighbors import NeighborIndex, nearest_neighbors
from vae_core.latent.paths import EASINGS, interpolate, lerp, slerp
from vae_core.latent.posterior import (HolesMap, ellipse_outline, holes_map, likelihood_samples, posterior_cloud,
                                       posterior_ellipse)

__all__ = [
    "Cancelled",
    "encode_dataset",
    "decode",
    "lerp",
    "slerp",
    "interpolate",
    "EASINGS",
    "ExpressionError",
    "Expression",
    "Term",
    "Operand",
    "IndexOperand",
    "LabelOperand",
    "MeanOperand",
    "NamedOperand",
    "parse_expression",
    "evaluate_expression",
    "LatentResolver",
    "OperandContext",
    "attribute_vector",
    "apply_attribute",
    "traverse",
    "traversal_dims",
    "traversal_grid",
    "sample_prior",
    "nearest_neighbors",
    "NeighborIndex",
    "posterior_ellipse",
    "ellipse_outline",
    "posterior_cloud",
    "HolesMap",
    "holes_map",
    "likelihood_samples",
    "INPAINT_METHODS",
    "InpaintStep",
    "inpaint",
    "iter_inpaint",
]
