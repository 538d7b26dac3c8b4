"""The torchvision networks, adapted to small images and any channel count: shapes and stems."""

import pytest
import torch

from thanosql_assets.models.algorithms import ALGORITHMS
from thanosql_assets.models.classifiers.networks import build_network, describe_network, stem_stride, vit_patch_size

NETWORKS = sorted({algorithm.network for algorithm in ALGORITHMS.values() if algorithm.kind == "classifier"})


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 64)])
@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_maps_images_to_features_and_logits(name, channels, size):
    torch.manual_seed(0)
    encoder, head = build_network(name, channels, num_classes=7, input_size=size)
    encoder.eval()
    with torch.no_grad():
        features = encoder(torch.randn(2, channels, size, size))
        logits = head(features)
    assert features.shape == (2, encoder.output_dim)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_batch_norm_statistics_follow_the_last_steps_of_a_short_training(name):
    # MobileNetV3's stock momentum of 0.01 left statistics of the first steps in the running
    # averages after a default BUILD, and in eval mode every image got the same class.
    encoder, _ = build_network(name, 1, num_classes=3, input_size=28)
    assert {module.momentum for module in encoder.modules() if isinstance(module, torch.nn.BatchNorm2d)} <= {0.1}


@pytest.mark.parametrize("name", NETWORKS)
def test_a_new_network_starts_with_small_logits_for_few_classes(name):
    # EfficientNet's stock head, drawn for 1,000 classes, gave 10 classes logits large enough that
    # a default BUILD began above chance loss and reached half of ResNet18's accuracy.
    torch.manual_seed(0)
    encoder, head = build_network(name, 1, num_classes=10, input_size=28)
    assert head.weight.std() <= 1 / head.in_features**0.5


def test_small_images_get_stems_that_keep_a_few_cells_per_side():
    assert [stem_stride("resnet18", size) for size in (28, 64, 224)] == [1, 2, 4]  # last map 4x4, 4x4, 7x7
    assert [stem_stride("efficientnet_v2_s", size) for size in (28, 64, 224)] == [1, 1, 2]
    assert [stem_stride("mobilenet_v3_large", size) for size in (28, 64, 224)] == [1, 1, 2]
    assert [stem_stride("convnext_tiny", size) for size in (28, 64, 224)] == [2, 2, 4]  # no cheaper than 2 on a CPU
    assert [vit_patch_size(size) for size in (28, 64, 224)] == [4, 8, 16]


def test_a_digit_keeps_a_4x4_map_in_a_resnet():
    encoder, _ = build_network("resnet18", 1, 10, 28)
    assert encoder.maxpool.__class__.__name__ == "Identity"
    trunk = torch.nn.Sequential(encoder.conv1, encoder.bn1, encoder.relu, encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4)
    with torch.no_grad():
        assert trunk(torch.randn(1, 1, 28, 28)).shape[-2:] == (4, 4)


def test_a_vit_takes_images_that_its_patches_do_not_tile():
    encoder, head = build_network("vit_b_16", 1, 3, 30)
    with torch.no_grad():
        assert head(encoder(torch.randn(2, 1, 30, 30))).shape == (2, 3)


def test_descriptions_name_the_network_and_its_adaptation():
    assert describe_network("resnet18", 1, 28) == "torchvision resnet18, 3x3 stride-1 stem, no max-pool (1-channel 28 px input)"
    assert describe_network("resnet50", 3, 224) == "torchvision resnet50, stock stem (3-channel 224 px input)"
    assert "4x4 patches (7x7 tokens)" in describe_network("vit_b_16", 1, 28)


def test_an_unknown_network_is_refused():
    with pytest.raises(ValueError, match="no network named"):
        build_network("alexnet2", 3, 10, 64)
