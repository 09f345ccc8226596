"""retrieval module: public surface (filled in as the module lands)."""
