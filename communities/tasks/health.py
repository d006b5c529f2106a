"""The health jobs."""
