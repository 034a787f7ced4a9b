"""Safe constraint expressions over hardware fields, e.g. `macro_rows * macro_cols <= 65536`.

A constraint is parsed with `ast`, checked against a whitelist of node types, operators,
names and functions, and compiled into a tree of closures: nothing is passed to `eval`.
It must be a condition (a comparison, `and/or/not` of conditions, a boolean field).

Evaluation is bounded in time and memory for every type, in three layers:

1. statically, at load: a sub-expression without field names is evaluated once, under the
   guards below, so `(1,) * 10**9`, `'a' * 10**18` or `10 ** 10 ** 10` are refused before
   any configuration is planned; string formatting (`'%d' % x`: widths and precisions
   would allocate) is refused wherever its left side is a string literal;
2. at each operation, before it runs: a string or tuple longer than MAX_SEQUENCE_ITEMS, an
   integer wider than MAX_INT_BITS, a power with an exponent above MAX_POWER_EXPONENT and
   `%` on a string are refused;
3. a work budget per evaluation (MAX_WORK: items and machine words touched by all its
   operations) as the backstop: whatever the operations, one evaluation stays below it.

A refusal is a one-line ConfigError (exit code 2).
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
MAX_SEQUENCE_ITEMS = 10_000  # characters of a string, items of a tuple
MAX_WORK = 200_000  # items + 64-bit words touched by one evaluation (about a ms)

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
_SEQUENCES = (str, tuple, list)

Evaluator = Callable[[Mapping[str, Any], list[int]], Any]  # (values, [work left]) -> value


class _Refused(Exception):
    """A guard refused an operation (becomes the constraint's ConfigError)."""


def _size(value: Any) -> int:
    """Work units of a value: items of a sequence or mapping, 64-bit words of an integer."""
    if isinstance(value, int):
        return 1 + value.bit_length() // 64
    if isinstance(value, (*_SEQUENCES, dict)):
        return 1 + len(value)
    return 1


def _charge(budget: list[int], *values: Any) -> None:
    budget[0] -= sum(_size(v) for v in values)
    if budget[0] < 0:
        raise _Refused(f"more than {MAX_WORK:,} units of work in one evaluation")


def _checked(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Refused(f"an integer wider than {MAX_INT_BITS} bits")
    if isinstance(value, _SEQUENCES) and len(value) > MAX_SEQUENCE_ITEMS:
        raise _Refused(f"a sequence of more than {MAX_SEQUENCE_ITEMS:,} items")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int)  # bool included: True * 'a' repeats too


def _guard(op: type, a: Any, b: Any) -> None:
    """Refuse an operation whose result would be too large, before it runs."""
    if op is ast.Mult:
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, _SEQUENCES) and _is_int(n):
                if len(seq) * max(n, 0) > MAX_SEQUENCE_ITEMS:
                    raise _Refused(
                        f"a sequence of {len(seq) * n:,} items (at most {MAX_SEQUENCE_ITEMS:,})"
                    )
        if _is_int(a) and _is_int(b) and a.bit_length() + b.bit_length() > 2 * MAX_INT_BITS:
            raise _Refused(f"an integer wider than {MAX_INT_BITS} bits")
    elif op is ast.Add:
        if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            if len(a) + len(b) > MAX_SEQUENCE_ITEMS:
                raise _Refused(f"a sequence of more than {MAX_SEQUENCE_ITEMS:,} items")
    elif op is ast.Mod:
        if isinstance(a, str):
            raise _Refused("string formatting (%) is not allowed")
    elif op is ast.Pow:
        if isinstance(b, int | float) and abs(b) > MAX_POWER_EXPONENT:
            raise _Refused(f"an exponent above {MAX_POWER_EXPONENT}")
        if _is_int(a) and _is_int(b) and b > 0 and a.bit_length() * b > 2 * MAX_INT_BITS:
            raise _Refused(f"an integer wider than {MAX_INT_BITS} bits")


class Constraint:
    """A compiled constraint: `Constraint(text, names, conditions)(values) -> bool`.
    `names` are the names it may use, `conditions` those of them that are booleans."""

    def __init__(self, text: str, names: frozenset[str], conditions: frozenset[str] = frozenset()):
        if not isinstance(text, str):
            raise ConfigError(f"constraint {text!r}: expected an expression in a string")
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ConfigError(f"constraint longer than {MAX_EXPRESSION_CHARS} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            why = getattr(exc, "msg", None) or type(exc).__name__
            raise ConfigError(f"constraint {text!r}: syntax error ({why})") from None
        self.text = text
        self.uses: set[str] = set()  # the names it reads
        self._fn = _Compiler(text, names, self.uses).compile(tree.body)
        if not _is_condition(tree.body, conditions):
            raise ConfigError(
                f"constraint {text!r} is not a condition: write a comparison, e.g. "
                "macro_rows * macro_cols <= 65536"
            )

    def __call__(self, values: Mapping[str, Any]) -> bool:
        try:
            result = self._fn(values, [MAX_WORK])
        except _Refused as exc:
            raise ConfigError(f"constraint {self.text!r}: refused: {exc}") from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ConfigError(f"constraint {self.text!r}: {type(exc).__name__}: {exc}") from None
        if not isinstance(result, bool):
            raise ConfigError(f"constraint {self.text!r} gave {result!r}, not True or False")
        return result


def _is_condition(node: ast.AST, conditions: frozenset[str]) -> bool:
    """Statically: does `node` give True or False?"""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_condition(v, conditions) for v in node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    if isinstance(node, ast.Name):
        return node.id in ("True", "False") or node.id in conditions
    if isinstance(node, ast.IfExp):
        return _is_condition(node.body, conditions) and _is_condition(node.orelse, conditions)
    return False


def _has_names(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id not in ("True", "False") for n in ast.walk(node))


class _Compiler:
    def __init__(self, text: str, names: frozenset[str], used: set[str]):
        self.text, self.names, self.used = text, names, used

    def compile(self, node: ast.AST) -> Evaluator:
        fn = self._compile(node)
        if _has_names(node) or isinstance(node, ast.Constant):
            return fn
        try:  # a constant sub-expression: evaluated once, here (static bounds)
            value = fn({}, [MAX_WORK])
        except _Refused as exc:
            raise ConfigError(f"constraint {self.text!r}: refused: {exc}") from None
        except (ArithmeticError, ValueError, TypeError):
            return fn  # an error only if evaluated (it may sit in a branch never taken)
        return lambda env, budget: value

    def _compile(self, node: ast.AST) -> Evaluator:
        sub = self.compile
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
            try:
                value = _checked(node.value)
            except _Refused as exc:
                raise ConfigError(f"constraint {self.text!r}: refused: {exc}") from None
            return lambda env, budget: value
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            if isinstance(node.op, ast.Mod) and _is_str_literal(node.left):
                raise ConfigError(f"constraint {self.text!r}: string formatting (%) is not allowed")
            left, right = sub(node.left), sub(node.right)
            kind, op = type(node.op), _BINARY[type(node.op)]

            def binary(env: Mapping[str, Any], budget: list[int]) -> Any:
                a, b = left(env, budget), right(env, budget)
                _guard(kind, a, b)
                result = _checked(op(a, b))
                _charge(budget, a, b, result)
                return result

            return binary
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand, op1 = sub(node.operand), _UNARY[type(node.op)]
            return lambda env, budget: op1(operand(env, budget))
        if isinstance(node, ast.BoolOp):
            parts = [sub(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda env, budget: all(p(env, budget) for p in parts)
            return lambda env, budget: any(p(env, budget) for p in parts)
        if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, body, orelse = sub(node.test), sub(node.body), sub(node.orelse)
            return lambda env, b: body(env, b) if test(env, b) else orelse(env, b)
        if isinstance(node, ast.Tuple | ast.List):
            items = [sub(e) for e in node.elts]
            return lambda env, budget: tuple(i(env, budget) for i in items)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and not node.keywords
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            fn, args = FUNCTIONS[node.func.id], [sub(a) for a in node.args]

            def call(env: Mapping[str, Any], budget: list[int]) -> Any:
                values = [a(env, budget) for a in args]
                result = _checked(fn(*values))
                _charge(budget, *values, result)
                return result

            return call
        what = ast.unparse(node)
        raise ConfigError(
            f"constraint {self.text!r}: {what!r} is not allowed (use field names, numbers, "
            f"arithmetic, comparisons, and/or/not, and {', '.join(sorted(FUNCTIONS))})"
        )

    def _name(self, node: ast.Name) -> Evaluator:
        if node.id in ("True", "False"):
            flag = node.id == "True"
            return lambda env, budget: flag
        if node.id not in self.names:
            close = difflib.get_close_matches(node.id, sorted(self.names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"constraint {self.text!r}: unknown name {node.id!r}{hint}")
        key = node.id
        self.used.add(key)

        def name(env: Mapping[str, Any], budget: list[int]) -> Any:
            return _checked(env[key])

        return name

    def _compare(self, node: ast.Compare) -> Evaluator:
        first = self.compile(node.left)
        pairs = zip(node.ops, node.comparators, strict=True)
        rest = [(_COMPARE[type(o)], self.compile(c)) for o, c in pairs]

        def compare(env: Mapping[str, Any], budget: list[int]) -> bool:
            left = first(env, budget)
            for op2, right_fn in rest:
                right = right_fn(env, budget)
                _charge(budget, left, right)
                if not op2(left, right):
                    return False
                left = right
            return True

        return compare


def _is_str_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)
