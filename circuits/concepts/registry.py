"""The table of ICaCE estimators: name -> `Method`. Add one by writing a module with `METHOD` and a row here."""

from __future__ import annotations

from circuits.concepts.methods import causalm, cpm, das, inlp, leace, matched, sae, steering
from circuits.concepts.methods.spec import Method
from interp.errors import InterpError, closest

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        inlp.METHOD,
        leace.METHOD,
        causalm.METHOD,
        cpm.METHOD,
        steering.METHOD,
        das.METHOD,
        sae.METHOD,
        matched.METHOD,
    )
}
BASELINE = "matched"
"""The method every other one is compared against (approximate counterfactuals)."""


def names() -> list[str]:
    """The registered method names.

    Example:
        >>> names()
        ['inlp', 'leace', 'causalm', 'cpm', 'steering', 'das', 'sae', 'matched']
    """
    return list(METHODS)


def get(name: str) -> Method:
    """The method `name`; an unknown name raises `InterpError` with the closest names.

    Example:
        >>> get("leace").summary
    """
    if name not in METHODS:
        near = closest(name, METHODS)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InterpError(f"unknown concept-explanation method {name!r}{hint}; methods: {', '.join(METHODS)}")
    return METHODS[name]
