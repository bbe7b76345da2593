"""LightNAS: ENAS search for light, accurate binary neural networks."""

__version__ = "0.1.0"

SWEEP_API = ("sweep", "report")


def __getattr__(name: str) -> object:
    """`lightnas.sweep(...)` and `lightnas.report(...)`, loaded on first use: they need the
    optional `sweeps` extra (Optuna), which a plain `import lightnas` must not."""
    if name in SWEEP_API:
        from lightnas import sweeps  # optional extra: imported only when used

        return getattr(sweeps, name)
    raise AttributeError(f"module 'lightnas' has no attribute {name!r}")
