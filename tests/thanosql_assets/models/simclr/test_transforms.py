"""Batched augmentations: shapes, ranges, determinism, and each switch doing what it says."""

import dataclasses

import pytest
import torch

from thanosql_assets.models.simclr.transforms import AugmentationConfig, BatchAugment

NOTHING = AugmentationConfig(
    rotation_degrees=0, shear=0, translate=0, scale_min=1, scale_max=1, elastic=0, stroke=0, horizontal_flip=False
)


@pytest.fixture
def digits():
    images = torch.zeros(16, 1, 28, 28)
    images[:, :, 6:22, 12:16] = 1.0  # a vertical bar, asymmetric once shifted below
    images[:, :, 6:9, 12:22] = 1.0
    return images


def test_keeps_shape_dtype_and_range(digits):
    for config in (AugmentationConfig(), AugmentationConfig(color_jitter=0.8), AugmentationConfig(horizontal_flip=True)):
        out = BatchAugment(config)(digits)
        assert out.shape == digits.shape and out.dtype == digits.dtype
        assert out.min() >= 0 and out.max() <= 1


def test_colour_images_keep_three_channels():
    images = torch.rand(4, 3, 32, 32)
    out = BatchAugment(AugmentationConfig(color_jitter=0.4, horizontal_flip=True, stroke=0))(images)
    assert out.shape == (4, 3, 32, 32) and 0 <= out.min() and out.max() <= 1


def test_same_seed_same_augmentation(digits):
    augment = BatchAugment(AugmentationConfig())
    torch.manual_seed(3)
    first = augment(digits)
    torch.manual_seed(3)
    assert torch.equal(first, augment(digits))
    assert not torch.equal(first, augment(digits))


def test_each_image_gets_its_own_transformation(digits):
    out = BatchAugment(AugmentationConfig())(digits)
    assert len({tuple(image.flatten().tolist()) for image in out}) == len(digits)


def test_all_magnitudes_zero_is_the_identity(digits):
    torch.testing.assert_close(BatchAugment(NOTHING)(digits), digits, atol=1e-5, rtol=0)


def test_flip_only_when_enabled(digits):
    flipped = digits.flip(-1)
    torch.manual_seed(0)
    out = BatchAugment(dataclasses.replace(NOTHING, horizontal_flip=True))(digits)
    is_flipped = [torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped)]
    is_same = [torch.allclose(o, d, atol=1e-5) for o, d in zip(out, digits)]
    assert all(a or b for a, b in zip(is_flipped, is_same))
    assert any(is_flipped) and any(is_same)


def test_stroke_changes_thickness_but_not_position(digits):
    torch.manual_seed(0)
    out = BatchAugment(dataclasses.replace(NOTHING, stroke=1.0))(digits)
    ink = out.sum(dim=(1, 2, 3))
    original = digits[0].sum()
    assert (ink > original).any() and (ink < original).any()
    centre = lambda image: (image[0].sum(0) * torch.arange(28)).sum() / image.sum()  # noqa: E731
    for image in out:
        assert abs(centre(image) - centre(digits[0])) < 0.6


def test_rotation_moves_ink_but_keeps_most_of_it(digits):
    out = BatchAugment(dataclasses.replace(NOTHING, rotation_degrees=30))(digits)
    assert not torch.allclose(out, digits)
    assert (out.sum(dim=(1, 2, 3)) / digits.sum(dim=(1, 2, 3))).min() > 0.8
