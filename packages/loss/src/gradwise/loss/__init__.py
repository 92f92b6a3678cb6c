"""gradwise.loss."""
