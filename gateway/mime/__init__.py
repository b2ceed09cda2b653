"""MIME surgery on whole messages: pure functions from bytes to bytes, no I/O."""
