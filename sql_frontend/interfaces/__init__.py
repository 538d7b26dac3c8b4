"""Where statements come in: the Python API, the CLI, the Jupyter magic and the SQL server (with its client)."""
