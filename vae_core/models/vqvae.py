"""VQ-VAE (van den Oord et al., 2017): a grid of discrete codes from a learned codebook.

The encoder turns an image into a grid of ``latent_dim``-vectors (7×7 for 28×28 images,
4×4 for 8×8 digits: the conv VAE's downsampling rule); each vector is replaced by the
nearest of ``codebook_size`` codebook entries, and the decoder turns the grid of entries
back into an image. Training passes gradients straight through the snap, pulls the
encoder towards its entries with the commitment loss, moves the entries by exponential
moving averages of the vectors assigned to them (or by a codebook loss with ``ema=False``)
and restarts entries that fell out of use at encoder outputs of the current batch.

The map code and the VQ-specific API
------------------------------------
* ``encode(x)`` returns the *continuous, pre-quantization* grid flattened position-major
  (``B×rows×columns×latent_dim`` → ``B×model.latent_dim``) as ``mu``, so the map shows
  where an image lies between the codes. ``logvar`` is all NaN: q(z|x) is a point mass, a
  variance does not exist, and NaN (as for an adapted model that gives only μ) keeps
  anything from mistaking it for a unit Gaussian.
* ``model.latent_dim`` is the map code's length, rows × columns × ``config.latent_dim``;
  ``config.latent_dim`` is the size of one codebook vector.
* ``decode(z)`` snaps every vector of ``z`` to its nearest entry, then decodes;
  ``decode_unquantized(z)`` decodes ``z`` as it is. ``quantize(z)`` gives the index grid
  and the snapped code; ``decode_indices(grid)`` decodes an index grid (the code editor's
  path; it equals ``decode`` of ``codes_from_indices(grid)``). ``codebook`` is the K×D
  table, ``grid_shape`` the grid's (rows, columns), ``code_usage(data)`` how often each
  entry is used.
* ``sample_posterior`` is deterministic: every sample equals the map code.

Likelihood
----------
With a point-mass posterior on the codes k(x), log q(k|x) = 0 and the ELBO is
log p(x | k(x)) + log p(k(x)) ≤ log p(x) (one term of p(x) = Σ_k p(x|k) p(k)). The
model's prior p(k) is uniform over the K^(rows·columns) grids until
:func:`vae_core.prior.train_prior` has fitted the autoregressive prior
(:class:`~vae_core.models.code_prior.CodePrior`), and that prior afterwards. So ``kl`` is
``code_nll`` = −log p(k(x)) (rows·columns·log K under the uniform prior) and
``neg_elbo`` = ``recon`` + ``kl`` is an upper bound on −log p(x) in nats per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vae_core.data import to_unit_float
from vae_core.errors import ConfigError, ShapeMismatchError
from vae_core.models.base import BaseVAE, ImportanceTerms, ModelConfig, is_whole
from vae_core.models.code_prior import CodePrior
from vae_core.models.conv import n_downsamples
from vae_core.ranges import real, whole
from vae_core.registry import register_model

TEMPERATURE_MAX = 100.0
_CANDIDATES = 4  # nearest entries by the fast distance that quantize re-ranks exactly


@dataclass(frozen=True)
class VQVAEConfig(ModelConfig):
    """Config of :class:`VQVAE`.

    Attributes
    ----------
    latent_dim : int
        D, the size of one codebook vector (the map code has rows × columns × D numbers).
    codebook_size : int
        K, the number of codebook entries.
    channels : tuple of int
        Feature maps after each stride-2 stage (as many as the image size allows).
    commitment_weight : float
        β of the commitment loss β·‖z_e − sg[e]‖² (van den Oord et al. use 0.25).
    ema : bool
        Move the codebook by exponential moving averages (True) or by the codebook loss
        ‖sg[z_e] − e‖² through the optimizer (False).
    ema_decay : float
        Decay of the moving averages of code counts and vector sums.
    dead_code_threshold : float
        An entry whose moving-average count of uses per batch falls below this is
        restarted at an encoder output of the current batch; 0 turns restarts off.
    prior_width, prior_layers, prior_heads : int
        Size of the autoregressive prior over the code grid (a causal transformer).
    """

    latent_dim: int = 16
    codebook_size: int = 256
    channels: tuple[int, ...] = (32, 64)
    commitment_weight: float = 0.25
    ema: bool = True
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0
    prior_width: int = 64
    prior_layers: int = 2
    prior_heads: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        whole("codebook_size", self.codebook_size, 2, 65_536)
        if not self.channels or not all(is_whole(c, 1) for c in self.channels):
            raise ConfigError(f"channels must be one or more feature map counts ≥ 1, got {self.channels!r}.")
        real("commitment_weight", self.commitment_weight, 0.0, 1000.0)
        if not isinstance(self.ema, bool):
            raise ConfigError(f"ema must be true or false, got {self.ema!r}.")
        real("ema_decay", self.ema_decay, 0.0, 0.99999, low_open=True)
        real("dead_code_threshold", self.dead_code_threshold, 0.0, 1e6)
        whole("prior_width", self.prior_width, 1, 4096)
        whole("prior_layers", self.prior_layers, 1, 64)
        whole("prior_heads", self.prior_heads, 1, 64)
        if self.prior_width % self.prior_heads:
            raise ConfigError(f"prior_width ({self.prior_width}) must be a multiple of prior_heads ({self.prior_heads}).")


def usage_counts(indices: Tensor, num_codes: int) -> Tensor:
    """How often each of ``num_codes`` entries occurs in ``indices`` (any shape): int64 ``K``."""
    return torch.bincount(indices.reshape(-1).long(), minlength=num_codes)


def perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) in nats of the usage distribution ``counts / counts.sum()``.

    1 when one code is used, K when all K are used equally often; unused codes add
    nothing (0·log 0 = 0).
    """
    p = counts.double() / counts.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-300))).sum())


@register_model("vqvae", config=VQVAEConfig)
class VQVAE(BaseVAE):
    description = "VQ-VAE: a grid of discrete codes from a learned codebook, with an autoregressive prior"
    gaussian_posterior = False
    stochastic_posterior = False

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__(config)
        # vector-quantize-pytorch (lucidrains; maintained, a release most months) gives the
        # EMA codebook update, dead-code restarts (threshold_ema_dead_code), the
        # straight-through estimator and the synchronisation of the EMA statistics under
        # DistributedDataParallel, with exact codebook rows and indices. It runs only while
        # training; inference (quantize) finds the nearest entry with plain torch, so that a
        # vector equal to an entry snaps to it exactly (the library clamps squared
        # distances at 1e-8, making entries closer than 1e-4 tie) and the decoder exports to
        # ONNX. Every option is passed explicitly because the library's defaults change
        # between releases (the rotation trick became the default in 1.17).
        from vector_quantize_pytorch import VectorQuantize

        c, h, w = config.image_shape
        d = config.latent_dim
        n = n_downsamples(h, w, len(config.channels))
        chans = list(config.channels[: max(1, n)])
        enc: list[nn.Module] = []
        prev = c
        if n == 0:  # tiny or odd-sized images: the grid keeps the image's resolution
            enc += [nn.Conv2d(c, chans[0], 3, padding=1), nn.ReLU()]
            prev = chans[0]
        for ch in chans[:n]:
            enc += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.ReLU()]
            prev = ch
        enc += [nn.Conv2d(prev, prev, 3, padding=1), nn.ReLU(), nn.Conv2d(prev, d, 1)]
        self.encoder = nn.Sequential(*enc)
        self._grid = (h >> n, w >> n)

        dec: list[nn.Module] = [nn.Conv2d(d, prev, 3, padding=1), nn.ReLU()]
        rev = list(reversed(chans[:n]))
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        if n > 0:
            dec += [nn.ConvTranspose2d(rev[-1], rev[-1], 4, stride=2, padding=1), nn.ReLU()]
        dec.append(nn.Conv2d(prev if n == 0 else rev[-1], c, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

        self.quantizer = VectorQuantize(
            dim=d, codebook_size=config.codebook_size, decay=config.ema_decay,
            threshold_ema_dead_code=config.dead_code_threshold, kmeans_init=False,
            ema_update=config.ema, learnable_codebook=not config.ema, rotation_trick=False,
            straight_through=False, stochastic_sample_codes=False, use_cosine_sim=False,
            commitment_weight=0.0, channel_last=True,
        )
        self.prior = CodePrior(config.codebook_size, self._grid, config.prior_width, config.prior_layers,
                               config.prior_heads)
        # The prior is fitted afterwards by vae_core.prior.train_prior, which switches its
        # gradients on; the VQ-VAE's own training leaves it alone (and DDP ignores it).
        self.prior.requires_grad_(False)
        #: Optimizer steps the prior has been trained for; 0 means the prior is uniform.
        self.register_buffer("prior_steps", torch.zeros((), dtype=torch.int64))

    # -- shapes -------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        """Length of the map code: rows × columns × ``config.latent_dim``."""
        return self._grid[0] * self._grid[1] * self.config.latent_dim

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the code grid."""
        return self._grid

    @property
    def num_codes(self) -> int:
        """K, the codebook size."""
        return self.config.codebook_size

    @property
    def codebook(self) -> Tensor:
        """The codebook, ``K×D`` (a detached view of the live entries)."""
        return self.quantizer.codebook.detach()

    @property
    def prior_trained(self) -> bool:
        """True once :func:`vae_core.prior.train_prior` has fitted the prior over codes."""
        return bool(self.prior_steps.item() > 0)

    def _grid_from_flat(self, z: Tensor) -> Tensor:
        """``B×latent_dim`` (position-major) → ``B×D×rows×columns`` for the convolutions."""
        rows, cols = self._grid
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ShapeMismatchError(f"A vqvae code has {self.latent_dim} numbers ({rows}×{cols} positions × "
                                     f"{self.config.latent_dim}); got shape {tuple(z.shape)}.")
        return z.reshape(z.shape[0], rows, cols, self.config.latent_dim).permute(0, 3, 1, 2)

    @staticmethod
    def _flat_from_grid(grid: Tensor) -> Tensor:
        return grid.permute(0, 2, 3, 1).reshape(grid.shape[0], -1)

    def check_indices(self, indices) -> Tensor:
        """``indices`` as an int64 ``B×rows×columns`` tensor (a single grid gains a batch axis).

        Raises
        ------
        ShapeMismatchError
            For a grid of another shape.
        ConfigError
            For an index outside ``0 … K−1``.
        """
        indices = torch.as_tensor(indices)
        if indices.dim() == 2:
            indices = indices.unsqueeze(0)
        if indices.dim() != 3 or tuple(indices.shape[1:]) != self._grid or indices.is_floating_point():
            rows, cols = self._grid
            raise ShapeMismatchError(f"An index grid of this vqvae model is {rows}×{cols} whole numbers; "
                                     f"got shape {tuple(indices.shape)} ({indices.dtype}).")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ConfigError(f"Codebook indices must be from 0 to {self.num_codes - 1} "
                              f"(got {int(indices.min())} to {int(indices.max())}).")
        return indices.long().to(self.codebook.device)

    # -- quantization ----------------------------------------------------------------------
    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Snap every vector of the flat code ``z`` (``B×latent_dim``) to its nearest entry.

        Returns
        -------
        indices : Tensor
            int64 ``B×rows×columns``, the nearest entry of each position (the lowest
            index among equally near entries).
        quantized : Tensor
            ``B×latent_dim``, the same layout as ``z``; every vector is exactly a row of
            :attr:`codebook`.
        """
        self._grid_from_flat(z)  # checks the shape
        b = z.shape[0]
        vectors = z.reshape(-1, self.config.latent_dim)
        codebook = self.codebook.to(vectors.dtype)
        # ‖e‖² − 2z·e (one matrix product) finds the few nearest candidates; their exact
        # squared differences pick the winner, so an entry's own distance is exactly 0 and a
        # code made of entries snaps to itself (the expansion alone can rank two close
        # entries wrongly by rounding). torch.cdist would do the same but does not export to ONNX.
        scores = codebook.pow(2).sum(1) - 2 * vectors @ codebook.T
        candidates = scores.topk(min(_CANDIDATES, self.num_codes), dim=1, largest=False).indices.sort(1).values
        exact = (vectors.unsqueeze(1) - codebook[candidates]).pow(2).sum(-1)
        indices = candidates.gather(1, exact.argmin(1, keepdim=True)).squeeze(1)  # lowest index on ties
        return indices.view(b, *self._grid), codebook[indices].reshape(b, -1)

    def codes_from_indices(self, indices) -> Tensor:
        """The flat code (``B×latent_dim``) whose vectors are the entries ``indices`` name."""
        indices = self.check_indices(indices)
        return self.codebook[indices].reshape(indices.shape[0], -1)

    def encode_indices(self, x: Tensor) -> Tensor:
        """The index grid of each image, int64 ``B×rows×columns``."""
        return self.quantize(self.encode(x)[0])[0]

    # -- the BaseVAE contract ------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The pre-quantization grid, flattened position-major, and an all-NaN logvar."""
        mu = self._flat_from_grid(self.encoder(x))
        return mu, torch.full_like(mu, float("nan"))

    def sample_posterior(self, x: Tensor, n: int, y: Tensor | None = None,
                         generator: torch.Generator | None = None) -> Tensor:
        """``n`` copies of the map code: the encoder is deterministic, q(z|x) a point mass."""
        mu = self.encode(x, y)[0]
        return mu.unsqueeze(0).expand(n, *mu.shape).clone()

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Snap ``z`` to the codebook, then decode (pre-sigmoid)."""
        return self.decoder(self._grid_from_flat(self.quantize(z)[1]))

    def decode_unquantized(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decode the flat code ``z`` without snapping it (images in [0, 1])."""
        return torch.sigmoid(self.decoder(self._grid_from_flat(z)))

    def decode_indices(self, indices) -> Tensor:
        """Decode index grids (``B×rows×columns`` or one ``rows×columns``) to images in [0, 1]."""
        indices = self.check_indices(indices)
        vectors = self.codebook[indices]  # B×rows×columns×D
        return torch.sigmoid(self.decoder(vectors.permute(0, 3, 1, 2)))

    def _pass(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder output ``B×L×D``, its quantization (straight-through while training), indices."""
        seq = self.encoder(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.config.latent_dim)
        if self.training:
            quantized, indices, _ = self.quantizer(seq)  # EMA update and restarts happen here
            return seq, quantized, indices.reshape(x.shape[0], *self._grid)
        indices, quantized = self.quantize(seq.reshape(x.shape[0], -1))
        return seq, quantized.view_as(seq), indices

    def forward(self, x: Tensor, y: Tensor | None = None):
        """``(logits, mu, logvar, z)`` with ``z`` the quantized code (``logvar`` NaN)."""
        seq, quantized, _ = self._pass(x)
        rows, cols = self._grid
        logits = self.decoder(quantized.view(x.shape[0], rows, cols, -1).permute(0, 3, 1, 2))
        mu = seq.reshape(x.shape[0], -1)
        return logits, mu, torch.full_like(mu, float("nan")), quantized.reshape(x.shape[0], -1)

    def loss(self, x: Tensor, y: Tensor | None = None, beta: float = 1.0) -> dict[str, Tensor]:
        """Training terms, batch means in nats per image where they are nats.

        ``loss`` = ``recon`` + β·``kl`` + ``commitment`` (+ ``codebook`` with ``ema=False``).
        ``kl`` is −log p(codes) under the model's prior (constant while it is uniform, so it
        moves nothing); ``commitment`` is ``commitment_weight``·‖z_e − sg[e]‖² summed over
        the grid; ``codebook_usage`` is the number of distinct entries in the batch and
        ``perplexity`` exp(entropy) of their usage; ``kl_per_dim`` spreads each position's
        −log p over its D numbers.
        """
        seq, quantized, indices = self._pass(x)
        rows, cols = self._grid
        logits = self.decoder(quantized.view(x.shape[0], rows, cols, -1).permute(0, 3, 1, 2))
        recon = self.recon_nll(logits, x).mean()
        commitment = self.config.commitment_weight * (seq - quantized.detach()).pow(2).sum((1, 2)).mean()
        with torch.no_grad():
            positions = self.position_nll(indices)
        kl = positions.sum(1).mean()
        terms = {"recon": recon, "kl": kl, "commitment": commitment}
        loss = recon + beta * kl + commitment
        if not self.config.ema:
            entries = self.quantizer.codebook[indices.reshape(x.shape[0], -1)]
            terms["codebook"] = (seq.detach() - entries).pow(2).sum((1, 2)).mean()
            loss = loss + terms["codebook"]
        counts = usage_counts(indices, self.num_codes)
        terms.update(loss=loss, codebook_usage=(counts > 0).sum().to(recon.dtype),
                     perplexity=perplexity(counts).to(recon.dtype),
                     kl_per_dim=self._per_dim(positions).mean(0))
        return terms

    def loss_terms(self, x, logits, mu, logvar, beta: float = 1.0) -> dict[str, Tensor]:
        """Terms of a pass already made (``mu`` the pre-quantization code)."""
        indices = self.quantize(mu)[0]
        recon = self.recon_nll(logits, x).mean()
        positions = self.position_nll(indices)
        kl = positions.sum(1).mean()
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl_per_dim": self._per_dim(positions).mean(0)}

    def _per_dim(self, positions: Tensor) -> Tensor:
        # Position i of the grid owns map-code numbers i·D … i·D + D − 1.
        d = self.config.latent_dim
        return positions.repeat_interleave(d, dim=1) / d

    def importance_terms(self, x: Tensor, y: Tensor | None = None, k: int = 1,
                         generator: torch.Generator | None = None) -> ImportanceTerms:
        """The single code of each image, ``k`` times: log q = 0, log p(z) = −code_nll."""
        mu = self.encode(x, y)[0]
        indices, quantized = self.quantize(mu)
        log_likelihood = -self.recon_nll(self.decoder(self._grid_from_flat(quantized)), x)
        positions = self.position_nll(indices)
        code_nll = positions.sum(1)
        expand = lambda t: t.unsqueeze(0).expand(k, -1)  # noqa: E731
        return ImportanceTerms(expand(log_likelihood), expand(-code_nll), expand(torch.zeros_like(code_nll)),
                               code_nll, self._per_dim(positions))

    # -- the prior over codes ----------------------------------------------------------------
    def position_nll(self, indices) -> Tensor:
        """−log p(k_i | k_<i) of every position, ``B×(rows·columns)`` nats, under the model's prior.

        Uniform (log K everywhere) until the prior is trained.
        """
        indices = self.check_indices(indices)
        b = indices.shape[0]
        if not self.prior_trained:
            value = float(np.log(self.num_codes))
            return torch.full((b, self.prior.length), value, device=indices.device)
        seq = indices.reshape(b, -1)
        log_probs = torch.log_softmax(self.prior.logits(seq).float(), -1)
        return -log_probs.gather(2, seq.unsqueeze(2)).squeeze(2)

    def code_nll(self, indices) -> Tensor:
        """−log p(k) of each index grid in nats, ``B`` (see :meth:`position_nll`)."""
        return self.position_nll(indices).sum(1)

    def sample_codes(self, n: int, temperature: float = 1.0, seed: int = 0) -> Tensor:
        """``n`` index grids drawn from the prior, int64 ``n×rows×columns``.

        ``temperature`` divides the prior's logits (below 1: likelier, plainer grids).
        Under the uniform prior (before training it) every entry is equally likely.
        """
        n = whole("n", n, 1, 1_000_000)
        generator = torch.Generator().manual_seed(whole("seed", seed, 0, 2**63 - 1))
        start = torch.zeros((n, *self._grid), dtype=torch.long, device=self.codebook.device)
        return self._fill(start, 0, temperature, generator)

    def complete_codes(self, partial_grid, rows_kept: int, temperature: float = 1.0, seed: int = 0) -> Tensor:
        """Keep the top ``rows_kept`` rows of each grid and sample the rest from the prior.

        ``partial_grid`` is ``B×rows×columns`` (or one ``rows×columns`` grid, returned as
        ``1×rows×columns``); rows below ``rows_kept`` are ignored.
        """
        indices = self.check_indices(partial_grid)
        rows_kept = whole("rows_kept", rows_kept, 0, self._grid[0])
        generator = torch.Generator().manual_seed(whole("seed", seed, 0, 2**63 - 1))
        return self._fill(indices, rows_kept * self._grid[1], temperature, generator)

    def _fill(self, indices: Tensor, kept: int, temperature: float, generator: torch.Generator) -> Tensor:
        temperature = real("temperature", temperature, 0.0, TEMPERATURE_MAX, low_open=True)
        if self.prior_trained:
            return self.prior.sample(indices, kept, temperature, generator)
        out = indices.clone().reshape(indices.shape[0], -1)
        rest = out.shape[1] - kept
        out[:, kept:] = torch.randint(self.num_codes, (out.shape[0], rest), generator=generator).to(out.device)
        return out.view_as(indices)

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decode ``n`` grids drawn from the prior (seeded by ``generator`` when given)."""
        seed = int(torch.randint(2**62, (1,), generator=generator).item())
        return self.decode_indices(self.sample_codes(n, 1.0, seed))

    # -- statistics ----------------------------------------------------------------------------
    @torch.inference_mode()
    def code_usage(self, data, batch_size: int = 1000) -> np.ndarray:
        """How many positions of ``data``'s images use each entry: int64 array of K counts.

        ``data`` is an :class:`~vae_core.data.ImageDataset` or an ``N×C×H×W`` array (stored pixels,
        read by :func:`~vae_core.data.to_unit_float`).
        """
        images = getattr(data, "images", data)
        batch_size = whole("batch_size", batch_size, 1, 1_000_000)
        counts = torch.zeros(self.num_codes, dtype=torch.int64)
        device = self.codebook.device
        for start in range(0, len(images), batch_size):
            x = to_unit_float(torch.as_tensor(np.asarray(images[start : start + batch_size]))).to(device)
            counts += usage_counts(self.encode_indices(x), self.num_codes).cpu()
        return counts.numpy()

    def metric_sums(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Per-batch sums that :func:`~vae_core.metrics.evaluate` adds up: code counts."""
        return {"code_counts": usage_counts(self.encode_indices(x), self.num_codes).cpu()}

    def metrics_from_sums(self, sums: dict[str, Tensor], n: int) -> dict:
        """``codebook_usage`` (entries used at least once), ``perplexity`` and ``prior``."""
        counts = sums["code_counts"]
        return {"codebook_usage": int((counts > 0).sum()), "codebook_size": self.num_codes,
                "perplexity": float(perplexity(counts)), "prior_trained": self.prior_trained}
