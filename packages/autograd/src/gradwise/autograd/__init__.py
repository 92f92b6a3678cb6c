"""gradwise.autograd."""
