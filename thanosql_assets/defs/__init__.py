"""Dagster definitions of ThanoSQL objects: what each object is (`specs`), one asset factory per
object kind (`datasets`, `tables`, `models`, `embeddings`), the retraining schedules, and how a
planned statement is materialized (`materialize`, `statement_job`). Uses the ML library and the
resources; parses no SQL (specs hold queries in the table store's dialect)."""
