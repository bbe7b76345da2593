"""Image transforms: batched crop-and-flip augmentation of tensors, PIL crops and resizes."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

CropsAndFlips = tuple[Tensor, Tensor, Tensor]  # dy (n, 1), dx (n, 1), flip (n, 1) bool

# --------------------------------------------------------------------------- tensor batches


def augment_batch(x: Tensor, generator: torch.Generator, pad: int) -> Tensor:
    """Per-sample random crop of the zero-padded images plus random horizontal flip, batched.

    Works on any dtype and device; `generator` must live on `x.device`.
    """
    return crop_and_flip(x, draw_crops_and_flips(len(x), pad, generator, x.device), pad)


def draw_crops_and_flips(
    n: int, pad: int, generator: torch.Generator, device: torch.device
) -> CropsAndFlips:
    """The random numbers of one `augment_batch` call on `n` images, in the order it draws them.

    Drawing them without cropping advances `generator` exactly as `augment_batch` would, which is
    how a loader skips batches without changing the ones after them.
    """
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=device)
    flip = torch.rand((n, 1), generator=generator, device=device) < 0.5
    return dy, dx, flip


def crop_and_flip(x: Tensor, params: CropsAndFlips, pad: int) -> Tensor:
    """Crop each zero-padded image at its offset (dy, dx), mirrored where `flip` is set."""
    dy, dx, flip = params
    n, c, h, w = x.shape
    dev = x.device
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    rows = dy + torch.arange(h, device=dev)
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, cols.flip(0), cols) + dx  # a flipped crop reads its window backwards
    x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, x.shape[3]))
    return x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def resize_uint8(x: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """Bilinear resize of uint8 NCHW images, in chunks to bound the float copy."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=size < c.shape[-1])
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for c in x.split(chunk)
    ]
    return torch.cat(out)


# --------------------------------------------------------------------------- PIL images


def random_resized_crop(
    img: Image.Image,
    size: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    """Inception-style crop of random area and aspect ratio, resized to size x size."""
    width, height = img.size
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(4, generator=gen).tolist()
        area = width * height * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(u[2] * (width - w + 1)), int(u[3] * (height - h + 1))
            return _resize_box(img, size, (left, top, left + w, top + h))
    # Fallback after 10 misses: the whole image at the nearest allowed aspect ratio.
    w, h = width, height
    if width / height < ratio[0]:
        h = round(width / ratio[0])
    elif width / height > ratio[1]:
        w = round(height * ratio[1])
    left, top = (width - w) // 2, (height - h) // 2
    return _resize_box(img, size, (left, top, left + w, top + h))


def _resize_box(img: Image.Image, size: int, box: tuple[int, int, int, int]) -> Image.Image:
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box)


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is `size`, keeping the aspect ratio."""
    width, height = img.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    return img.resize(new, Image.Resampling.BILINEAR)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    width, height = img.size
    left, top = (width - size) // 2, (height - size) // 2
    return img.crop((left, top, left + size, top + size))


def pil_to_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image → uint8 (3, H, W) tensor."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()
