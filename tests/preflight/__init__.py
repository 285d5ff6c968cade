"""Preflight: the promotion checklist, the rollback target, refused credentials."""
