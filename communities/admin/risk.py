"""The admin for risk."""
