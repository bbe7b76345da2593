"""LightNAS: ENAS search for light, accurate binary neural networks."""

__version__ = "0.1.0"

SWEEP_API = ("sweep", "report")


def __getattr__(name: str) -> object:
    """`lightnas.sweep(...)` and `lightnas.report(...)` (lightnas.sweeps), loaded on first use:
    imported here, every `import lightnas.<module>` would load torch, Optuna and every run
    module first."""
    if name in SWEEP_API:
        from lightnas import sweeps  # the package's API facade: imported on first use only

        return getattr(sweeps, name)
    raise AttributeError(f"module 'lightnas' has no attribute {name!r}")
