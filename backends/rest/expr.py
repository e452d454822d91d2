"""The manifest's expression set: how a request body, query or header is built from a record.

A template is any YAML value. Strings that start with ``=`` are expressions, compiled when the
configuration loads; everything else is a constant (``==`` starts a constant string that begins
with ``=``). In a mapping, the key ``"*"`` spreads a mapping into it (explicit keys win). A value
that evaluates to nothing (a path that is absent) is left out of its mapping or list, so a
partial update sends only what changed.

Expressions are a path, a constant or a list, piped through functions::

    =fields.email | lower
    =fields.last_name | default("(unknown)")
    =[fields.first_name, fields.last_name] | compact | join(" ")
    =due_date | date
    =type | map(activity_types, "note")

Paths start at a root the operation provides (``fields``, ``id``, ``value``...; each operation
lists its own, and a template naming another root fails at load with its YAML path). Functions:

======================  ===========================================================
``default(x)``          ``x`` when the value is absent or null
``otherwise(x)``        ``x`` when the value is absent (a null stays: it clears)
``lower`` / ``upper``   change the case of a string
``string``              the value as text (numbers, booleans)
``join(sep)``           a list as one string (absent, null and empty items left out;
                        nothing left: absent)
``array``               wrap in a list (a list stays a list, null gives ``[]``)
``compact``             a list without its null and empty items
``first``               a list's first item
``url``                 ``acme.com`` → ``https://acme.com`` (values with a scheme unchanged)
``date``                a time as ``YYYY-MM-DD``
``datetime``            a time as ISO 8601 in UTC (``2026-01-31T09:00:00Z``)
``time``                a time as ``HH:MM`` in UTC
``map(table[, d])``     look the value up in a table of the manifest's ``tables``
``truncate(n)``         at most ``n`` characters
``prefix(s)``           ``s`` + the value (absent and null stay so)
``suffix(s)``           the value + ``s``
``slug``                ``campaignOpens`` → ``campaign_opens`` (lower case, ``_``)
``domain``              ``https://www.acme.com/about`` → ``acme.com``
``int``                 ``"42"`` → ``42`` (ids of APIs with numeric ids)
``object(key)``         ``v`` → ``{key: v}`` (``=fields.email | object("value") | array``)
``objects(key)``        a list ``[a, b]`` → ``[{key: a}, {key: b}]`` (an ``_or`` of filters)
``with(key, v)``        a mapping with one more key
``json``                the value as JSON text (a filter in a query parameter)
``when(x)``             the value when ``x`` is set (non-empty), else nothing
``unless(x)``           the value when ``x`` is not set, else nothing
======================  ===========================================================
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from backends.rest.functions import FUNCTIONS, slug, string
from backends.rest.paths import MISSING, get_path

__all__ = ["FUNCTIONS", "Context", "Expr", "Template", "TemplateValue", "parse_expression", "slug"]

#: Roots an operation provides, by name.
Context = Mapping[str, Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
     |(?P<number>-?\d+(?:\.\d+)?)
     |(?P<name>[A-Za-z_][\w\-]*(?:\.(?:[A-Za-z_][\w\-]*|\d+|\*))*)
     |(?P<op>[|(),\[\]])
    )""",
    re.VERBOSE,
)


class Expr:
    """A compiled expression."""

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
        raise NotImplementedError

    def roots(self) -> set[str]:
        return set()

    def tables(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class _Const(Expr):
    value: Any

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
        return self.value


@dataclass(frozen=True)
class _Path(Expr):
    root: str
    rest: tuple[str, ...]

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
        if self.root not in ctx:
            return MISSING
        return get_path(ctx[self.root], self.rest)

    def roots(self) -> set[str]:
        return {self.root}


@dataclass(frozen=True)
class _List(Expr):
    items: tuple[Expr, ...]

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
        return [v for v in (i.evaluate(ctx, tables) for i in self.items) if v is not MISSING]

    def roots(self) -> set[str]:
        return set().union(*(i.roots() for i in self.items)) if self.items else set()

    def tables(self) -> set[str]:
        return set().union(*(i.tables() for i in self.items)) if self.items else set()


@dataclass(frozen=True)
class _Call(Expr):
    base: Expr
    name: str
    args: tuple[Expr, ...]

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
        value = self.base.evaluate(ctx, tables)
        args = [a.evaluate(ctx, tables) for a in self.args]
        if self.name == "map":
            if value is MISSING:
                return MISSING  # nothing to look up: an update that leaves the field alone
            table = tables.get(str(args[0]), {})
            key = string(value)
            if isinstance(key, str) and key in table:
                return table[key]
            return args[1] if len(args) > 1 else value
        return FUNCTIONS[self.name][1](value, *args)

    def roots(self) -> set[str]:
        return self.base.roots().union(*(a.roots() for a in self.args))

    def tables(self) -> set[str]:
        found = self.base.tables().union(*(a.tables() for a in self.args))
        if self.name == "map" and isinstance(self.args[0], _Const):
            found.add(str(self.args[0].value))
        return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.tokens = text, self._tokenize(text)
        self.at = 0

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if not text[position:].strip():
                    break
                raise ValueError(f"unexpected {text[position:].strip()[:12]!r}")
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            found = "the end" if token is None else repr(token[1])
            raise ValueError(f"expected {value or 'a value'!r}, found {found}")
        self.at += 1
        return token

    def pipe(self) -> Expr:
        expr = self.term()
        while self.peek() == ("op", "|"):
            self.take("|")
            kind, name = self.take()
            if kind != "name" or name not in FUNCTIONS:
                raise ValueError(f"unknown function {name!r} (known: {', '.join(FUNCTIONS)})")
            args: list[Expr] = []
            if self.peek() == ("op", "("):
                self.take("(")
                while self.peek() != ("op", ")"):
                    args.append(self.pipe())
                    if self.peek() == ("op", ","):
                        self.take(",")
                self.take(")")
            if name == "map" and args and isinstance(args[0], _Path) and not args[0].rest:
                args[0] = _Const(args[0].root)  # the table's name, not a path
            low, high = FUNCTIONS[name][0]
            if not low <= len(args) <= high:
                wanted = f"{low}" if low == high else f"{low} to {high}"
                raise ValueError(f"{name} takes {wanted} argument(s), got {len(args)}")
            expr = _Call(expr, name, tuple(args))
        return expr

    def term(self) -> Expr:
        kind, value = self.take()
        if kind == "string":
            return _Const(ast.literal_eval(value))
        if kind == "number":
            return _Const(float(value) if "." in value else int(value))
        if value == "[":
            items: list[Expr] = []
            while self.peek() != ("op", "]"):
                items.append(self.pipe())
                if self.peek() == ("op", ","):
                    self.take(",")
            self.take("]")
            return _List(tuple(items))
        if kind == "name":
            constants = {"true": True, "false": False, "null": None}
            if value in constants:
                return _Const(constants[value])
            root, *rest = value.split(".")
            return _Path(root, tuple(rest))
        raise ValueError(f"unexpected {value!r}")


def parse_expression(text: str) -> Expr:
    """Compile an expression (without its leading ``=``); ``ValueError`` names the problem."""
    parser = _Parser(text)
    try:
        expr = parser.pipe()
        if parser.peek() is not None:
            raise ValueError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    except ValueError as exc:
        raise ValueError(f"in expression {'=' + text!r}: {exc}") from None
    return expr


class Template:
    """A compiled template (see the module docstring); a pydantic type in the manifest."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._node = self._compile(source)

    @classmethod
    def _compile(cls, value: Any) -> Any:
        if isinstance(value, Template):
            return value._node
        if isinstance(value, str):
            if value.startswith("=="):
                return _Const(value[1:])
            if value.startswith("="):
                return parse_expression(value[1:])
            return _Const(value)
        if isinstance(value, Mapping):
            return {str(k): cls._compile(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cls._compile(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return _Const(value)
        raise ValueError(f"a template holds JSON values, not {type(value).__name__}")

    def evaluate(self, ctx: Context, tables: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        """The value for ``ctx`` (absent values left out of mappings and lists)."""
        return _evaluate(self._node, ctx, tables or {})

    def roots(self) -> set[str]:
        """The roots the template reads (checked against the operation's at load)."""
        return _collect(self._node, "roots")

    def tables(self) -> set[str]:
        """The tables the template's ``map`` calls name."""
        return _collect(self._node, "tables")

    @property
    def is_constant(self) -> bool:
        return not self.roots()

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    @classmethod
    def of(cls, value: Any) -> Template:
        """``value`` compiled (a template stays as it is); ``ValueError`` names the problem."""
        return value if isinstance(value, Template) else cls(value)


#: A template as a field of a manifest model: compiled when the configuration loads.
TemplateValue = Annotated[
    Template, PlainValidator(Template.of), PlainSerializer(lambda template: template.source)
]


def _evaluate(node: Any, ctx: Context, tables: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(node, Expr):
        return node.evaluate(ctx, tables)
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        spread = node.get("*")
        if spread is not None:
            merged = _evaluate(spread, ctx, tables)
            if isinstance(merged, Mapping):
                out.update(merged)
        for key, child in node.items():
            if key != "*":
                value = _evaluate(child, ctx, tables)
                if value is not MISSING:
                    out[key] = value
        return out
    values = (_evaluate(child, ctx, tables) for child in node)
    return [v for v in values if v is not MISSING]


def _collect(node: Any, what: str) -> set[str]:
    if isinstance(node, Expr):
        found: set[str] = getattr(node, what)()
        return found
    children: Sequence[Any] = list(node.values()) if isinstance(node, dict) else node
    return set().union(*(_collect(child, what) for child in children)) if children else set()
