"""Helpers of the overlay's workflow files: a _*.py file is imported, never loaded as a workflow."""


def bullet_list(items: list[str]) -> str:
    """One "- item" line per item."""
    return "\n".join(f"- {item}" for item in items)
