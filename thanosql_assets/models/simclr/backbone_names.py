"""Backbone names, importable without torch (for option validation)."""

BACKBONE_NAMES = ("small_cnn", "resnet18", "resnet34", "resnet50")
