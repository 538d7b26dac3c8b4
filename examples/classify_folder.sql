-- Seed 004 (Spark NLP's "Image Classification"): a folder of images to labels with a pretrained
-- Hugging Face classifier, in SQL. First make a tiny model and photos (nothing is downloaded):
--   python examples/make_tiny_classifier.py ./thanosql-workspace
--   thanosql --home ./thanosql-workspace run examples/classify_folder.sql
-- With a published model: GET THANOSQL MODEL 'google/vit-base-patch16-224' AS vit
-- (from THANOSQL_MODEL_MIRROR, or the Hugging Face Hub).

UPLOAD MODEL vit OPTIONS (framework='huggingface', overwrite=True) FROM "models/vit";

-- Every image under the folder, recursively: image_path, filename, predicted, confidence.
CREATE TABLE labels USING vit OPTIONS (path_type='folder', data_type='image', overwrite=True) FROM 'photos';

SELECT filename AS image_name, predicted AS result FROM labels ORDER BY filename;

-- The same model on any query's images, with the runners-up.
PREDICT USING vit OPTIONS (top_k=2) AS SELECT image_path FROM labels WHERE confidence < 0.9;

PRINT IMAGE AS (SELECT image_path, predicted, confidence FROM labels ORDER BY confidence LIMIT 4);
