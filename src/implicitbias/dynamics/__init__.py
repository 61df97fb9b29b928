"""dynamics."""

__all__: list[str] = []
