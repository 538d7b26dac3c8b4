"""Specs as the Dagster UI shows them: asset keys whose last part tells nodes apart, statements with their OPTIONS."""

from __future__ import annotations

from thanosql_assets.defs.specs import EmbeddingSpec, ModelSpec, model_key
from thanosql_assets.models.simclr.config import SimCLRConfig

MODEL = "my_image_search_model"


def convert(**options) -> EmbeddingSpec:
    return EmbeddingSpec(
        "mnist_test", MODEL, "SimCLR", "image_path", query="SELECT * FROM mnist_test", tables=("mnist_test",), **options
    )


def test_model_embedding_and_collection_nodes_have_distinct_labels():
    spec = convert()
    keys = [model_key(MODEL), spec.asset_key, spec.collection_key]
    # The asset graph labels a node with the last part of its key.
    assert [key.path[-1] for key in keys] == [MODEL, f"{MODEL}_simclr", f"{MODEL}_simclr_vectors"]
    assert spec.asset_key.to_user_string() == f"embedding/mnist_test/{MODEL}_simclr"
    assert spec.collection_key.to_user_string() == f"collection/mnist_test/{MODEL}_simclr_vectors"


def test_the_model_statement_writes_image_col_and_every_option_not_at_its_default():
    spec = ModelSpec(
        MODEL,
        "SimCLR",
        "SELECT * FROM mnist_train",
        ("mnist_train",),
        schedule="0 3 * * *",
        training=SimCLRConfig(max_epochs=1, learning_rate=1e-4),
    )
    expected = (
        f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (image_col='image_path', schedule='0 3 * * *', max_epochs=1, "
        "learning_rate=0.0001) AS SELECT * FROM mnist_train"
    )
    assert spec.statement == expected
    assert ModelSpec.from_dict(spec.to_dict()).statement == expected, "the catalog's copy says the same"


def test_embedding_statements_write_their_options():
    assert convert().statement == (
        f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test', image_col='image_path') AS SELECT * FROM mnist_test"
    )
    assert "batch_size=7, on_error='skip')" in convert(batch_size=7, on_error="skip").statement
    folder = EmbeddingSpec("pictures", MODEL, "SimCLR", "path", folder="it's here", file_types=(".jpg",))
    assert folder.statement == f"CREATE TABLE pictures USING {MODEL} OPTIONS (file_type=['.jpg'], image_col='path') FROM 'it''s here'"


def test_the_statements_parse_back_as_thanosql():
    from sql_frontend.language.parser import parse_statement

    model = ModelSpec(MODEL, "SimCLR", "SELECT * FROM mnist_train", ("mnist_train",), training=SimCLRConfig(horizontal_flip=True))
    folder = EmbeddingSpec("pictures", MODEL, "SimCLR", "image_path", folder="pictures/", file_types=(".jpg", ".png"))
    for statement in (model.statement, convert(batch_size=7).statement, folder.statement):
        assert parse_statement(statement).expression.sql(dialect="thanosql") == statement
