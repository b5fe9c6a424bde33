"""Training for models that are not chat models (`swiftall sft --task_type seq_cls|embedding|reranker`): rows ->
samples (rows.py), batches (collate.py), losses (losses.py), evaluation metrics (metrics.py) and the trainer
(trainer.py). The shared encoding, pooling and loading live in swiftall.models.tasks."""
