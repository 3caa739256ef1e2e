"""Just enough GraphQL to serve a Saleor connector: parse a query document, resolve arguments.

Parses the executable subset of GraphQL (operations, variables with defaults,
fields with aliases and arguments, fragments and inline fragments, directives
skipped) into a small tree. The sandbox then picks the root fields and their
arguments; there is no schema and no type checking beyond what paging needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class GraphQLError(Exception):
    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.locations = [{"line": line, "column": column}] if line is not None else None


class EnumValue(str):
    """An enum literal (``ASC``), kept apart from a string literal (``"ASC"``)."""


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    selections: list[Any] | None = None
    line: int = 1
    column: int = 1

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class FragmentSpread:
    name: str


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[Any]


@dataclass
class VariableDefinition:
    name: str
    type: str
    default: Any = None
    has_default: bool = False


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: list[VariableDefinition]
    selections: list[Any]


@dataclass
class Document:
    operations: list[Operation]
    fragments: dict[str, list[Any]]


_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
  | (?P<blockstring>\"\"\"(?:\\\"\"\"|(?!\"\"\")[\s\S])*\"\"\")
  | (?P<string>"(?:\\.|[^"\\\n\r])*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            line, col = _position(text, i)
            raise GraphQLError(f"Syntax Error: Unexpected character {text[i]!r}.", line, col)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), i))
        i = m.end()
    out.append(("eof", "", len(text)))
    return out


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        k, v, _ = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind)

    def fail(self, expected: str) -> GraphQLError:
        k, v, pos = self.toks[self.i]
        line, col = _position(self.text, pos)
        found = "<EOF>" if k == "eof" else f'"{v}"'
        return GraphQLError(f"Syntax Error: Expected {expected}, found {found}.", line, col)

    def expect(self, value: str) -> None:
        if not self.peek(value):
            raise self.fail(f'"{value}"')
        self.i += 1

    def name(self) -> str:
        k, v, _ = self.toks[self.i]
        if k != "name":
            raise self.fail("Name")
        self.i += 1
        return v

    def document(self) -> Document:
        ops: list[Operation] = []
        fragments: dict[str, list[Any]] = {}
        while not self.peek(kind="eof"):
            if self.peek("{"):
                ops.append(Operation("query", None, [], self.selection_set()))
            elif self.peek("fragment"):
                self.i += 1
                fname = self.name()
                self.expect("on")
                self.name()
                self.directives()
                fragments[fname] = self.selection_set()
            elif self.peek("query") or self.peek("mutation") or self.peek("subscription"):
                kind = self.toks[self.i][1]
                self.i += 1
                op_name = self.name() if self.peek(kind="name") else None
                variables = self.variable_definitions() if self.peek("(") else []
                self.directives()
                ops.append(Operation(kind, op_name, variables, self.selection_set()))
            else:
                raise self.fail("Name")
        if not ops:
            raise GraphQLError("Syntax Error: the document has no operation.")
        return Document(ops, fragments)

    def variable_definitions(self) -> list[VariableDefinition]:
        self.expect("(")
        out = []
        while not self.peek(")"):
            self.expect("$")
            vname = self.name()
            self.expect(":")
            vtype = self.type_ref()
            vdef = VariableDefinition(vname, vtype)
            if self.peek("="):
                self.i += 1
                vdef.default, vdef.has_default = self.value(const=True), True
            self.directives()
            out.append(vdef)
        self.expect(")")
        return out

    def type_ref(self) -> str:
        if self.peek("["):
            self.i += 1
            inner = self.type_ref()
            self.expect("]")
            t = f"[{inner}]"
        else:
            t = self.name()
        if self.peek("!"):
            self.i += 1
            t += "!"
        return t

    def directives(self) -> None:
        while self.peek("@"):
            self.i += 1
            self.name()
            if self.peek("("):
                self.arguments()

    def selection_set(self) -> list[Any]:
        self.expect("{")
        out: list[Any] = []
        while not self.peek("}"):
            if self.peek(kind="eof"):
                raise self.fail('"}"')
            if self.peek(kind="spread"):
                self.i += 1
                if self.peek("on"):
                    self.i += 1
                    cond = self.name()
                    self.directives()
                    out.append(InlineFragment(cond, self.selection_set()))
                elif self.peek("{") or self.peek("@"):
                    self.directives()
                    out.append(InlineFragment(None, self.selection_set()))
                else:
                    out.append(FragmentSpread(self.name()))
                    self.directives()
                continue
            pos = self.toks[self.i][2]
            first = self.name()
            alias, fname = None, first
            if self.peek(":"):
                self.i += 1
                alias, fname = first, self.name()
            args = self.arguments() if self.peek("(") else {}
            self.directives()
            sels = self.selection_set() if self.peek("{") else None
            line, col = _position(self.text, pos)
            out.append(Field(fname, alias, args, sels, line, col))
        self.expect("}")
        if not out:
            raise self.fail("Name")
        return out

    def arguments(self) -> dict[str, Any]:
        self.expect("(")
        out = {}
        while not self.peek(")"):
            aname = self.name()
            self.expect(":")
            out[aname] = self.value(const=False)
        self.expect(")")
        return out

    def value(self, const: bool) -> Any:
        k, v, _ = self.toks[self.i]
        if v == "$" and k == "punct":
            if const:
                raise self.fail("a constant value")
            self.i += 1
            return Variable(self.name())
        if k == "number":
            self.i += 1
            return float(v) if any(c in v for c in ".eE") else int(v)
        if k == "string":
            self.i += 1
            return _unquote(v)
        if k == "blockstring":
            self.i += 1
            return v[3:-3].replace('\\"""', '"""')
        if k == "name":
            self.i += 1
            if v in ("true", "false"):
                return v == "true"
            if v == "null":
                return None
            return EnumValue(v)
        if v == "[":
            self.i += 1
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.i += 1
            return items
        if v == "{":
            self.i += 1
            obj = {}
            while not self.peek("}"):
                key = self.name()
                self.expect(":")
                obj[key] = self.value(const)
            self.i += 1
            return obj
        raise self.fail("a value")


def parse(text: str) -> Document:
    """Parse a GraphQL document; raise ``GraphQLError`` with a location on bad syntax."""
    return _Parser(text).document()


def pick_operation(doc: Document, name: str | None) -> Operation:
    if name:
        for op in doc.operations:
            if op.name == name:
                return op
        raise GraphQLError(f'Unknown operation named "{name}".')
    if len(doc.operations) > 1:
        raise GraphQLError("Must provide operation name if query contains multiple operations.")
    return doc.operations[0]


def coerce_variables(op: Operation, given: dict[str, Any] | None) -> dict[str, Any]:
    given = given or {}
    out: dict[str, Any] = {}
    for vdef in op.variables:
        if vdef.name in given and (given[vdef.name] is not None or not vdef.type.endswith("!")):
            out[vdef.name] = given[vdef.name]
        elif vdef.has_default:
            out[vdef.name] = vdef.default
        elif vdef.type.endswith("!"):
            raise GraphQLError(
                f'Variable "${vdef.name}" of required type "{vdef.type}" was not provided.'
            )
        else:
            out[vdef.name] = None
    return out


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """An argument's value with variables substituted."""
    if isinstance(value, Variable):
        if value.name not in variables:
            raise GraphQLError(f'Variable "${value.name}" is not defined.')
        return variables[value.name]
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    return value


def collect_fields(selections: list[Any], fragments: dict[str, list[Any]]) -> list[Field]:
    """Fields of a selection set with fragment spreads and inline fragments flattened."""
    out: list[Field] = []
    for sel in selections:
        if isinstance(sel, Field):
            out.append(sel)
        elif isinstance(sel, InlineFragment):
            out.extend(collect_fields(sel.selections, fragments))
        else:
            if sel.name not in fragments:
                raise GraphQLError(f'Unknown fragment "{sel.name}".')
            out.extend(collect_fields(fragments[sel.name], fragments))
    return out
