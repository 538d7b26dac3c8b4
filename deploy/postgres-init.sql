-- One PostgreSQL server, four databases: Dagster's storage, MLflow's backend store, the tables,
-- and the ThanoSQL catalog (POSTGRES_DB creates that one).
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
CREATE DATABASE tables;
