"""gradwise.nn."""
