"""Image folders (`imagefolder`): data_dir/train/<class>/*.jpg, optionally data_dir/val/... as test.

Images are decoded by `FolderLoader` workers: random-resized crops and flips for training, a
resize and centre crop for evaluation, normalised with ImageNet's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lightnas.data.bundle import DATASETS, BuildContext, DataBundle
from lightnas.data.loaders import FolderLoader, Stats
from lightnas.data.options import DataOptions
from lightnas.data.splits import _mix_seed, split_indices
from lightnas.data.transforms import center_crop, pil_to_tensor, random_resized_crop, resize_shorter
from lightnas.errors import DataError

IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


class ImageFolderDataset(Dataset):
    """(path, label) samples decoded with PIL to uint8 (3, size, size) tensors.

    Training crops are seeded by (seed, epoch, index), so they do not depend on worker count.
    """

    def __init__(
        self, samples: Sequence[tuple[Path, int]], size: int, train: bool, seed: int = 0
    ) -> None:
        self.samples = list(samples)
        self.size = size
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as img:
            img = img.convert("RGB")
        if self.train:
            gen = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch, index))
            img = random_resized_crop(img, self.size, gen)
            if torch.rand((), generator=gen).item() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = center_crop(resize_shorter(img, round(self.size * 8 / 7)), self.size)
        return pil_to_tensor(img), label


@DATASETS.register("imagefolder")
def imagefolder(options: DataOptions, ctx: BuildContext) -> DataBundle:
    """Classes are train/'s sub-folders (sorted); validation is carved from train/."""
    root = Path(options.data_dir or "data").expanduser().resolve()
    train_dir, val_dir = root / "train", root / "val"
    has_train = train_dir.is_dir()
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir()) if has_train else []
    class_to_idx = {c: i for i, c in enumerate(classes)}
    samples = _list_images(train_dir, class_to_idx) if classes else []
    if not samples:
        raise DataError(
            f"imagefolder not found: expected {root}/train/<class>/*.jpg|png (and optionally "
            f"{root}/val/<class>/... as the test set); pass --data.data_dir"
        )
    train_idx, val_idx = split_indices(
        len(samples), options.val_size, ctx.seed, options.num_samples
    )
    size = options.image_size or 224
    eval_batch_size = options.eval_batch_size or options.batch_size

    def loader(split: list[tuple[Path, int]], train: bool) -> FolderLoader:
        return FolderLoader(
            ImageFolderDataset(split, size, train=train and options.augment, seed=ctx.seed),
            batch_size=options.batch_size if train else eval_batch_size,
            stats=IMAGENET_STATS,
            shuffle=train,
            drop_last=train,
            seed=ctx.seed,
            device=ctx.device,
            num_workers=options.num_workers,
            pin_memory=ctx.pin_memory,
        )

    test_samples = _list_images(val_dir, class_to_idx) if val_dir.is_dir() else []
    return DataBundle(
        loader([samples[i] for i in train_idx.tolist()], train=True),
        loader([samples[i] for i in val_idx.tolist()], train=False),
        loader(test_samples, train=False) if test_samples else None,
        len(classes),
        (3, size, size),
        *IMAGENET_STATS,
    )


def _list_images(split_dir: Path, class_to_idx: dict[str, int]) -> list[tuple[Path, int]]:
    samples = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if class_dir.name not in class_to_idx:
            raise DataError(
                f"class folder {class_dir} has no counterpart in {split_dir.parent}/train/"
            )
        label = class_to_idx[class_dir.name]
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
        samples += [(p, label) for p in files]
    return samples
