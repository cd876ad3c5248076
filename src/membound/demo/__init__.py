"""The seed experiments as runnable scenarios for ``membound demo``."""
