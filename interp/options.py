"""Command-line options written once: a command's options are built from the fields of a frozen config
dataclass. A field's default is the option's default and its help is `field(metadata={"help": ...})` or
the docstring right under the field (read once, with `ast`). Importing this module imports no torch.

    @app.command()
    @from_config(CircuitOptions, "opts", flags={"formats": Flag("--format")})
    def circuit(model: str = typer.Argument(...), opts: CircuitOptions = None) -> None:
        ...  # `opts` arrives built (and so checked by its `__post_init__`)

Typer reads a command's options from its signature, so `from_config` gives the command a signature with
one `typer.Option` per chosen field, and builds the dataclass from those values when the command runs.
A tuple field takes one comma-separated value (`split_list`, the one comma-list parser of the CLI) or,
with `Flag(repeat=True)`, a repeated option.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from interp.errors import InterpError

_MISSING: Any = dataclasses.MISSING


class _FieldDefault:
    def __repr__(self) -> str:
        return "<the field's default>"


FIELD_DEFAULT: Any = _FieldDefault()


@dataclass(frozen=True)
class Flag:
    """How one config field appears on the command line; every part is optional."""

    decls: tuple[str, ...] | str = ()
    """Option names such as "--format" or ("--out", "-o") (default: `--field-name`); " /--no-x" makes a
    switch that only turns a default-true field off."""
    help: str | None = None
    """Help text when the command line's wording must differ from the field's docstring."""
    default: Any = FIELD_DEFAULT
    """The option's default when it differs from the field's (e.g. a required field with a CLI default)."""
    min: float | None = None
    """Smallest accepted number (click checks it)."""
    max: float | None = None
    """Largest accepted number (click checks it)."""
    repeat: bool = False
    """A tuple field given by repeating the option, instead of one comma-separated value."""
    argument: bool = False
    """A positional argument instead of an option."""


def split_list(
    text: str | Sequence[str] | None, allowed: Sequence[str] | None = None, what: str = ""
) -> tuple[str, ...]:
    """`"a, b"` -> `("a", "b")`; None or "" -> (). With `allowed`, every item must be one of them and
    the list must not be empty (one line naming the option `what` otherwise).

    >>> split_list("png, svg", ("png", "pdf", "svg"), "--format")
    ('png', 'svg')
    """
    parts = text.split(",") if isinstance(text, str) else (text or ())
    items = tuple(p.strip() for p in parts if p.strip())
    if allowed is not None:
        bad = [v for v in items if v not in allowed] or ([] if items else ["(empty)"])
        if bad:
            raise InterpError(f"{what}: {bad[0]} is not one of {', '.join(allowed)}")
    return items


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's help: `metadata["help"]`, else the docstring under it (inherited fields included)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body
        if not body or not isinstance(body[0], ast.ClassDef):
            continue
        stmts = body[0].body
        for stmt, after in zip(stmts, stmts[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(after.value.value.split())
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            docs[f.name] = f.metadata["help"]
    return docs


def from_config(
    cls: type,
    param: str,
    *,
    fields: Sequence[str] | None = None,
    flags: dict[str, Flag] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace the command's parameter `param` by one option per field of `cls` (all, or `fields`), with
    the field's default and help unless `flags` says otherwise; the command receives `cls(**values)`.

    Decorators stack: each adds the options of one config to the signature the next one sees.
    """
    flags = flags or {}
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    chosen = tuple(fields) if fields is not None else tuple(by_name)
    unknown = sorted(set(chosen) - set(by_name)) + sorted(set(flags) - set(chosen))
    if unknown:
        raise TypeError(f"{cls.__name__} has no (chosen) field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    docs = field_help(cls)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(func).parameters
        func_hints = typing.get_type_hints(func)
        taken = [name for name in chosen if name in own and name != param]
        if param not in own or taken:
            raise TypeError(f"{func.__name__}: needs a parameter {param!r}; clashes: {taken}")
        kept = [
            p.replace(annotation=func_hints.get(p.name, p.annotation))
            for p in own.values()
            if p.name != param
        ]
        added = [
            _parameter(by_name[name], hints[name], docs.get(name), flags.get(name, Flag())) for name in chosen
        ]

        def rank(p: inspect.Parameter) -> int:
            """Arguments first, then required options, then the rest (the config's before the command's)."""
            info = p.default
            if isinstance(info, typer.models.ArgumentInfo) or info is p.empty:
                return 0
            return 1 if getattr(info, "default", None) is ... else 2

        params = sorted(added + kept, key=rank)  # stable: the config's first within each rank
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

        def command(**kwargs: Any) -> Any:
            values = {name: _field_value(kwargs.pop(name), hints[name]) for name in chosen}
            return func(**kwargs, **{param: cls(**values)})

        command.__name__, command.__qualname__ = func.__name__, func.__qualname__
        command.__doc__, command.__module__ = func.__doc__, func.__module__
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _parameter(f: dataclasses.Field, hint: Any, doc: str | None, flag: Flag) -> inspect.Parameter:
    default = flag.default
    if default is FIELD_DEFAULT:
        default = f.default if f.default is not _MISSING else ...
        if f.default_factory is not _MISSING:
            default = f.default_factory()
    base = _without_none(hint)
    if typing.get_origin(base) is tuple:
        annotation: Any = list[str] if flag.repeat else str
        if default is not ... and not flag.repeat:
            default = ",".join(map(str, default)) if default else None
        elif default is not ...:
            default = list(default) if default else None
    else:
        annotation = str if typing.get_origin(base) is typing.Literal else base
    if default is None or hint is not base:
        annotation = annotation | None
    decls = (flag.decls,) if isinstance(flag.decls, str) else tuple(flag.decls)
    decls = decls or (f"--{f.name.replace('_', '-')}",)  # a bool too: a plain switch, no --no-<name>
    help_text = " ".join((flag.help or doc or "").replace("`", "").split()) or None
    extra = {k: v for k, v in (("min", flag.min), ("max", flag.max)) if v is not None}
    if flag.argument:
        info = typer.Argument(default, help=help_text, show_default=default is not ...)
    else:
        off_switch = any(d.startswith(" /") for d in decls)  # "[default: True]" would read backwards
        info = typer.Option(default, *decls, help=help_text, show_default=not off_switch, **extra)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def _without_none(hint: Any) -> Any:
    """`X | None` -> X (anything else unchanged)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _field_value(value: Any, hint: Any) -> Any:
    """The command-line value as the field's type (comma lists and repeated options become tuples)."""
    if typing.get_origin(_without_none(hint)) is not tuple:
        return value
    if value is None:
        return None if _without_none(hint) is not hint else ()
    return split_list(value) if isinstance(value, str) else tuple(value)
