"""The gate: the verdict, the classification of reports, exit codes."""
