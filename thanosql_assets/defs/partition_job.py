"""The `embedding_partition` job: one partition of a partitioned embedding's pending generation, as a run.

Production mode's SQL server begins a generation (`defs.generations`), then submits one run of
this job per partition with images to embed: the daemon's run coordinator queues them (tag
concurrency by `thanosql/kind`) and its run launcher places each where it can (a subprocess, a
Kubernetes job with a GPU of its own). A static job, so the code location need not be reloaded
for an embedding the catalog does not hold yet; the spec, partition and generation travel as run
config, and each run records the materialization of its partition of the embedding asset. A
failed run is re-executed from the UI as is, or by running the statement again, which resumes
the generation and submits the unfinished partitions only.
"""

import json

import dagster as dg
from pydantic import Field

from thanosql_assets.defs.embeddings import EmbeddingStores
from thanosql_assets.defs.generations import GENERATION_TAG, PendingGeneration, embed_partition
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import EmbeddingSpec

PARTITION_JOB = "embedding_partition"
PARTITION_RUN_KIND = "embedding_partition"  # the `thanosql/kind` tag of partition runs: deploy/dagster-k8s.yaml limits how many run at once


class PartitionRunConfig(dg.Config):
    spec: str = Field(description="The embedding's spec (EmbeddingSpec JSON)")
    partition: str = Field(description="The partition key, 0..N-1")
    generation: str = Field(description="The collection the generation builds")


def partition_run_config(spec: EmbeddingSpec, partition: str, generation: PendingGeneration) -> dict:
    config = {"spec": json.dumps(spec.to_dict()), "partition": partition, "generation": generation.collection}
    return {"ops": {"embed_partition": {"config": config}}}


def partition_run_tags(spec: EmbeddingSpec, partition: str, generation: PendingGeneration) -> dict[str, str]:
    return {GENERATION_TAG: generation.collection, "thanosql/kind": PARTITION_RUN_KIND, "thanosql/embedding": spec.catalog_name,
            "thanosql/partition": partition}


@dg.op(name="embed_partition", tags={"kind": "thanosql"})
def embed_partition_op(context: dg.OpExecutionContext, config: PartitionRunConfig) -> None:
    from resources import Settings, build_resources

    settings = Settings.from_env()
    resources = build_resources(settings)
    spec = EmbeddingSpec.from_dict(json.loads(config.spec))
    stores = EmbeddingStores.of(resources)
    metadata = embed_partition(spec, config.partition, config.generation, stores, Progress(context))
    context.log_event(dg.AssetMaterialization(asset_key=spec.asset_key, partition=config.partition, metadata=metadata))


@dg.job(name=PARTITION_JOB, executor_def=dg.in_process_executor, tags={"thanosql/kind": PARTITION_RUN_KIND})
def partition_job():
    embed_partition_op()
