"""Backbone and projection head names, importable without torch (option validation, the code
location and the SQL server must not pay torch's 2 s import)."""

BACKBONE_NAMES = ("small_cnn", "resnet18", "resnet34", "resnet50")
HEADS = ("none", "linear", "mlp")
