"""The admin for calendar."""
