"""One module per ICaCE estimator, each exporting `METHOD` (a `spec.Method`); listed in `circuits.concepts.registry`."""
