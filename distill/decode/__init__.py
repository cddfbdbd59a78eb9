"""Decoding of transducer models (greedy search, and later beam searches)."""
