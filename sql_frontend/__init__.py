"""The SQL frontend, in layers that import only downwards: `interfaces` (Python API, CLI, Jupyter
magic, SQL server) -> `execution` (runner, query engine) -> `planning` (options, planner) ->
`language` (dialect, parser)."""
