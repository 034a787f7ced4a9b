"""Safe constraint expressions over hardware fields, e.g. `macro_rows * macro_cols <= 65536`.

A constraint is parsed with `ast` and checked against a whitelist of node types, operators,
names and functions; it is then compiled into a tree of closures. Nothing is ever passed to
`eval`, and powers are bounded, so a hostile spec cannot run code, hang or allocate a huge
integer.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from ndpsim.errors import ConfigError

MAX_EXPRESSION_CHARS = 500
MAX_POWER_EXPONENT = 64
MAX_INT_BITS = 1024  # intermediate integers beyond this are refused (no huge allocations)

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "log2": math.log2,
    "ceil": math.ceil,
    "floor": math.floor,
}

Evaluator = Callable[[Mapping[str, Any]], Any]


class Constraint:
    """A compiled constraint: `Constraint(text, names)(values) -> bool`."""

    def __init__(self, text: str, names: frozenset[str]):
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ConfigError(f"constraint longer than {MAX_EXPRESSION_CHARS} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConfigError(f"constraint {text!r}: syntax error ({exc.msg})") from None
        self.text = text
        self._fn = _compile(tree.body, text, names)

    def __call__(self, values: Mapping[str, Any]) -> bool:
        try:
            return bool(self._fn(values))
        except ConfigError:
            raise
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ConfigError(f"constraint {self.text!r}: {type(exc).__name__}: {exc}") from None


def _checked(value: Any, text: str) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ConfigError(f"constraint {text!r}: intermediate value too large")
    return value


def _power(base: Any, exponent: Any, text: str) -> Any:
    if isinstance(exponent, (int, float)) and abs(exponent) > MAX_POWER_EXPONENT:
        raise ConfigError(f"constraint {text!r}: exponent above {MAX_POWER_EXPONENT}")
    return _checked(base**exponent, text)


def _compile(node: ast.AST, text: str, names: frozenset[str]) -> Evaluator:
    def sub(n: ast.AST) -> Evaluator:
        return _compile(n, text, names)

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        value = node.value
        return lambda env: value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            flag = node.id == "True"
            return lambda env: flag
        if node.id not in names:
            close = difflib.get_close_matches(node.id, sorted(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"constraint {text!r}: unknown name {node.id!r}{hint}")
        key = node.id
        return lambda env: env[key]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = sub(node.left), sub(node.right)
        if isinstance(node.op, ast.Pow):
            return lambda env: _power(left(env), right(env), text)
        op = _BINARY[type(node.op)]
        return lambda env: _checked(op(left(env), right(env)), text)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand, op1 = sub(node.operand), _UNARY[type(node.op)]
        return lambda env: op1(operand(env))
    if isinstance(node, ast.BoolOp):
        parts = [sub(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda env: all(p(env) for p in parts)
        return lambda env: any(p(env) for p in parts)
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        first = sub(node.left)
        pairs = zip(node.ops, node.comparators, strict=True)
        rest = [(_COMPARE[type(o)], sub(c)) for o, c in pairs]

        def compare(env: Mapping[str, Any]) -> bool:
            left = first(env)
            for op2, right_fn in rest:
                right = right_fn(env)
                if not op2(left, right):
                    return False
                left = right
            return True

        return compare
    if isinstance(node, ast.IfExp):
        test, body, orelse = sub(node.test), sub(node.body), sub(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [sub(e) for e in node.elts]
        return lambda env: tuple(i(env) for i in items)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FUNCTIONS
        and not node.keywords
    ):
        fn, args = FUNCTIONS[node.func.id], [sub(a) for a in node.args]
        return lambda env: _checked(fn(*(a(env) for a in args)), text)
    what = ast.unparse(node)
    raise ConfigError(
        f"constraint {text!r}: {what!r} is not allowed (use field names, numbers, arithmetic, "
        f"comparisons, and/or/not, and {', '.join(sorted(FUNCTIONS))})"
    )
