"""What every room agrees on: the vocabularies (package data), the batch-key contract, box geometry, paths."""
