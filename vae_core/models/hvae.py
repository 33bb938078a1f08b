"""Hierarchical VAE: two or more stochastic layers with top-down generation.

The default is the two-layer model of Burda et al. (2016, IWAE paper, section 5):
784 → 200-200 (tanh) → 100 stochastic → 100-100 (tanh) → 50 stochastic, generating
top-down 50 → 100-100 → 100 → 200-200 → 784, with bottom-up inference
q(z1|x) q(z2|z1). ``inference="top-down"`` instead infers like the ladder VAE
(Sønderby et al., 2016) that NVAE builds on: a deterministic bottom-up pass, then
top-down sampling in which each layer's posterior is the precision-weighted combination
of the bottom-up estimate and the prior given the layer above (so every layer's KL has a
closed form). ``backbone="conv"`` puts convolutions between the image and the first
stochastic layer, for larger images; it defaults to top-down inference.

The map code is the top layer (``map_layer="top"``), a given layer, or all layers
concatenated from the top down. Decoding a layer's code runs the generative path from
that layer down with the layers below at their conditional means.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_core.models.base import BaseVAE, ImportanceTerms, ModelConfig, elbo_from_terms, normal_log_density, randn
from vae_core.models.conv import n_downsamples
from vae_core.registry import register_model

BACKBONES = ("mlp", "conv")
INFERENCE = ("auto", "bottom-up", "top-down")


@dataclass(frozen=True)
class HVAEConfig(ModelConfig):
    """Config of :class:`HierarchicalVAE`.

    Attributes
    ----------
    latent_dim : int
        Size of the top stochastic layer.
    lower_dims : tuple of int
        Sizes of the stochastic layers below the top, bottom first (at least one).
    hidden : tuple of int
        Width of the deterministic layers of each stage, bottom first: one entry per
        stochastic layer. Stage l maps layer l−1 (or the image) to layer l and back.
    depth : int
        Deterministic (tanh) layers per stage.
    backbone : {"mlp", "conv"}
        What reads and writes the image: fully-connected, or stride-2 convolutions.
    channels : tuple of int
        Feature maps of the conv backbone's stages.
    inference : {"auto", "bottom-up", "top-down"}
        ``bottom-up`` is Burda et al.'s q(z1|x) q(z2|z1); ``top-down`` the ladder
        posterior. ``auto``: bottom-up for the mlp backbone, top-down for conv.
    map_layer : str
        The map code: ``"top"``, ``"all"`` (layers concatenated, top first) or a layer
        number ``"1"`` (bottom) to ``str(number of layers)``.
    """

    latent_dim: int = 50
    lower_dims: tuple[int, ...] = (100,)
    hidden: tuple[int, ...] = (200, 100)
    depth: int = 2
    backbone: str = "mlp"
    channels: tuple[int, ...] = (32, 64)
    inference: str = "auto"
    map_layer: str = "top"

    def __post_init__(self) -> None:
        super().__post_init__()
        layers = len(self.lower_dims) + 1
        if len(self.lower_dims) < 1 or min(self.lower_dims) < 1:
            raise ValueError("A hierarchical VAE needs at least one lower stochastic layer (lower_dims).")
        if len(self.hidden) != layers or min(self.hidden) < 1:
            raise ValueError(f"hidden needs one positive width per stochastic layer ({layers}), got {self.hidden}.")
        if self.depth < 1:
            raise ValueError("depth must be at least 1.")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}.")
        if self.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {self.inference!r}.")
        valid = ("top", "all", *(str(i) for i in range(1, layers + 1)))
        if str(self.map_layer) not in valid:
            raise ValueError(f"map_layer must be one of {', '.join(valid)}, got {self.map_layer!r}.")


def _stage(n_in: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def _gaussian_kl(mu, logvar, prior_mu, prior_logvar) -> Tensor:
    """KL(N(mu, e^logvar) || N(prior_mu, e^prior_logvar)) per dimension."""
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) * torch.exp(-prior_logvar) - 1.0)


@register_model("hvae", config=HVAEConfig)
class HierarchicalVAE(BaseVAE):
    """Stochastic layers z_1 … z_L; p(z_L) p(z_{L-1}|z_L) … p(x|z_1)."""

    description = "Hierarchical VAE: stacked stochastic layers, generated top-down (Burda et al., 2016)"
    # The map code's posterior depends on the sampled layers below it (or above, top-down).
    gaussian_posterior = False

    def __init__(self, config: HVAEConfig) -> None:
        super().__init__(config)
        self.sizes = [*config.lower_dims, config.latent_dim]  # bottom first
        self._lower_noise_seed: int | None = None
        self._lower_noise: dict[int, Tensor] = {}
        self.top_down = config.inference == "top-down" or (config.inference == "auto" and config.backbone == "conv")
        c, h, w = config.image_shape
        hidden, depth, n_layers = list(config.hidden), config.depth, len(self.sizes)
        if config.backbone == "conv":
            # Same downsampling rule as the conv VAE (28 → 14 → 7); sizes that cannot be
            # halved keep their resolution through one stride-1 layer.
            n = n_downsamples(h, w, len(config.channels))
            chans = list(config.channels[: max(1, n)])
            down = dict(kernel_size=4, stride=2, padding=1) if n else dict(kernel_size=3, padding=1)
            enc: list[nn.Module] = []
            prev = c
            for ch in chans:
                enc += [nn.Conv2d(prev, ch, **down), nn.LeakyReLU(0.2)]
                prev = ch
            self.front = nn.Sequential(*enc, nn.Flatten())
            self._feature_shape = (prev, h >> n, w >> n)
            n_features = math.prod(self._feature_shape)
            rev = list(reversed(chans))
            dec: list[nn.Module] = []
            for a, b in zip(rev, rev[1:] + rev[-1:]):
                dec += [(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) if n else nn.Conv2d(a, b, 3, padding=1)),
                        nn.LeakyReLU(0.2)]
            dec.append(nn.Conv2d(rev[-1], c, 3, padding=1))
            self.back = nn.Sequential(*dec)
            self.out = nn.Sequential(_stage(self.sizes[0], hidden[0], depth), nn.Linear(hidden[0], n_features))
        else:
            self.front = nn.Flatten()
            n_features = c * h * w
            self.back = None
            self.out = nn.Sequential(_stage(self.sizes[0], hidden[0], depth), nn.Linear(hidden[0], n_features))
        # Inference: stage l reads layer l-1's sample (bottom-up) or its features (top-down).
        inputs = [n_features] + (hidden[:-1] if self.top_down else self.sizes[:-1])
        self.up = nn.ModuleList(_stage(inputs[i], hidden[i], depth) for i in range(n_layers))
        self.up_heads = nn.ModuleList(nn.Linear(hidden[i], 2 * self.sizes[i]) for i in range(n_layers))
        # Generation: down[l] gives p(z_l | z_{l+1}).
        self.down = nn.ModuleList(
            nn.Sequential(_stage(self.sizes[i + 1], hidden[i + 1], depth), nn.Linear(hidden[i + 1], 2 * self.sizes[i]))
            for i in range(n_layers - 1)
        )

    # -- which layers form the map code ------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return sum(self.sizes[i] for i in self._map_layers())

    def _map_layers(self) -> list[int]:
        """Indices (bottom = 0) of the layers in the map code, in code order."""
        choice = str(self.config.map_layer)
        if choice == "top":
            return [len(self.sizes) - 1]
        if choice == "all":
            return list(reversed(range(len(self.sizes))))
        return [int(choice) - 1]

    def map_code_choices(self) -> dict[str, str]:
        n = len(self.sizes)
        choices = {"top": f"Top layer z{n} ({self.sizes[-1]}-D)"}
        for i in reversed(range(1, n)):
            choices[str(i)] = f"Layer z{i} ({self.sizes[i - 1]}-D)" + (", bottom" if i == 1 else "")
        choices["all"] = f"All layers ({sum(self.sizes)}-D)"
        return choices

    @property
    def map_code_choice(self) -> str:
        choice = str(self.config.map_layer)
        return "top" if choice == str(len(self.sizes)) else choice

    def set_map_code(self, choice: str) -> None:
        super().set_map_code(choice)
        # Only the config changes: the weights serve every choice.
        self.config = dataclasses.replace(self.config, map_layer=choice)
        if not self.lower_layers:
            self.set_lower_noise(None)

    @property
    def lower_layers(self) -> int:
        chosen = self._map_layers()
        return 0 if len(chosen) > 1 else chosen[0]

    @property
    def lower_noise_seed(self) -> int | None:
        return self._lower_noise_seed

    def set_lower_noise(self, seed: int | None) -> None:
        """Decode with the layers below the map code drawn from p(z_l | z_{l+1}) with one
        fixed noise vector per layer (drawn from ``seed``), or at their means (None).

        The same noise serves every code, so decoding stays a smooth function of the map
        code: hovering and interpolating show one consistent draw of the lower layers'
        detail, and another seed shows another.
        """
        if seed is not None and not self.lower_layers:
            raise ValueError("The map shows all layers or the bottom one: there are no layers below it to sample.")
        self._lower_noise_seed = None if seed is None else int(seed)
        self._lower_noise = {}
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
            for i in range(len(self.sizes) - 1):
                self._lower_noise[i] = torch.randn(1, self.sizes[i], generator=generator)

    # -- the two passes --------------------------------------------------------------------
    def _prior_params(self, layer: int, above: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.down[layer](above).chunk(2, dim=-1)
        return mu, logvar

    def _posterior(self, x: Tensor, k: int, generator=None, sample: bool = True) -> list[dict[str, Tensor]]:
        """Sample (or take the means of) every layer of q(z|x), ``k`` rows per image.

        Returns one dict per layer, bottom first, with ``z``, ``eps``, the posterior
        ``mu``/``logvar`` and the prior's ``prior_mu``/``prior_logvar`` given the layer
        above (zeros for the top), all ``(k·B)×size``.
        """
        features = self.front(x)
        features = features.unsqueeze(0).expand(k, *features.shape).reshape(-1, features.shape[-1])
        n_layers = len(self.sizes)
        layers: list[dict[str, Tensor]] = [{} for _ in range(n_layers)]

        def draw(layer: dict, mu: Tensor, logvar: Tensor) -> Tensor:
            eps = randn(mu.shape, mu, generator) if sample else torch.zeros_like(mu)
            layer.update(mu=mu, logvar=logvar, eps=eps, z=mu + eps * torch.exp(0.5 * logvar))
            return layer["z"]

        if not self.top_down:
            inp = features
            for i in range(n_layers):
                mu, logvar = self.up_heads[i](self.up[i](inp)).chunk(2, dim=-1)
                inp = draw(layers[i], mu, logvar)
            for i in range(n_layers - 1):
                layers[i]["prior_mu"], layers[i]["prior_logvar"] = self._prior_params(i, layers[i + 1]["z"])
        else:
            bottom_up, d = [], features
            for i in range(n_layers):
                d = self.up[i](d)
                bottom_up.append(self.up_heads[i](d).chunk(2, dim=-1))
            draw(layers[-1], *bottom_up[-1])
            for i in reversed(range(n_layers - 1)):
                prior_mu, prior_logvar = self._prior_params(i, layers[i + 1]["z"])
                mu_hat, logvar_hat = bottom_up[i]
                precision_hat, precision_prior = torch.exp(-logvar_hat), torch.exp(-prior_logvar)
                precision = precision_hat + precision_prior
                mu = (mu_hat * precision_hat + prior_mu * precision_prior) / precision
                draw(layers[i], mu, -torch.log(precision))
                layers[i]["prior_mu"], layers[i]["prior_logvar"] = prior_mu, prior_logvar
        top = layers[-1]
        top["prior_mu"], top["prior_logvar"] = torch.zeros_like(top["z"]), torch.zeros_like(top["z"])
        return layers

    def _logits_from_bottom(self, z_bottom: Tensor) -> Tensor:
        h = self.out(z_bottom)
        if self.back is not None:
            return self.back(h.view(-1, *self._feature_shape))
        return h.view(-1, *self.config.image_shape)

    # -- BaseVAE contract -----------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None):
        """Posterior parameters of the map code, with the layers below the top at their means."""
        layers = self._posterior(x, 1, sample=False)
        chosen = self._map_layers()
        return (torch.cat([layers[i]["mu"] for i in chosen], 1), torch.cat([layers[i]["logvar"] for i in chosen], 1))

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """From a map code down to the image, the layers below it at their conditional means
        (or sampled with fixed noise, see :meth:`set_lower_noise`).

        With ``map_layer="all"`` the code holds every layer and only the bottom one
        (the last ``lower_dims[0]`` numbers) shapes the image, as in the model.
        """
        chosen = self._map_layers()
        if len(chosen) > 1:
            return self._logits_from_bottom(z[:, -self.sizes[0]:])
        for i in reversed(range(chosen[0])):
            mu, logvar = self._prior_params(i, z)
            eps = self._lower_noise.get(i)
            z = mu if eps is None else mu + eps.to(mu) * torch.exp(0.5 * logvar)
        return self._logits_from_bottom(z)

    def forward(self, x: Tensor, y: Tensor | None = None):
        layers = self._posterior(x, 1, sample=self.training)
        chosen = self._map_layers()
        pick = lambda key: torch.cat([layers[i][key] for i in chosen], 1)  # noqa: E731
        return self._logits_from_bottom(layers[0]["z"]), pick("mu"), pick("logvar"), pick("z")

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Mean images of ``n`` ancestral samples z_L ~ p(z_L), z_l ~ p(z_l|z_{l+1})."""
        ref = next(self.parameters())
        z = randn((n, self.sizes[-1]), ref, generator)
        for i in reversed(range(len(self.sizes) - 1)):
            mu, logvar = self._prior_params(i, z)
            z = mu + randn(mu.shape, mu, generator) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self._logits_from_bottom(z))

    def sample_posterior(self, x: Tensor, n: int, y: Tensor | None = None, generator=None) -> Tensor:
        layers = self._posterior(x, n, generator)
        codes = torch.cat([layers[i]["z"] for i in self._map_layers()], 1)
        return codes.view(n, x.shape[0], -1)

    def importance_terms(self, x: Tensor, y: Tensor | None = None, k: int = 1, generator=None) -> ImportanceTerms:
        """Log densities over every stochastic layer.

        The KL estimate is in closed form for the top layer (given the layer below, for
        bottom-up inference) and for every layer of top-down inference (given the layer
        above); bottom-up lower layers use log q − log p at the sample.
        """
        b = x.shape[0]
        layers = self._posterior(x, k, generator)
        logits = self._logits_from_bottom(layers[0]["z"])
        log_likelihood = -self.recon_nll(logits, x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:]))
        log_prior = log_posterior = 0.0
        kl_dims = []
        for i, layer in enumerate(layers):
            log_q = normal_log_density(layer["eps"]) - 0.5 * layer["logvar"]
            log_p = normal_log_density(layer["z"], layer["prior_mu"], layer["prior_logvar"])
            log_posterior = log_posterior + log_q.sum(1)
            log_prior = log_prior + log_p.sum(1)
            closed_form = self.top_down or i == len(layers) - 1
            kl = (_gaussian_kl(layer["mu"], layer["logvar"], layer["prior_mu"], layer["prior_logvar"])
                  if closed_form else log_q - log_p)
            kl_dims.append(kl.view(k, b, -1).mean(0))
        kl_total = sum(d.sum(1) for d in kl_dims)
        kl_per_dim = torch.cat([kl_dims[i] for i in self._map_layers()], 1)
        return ImportanceTerms(log_likelihood.view(k, b), log_prior.view(k, b), log_posterior.view(k, b),
                               kl_total, kl_per_dim)

    def loss(self, x: Tensor, y: Tensor | None = None, beta: float = 1.0) -> dict[str, Tensor]:
        """Negative β-ELBO over all layers, one sample of the whole hierarchy."""
        return elbo_from_terms(self.importance_terms(x, y, 1), beta)
