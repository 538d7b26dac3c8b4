-- Image classification in ThanoSQL: train classifiers on labelled images, predict, evaluate.
-- Run with: thanosql --home ./thanosql-workspace run examples/classify_images.sql

GET THANOSQL DATASET mnist_data OPTIONS (overwrite=True);
COPY mnist_train OPTIONS (overwrite=True) FROM "thanosql-dataset/mnist_data/mnist_train.csv";
COPY mnist_test OPTIONS (overwrite=True) FROM "thanosql-dataset/mnist_data/mnist_test.csv";

-- A classifier from scratch: ThanoSQL's defaults (max_epochs=3, batch_size=16).
BUILD MODEL my_image_classifier
USING ResNet18
OPTIONS (image_col='image_path', label_col='label', overwrite=True)
AS SELECT * FROM mnist_train;

-- Labels and their probability for new images; top_k adds the runners-up.
PREDICT USING my_image_classifier OPTIONS (top_k=2)
AS SELECT * FROM mnist_test;

-- The uncertain ones, to look at or to label next.
SELECT image_path, label, predicted, confidence
FROM (PREDICT USING my_image_classifier AS SELECT * FROM mnist_test)
WHERE confidence < 0.9
ORDER BY confidence;

-- ThanoSQL's metrics, logged to MLflow and shown as the model asset's `evaluation` check.
EVALUATE USING my_image_classifier AS SELECT * FROM mnist_test;

-- Few labels: a SimCLR model learns from the images alone, then 10 labels per digit fine-tune it.
BUILD MODEL my_image_search_model USING SimCLR OPTIONS (overwrite=True) AS SELECT image_path FROM mnist_train;
BUILD MODEL my_few_label_classifier
USING ResNet18
OPTIONS (base_model='my_image_search_model', overwrite=True)
AS SELECT * FROM mnist_train
WHERE image_path IN (
    SELECT image_path FROM (
        SELECT image_path, row_number() OVER (PARTITION BY label ORDER BY image_path) AS n FROM mnist_train
    ) AS ranked WHERE n <= 10
);
EVALUATE USING my_few_label_classifier AS SELECT * FROM mnist_test;

-- Keep training on new labelled rows, as a new model (same labels).
FIT MODEL my_image_classifier_v2 USING my_image_classifier OPTIONS (max_epochs=1, overwrite=True)
AS SELECT * FROM mnist_test;

-- Save predictions as a table (a Dagster asset downstream of the table and the model), and look.
PREDICT USING my_image_classifier OPTIONS (table_name='mnist_test_predictions', overwrite=True)
AS SELECT * FROM mnist_test;
PRINT IMAGE AS (SELECT image_path, predicted, confidence FROM mnist_test_predictions ORDER BY confidence LIMIT 5);
