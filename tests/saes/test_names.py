"""Public names are what they say: `saes.evaluate` is the function, `saes.evaluation` its module."""

from __future__ import annotations

import importlib
import inspect

import saes


def test_evaluate_is_the_function_and_evaluation_the_module():
    module = importlib.import_module("saes.evaluation")
    import saes.evaluation as imported  # `import a.b as m` reads the attribute b of a

    assert inspect.ismodule(imported) and imported is module
    assert inspect.isfunction(saes.evaluate) and saes.evaluate is module.evaluate
    assert saes.EvalResult is module.EvalResult
