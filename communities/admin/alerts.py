"""The admin for alerts."""
