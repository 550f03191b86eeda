"""A small SQL-like WHERE clause over ``index.parquet``, compiled to a pyarrow expression.

Grammar (keywords in any case; column names as in the index)::

    expr     := or
    or       := and ("OR" and)*
    and      := not ("AND" not)*
    not      := "NOT" not | atom
    atom     := "(" expr ")" | operand cmp operand | operand ["NOT"] "IN" "(" literal, ... ")"
              | operand "IS" ["NOT"] "NULL" | operand
    cmp      := = | == | != | <> | < | <= | > | >=
    operand  := column | literal | len(column)
    literal  := number | 'text' (quote doubled inside) | TRUE | FALSE | NULL

``len(col)`` is the length of a list column (``len(subjects) >= 2``). Every column is checked
against the index's schema before anything is read, and an unknown one is named with the
columns there are. Nothing is evaluated as Python: the clause becomes a
``pyarrow.compute.Expression`` that ``Table.filter`` runs (why not DuckDB: see docs/cli.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|-?\.\d+(?:[eE][-+]?\d+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<quoted>"(?:[^"]|"")+")
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "len"}
_COMPARE = {"=": "eq", "==": "eq", "!=": "ne", "<>": "ne", "<": "lt", "<=": "le", ">": "gt"}
_COMPARE[">="] = "ge"


class WhereError(ValueError):
    """The clause cannot be parsed or names something the index does not have."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, punct, name, keyword, end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WhereError(f"cannot read the clause at {pos + 1}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            tokens.append(_Token("keyword", value.lower(), start))
        elif kind == "quoted":
            tokens.append(_Token("name", value[1:-1].replace('""', '"'), start))
        else:
            tokens.append(_Token(kind, value, start))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, schema: pa.Schema) -> None:
        self.text, self.schema = text, schema
        self.tokens = _tokens(text)
        self.pos = 0

    # ---- tokens ---------------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.accept(kind, text):
            self.fail(f"expected {text!r}")

    def fail(self, why: str) -> None:
        token = self.peek()
        got = "the end" if token.kind == "end" else repr(token.text)
        raise WhereError(f"{why} at {token.at + 1}, found {got}: {self.text!r}")

    # ---- grammar ----------------------------------------------------------------------
    def parse(self) -> pc.Expression:
        expr = self.or_()
        if self.peek().kind != "end":
            self.fail("expected AND, OR or the end")
        return _bool(expr)

    def or_(self) -> Any:
        expr = self.and_()
        while self.accept("keyword", "or"):
            expr = _bool(expr) | _bool(self.and_())
        return expr

    def and_(self) -> Any:
        expr = self.not_()
        while self.accept("keyword", "and"):
            expr = _bool(expr) & _bool(self.not_())
        return expr

    def not_(self) -> Any:
        if self.accept("keyword", "not"):
            return ~_bool(self.not_())
        return self.atom()

    def atom(self) -> Any:
        if self.accept("punct", "("):
            expr = self.or_()
            self.expect("punct", ")")
            return expr
        left = self.operand()
        token = self.peek()
        if token.kind == "op":
            self.take()
            right = self.operand()
            return getattr(_value(left), f"__{_COMPARE[token.text]}__")(_value(right))
        negate = self.accept("keyword", "not")
        if self.accept("keyword", "in"):
            values = self.literal_list()
            expr = _value(left).isin(values)
            return ~expr if negate else expr
        if negate:
            self.fail("expected IN after NOT")
        if self.accept("keyword", "is"):
            negate = self.accept("keyword", "not")
            self.expect("keyword", "null")
            expr = _value(left).is_null()
            return ~expr if negate else expr
        return left

    def literal_list(self) -> list[Any]:
        self.expect("punct", "(")
        values = [self.literal()]
        while self.accept("punct", ","):
            values.append(self.literal())
        self.expect("punct", ")")
        return values

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "number":
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        self.pos -= 1
        self.fail("expected a number, 'text', TRUE, FALSE or NULL")
        raise AssertionError  # fail raised

    def operand(self) -> Any:
        token = self.peek()
        if token.kind == "name":
            self.take()
            return pc.field(self.column(token))
        if self.accept("keyword", "len"):
            self.expect("punct", "(")
            name = self.take()
            if name.kind != "name":
                self.pos -= 1
                self.fail("expected a column name")
            column = self.column(name)
            if not pa.types.is_list(self.schema.field(column).type):
                raise WhereError(f"len() takes a list column; {column} is not one")
            self.expect("punct", ")")
            return pc.list_value_length(pc.field(column))
        return _Literal(self.literal())

    def column(self, token: _Token) -> str:
        if token.text not in self.schema.names:
            known = ", ".join(self.schema.names)
            raise WhereError(f"no column {token.text!r} in the index (it has: {known})")
        return token.text


class _Literal:
    """A literal operand, kept apart from expressions until a comparison uses it."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _value(operand: Any) -> Any:
    if isinstance(operand, _Literal):
        return pc.scalar(operand.value)
    return operand


def _bool(operand: Any) -> pc.Expression:
    if isinstance(operand, _Literal):
        if isinstance(operand.value, bool):
            return pc.scalar(operand.value)
        raise WhereError(f"{operand.value!r} is not a condition")
    return operand


def compile_where(text: str, schema: pa.Schema) -> pc.Expression:
    """The pyarrow expression of ``text`` over a table of ``schema``; WhereError says why not."""
    if not text.strip():
        raise WhereError("an empty --where clause")
    return _Parser(text, schema).parse()


def filter_table(table: pa.Table, text: str) -> pa.Table:
    """The rows of ``table`` where ``text`` holds (a null comparison counts as false)."""
    expr = compile_where(text, table.schema)
    try:
        return table.filter(expr)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise WhereError(f"cannot evaluate {text!r}: {str(exc).splitlines()[0]}") from exc
