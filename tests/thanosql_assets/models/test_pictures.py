"""Pictures logged with models: labels and names in any script draw without a warning per character."""

import io
import warnings

from thanosql_assets.models.pictures import confusion_matrix_figure, label_fonts, loss_curve


def test_labels_in_hangul_draw_without_warnings():
    labels = ["하나", "일곱"]
    assert label_fonts(["1", "7"]) == label_fonts([])  # digits need no other font
    assert len(label_fonts(labels)) > 1  # a font with Hangul (at least matplotlib's Last Resort, boxes naming the script)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for figure in confusion_matrix_figure([0, 1, 1], [0, 1, 0], labels, "종류: held-out rows"), loss_curve([2.0, 1.5], "종류: loss"):
            figure.savefig(io.BytesIO(), format="png")
    assert [str(warning.message) for warning in caught] == []
