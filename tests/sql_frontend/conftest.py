"""Fixtures of the SQL frontend's tests: a workspace with classifiers, built once per session."""

from __future__ import annotations

import pytest

from tests.workspace_copies import copy_workspace

# Few labels from SimCLR: the tutorial's search model fine-tuned on the 1,000 labelled digits.
DIGITS = "BUILD MODEL digits USING ResNet18 OPTIONS (base_model='my_image_search_model') AS SELECT * FROM mnist_train"
# A torchvision network from scratch, on two classes.
ZERO_OR_ONE = (
    "BUILD MODEL zero_or_one USING ResNet18 OPTIONS (max_epochs=1, batch_size=32) "
    "AS SELECT * FROM mnist_train WHERE label IN (0, 1)"
)


@pytest.fixture(scope="session")
def classifier_home(tutorial_home, tmp_path_factory):
    import thanosql

    home = tmp_path_factory.mktemp("classifiers") / "workspace"
    copy_workspace(tutorial_home, home)
    conn = thanosql.connect(home)
    conn.execute(DIGITS)
    conn.execute(ZERO_OR_ONE)
    return home
