"""`DataOptions`: the `data:` section of a config, and what `build_data` reads.

A plain dataclass that imports no torch, so the config can type its
`data:` section with it; which dataset names are valid comes from `lightnas.data.DATASETS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightnas.errors import ConfigError


@dataclass
class DataOptions:
    dataset: str = "cifar100"
    """Dataset name (registered in `lightnas.data.DATASETS`)."""
    data_dir: str | None = None
    """Folder holding the dataset files (default: ./data)."""
    download: bool = False
    """Download the dataset into data_dir when it is missing (CIFAR only)."""
    image_size: int | None = None
    """Side of the square images the model sees; None = the dataset's own (32; folders: 224)."""
    num_classes: int | None = None
    """Number of classes: mock generates this many, other datasets must have exactly this many."""
    num_samples: int | None = None
    """Cap on training samples (mock: the number generated)."""
    val_size: int | float = 0.1
    """Validation split carved from the training set: a fraction or a count."""
    batch_size: int = 128
    """Training batch size."""
    eval_batch_size: int | None = None
    """Batch size of the validation and test splits; None = batch_size."""
    augment: bool = True
    """Random crops and horizontal flips of training images."""
    num_workers: int = 0
    """DataLoader worker processes decoding image files (image folders only)."""
    on_device: bool = False
    """Keep an in-memory dataset on the GPU and augment there."""

    def check(self) -> None:
        """Reject values no dataset accepts; a `ConfigError` names the key (`data.batch_size=0`)."""
        for key, low in (
            ("batch_size", 1),
            ("eval_batch_size", 1),
            ("image_size", 1),
            ("num_samples", 2),
            ("num_workers", 0),
        ):
            check_int(key, getattr(self, key), low)


def check_int(key: str, value: int | None, low: int) -> None:
    """`data.<key>` must be None or an integer >= `low`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigError(f"data.{key}={value!r} is invalid: use an integer >= {low}")
