"""Every backbone named in OPTIONS builds, takes the data's channels and sizes, and reports its output size."""

import pytest
import torch

from thanosql_assets.models.simclr.backbones import BACKBONES, build_backbone
from thanosql_assets.models.simclr.config import BACKBONE_NAMES


def test_registry_matches_the_option_choices():
    assert tuple(BACKBONES) == BACKBONE_NAMES


@pytest.mark.parametrize("name", BACKBONE_NAMES)
@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 64)])
def test_builds_for_the_data(name, channels, side):
    model = build_backbone(name, channels).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, side, side))
    assert out.shape == (2, BACKBONES[name].default_embedding_dim) == (2, model.output_dim)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_embedding_dim_is_configurable(name):
    model = build_backbone(name, 1, embedding_dim=64).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 64)
    assert model.output_dim == 64
