"""Datasets: reading, converting to canonical messages, validating, encoding (cached) and batching."""
from .build import BuiltData, build_datasets, canonical_datasets, read_rows
from .collator import PadCollator
from .registry import DATASETS, DatasetMeta, get_dataset, list_datasets, load_dataset_info, register_dataset
from .report import DataReport

__all__ = ["BuiltData", "DataReport", "build_datasets", "canonical_datasets", "read_rows", "PadCollator",
           "DATASETS", "DatasetMeta", "get_dataset", "list_datasets", "load_dataset_info", "register_dataset"]
