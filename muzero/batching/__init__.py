"""Batched inference for many games at once, the inference queue, and vectorised self-play."""
