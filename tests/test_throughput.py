"""The one throughput logger (train/throughput.py) that sft's trainer and every alignment trainer mix in."""
import pytest
import torch

from swiftall.train.throughput import ThroughputMixin, count_tokens


def test_count_tokens_excludes_pad_and_counts_trained_positions():
    padded = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.tensor([[1, 1, 1, 0],
                                                                                              [1, 1, 0, 0]]),
              "labels": torch.tensor([[-100, 5, 6, -100], [-100, 7, -100, -100]])}
    assert count_tokens(padded) == (5, 3)
    padding_free = {"input_ids": torch.ones(1, 7, dtype=torch.long), "labels": torch.tensor([[-100, 1, 2, -100,
                                                                                             -100, 3, 4]])}
    assert count_tokens(padding_free) == (7, 4)
    grpo = {"prompt_mask": torch.tensor([[0, 1, 1]]), "completion_mask": torch.tensor([[1, 1, 0]])}
    assert count_tokens(grpo) == (4, 2)
    paired = {"chosen_attention_mask": torch.ones(1, 3), "rejected_attention_mask": torch.ones(1, 2)}
    assert count_tokens(paired) == (5, 0)


class _Base:
    def __init__(self):
        self.logged = []

    def compute_loss(self, model, inputs, *args, **kwargs):
        return 0.0

    def log(self, logs, start_time=None):
        self.logged.append(dict(logs))


class _Trainer(ThroughputMixin, _Base):
    pass


def test_logs_with_a_loss_get_throughput_and_memory_and_the_window_restarts():
    trainer, model = _Trainer(), torch.nn.Linear(1, 1)
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4),
             "labels": torch.tensor([[-100, -100, 1, 2]])}
    trainer.compute_loss(model, batch)
    trainer.compute_loss(model.eval(), batch)   # evaluation batches are not training throughput
    trainer.log({"loss": 1.0})
    trainer.log({"eval_loss": 1.0})             # no loss: left alone
    first, second = trainer.logged
    assert first["tokens_per_second"] > 0 and first["trained_tokens_per_second"] > 0
    assert first["tokens_per_second"] == pytest.approx(2 * first["trained_tokens_per_second"], rel=1e-3)
    assert any(k.startswith("memory") for k in first)
    assert "tokens_per_second" not in second
    assert (trainer.total_tokens, trainer.total_trained_tokens) == (4, 2)
    trainer.log({"loss": 0.5})                  # a window without batches reports no rate
    assert "tokens_per_second" not in trainer.logged[-1]
