"""The small expression language of eligibility policies, parsed by hand (never `eval`) and
evaluated column-wise over a whole population at once.

    age >= 80 and lives_alone
    hukou == "local" and (age >= 90 or disability_level in [1, 2])
    has_licence("birth_medical_certificate") and licence_days("birth_medical_certificate") <= 180
    area_in("310115001", "310115002") and not receives_pension

Names: `age` (whole years on the day of the run), `area` (the village code of registered
residence), anything else is the citizen attribute of that name. Literals: numbers, "text" or
'text', true, false, null. Comparisons == != < <= > >=, `in [...]`, `not in [...]`; `and`,
`or`, `not`, parentheses. Functions: has_licence(type), licence_days(type) (days since the
newest valid licence of the type took effect), area_in(code, ...) (the area or below).

Missing facts are unknown, not false: a comparison with a missing value is unknown, and
`and` / `or` / `not` follow three-valued logic (unknown and false is false, unknown or true is
true, not unknown is unknown). Only a definite true qualifies. `x == null` asks whether x is
missing, and is never unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class ExprError(ValueError):
    """A policy condition that cannot be parsed or makes no sense; says where."""


# -- syntax ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
""", re.VERBOSE)
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
BUILTIN_NAMES = {"age": "number", "area": "text"}
FUNCTIONS = {"has_licence": "bool", "licence_days": "number", "area_in": "bool"}
ORDERING = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True, eq=False)
class Node:
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class Lit(Node):
    value: Any


@dataclass(frozen=True, eq=False)
class Name(Node):
    name: str


@dataclass(frozen=True, eq=False)
class Call(Node):
    fn: str
    args: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class In(Node):
    left: Node
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True, eq=False)
class And(Node):
    parts: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Or(Node):
    parts: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Not(Node):
    part: Node


@dataclass(frozen=True, eq=False)
class Token:
    kind: str
    text: str
    start: int
    end: int


def _tokens(source: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ExprError(f"unexpected {source[pos]!r} at character {pos + 1}")
        kind = m.lastgroup or ""
        if kind != "space":
            text = m.group()
            if kind == "name" and text in KEYWORDS:
                kind = text
            out.append(Token(kind, text, m.start(), m.end()))
        pos = m.end()
    out.append(Token("end", "", len(source), len(source)))
    return out


class Expr:
    """A parsed and checked condition: `Expr("age >= 80 and lives_alone")`."""

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ExprError("the condition is empty")
        self.source = source
        self._toks = _tokens(source)
        self._i = 0
        self.root = self._or()
        if self._peek().kind != "end":
            raise self._unexpected()
        del self._toks
        _check(self.root, self)

    # recursive descent, lowest precedence first
    def _peek(self) -> Token:
        return self._toks[self._i]

    def _take(self, kind: str | None = None) -> Token:
        tok = self._toks[self._i]
        if kind is not None and tok.kind != kind:
            raise self._unexpected(kind)
        self._i += 1
        return tok

    def _unexpected(self, wanted: str | None = None) -> ExprError:
        tok = self._peek()
        got = "the end" if tok.kind == "end" else repr(tok.text)
        want = f", expected {wanted!r}" if wanted and wanted not in ("name", "end") else ""
        return ExprError(f"unexpected {got} at character {tok.start + 1}{want}")

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek().kind == "or":
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(parts[0].start, parts[-1].end, tuple(parts))

    def _and(self) -> Node:
        parts = [self._not()]
        while self._peek().kind == "and":
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else And(parts[0].start, parts[-1].end, tuple(parts))

    def _not(self) -> Node:
        if self._peek().kind == "not":
            tok = self._take()
            part = self._not()
            return Not(tok.start, part.end, part)
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._atom()
        tok = self._peek()
        if tok.kind == "op" and tok.text in ("==", "!=", "<", "<=", ">", ">="):
            self._take()
            right = self._atom()
            return Compare(left.start, right.end, tok.text, left, right)
        negate = False
        if tok.kind == "not" and self._toks[self._i + 1].kind == "in":
            self._take()
            negate = True
            tok = self._peek()
        if tok.kind == "in":
            self._take()
            values, end = self._list()
            return In(left.start, end, left, values, negate)
        if negate:
            raise self._unexpected("in")
        return left

    def _list(self) -> tuple[tuple[Any, ...], int]:
        self._take_op("[")
        values: list[Any] = []
        if not self._is_op("]"):
            values.append(self._literal())
            while self._is_op(","):
                self._take()
                values.append(self._literal())
        end = self._take_op("]").end
        return tuple(values), end

    def _literal(self) -> Any:
        node = self._atom()
        if not isinstance(node, Lit):
            raise ExprError(f"a list holds literals only, not {self.source[node.start:node.end]!r}")
        return node.value

    def _is_op(self, text: str) -> bool:
        tok = self._peek()
        return tok.kind == "op" and tok.text == text

    def _take_op(self, text: str) -> Token:
        if not self._is_op(text):
            raise self._unexpected(text)
        return self._take()

    def _atom(self) -> Node:
        tok = self._peek()
        if tok.kind == "number":
            self._take()
            value = float(tok.text)
            return Lit(tok.start, tok.end, int(value) if value.is_integer() and "." not in
                       tok.text and "e" not in tok.text.lower() else value)
        if tok.kind == "string":
            self._take()
            return Lit(tok.start, tok.end, _unquote(tok.text))
        if tok.kind in ("true", "false", "null"):
            self._take()
            return Lit(tok.start, tok.end, {"true": True, "false": False, "null": None}[tok.kind])
        if self._is_op("("):
            self._take()
            inner = self._or()
            end = self._take_op(")").end
            return _respan(inner, tok.start, end)
        if tok.kind == "name":
            self._take()
            if self._is_op("("):
                self._take()
                args: list[str] = []
                if not self._is_op(")"):
                    args.append(self._string_arg(tok.text))
                    while self._is_op(","):
                        self._take()
                        args.append(self._string_arg(tok.text))
                end = self._take_op(")").end
                return Call(tok.start, end, tok.text, tuple(args))
            return Name(tok.start, tok.end, tok.text)
        raise self._unexpected()

    def _string_arg(self, fn: str) -> str:
        tok = self._peek()
        if tok.kind != "string":
            raise ExprError(f"{fn}() takes quoted text, got {tok.text or 'the end'!r} at "
                            f"character {tok.start + 1}")
        self._take()
        return _unquote(tok.text)

    # -- what it refers to ---------------------------------------------------------------------

    def text(self, node: Node) -> str:
        return self.source[node.start:node.end].strip()

    def nodes(self) -> Iterator[Node]:
        return _walk(self.root)

    def licence_types(self) -> set[str]:
        return {a for n in self.nodes() if isinstance(n, Call)
                and n.fn in ("has_licence", "licence_days") for a in n.args}

    def attributes(self) -> set[str]:
        return {n.name for n in self.nodes() if isinstance(n, Name)
                and n.name not in BUILTIN_NAMES}


def _respan(node: Node, start: int, end: int) -> Node:
    # A parenthesised part quotes with its parentheses in audits: "(a or b)".
    values = {f: getattr(node, f) for f in node.__dataclass_fields__}
    values.update(start=start, end=end)
    return type(node)(**values)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, And | Or):
        for p in node.parts:
            yield from _walk(p)
    elif isinstance(node, Not):
        yield from _walk(node.part)
    elif isinstance(node, Compare):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, In):
        yield from _walk(node.left)


def _static_type(node: Node) -> str:
    """number, text, bool, null or any (an attribute: whatever the citizen record holds)."""
    if isinstance(node, Lit):
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        return "number" if isinstance(v, int | float) else "text"
    if isinstance(node, Name):
        return BUILTIN_NAMES.get(node.name, "any")
    if isinstance(node, Call):
        return FUNCTIONS[node.fn]
    return "bool"


def _check(node: Node, expr: Expr) -> None:
    for n in _walk(node):
        if isinstance(n, Call):
            if n.fn not in FUNCTIONS:
                raise ExprError(f"unknown function {n.fn}() in {expr.text(n)!r}; known: "
                                f"{', '.join(FUNCTIONS)}")
            want = 1 if n.fn != "area_in" else None
            if (want is not None and len(n.args) != want) or not n.args:
                raise ExprError(f"{n.fn}() takes {'one' if want else 'at least one'} argument "
                                f"in {expr.text(n)!r}")
        elif isinstance(n, Compare):
            lt, rt = _static_type(n.left), _static_type(n.right)
            if n.op in ORDERING:
                bad = next((t for t in (lt, rt) if t in ("text", "bool", "null")), None)
                if bad is not None:
                    raise ExprError(f"{expr.text(n)!r}: {n.op} compares numbers, not {bad}")
            elif "bool" in (lt, rt) and "number" in (lt, rt):
                raise ExprError(f"{expr.text(n)!r} compares true/false with a number")
            if isinstance(n.left, Lit) and isinstance(n.right, Lit):
                raise ExprError(f"{expr.text(n)!r} compares two constants")
        elif isinstance(n, In):
            if any(isinstance(v, list) for v in n.values):
                raise ExprError(f"{expr.text(n)!r}: lists do not nest")


# -- evaluation --------------------------------------------------------------------------------


@dataclass
class Val:
    """A column of values: `kind` number (float, NaN missing), bool, or obj (raw values);
    `known` marks the rows where it has a value."""

    kind: str
    data: np.ndarray
    known: np.ndarray


class Columns:
    """What an evaluation reads; `Population` in policies.py is the real one."""

    n: int

    def name(self, name: str) -> Val:
        raise NotImplementedError

    def call(self, fn: str, args: tuple[str, ...]) -> Val:
        raise NotImplementedError


@dataclass
class Evaluation:
    expr: Expr
    result: np.ndarray  # bool: definitely true
    values: dict[int, Val] = field(default_factory=dict)  # id(node) -> its column
    _tests: dict[int, Val] = field(default_factory=dict)

    def audit(self, row: int) -> list[dict[str, Any]]:
        """The conditions of the expression for one row: each comparison or test, whether it
        held (None: unknown), and the values it read."""
        operands = {id(x) for p in self.expr.nodes() if isinstance(p, Compare | In)
                    for x in ((p.left, p.right) if isinstance(p, Compare) else (p.left,))}
        out = []
        for n in self.expr.nodes():
            test = isinstance(n, Compare | In) or (isinstance(n, Name | Call | Lit)
                                                   and id(n) not in operands)
            if test:
                out.append({"condition": self.expr.text(n), "held": self._held(n, row),
                            "values": self._inputs(n, row)})
        return out

    def _held(self, node: Node, row: int) -> bool | None:
        b = self._tests.get(id(node))
        if b is None:
            v = self.values.get(id(node))
            if v is None:
                return None
            b = self._tests[id(node)] = _as_bool(v)
        return bool(b.data[row]) if b.known[row] else None

    def _inputs(self, node: Node, row: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in _walk(node):
            if isinstance(n, Name | Call) and id(n) in self.values:
                out[self.expr.text(n)] = _scalar(self.values[id(n)], row)
        return out


def evaluate(expr: Expr, columns: Columns) -> Evaluation:
    ev = Evaluation(expr, np.zeros(columns.n, dtype=bool))
    top = _as_bool(_eval(expr.root, columns, ev.values, columns.n))
    ev.result = top.data & top.known
    return ev


def _eval(node: Node, cols: Columns, memo: dict[int, Val], n: int) -> Val:
    v = _eval_node(node, cols, memo, n)
    memo[id(node)] = v
    return v


def _eval_node(node: Node, cols: Columns, memo: dict[int, Val], n: int) -> Val:
    if isinstance(node, Lit):
        return _constant(node.value, n)
    if isinstance(node, Name):
        return cols.name(node.name)
    if isinstance(node, Call):
        return cols.call(node.fn, node.args)
    if isinstance(node, Not):
        b = _as_bool(_eval(node.part, cols, memo, n))
        return Val("bool", ~b.data & b.known, b.known)
    if isinstance(node, And | Or):
        parts = [_as_bool(_eval(p, cols, memo, n)) for p in node.parts]
        return _and(parts) if isinstance(node, And) else _or(parts)
    if isinstance(node, In):
        return _in(_eval(node.left, cols, memo, n), node.values, node.negate)
    if isinstance(node, Compare):
        return _compare(node.op, _eval(node.left, cols, memo, n),
                        _eval(node.right, cols, memo, n), node)
    raise TypeError(node)


def _constant(value: Any, n: int) -> Val:
    if value is None:
        return Val("obj", np.full(n, None, dtype=object), np.zeros(n, dtype=bool))
    if isinstance(value, bool):
        return Val("bool", np.full(n, value), np.ones(n, dtype=bool))
    if isinstance(value, int | float):
        return Val("number", np.full(n, float(value)), np.ones(n, dtype=bool))
    data = np.empty(n, dtype=object)
    data[:] = [value] * n
    return Val("obj", data, np.ones(n, dtype=bool))


def _and(parts: list[Val]) -> Val:
    true = np.ones_like(parts[0].known)
    false = np.zeros_like(parts[0].known)
    for p in parts:
        true &= p.data & p.known
        false |= ~p.data & p.known
    known = true | false
    return Val("bool", true, known)


def _or(parts: list[Val]) -> Val:
    true = np.zeros_like(parts[0].known)
    false = np.ones_like(parts[0].known)
    for p in parts:
        true |= p.data & p.known
        false &= ~p.data & p.known
    return Val("bool", true, true | false)


def _as_bool(v: Val) -> Val:
    """A value tested on its own: only true counts as true; other values are unknown."""
    if v.kind == "bool":
        return v
    if v.kind == "number":
        return Val("bool", (v.data != 0) & v.known, v.known)
    is_bool = _map(lambda x: isinstance(x, bool), v.data)
    return Val("bool", _map(lambda x: x is True, v.data), is_bool)


def _as_number(v: Val) -> Val:
    if v.kind == "number":
        return v
    if v.kind == "bool":
        return Val("number", v.data.astype(float), v.known.copy())
    nums = np.fromiter((_num(x) for x in v.data), dtype=float, count=len(v.data))
    return Val("number", nums, ~np.isnan(nums))


def _num(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return math.nan
    return float(x)


def _map(fn: Callable[[Any], bool], data: np.ndarray) -> np.ndarray:
    return np.fromiter((fn(x) for x in data), dtype=bool, count=len(data))


def _compare(op: str, a: Val, b: Val, node: Compare) -> Val:
    # x == null / x != null: whether x is missing; always known.
    null_side = (a if isinstance(node.right, Lit) and node.right.value is None
                 else b if isinstance(node.left, Lit) and node.left.value is None else None)
    if null_side is not None:
        missing = ~null_side.known
        return Val("bool", missing if op == "==" else ~missing, np.ones_like(missing))
    if op in ORDERING or a.kind == "number" or b.kind == "number":
        x, y = _as_number(a), _as_number(b)
        known = x.known & y.known
        with np.errstate(invalid="ignore"):
            data = {"<": np.less, "<=": np.less_equal, ">": np.greater,
                    ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal}[op](x.data, y.data)
        return Val("bool", data & known, known)
    if a.kind == "bool" or b.kind == "bool":
        x, y = _as_bool(a), _as_bool(b)
        known = x.known & y.known
        same = x.data == y.data
        return Val("bool", (same if op == "==" else ~same) & known, known)
    known = a.known & b.known
    same = _map(lambda t: _same(t[0], t[1]), np.fromiter(zip(a.data, b.data, strict=True),
                                                         dtype=object, count=len(a.data)))
    return Val("bool", (same if op == "==" else ~same) & known, known)


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    try:
        return bool(x == y)
    except Exception:  # noqa: BLE001 - odd attribute values compare unequal, never crash a run
        return False


def _in(v: Val, values: tuple[Any, ...], negate: bool) -> Val:
    if v.kind == "number":
        nums = [float(x) for x in values if isinstance(x, int | float) and not isinstance(x, bool)]
        hit = np.isin(v.data, nums) & v.known
    else:
        choices = list(values)
        hit = _map(lambda x: any(_same(x, c) for c in choices), v.data) & v.known
    return Val("bool", (~hit if negate else hit) & v.known, v.known)


def _scalar(v: Val, row: int) -> Any:
    if not v.known[row]:
        return None
    x = v.data[row]
    if v.kind == "number":
        f = float(x)
        return int(f) if f.is_integer() else f
    if v.kind == "bool":
        return bool(x)
    return x
