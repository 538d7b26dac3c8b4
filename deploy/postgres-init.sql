-- One PostgreSQL server, three databases: Dagster's storage, MLflow's backend store, and the
-- ThanoSQL catalog (POSTGRES_DB creates that one).
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
