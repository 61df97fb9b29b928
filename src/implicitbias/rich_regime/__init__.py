"""rich_regime."""

__all__: list[str] = []
