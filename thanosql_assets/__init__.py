"""ThanoSQL objects as Dagster assets: `definitions` (the code location), `defs` (specs, asset
factories per object kind, jobs, schedules) and `models` (the ML library: no Dagster, no SQL)."""
