"""An autoregressive prior over a grid of codebook indices: a small causal transformer.

p(k) = Π_i p(k_i | k_<i) with the grid read in raster order (row by row, left to right).
A causal transformer was chosen over a PixelCNN of masked convolutions because it sees
every earlier position (a PixelCNN's stacked masks leave a blind spot above-right), and
the grids are short (7×7 = 49 positions for 28×28 images), so attention over all of them
costs nothing. The likelihood is exact: ``nll`` is the sum over positions of
−log softmax of the logits at the code that is there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Block(nn.Module):
    """Pre-norm causal self-attention and MLP, each with a residual connection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: Tensor) -> Tensor:
        b, n, w = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(attended.transpose(1, 2).reshape(b, n, w))
        return h + self.mlp(self.norm2(h))


class CodePrior(nn.Module):
    """Causal transformer over ``grid_shape`` indices in ``[0, num_codes)``.

    Parameters
    ----------
    num_codes : int
        K, the codebook size.
    grid_shape : tuple of int
        ``(rows, columns)`` of the code grid.
    width, layers, heads : int
        Model width, number of transformer blocks and attention heads (``width`` must be
        a multiple of ``heads``).
    """

    def __init__(self, num_codes: int, grid_shape: tuple[int, int], width: int = 64, layers: int = 2,
                 heads: int = 4) -> None:
        super().__init__()
        self.num_codes = int(num_codes)
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        length = self.grid_shape[0] * self.grid_shape[1]
        # Index num_codes is the start token that the first position is predicted from.
        self.embed = nn.Embedding(num_codes + 1, width)
        self.position = nn.Parameter(torch.randn(length, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)

    @property
    def length(self) -> int:
        return self.grid_shape[0] * self.grid_shape[1]

    def logits(self, indices: Tensor) -> Tensor:
        """``B×L×K`` logits; position ``i`` is p(k_i | k_<i) (it never sees k_i or later).

        ``indices`` is ``B×rows×columns`` (or ``B×L``) int64.
        """
        seq = indices.reshape(indices.shape[0], -1).long()
        start = torch.full((seq.shape[0], 1), self.num_codes, dtype=torch.long, device=seq.device)
        h = self.embed(torch.cat([start, seq[:, :-1]], 1)) + self.position[: seq.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))

    def nll(self, indices: Tensor) -> Tensor:
        """−log p(k) in nats for each grid, shape ``B``: Σ_i −log softmax(logits_i)[k_i]."""
        seq = indices.reshape(indices.shape[0], -1).long()
        log_probs = F.log_softmax(self.logits(seq).float(), -1)
        return -log_probs.gather(2, seq.unsqueeze(2)).squeeze(2).sum(1)

    @torch.no_grad()
    def sample(self, indices: Tensor, kept: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """Fill positions ``kept`` … L−1 of ``indices`` (``B×rows×columns``) by ancestral sampling.

        Positions before ``kept`` are copied as they are. Draws use ``generator`` on the
        CPU, so a seed gives the same grid on every device.
        """
        shape = indices.shape
        seq = indices.reshape(shape[0], -1).long().clone()
        for i in range(kept, seq.shape[1]):
            logits = self.logits(seq)[:, i].double().cpu() / temperature
            probs = torch.softmax(logits, -1)
            seq[:, i] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(seq.device)
        return seq.view(shape)


def uniform_nll(num_codes: int, length: int) -> float:
    """−log p(k) of any grid of ``length`` positions under the uniform prior: L·log K nats."""
    return length * math.log(num_codes)
