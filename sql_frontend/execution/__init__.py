"""Running plans: materializing assets through Dagster, evaluating queries (SELECT, SEARCH, PRINT)."""
