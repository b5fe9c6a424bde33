"""Helpers shared by every layer. Nothing here imports torch."""
