"""Headless latent-space operations: encode, decode, interpolate, arithmetic, traversals,
prior samples and nearest neighbours.

Every function works on plain NumPy arrays (codes are ``N×d`` ``float32``) and on any model
object with ``encode(x, y=None) -> (mu, logvar)``, ``decode(z, y=None) -> images`` torch
methods and the attributes ``latent_dim`` and ``conditional`` (see ``BaseVAE``). Nothing here
imports Qt.

Latent arithmetic expressions
-----------------------------
An expression is a sum of terms joined by ``+`` and ``-`` (``−`` also works)::

    #12 - mean(7) + mean(3)
    mean("Sneaker") - mean("Sandal") + 0.5*#4031
    pin:smile + 2*group:glasses - @9

Each term is an optional coefficient followed by an operand (``0.5*#12``, ``0.5#12`` and
``#12*0.5`` are the same); the first term may carry a sign (``-#3 + #4``). Operands:

``#12`` or ``12``
    the code of data point 12 (0-based, in dataset order).
``mean(7)`` or ``@7``
    the centroid of all points with label 7.
``mean("Sneaker")``, ``@"Sneaker"``, ``@Sneaker``
    the centroid of a class given by name (quotes needed for names with spaces or symbols;
    matching is exact first, then case-insensitive).
``mean(#1, #5, #9)``
    the mean of the listed operands' vectors; any operand may appear inside, e.g.
    ``mean(@1, @7)`` or ``mean(pin:a, #3)``. A bare integer inside ``mean()`` is a label.
``pin:name`` / ``group:name``
    named vectors supplied by the caller (the GUI passes its pins and selection groups);
    quote unusual names: ``pin:"my pin"``.

Strength: the first term is the base and ``strength`` scales everything after it, so
``A - B + C`` evaluated with strength ``s`` gives ``A + s·(C - B)``. ``s = 1`` is the plain
sum, ``s = 0`` returns ``A`` unchanged and ``s > 1`` exaggerates the edit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

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
]

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


class Cancelled(Exception):
    """Raised when a long operation's ``should_stop()`` callback returns True."""


# ---------------------------------------------------------------------------------------
# Encoding and decoding
# ---------------------------------------------------------------------------------------
def _model_device(model, device):
    if device is not None:
        return device
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return "cpu"


def _as_label_tensor(labels, start, stop, device):
    import torch

    if labels is None:
        return None
    return torch.as_tensor(np.array(labels[start:stop], dtype=np.int64), device=device)


class _EvalMode:
    """Put a module in eval mode for the duration of a block (BatchNorm/Dropout matter)."""

    def __init__(self, model):
        self.model = model
        self.was_training = bool(getattr(model, "training", False))

    def __enter__(self):
        if self.was_training:
            self.model.eval()
        return self.model

    def __exit__(self, *exc):
        if self.was_training:
            self.model.train()
        return False


def _check_labels(model, labels, n: int, what: str):
    if labels is None:
        if getattr(model, "conditional", False):
            raise ValueError(f"This model is conditional: {what} needs labels.")
        return None
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full(n, int(labels), dtype=np.int64)
    if labels.shape[0] != n:
        raise ValueError(f"Got {labels.shape[0]} labels for {n} {what.split()[0]}.")
    return labels


def encode_dataset(
    model,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int = 2048,
    device="cpu",
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode images to posterior means and log-variances.

    Parameters
    ----------
    model
        Object with ``encode(x, y=None) -> (mu, logvar)`` and ``latent_dim``; put in eval
        mode for the call and restored afterwards.
    images
        ``N×C×H×W`` float images in [0, 1] (``uint8`` is scaled by 1/255).
    labels
        ``N`` integer labels, passed to ``encode`` (required by conditional models).
    batch_size
        Images per forward pass; large batches keep Python overhead negligible.
    device
        Where batches are sent (the model must already live there); ``None`` = the
        model's parameter device.
    progress
        ``progress(done, total)`` after every batch.
    should_stop
        Polled before every batch; returning True raises :class:`Cancelled`.

    Returns
    -------
    mu, logvar : np.ndarray
        ``N×d`` ``float32`` arrays.
    """
    import torch

    images = np.asarray(images)
    n = int(images.shape[0])
    labels = _check_labels(model, labels, n, "images to encode")
    d = int(model.latent_dim)
    mu = np.empty((n, d), dtype=np.float32)
    logvar = np.empty((n, d), dtype=np.float32)
    device = _model_device(model, device)
    scale = 1.0 / 255.0 if images.dtype == np.uint8 else None
    batch_size = max(1, int(batch_size))
    with _EvalMode(model), torch.inference_mode():
        for start in range(0, n, batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("Encoding was cancelled.")
            stop = min(start + batch_size, n)
            chunk = images[start:stop]
            if not chunk.flags.writeable:  # torch warns on read-only buffers (memmaps)
                chunk = chunk.copy()
            x = torch.as_tensor(chunk, device=device)
            x = x.float() * scale if scale is not None else x.float()
            m, lv = model.encode(x, _as_label_tensor(labels, start, stop, device))
            mu[start:stop] = m.detach().to("cpu", torch.float32).numpy()
            logvar[start:stop] = lv.detach().to("cpu", torch.float32).numpy()
            if progress is not None:
                progress(stop, n)
    if n == 0 and progress is not None:
        progress(0, 0)
    return mu, logvar


def decode(model, codes, labels=None, *, batch_size: int = 1024, device=None) -> np.ndarray:
    """Decode latent codes to images (the one batched decode every operation uses).

    Parameters
    ----------
    model
        Object with ``decode(z, y=None) -> images`` (means in [0, 1]) and ``latent_dim``.
    codes
        ``(..., d)`` array or tensor; a single ``d`` vector is allowed.
    labels
        For conditional models: one label for all codes, or one per code (shape ``codes.shape[:-1]``).
    batch_size
        Codes per forward pass.
    device
        Where codes are sent; ``None`` = the model's parameter device.

    Returns
    -------
    np.ndarray
        ``float32`` images of shape ``codes.shape[:-1] + (C, H, W)``, clipped to [0, 1].
    """
    import torch

    if isinstance(codes, torch.Tensor):
        codes = codes.detach().to("cpu").numpy()
    codes = np.asarray(codes, dtype=np.float32)
    lead = codes.shape[:-1]
    flat = codes.reshape(-1, codes.shape[-1])
    if not flat.flags.writeable:  # torch.from_numpy warns on read-only buffers
        flat = flat.copy()
    n = flat.shape[0]
    if labels is not None:
        labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), lead).reshape(-1)
    labels = _check_labels(model, labels, n, "codes to decode")
    device = _model_device(model, device)
    chunks = []
    with _EvalMode(model), torch.inference_mode():
        for start in range(0, n, max(1, int(batch_size))):
            stop = min(start + batch_size, n)
            z = torch.from_numpy(flat[start:stop]).to(device)
            x = model.decode(z, _as_label_tensor(labels, start, stop, device))
            chunks.append(x.detach().to("cpu", torch.float32).numpy())
    if chunks:
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    else:
        shape = tuple(getattr(model, "image_shape", (1, 1, 1)))
        out = np.zeros((0, *shape), dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(lead + out.shape[1:])


# ---------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------
def _t_column(t):
    t = np.asarray(t, dtype=np.float64)
    return t, t[..., None]


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation ``(1 - t)·a + t·b``.

    ``t`` may be a scalar (returns a ``d`` vector) or an array of shape ``T`` (returns
    ``T×d``). Written as a weighted sum so that ``t = 0`` gives ``a`` and ``t = 1`` gives
    ``b`` exactly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t, tc = _t_column(t)
    return ((1.0 - tc) * a + tc * b).astype(np.float32)


def _orthogonal_unit(u: np.ndarray) -> np.ndarray:
    # Deterministic perpendicular: Gram-Schmidt on the axis u points least along.
    e = np.zeros_like(u)
    e[np.argmin(np.abs(u))] = 1.0
    p = e - (e @ u) * u
    n = np.linalg.norm(p)
    return p / n if n > 0 else e


def slerp(a, b, t, *, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation of direction with linearly interpolated length.

    Convention: the direction moves along the great circle from ``a/|a|`` to ``b/|b|``
    at constant angular speed while the norm goes linearly from ``|a|`` to ``|b|``. So
    ``|slerp(a, b, t)| = (1 - t)|a| + t|b|`` (norm kept when ``|a| = |b|``), and the
    endpoints are returned exactly.

    Degenerate cases stay finite: nearly parallel vectors (angle < ``eps``) and zero
    vectors fall back to :func:`lerp`; exactly opposite vectors turn through a fixed,
    deterministic perpendicular direction.

    ``t`` may be a scalar (returns ``d``) or a ``T`` array (returns ``T×d``).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t, tc = _t_column(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    # 2·atan2(|ua-ub|, |ua+ub|) stays accurate near 0 and π, unlike arccos(ua·ub).
    omega = 2.0 * math.atan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub))
    if omega < eps:
        return lerp(a, b, t)
    if math.pi - omega < eps:
        p = _orthogonal_unit(ua)
        direction = np.cos(math.pi * tc) * ua + np.sin(math.pi * tc) * p
    else:
        s = math.sin(omega)
        direction = (np.sin((1.0 - tc) * omega) / s) * ua + (np.sin(tc * omega) / s) * ub
    out = ((1.0 - tc) * na + tc * nb) * direction
    out = np.where(tc == 0.0, a, np.where(tc == 1.0, b, out))
    return out.astype(np.float32)


def _ease_in(t):
    return t * t * t


def _ease_out(t):
    u = 1.0 - t
    return 1.0 - u * u * u


def _ease_in_out(t):
    return t * t * (3.0 - 2.0 * t)


#: Easing curves ``[0, 1] -> [0, 1]`` with exact endpoints: cubic in/out, smoothstep in-out.
EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "ease-in-out": _ease_in_out,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
}

_METHODS = {"lerp": lerp, "slerp": slerp}


def interpolate(keyframes, steps: int, method: str = "lerp", easing: str = "linear") -> np.ndarray:
    """Codes along a path through two or more keyframes.

    The ``steps - 1`` intervals are shared as evenly as possible between the
    ``K - 1`` segments (earlier segments get the remainder), so every keyframe is one of
    the returned codes, exactly, and the first and last codes are the end keyframes.
    Easing applies within each segment (with ``ease-in-out`` the motion slows down at
    every keyframe).

    Parameters
    ----------
    keyframes
        ``K×d`` array, ``K >= 2``.
    steps
        Total number of codes returned, ``>= K``.
    method
        ``"lerp"`` or ``"slerp"`` (see :func:`slerp` for its norm convention).
    easing
        One of :data:`EASINGS`.

    Returns
    -------
    np.ndarray
        ``steps×d`` ``float32``.
    """
    keys = np.asarray(keyframes, dtype=np.float32)
    if keys.ndim != 2 or keys.shape[0] < 2:
        raise ValueError("interpolate needs a K×d array of at least 2 keyframes.")
    if method not in _METHODS:
        raise ValueError(f"Unknown interpolation method {method!r}: use one of {', '.join(_METHODS)}.")
    if easing not in EASINGS:
        raise ValueError(f"Unknown easing {easing!r}: use one of {', '.join(EASINGS)}.")
    k = keys.shape[0]
    steps = int(steps)
    if steps < k:
        raise ValueError(f"{steps} steps cannot pass through {k} keyframes: use at least {k}.")
    fn, ease = _METHODS[method], EASINGS[easing]
    per_segment = np.full(k - 1, (steps - 1) // (k - 1))
    per_segment[: (steps - 1) % (k - 1)] += 1
    parts = []
    for s, n in enumerate(per_segment):
        t = ease(np.arange(n, dtype=np.float64) / n)
        parts.append(np.atleast_2d(fn(keys[s], keys[s + 1], t)))
    parts.append(keys[-1:])
    return np.concatenate(parts).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Latent arithmetic: operands, parser, resolver
# ---------------------------------------------------------------------------------------
class ExpressionError(ValueError):
    """A latent arithmetic expression that cannot be parsed or resolved.

    ``position`` is the 0-based character offset of the problem (or None).
    """

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class IndexOperand:
    """The code of data point ``index``."""

    index: int

    def __str__(self) -> str:
        return f"#{self.index}"


@dataclass(frozen=True)
class LabelOperand:
    """The centroid of a label (int) or class name (str)."""

    label: int | str

    def __str__(self) -> str:
        return f"mean({self.label})" if isinstance(self.label, int) else f'mean("{self.label}")'


@dataclass(frozen=True)
class NamedOperand:
    """A caller-supplied vector: ``kind`` is ``"pin"`` or ``"group"``."""

    kind: str
    name: str

    def __str__(self) -> str:
        plain = re.fullmatch(r"[A-Za-z_][\w.]*", self.name)
        return f"{self.kind}:{self.name}" if plain else f'{self.kind}:"{self.name}"'


@dataclass(frozen=True)
class MeanOperand:
    """The mean of several operands' vectors."""

    items: tuple

    def __str__(self) -> str:
        return "mean(" + ", ".join(_item_str(i) for i in self.items) + ")"


def _item_str(op) -> str:
    if isinstance(op, LabelOperand):
        return str(op.label) if isinstance(op.label, int) else f'"{op.label}"'
    return str(op)


Operand = IndexOperand | LabelOperand | NamedOperand | MeanOperand


@dataclass(frozen=True)
class Term:
    """``coefficient · operand``; ``position`` is where the term starts in the text."""

    coefficient: float
    operand: Operand
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        c = self.coefficient
        sign = "-" if c < 0 else "+"
        mag = abs(c)
        return f"{sign} {str(self.operand) if mag == 1 else f'{mag:g}*{self.operand}'}"


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the original text and its terms in order."""

    text: str
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        out = " ".join(str(t) for t in self.terms)
        return out[2:] if out.startswith("+ ") else "-" + out[2:]


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"[^"]*"|'[^']*'|“[^”]*”)
  | (?P<ident>[A-Za-z_][\w.]*)
  | (?P<op>[-+−*×·#@(),:])
    """,
    re.VERBOSE,
)
_OP_ALIASES = {"−": "-", "×": "*", "·": "*"}


@dataclass
class _Tok:
    kind: str  # number | string | ident | op | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(
                f"Syntax error at column {pos + 1}: unexpected character {text[pos]!r}.", pos)
        kind = m.lastgroup
        if kind != "ws":
            value = m.group()
            if kind == "op":
                value = _OP_ALIASES.get(value, value)
            elif kind == "string":
                value = value[1:-1]
            tokens.append(_Tok(kind, value, pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # -- helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def error(self, expected: str, tok: _Tok | None = None):
        tok = tok or self.tok
        found = "the end of the expression" if tok.kind == "end" else repr(tok.text)
        raise ExpressionError(f"Syntax error at column {tok.pos + 1}: expected {expected}, found {found}.", tok.pos)

    def expect_op(self, op: str, expected: str):
        if not self.is_op(op):
            self.error(expected)
        return self.take()

    # -- grammar
    def parse(self) -> Expression:
        if self.tok.kind == "end":
            raise ExpressionError("The expression is empty.", 0)
        sign = 1.0
        if self.is_op("+", "-"):
            sign = -1.0 if self.take().text == "-" else 1.0
        terms = [self.term(sign)]
        while self.tok.kind != "end":
            if not self.is_op("+", "-"):
                self.error("'+' or '-'")
            sign = -1.0 if self.take().text == "-" else 1.0
            terms.append(self.term(sign))
        return Expression(self.text, tuple(terms))

    def term(self, sign: float) -> Term:
        start = self.tok.pos
        coefficient = 1.0
        if self.tok.kind == "number" and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].text == "*":
            coefficient = float(self.take().text)
            self.take()
        elif self.tok.kind == "number" and self._starts_operand(self.toks[self.i + 1]):
            coefficient = float(self.take().text)  # implicit product: 0.5#12
        operand = self.operand(allow_bare_index=True)
        if self.is_op("*"):
            self.take()
            if self.tok.kind != "number":
                self.error("a number after '*'")
            coefficient *= float(self.take().text)
        return Term(sign * coefficient, operand, start)

    @staticmethod
    def _starts_operand(tok: _Tok) -> bool:
        return (tok.kind == "op" and tok.text in ("#", "@")) or (
            tok.kind == "ident" and tok.text.lower() in ("mean", "pin", "group"))

    def integer(self, what: str) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            self.error(what)
        self.take()
        return int(tok.text)

    def operand(self, *, allow_bare_index: bool, inside_mean: bool = False):
        tok = self.tok
        if tok.kind == "op" and tok.text == "#":
            self.take()
            return IndexOperand(self.integer("a data point index after '#'"))
        if tok.kind == "op" and tok.text == "@":
            self.take()
            return self.label_ref("a label or class name after '@'")
        if tok.kind == "number":
            if not tok.text.isdigit():
                raise ExpressionError(
                    f"Syntax error at column {tok.pos + 1}: {tok.text} is not a data point index "
                    f"(write a coefficient as {tok.text}*#12).", tok.pos)
            self.take()
            return LabelOperand(int(tok.text)) if inside_mean else IndexOperand(int(tok.text))
        if tok.kind == "ident":
            word = tok.text.lower()
            if word == "mean" and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].text == "(":
                return self.mean()
            if word in ("pin", "group") and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].text == ":":
                self.i += 2
                name = self.tok
                if name.kind not in ("ident", "string", "number"):
                    self.error(f"a name after '{word}:'")
                self.take()
                return NamedOperand(word, name.text)
            if inside_mean:
                self.take()
                return LabelOperand(tok.text)
        if tok.kind == "string" and inside_mean:
            self.take()
            return LabelOperand(tok.text)
        self.error("an operand (#index, mean(label), @label, pin:name or group:name)")

    def label_ref(self, expected: str) -> LabelOperand:
        tok = self.tok
        if tok.kind == "number" and tok.text.isdigit():
            self.take()
            return LabelOperand(int(tok.text))
        if tok.kind in ("string", "ident"):
            self.take()
            return LabelOperand(tok.text)
        self.error(expected)

    def mean(self) -> Operand:
        self.i += 1  # "mean"
        self.expect_op("(", "'('")
        items = [self.operand(allow_bare_index=False, inside_mean=True)]
        while self.is_op(","):
            self.take()
            items.append(self.operand(allow_bare_index=False, inside_mean=True))
        self.expect_op(")", "',' or ')'")
        if len(items) == 1 and isinstance(items[0], LabelOperand):
            return items[0]
        return MeanOperand(tuple(items))


def parse_expression(text: str) -> Expression:
    """Parse a latent arithmetic expression (syntax in this module's docstring).

    Raises
    ------
    ExpressionError
        With the 1-based column in the message and the 0-based ``position`` attribute.
    """
    return _Parser(str(text)).parse()


def _ranges_text(values: np.ndarray) -> str:
    values = np.unique(values)
    if len(values) and np.array_equal(values, np.arange(values[0], values[0] + len(values))):
        return f"{values[0]}–{values[-1]}" if len(values) > 1 else str(values[0])
    return ", ".join(str(v) for v in values[:20]) + (" …" if len(values) > 20 else "")


class LatentResolver:
    """Turns expression operands into latent vectors.

    Parameters
    ----------
    codes
        ``N×d`` codes of the dataset (row ``i`` answers ``#i``).
    labels
        ``N`` integer labels, or None for an unlabeled dataset.
    class_names
        Names of labels ``0..K-1`` (may be empty).
    pins
        ``name -> d`` vector for ``pin:name``.
    groups
        ``name -> d`` vector, or an integer array of point indices whose centroid is used,
        for ``group:name``.
    """

    def __init__(self, codes, labels=None, class_names: Sequence[str] = (), *,
                 pins: Mapping[str, np.ndarray] | None = None,
                 groups: Mapping[str, np.ndarray] | None = None):
        self.codes = np.asarray(codes, dtype=np.float32)
        if self.codes.ndim != 2:
            raise ValueError("codes must be an N×d array.")
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(self.codes):
            raise ValueError(f"Got {len(self.labels)} labels for {len(self.codes)} codes.")
        self.class_names = tuple(class_names or ())
        self.pins: dict[str, np.ndarray] = dict(pins or {})
        self.groups: dict[str, np.ndarray] = dict(groups or {})
        self._label_means: dict[int, np.ndarray] = {}

    @property
    def latent_dim(self) -> int:
        return int(self.codes.shape[1])

    def resolve(self, operand) -> np.ndarray:
        """The ``d`` vector (float32) an operand stands for; raises :class:`ExpressionError`."""
        if isinstance(operand, IndexOperand):
            return self.index(operand.index)
        if isinstance(operand, LabelOperand):
            return self.label_mean(operand.label)
        if isinstance(operand, NamedOperand):
            return self.named(operand.kind, operand.name)
        if isinstance(operand, MeanOperand):
            return np.mean([self.resolve(o) for o in operand.items], axis=0).astype(np.float32)
        raise TypeError(f"Not an operand: {operand!r}")

    def index(self, i: int) -> np.ndarray:
        n = len(self.codes)
        if not 0 <= i < n:
            raise ExpressionError(f"Index {i} is out of range: the dataset has {n} points.")
        return self.codes[i].copy()

    def label_id(self, label: int | str) -> int:
        """Resolve a label number or class name to a label number."""
        if self.labels is None:
            raise ExpressionError(f"{LabelOperand(label)} needs labels, but this dataset is unlabeled.")
        if isinstance(label, str):
            if label in self.class_names:
                return self.class_names.index(label)
            folded = [i for i, c in enumerate(self.class_names) if c.casefold() == label.casefold()]
            if len(folded) == 1:
                return folded[0]
            if label.isdigit():
                return self.label_id(int(label))
            known = ", ".join(f'"{c}"' for c in self.class_names) or "none"
            raise ExpressionError(f'Unknown class name "{label}": the classes are {known}.')
        present = np.unique(self.labels)
        if label not in present:
            raise ExpressionError(f"Label {label} does not exist: the labels are {_ranges_text(present)}.")
        return int(label)

    def label_mean(self, label: int | str) -> np.ndarray:
        """Centroid of the codes with this label (cached)."""
        lid = self.label_id(label)
        if lid not in self._label_means:
            self._label_means[lid] = self.codes[self.labels == lid].mean(axis=0, dtype=np.float64).astype(np.float32)
        return self._label_means[lid].copy()

    def named(self, kind: str, name: str) -> np.ndarray:
        table = self.pins if kind == "pin" else self.groups
        if name not in table:
            known = ", ".join(sorted(table)) or "none defined"
            raise ExpressionError(f'No {kind} named "{name}" ({kind}s: {known}).')
        value = np.asarray(table[name])
        if np.issubdtype(value.dtype, np.integer) or value.dtype == bool:
            idx = np.flatnonzero(value) if value.dtype == bool else value.reshape(-1)
            if len(idx) == 0:
                raise ExpressionError(f'The {kind} "{name}" is empty.')
            bad = idx[(idx < 0) | (idx >= len(self.codes))]
            if len(bad):
                self.index(int(bad[0]))
            return self.codes[idx].mean(axis=0, dtype=np.float64).astype(np.float32)
        if value.shape != (self.latent_dim,):
            raise ExpressionError(
                f'The {kind} "{name}" has shape {value.shape}, expected ({self.latent_dim},).')
        return value.astype(np.float32)

    def term_vectors(self, expr: Expression | str) -> list[np.ndarray]:
        """One resolved vector per term (coefficients not applied)."""
        if isinstance(expr, str):
            expr = parse_expression(expr)
        return [self.resolve(t.operand) for t in expr.terms]

    def evaluate(self, expr: Expression | str, strength: float = 1.0) -> np.ndarray:
        """Shortcut for :func:`evaluate_expression` with this resolver."""
        return evaluate_expression(expr, self, strength)


#: Alias: the GUI calls the operand source its context.
OperandContext = LatentResolver


def evaluate_expression(expr: Expression | str, resolver, strength: float = 1.0) -> np.ndarray:
    """Evaluate an expression: ``c0·v0 + strength · Σ_{k≥1} ck·vk``.

    Parameters
    ----------
    expr
        An :class:`Expression` or its text.
    resolver
        Object with ``resolve(operand) -> d vector`` (normally a :class:`LatentResolver`).
    strength
        Scales every term after the first: ``A - B + C`` gives ``A + strength·(C - B)``.

    Returns
    -------
    np.ndarray
        The ``d`` result vector, ``float32``.
    """
    if isinstance(expr, str):
        expr = parse_expression(expr)
    first, *rest = expr.terms
    base = first.coefficient * np.asarray(resolver.resolve(first.operand), dtype=np.float64)
    edit = np.zeros_like(base)
    for term in rest:
        edit += term.coefficient * np.asarray(resolver.resolve(term.operand), dtype=np.float64)
    return (base + float(strength) * edit).astype(np.float32)


def _selection_mask(labels: np.ndarray | None, which, n: int, what: str) -> np.ndarray:
    which_arr = np.asarray(which)
    if which_arr.dtype == bool:
        if which_arr.shape != (n,):
            raise ValueError(f"The {what} mask must have one entry per code ({n}).")
        mask = which_arr
    elif which_arr.ndim == 0:
        if labels is None:
            raise ValueError("Attribute vectors from labels need labels.")
        mask = np.asarray(labels) == int(which_arr)
    else:
        mask = np.zeros(n, dtype=bool)
        mask[which_arr.astype(np.int64)] = True
    if not mask.any():
        raise ValueError(f"The {what} set ({which if which_arr.ndim == 0 else 'given'}) has no points.")
    return mask


def attribute_vector(codes, labels, positive, negative) -> np.ndarray:
    """``mean(codes of positive) - mean(codes of negative)``.

    ``positive`` and ``negative`` are each a label (int), a boolean mask over the codes or
    an array of point indices.
    """
    codes = np.asarray(codes, dtype=np.float32)
    pos = _selection_mask(labels, positive, len(codes), "positive")
    neg = _selection_mask(labels, negative, len(codes), "negative")
    diff = codes[pos].mean(axis=0, dtype=np.float64) - codes[neg].mean(axis=0, dtype=np.float64)
    return diff.astype(np.float32)


def apply_attribute(z, vector, amount) -> np.ndarray:
    """``z + amount·vector``; ``amount`` may be an array of ``T`` amounts (returns ``T×d``)."""
    z = np.asarray(z, dtype=np.float64)
    amount = np.asarray(amount, dtype=np.float64)
    return (z + amount[..., None] * np.asarray(vector, dtype=np.float64)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Traversals, prior samples
# ---------------------------------------------------------------------------------------
def traverse(z, dim: int, *, span: float = 3.0, steps: int = 9, std=None, mean=None,
             relative: bool = False) -> np.ndarray:
    """Copies of ``z`` with one dimension swept over ``center ± span·σ``.

    Parameters
    ----------
    z
        The ``d`` code whose other dimensions are kept.
    dim
        The dimension to vary.
    span, steps
        Sweep ``steps`` evenly spaced values over ``[-span, +span]`` standard deviations.
    std
        ``d`` array of per-dimension σ (e.g. of the aggregate posterior); default 1, the prior.
    mean
        ``d`` array of per-dimension centers; default 0, the prior mean.
    relative
        Center the sweep on ``z[dim]`` instead of ``mean[dim]``.

    Returns
    -------
    np.ndarray
        ``steps×d`` ``float32``.
    """
    z = np.asarray(z, dtype=np.float32)
    sigma = 1.0 if std is None else float(np.asarray(std)[dim])
    center = float(z[dim]) if relative else (0.0 if mean is None else float(np.asarray(mean)[dim]))
    out = np.repeat(z[None, :], int(steps), axis=0)
    out[:, dim] = center + np.linspace(-span, span, int(steps)) * sigma
    return out


def traversal_dims(latent_dim: int, kl_per_dim=None, dims=None, max_dims: int | None = None) -> np.ndarray:
    """The dimensions a traversal grid shows, in row order.

    ``kl_per_dim`` may be per-dimension KL (floats: rows sorted by KL descending, so the
    active units come first; ties keep index order) or an explicit integer order. ``dims``
    restricts the rows to a subset; ``max_dims`` keeps the first rows only.
    """
    candidates = list(range(latent_dim)) if dims is None else [int(d) for d in dims]
    if kl_per_dim is not None:
        arr = np.asarray(kl_per_dim)
        if np.issubdtype(arr.dtype, np.integer):
            wanted = set(candidates)
            candidates = [int(d) for d in arr if int(d) in wanted]
        else:
            candidates = sorted(candidates, key=lambda d: -float(arr[d]))
    out = np.asarray(candidates, dtype=np.int64)
    return out[:max_dims] if max_dims is not None else out


def traversal_grid(z, kl_per_dim=None, dims=None, *, steps: int = 9, span: float = 3.0, std=None,
                   mean=None, relative: bool = False, max_dims: int | None = None) -> np.ndarray:
    """Traversals of several dimensions: ``n_dims×steps×d`` codes.

    Rows follow :func:`traversal_dims` (by KL descending when ``kl_per_dim`` is given);
    each row is :func:`traverse` of that dimension. Decode the whole grid in one call with
    :func:`decode` (leading shape is kept).
    """
    z = np.asarray(z, dtype=np.float32)
    order = traversal_dims(z.shape[-1], kl_per_dim, dims, max_dims)
    if len(order) == 0:
        return np.zeros((0, int(steps), z.shape[-1]), dtype=np.float32)
    return np.stack([traverse(z, int(d), span=span, steps=steps, std=std, mean=mean, relative=relative)
                     for d in order])


def sample_prior(n: int, latent_dim: int, seed: int | None = None) -> np.ndarray:
    """``n×latent_dim`` ``float32`` draws from the standard normal prior (seeded: reproducible)."""
    return np.random.default_rng(seed).standard_normal((int(n), int(latent_dim))).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Nearest neighbours
# ---------------------------------------------------------------------------------------
class NeighborIndex:
    """Exact Euclidean k-nearest-neighbour search over a fixed set of codes.

    Precomputes squared norms once; each query block costs one matrix product
    (``|c|² - 2c·q + |q|²``) plus an ``argpartition``. Candidates are re-ranked with exact
    float64 distances, so cancellation in the float32 expansion cannot reorder results.

    Parameters
    ----------
    codes
        ``N×d`` reference codes.
    block_elements
        Distance-matrix entries per query block (default 256 k = 1 MB: cache-sized blocks
        make the per-row selection about twice as fast as large ones).
    """

    def __init__(self, codes, *, block_elements: int = 1 << 18):
        self.codes = np.ascontiguousarray(codes, dtype=np.float32)
        if self.codes.ndim != 2:
            raise ValueError("codes must be an N×d array.")
        self.sq_norms = np.einsum("ij,ij->i", self.codes, self.codes)
        self.block = max(1, int(block_elements) // max(1, len(self.codes)))

    def __len__(self) -> int:
        return len(self.codes)

    def query(self, query, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances of the ``k`` nearest codes, nearest first.

        ``query`` is a ``d`` vector (returns ``k`` arrays) or ``M×d`` (returns ``M×k``).
        ``k`` is capped at the number of codes.
        """
        q = np.asarray(query, dtype=np.float32)
        single = q.ndim == 1
        q = np.atleast_2d(q)
        n = len(self.codes)
        k = min(int(k), n)
        idx = np.empty((len(q), k), dtype=np.int64)
        dist = np.empty((len(q), k), dtype=np.float32)
        for start in range(0, len(q), self.block):
            stop = min(start + self.block, len(q))
            idx[start:stop], dist[start:stop] = self._query_block(q[start:stop], k)
        return (idx[0], dist[0]) if single else (idx, dist)

    def _query_block(self, q: np.ndarray, k: int):
        n = len(self.codes)
        d2 = self.sq_norms[None, :] - 2.0 * (q @ self.codes.T)
        # A few spare candidates absorb float32 rounding before the exact re-rank.
        m = min(n, k + max(4, k // 2))
        cand = np.argpartition(d2, m - 1, axis=1)[:, :m] if m < n else np.broadcast_to(np.arange(n), (len(q), n))
        diff = self.codes[cand].astype(np.float64) - q[:, None, :].astype(np.float64)
        exact = np.einsum("mkd,mkd->mk", diff, diff)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        return (np.take_along_axis(cand, order, axis=1),
                np.sqrt(np.take_along_axis(exact, order, axis=1)).astype(np.float32))


def nearest_neighbors(codes, query, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of ``query`` among ``codes`` (see :class:`NeighborIndex`).

    Build a :class:`NeighborIndex` once instead when querying the same codes repeatedly.
    """
    return NeighborIndex(codes).query(query, k)
