"""The admin for templates."""
