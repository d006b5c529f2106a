"""The admin for groups."""
