"""gradwise.optim."""
