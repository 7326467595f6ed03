"""Adapters to the outside world: store, limits, cache, Triton."""
