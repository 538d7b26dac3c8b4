-- One PostgreSQL server, four databases: Dagster's storage, MLflow's backend store, the tables,
-- and the ThanoSQL catalog (POSTGRES_DB creates that one).
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
CREATE DATABASE tables;

-- The login queries run as (THANOSQL_WAREHOUSE_READER_URL): it may only read the tables, which the
-- warehouse user grants it SELECT on; a query cannot switch to another role from it. Change its
-- password with ALTER ROLE, and READER_PASSWORD in docker-compose's environment to match.
CREATE ROLE thanosql_reader LOGIN PASSWORD 'thanosql_reader';
