"""Dagster definitions for ThanoSQL objects: asset factories, the search job, and the code location."""
