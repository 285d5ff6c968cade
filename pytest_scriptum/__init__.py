"""pytest-scriptum: pinned smoke tests, a promotion gate and verified rollback for Scriptum."""

__all__: list[str] = []
