"""Reads for communities, one module per area (other apps use these, not the models)."""
