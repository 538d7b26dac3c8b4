"""The ThanoSQL language: the sqlglot dialect, the script parser, names and positions in statements."""
