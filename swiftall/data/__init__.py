"""Datasets: reading, converting to canonical messages, validating, encoding and batching."""
from .build import BuiltData, DataReport, build_datasets, read_rows
from .collator import PadCollator
from .registry import DATASETS, DatasetMeta, get_dataset, register_dataset

__all__ = ["BuiltData", "DataReport", "build_datasets", "read_rows", "PadCollator", "DATASETS", "DatasetMeta",
           "get_dataset", "register_dataset"]
