"""Trainers on transformers/TRL per method, callbacks, outputs."""
