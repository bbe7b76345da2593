"""lightnas.data.transforms: batched crop-and-flip augmentation, PIL crops and resizes."""

import numpy as np
import torch
from PIL import Image

from lightnas.data import (
    augment_batch,
    center_crop,
    crop_and_flip,
    draw_crops_and_flips,
    pil_to_tensor,
    random_resized_crop,
    resize_shorter,
    resize_uint8,
)

# --------------------------------------------------------------------------- tensor batches


def test_augmentation_preserves_shape_and_changes_images():
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(1)
    assert changed.float().mean() > 0.5


def test_augmentation_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(1), pad=1)
    padded = torch.nn.functional.pad(x[:1], (1, 1, 1, 1))[0, 0]
    windows = set()
    for i in range(3):
        for j in range(3):
            window = padded[i : i + 4, j : j + 4]
            windows |= {window.numpy().tobytes(), window.flip(1).numpy().tobytes()}
    seen = {o[0].numpy().tobytes() for o in out}
    assert seen <= windows
    assert len(seen) == 18  # every offset, flipped or not, occurs among 200 draws


def test_flip_mirrors_columns_exactly():
    x = torch.tensor([[1, 2, 3], [4, 5, 6]]).view(1, 1, 2, 3).repeat(100, 2, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    flipped = torch.tensor([[3, 2, 1], [6, 5, 4]])
    is_flipped = (out[:, 0] == flipped).all(dim=(1, 2))
    is_same = (out[:, 0] == x[0, 0]).all(dim=(1, 2))
    assert (is_flipped ^ is_same).all()  # each image is exactly one of the two
    assert 20 < is_flipped.sum() < 80
    assert torch.equal(out[:, 0], out[:, 1])  # channels flip together


def test_augment_batch_is_draw_then_crop_and_advances_the_generator_alike():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = augment_batch(x, a, pad=2)
    params = draw_crops_and_flips(10, 2, b, x.device)
    assert torch.equal(out, crop_and_flip(x, params, pad=2))
    assert torch.equal(a.get_state(), b.get_state())  # skipping a batch = drawing its params
    dy, dx, flip = params
    assert dy.shape == dx.shape == flip.shape == (10, 1) and flip.dtype == torch.bool
    assert dy.min() >= 0 and dy.max() <= 4 and dx.min() >= 0 and dx.max() <= 4


def test_crop_and_flip_reads_the_given_offsets():
    x = torch.arange(16).view(1, 1, 4, 4)
    zero = torch.zeros(1, 1, dtype=torch.long)
    no = torch.zeros(1, 1, dtype=torch.bool)
    assert torch.equal(crop_and_flip(x, (zero + 1, zero + 1, no), pad=1), x)  # centred: identity
    shifted = crop_and_flip(x, (zero + 2, zero, no), pad=1)  # window one row down, one column left
    assert shifted[0, 0, 0].tolist() == [0, 4, 5, 6] and shifted[0, 0, 3].tolist() == [0, 0, 0, 0]
    assert torch.equal(crop_and_flip(x, (zero, zero, no | True), pad=0), x.flip(3))


def test_resize_uint8_keeps_dtype_and_size_and_passes_same_size_through():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert resize_uint8(x, 8) is x
    up, down = resize_uint8(x, 16, chunk=2), resize_uint8(x, 4)
    assert up.shape == (5, 1, 16, 16) and down.shape == (5, 1, 4, 4)
    assert up.dtype == down.dtype == torch.uint8
    flat = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    assert (resize_uint8(flat, 13) == 77).all()


# --------------------------------------------------------------------------- PIL images


def _image(width: int, height: int) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_pil_to_tensor_is_uint8_chw():
    img = _image(5, 3)
    t = pil_to_tensor(img)
    assert t.shape == (3, 3, 5) and t.dtype == torch.uint8
    assert t[:, 1, 2].tolist() == list(img.getpixel((2, 1)))


def test_resize_shorter_and_center_crop():
    img = resize_shorter(_image(40, 20), 10)
    assert img.size == (20, 10)
    crop = center_crop(_image(9, 7), 5)
    assert crop.size == (5, 5)
    assert torch.equal(pil_to_tensor(crop), pil_to_tensor(_image(9, 7))[:, 1:6, 2:7])


def test_random_resized_crop_is_seeded_and_sized():
    img = _image(30, 20)
    a = random_resized_crop(img, 8, torch.Generator().manual_seed(3))
    b = random_resized_crop(img, 8, torch.Generator().manual_seed(3))
    c = random_resized_crop(img, 8, torch.Generator().manual_seed(4))
    assert a.size == (8, 8)
    assert torch.equal(pil_to_tensor(a), pil_to_tensor(b))
    assert not torch.equal(pil_to_tensor(a), pil_to_tensor(c))


def test_random_resized_crop_falls_back_to_a_central_crop():
    # No crop of a 1-pixel-high strip fits the aspect ratios: the fallback crops the centre.
    img = _image(50, 1)
    out = random_resized_crop(img, 4, torch.Generator().manual_seed(0))
    assert out.size == (4, 4)
