"""How results carry more than their rows (kept free of imports: the remote client reads it too)."""

PRINT_ATTR = "thanosql.print_image"  # DataFrame.attrs key of a PRINT IMAGE result: {"column", "paths"}
