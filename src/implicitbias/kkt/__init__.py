"""kkt."""

__all__: list[str] = []
