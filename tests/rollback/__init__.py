"""Rollback: compare-and-set, hooks, the verification re-run, a platform killed around it."""
