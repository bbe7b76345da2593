"""Datasets by name and their fast, epoch-seeded loaders.

`build_data(options, seed=..., device=...)` looks `options.dataset` up in `DATASETS` and returns
a `DataBundle` of train / validation / test loaders that yield normalised float batches `(x, y)`
already on `device`.

A dataset is a *source* registered where it is defined, a function
`(options: DataOptions, ctx: BuildContext) -> Arrays | DataBundle`; its module must be imported
before `build_data` runs: a user's is listed under `imports:` in the config, a built-in one needs
its import line below as well:

    @DATASETS.register("tiny")
    def tiny(options: DataOptions, ctx: BuildContext) -> Arrays:
        return Arrays(x, y, test_x, test_y, num_classes=10)   # uint8 (N, C, H, W), int labels

- An `Arrays` source returns its training pool (train + validation) and its test split in
  memory as uint8 NCHW images at the size the model sees (`options.image_size`, or its own
  default) plus labels, the number of classes and optionally the per-channel `stats`
  ((mean, std) on the [0, 1] scale; default: computed from the training split). `build_data`
  then caps the pool at `options.num_samples`, carves the validation split (`val_size`, seeded
  by `ctx.seed`) and makes the loaders (batch sizes, augmentation, `on_device`, pinning).
- A source that cannot hold its data in memory (image files) builds and returns the whole
  `DataBundle` itself, honouring the same options (see `imagefolder.py`).
- `ctx.seed` seeds anything random; `ctx.device` and `ctx.pin_memory` are for loaders a source
  builds itself. A missing or malformed dataset raises `DataError` naming the expected layout
  and path; a bad option value raises `ConfigError` naming the key (`data.<key>=...`).
  `build_data` checks the generic options and that `options.num_classes`, when given, matches.

Modules: `options` (DataOptions), `bundle` (DATASETS, build_data, DataBundle, Arrays),
`sources` (mock, digits, cifar10, cifar100), `imagefolder`, `loaders` (ArrayLoader,
FolderLoader), `transforms` (augmentation, crops, resizes), `splits` (seeds, validation split).
"""

from lightnas.data.bundle import (
    DATASETS,
    Arrays,
    BuildContext,
    DataBundle,
    Source,
    build_data,
    channel_stats,
)
from lightnas.data.imagefolder import IMAGENET_STATS, IMG_EXTENSIONS, ImageFolderDataset
from lightnas.data.loaders import ArrayLoader, Batch, FolderLoader, Stats
from lightnas.data.options import DataOptions
from lightnas.data.sources import CIFAR10_STATS, CIFAR100_STATS
from lightnas.data.splits import split_indices
from lightnas.data.transforms import (
    augment_batch,
    center_crop,
    crop_and_flip,
    draw_crops_and_flips,
    pil_to_tensor,
    random_resized_crop,
    resize_shorter,
    resize_uint8,
)

__all__ = [
    "CIFAR10_STATS",
    "CIFAR100_STATS",
    "DATASETS",
    "IMAGENET_STATS",
    "IMG_EXTENSIONS",
    "ArrayLoader",
    "Arrays",
    "Batch",
    "BuildContext",
    "DataBundle",
    "DataOptions",
    "FolderLoader",
    "ImageFolderDataset",
    "Source",
    "Stats",
    "augment_batch",
    "build_data",
    "center_crop",
    "channel_stats",
    "crop_and_flip",
    "draw_crops_and_flips",
    "pil_to_tensor",
    "random_resized_crop",
    "resize_shorter",
    "resize_uint8",
    "split_indices",
]
