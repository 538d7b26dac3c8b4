# The project image: code location, run workers, Dagster webserver and daemon, SQL server.
# CUDA wheels of torch come from PyPI; on a machine with an NVIDIA GPU and the container toolkit,
# docker compose passes the GPU to the containers that train (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home THANOSQL_HOME=/workspace
WORKDIR /opt/thanosql
COPY pyproject.toml README.md workspace.yaml ./
COPY thanosql ./thanosql
COPY sql_frontend ./sql_frontend
COPY thanosql_assets ./thanosql_assets
COPY resources ./resources
RUN pip install --no-cache-dir -e . && mkdir -p $DAGSTER_HOME /workspace
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
