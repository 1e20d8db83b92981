"""One module per `interp` command contributed by `circuits`; each exposes `register(app)`."""
