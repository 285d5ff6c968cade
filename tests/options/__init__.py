"""Options: precedence and sources, the report header, listing modes, --scriptum-no-env."""
