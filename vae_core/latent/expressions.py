"""Latent arithmetic: expression parser, operands and the resolver that turns them into codes.

Syntax
------
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
from typing import Mapping, Sequence

import numpy as np

from vae_core.errors import ExpressionError
from vae_core.ranges import real

__all__ = [
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
]


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


#: Largest |strength| :func:`evaluate_expression` accepts.
STRENGTH_MAX = 1000.0

# Parsing, printing and resolving recurse once per level; Python's stack allows about 1,000.
MAX_NESTING = 32


def _coefficient(tok: _Tok) -> float:
    value = float(tok.text)
    if not math.isfinite(value):
        raise ExpressionError(f"Syntax error at column {tok.pos + 1}: the coefficient {tok.text} is not a finite number.",
                              tok.pos)
    return value


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

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
            coefficient = _coefficient(self.take())
            self.take()
        elif self.tok.kind == "number" and self._starts_operand(self.toks[self.i + 1]):
            coefficient = _coefficient(self.take())  # implicit product: 0.5#12
        operand = self.operand(allow_bare_index=True)
        if self.is_op("*"):
            self.take()
            if self.tok.kind != "number":
                self.error("a number after '*'")
            coefficient *= _coefficient(self.take())
            if not math.isfinite(coefficient):
                raise ExpressionError(f"Syntax error at column {start + 1}: the coefficient is too large.", start)
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
        if self.depth >= MAX_NESTING:
            raise ExpressionError(f"Syntax error at column {self.tok.pos + 1}: mean() is nested more than "
                                  f"{MAX_NESTING} levels deep.", self.tok.pos)
        self.depth += 1
        self.i += 1  # "mean"
        self.expect_op("(", "'('")
        items = [self.operand(allow_bare_index=False, inside_mean=True)]
        while self.is_op(","):
            self.take()
            items.append(self.operand(allow_bare_index=False, inside_mean=True))
        self.expect_op(")", "',' or ')'")
        self.depth -= 1
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
        Scales every term after the first: ``A - B + C`` gives ``A + strength·(C - B)``;
        a finite number from -1000 to 1000 (else :class:`~vae_core.errors.ConfigError`).

    Returns
    -------
    np.ndarray
        The ``d`` result vector, ``float32``.
    """
    strength = real("strength", strength, -STRENGTH_MAX, STRENGTH_MAX)
    if isinstance(expr, str):
        expr = parse_expression(expr)
    first, *rest = expr.terms
    base = first.coefficient * np.asarray(resolver.resolve(first.operand), dtype=np.float64)
    edit = np.zeros_like(base)
    for term in rest:
        edit += term.coefficient * np.asarray(resolver.resolve(term.operand), dtype=np.float64)
    result = base + strength * edit
    if not np.all(np.isfinite(result.astype(np.float32))):
        raise ExpressionError("The result is too large to decode: use smaller coefficients or strength.")
    return result.astype(np.float32)
