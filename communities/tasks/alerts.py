"""The alerts jobs."""
