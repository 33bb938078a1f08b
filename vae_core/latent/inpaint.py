"""Fill missing pixels of an image with a VAE (missing-data imputation).

Two methods, both keeping the observed pixels exactly:

``"iterate"``
    Iterated encode/decode with the observed pixels clamped (Rezende et al., 2014, §5.3,
    with the posterior mean instead of a sample so the result is deterministic):
    ``x ← observed·x_obs + missing·decode(μ(x))``. The missing pixels start at the mean of the
    observed ones.
``"optimize"``
    Gradient ascent (Adam) on ``log p(x_obs | z) + log p(z)`` over the code ``z``, from the
    encoder's mean of the starting image: the most probable code given only the pixels that
    are there. The missing pixels are the decoded mean at that code.

:func:`iter_inpaint` yields every step (a worker shows them as they come and can stop
between steps); :func:`inpaint` runs to the end and stacks them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["INPAINT_METHODS", "InpaintStep", "inpaint", "iter_inpaint"]

INPAINT_METHODS = ("iterate", "optimize")


@dataclass(frozen=True)
class InpaintStep:
    """One step of :func:`iter_inpaint`: the filled image (``C×H×W``) and the code it came from."""

    step: int            # 0 is the starting fill
    image: np.ndarray    # observed pixels exactly as given, missing ones filled
    code: np.ndarray     # the latent code whose decoding filled the missing pixels (d)


def _prepare(model, image, observed, label):
    image = np.asarray(image, dtype=np.float32)
    shape = tuple(getattr(model, "image_shape", image.shape))
    if image.shape != shape:
        raise ValueError(f"The image has shape {image.shape}; this model reads {shape}.")
    observed = np.asarray(observed, dtype=bool)
    if observed.shape == shape[1:]:
        observed = np.broadcast_to(observed[None], shape)
    if observed.shape != shape:
        raise ValueError(f"The mask has shape {observed.shape}; it must be {shape[1:]} or {shape}.")
    if getattr(model, "conditional", False) and label is None:
        raise ValueError("This model is conditional: inpainting needs the image's label.")
    return image, np.ascontiguousarray(observed)


def iter_inpaint(model, image, observed, *, steps: int = 20, method: str = "iterate", label: int | None = None,
                 lr: float = 0.05) -> Iterator[InpaintStep]:
    """Fill the pixels where ``observed`` is False, yielding each step.

    Parameters
    ----------
    model
        A :class:`~vae_core.BaseVAE` (any model with ``encode``/``decode``; ``"optimize"``
        also needs ``decode_logits``, ``recon_nll``'s likelihood and a differentiable decoder).
    image
        ``C×H×W`` float image in [0, 1] (the values at missing pixels are ignored).
    observed
        Boolean ``H×W`` or ``C×H×W`` mask, True where the pixel is known.
    steps
        Steps after the starting fill (``steps + 1`` yields).
    method
        ``"iterate"`` or ``"optimize"`` (module docstring).
    label
        The class, for a conditional model.
    lr
        Adam's step size for ``"optimize"``.

    Yields
    ------
    InpaintStep
        Step 0 is the starting fill; ``image[observed]`` is bit-for-bit the input's in every step.
    """
    import torch

    from vae_core.models.base import normal_log_density

    if method not in INPAINT_METHODS:
        raise ValueError(f"Unknown inpainting method {method!r}: use one of {', '.join(INPAINT_METHODS)}.")
    if int(steps) < 0:
        raise ValueError(f"steps must be 0 or more, got {steps}.")
    image, observed = _prepare(model, image, observed, label)
    missing = ~observed
    start = image.copy()
    start[missing] = float(image[observed].mean()) if observed.any() else 0.5
    y = None if label is None or not getattr(model, "conditional", False) else torch.tensor([int(label)])
    obs_t = torch.from_numpy(observed[None].astype(np.float32))
    x_obs = torch.from_numpy(image[None])

    def clamp(filled: np.ndarray) -> np.ndarray:
        return np.where(observed, image, filled).astype(np.float32)

    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        with torch.no_grad():
            z = model.encode(torch.from_numpy(start[None]), y)[0]
        current = start
        yield InpaintStep(0, current, z[0].numpy().copy())
        if method == "iterate":
            for step in range(1, int(steps) + 1):
                with torch.no_grad():
                    z = model.encode(torch.from_numpy(current[None]), y)[0]
                    decoded = model.decode(z, y)[0].numpy()
                current = clamp(decoded)
                yield InpaintStep(step, current, z[0].numpy().copy())
            return
        likelihood = getattr(getattr(model, "config", None), "likelihood", None)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError("Optimising the code needs the model's likelihood p(x|z); use the iterate method.")
        if not getattr(model, "stochastic_posterior", True):
            raise ValueError("This model snaps codes to a codebook, so they cannot be optimised; use the iterate "
                             "method.")
        z = z.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=float(lr))
        for step in range(1, int(steps) + 1):
            optimizer.zero_grad()
            logits = model.decode_logits(z, y)
            if likelihood == "bernoulli":
                nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, x_obs, reduction="none")
            else:
                nll = 0.5 * ((torch.sigmoid(logits) - x_obs) / model.config.gaussian_std).pow(2)
            loss = (nll * obs_t).sum() - normal_log_density(z).sum()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                decoded = model.decode(z, y)[0].numpy()
            current = clamp(decoded)
            yield InpaintStep(step, current, z.detach()[0].numpy().copy())
    finally:
        if was_training:
            model.train()


def inpaint(model, image, observed, steps: int = 20, method: str = "iterate", *, label: int | None = None,
            lr: float = 0.05) -> np.ndarray:
    """Fill the pixels where ``observed`` is False; every step, ``(steps + 1)×C×H×W``.

    The last row is the result. See :func:`iter_inpaint` for the parameters.
    """
    return np.stack([s.image for s in iter_inpaint(model, image, observed, steps=steps, method=method,
                                                    label=label, lr=lr)])
