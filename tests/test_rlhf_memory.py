"""DPO's memory on CPU: TRL's fused LM head folds smaller vocabulary tiles (swiftall's setting), and training sees
the same losses, rewards and log-probs as with TRL's default tiles."""
from __future__ import annotations

import math

from rlhf_fixtures import preference_rows
from swiftall.train.callbacks import read_log

KEYS = ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen",
        "logps/rejected")


def _dpo(tiny_dir, data, out, monkeypatch, columns_seen):
    import trl.trainer.utils as trl_utils
    from trl.kernels import ChunkedLogProbFunction as real

    from swiftall import dpo_main

    class Spy:
        @staticmethod
        def apply(*args):
            columns_seen.add(args[5])  # the vocabulary columns per tile
            return real.apply(*args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Spy)
    dpo_main(["--model", str(tiny_dir), "--dataset", str(data), "--max_steps", "3", "--per_device_train_batch_size",
              "4", "--learning_rate", "1e-2", "--beta", "0.5", "--logging_steps", "1", "--report_to", "none",
              "--seed", "0", "--output_dir", str(out)])
    return [r for r in read_log(out) if "rewards/chosen" in r]


def test_small_lm_head_tiles_keep_dpo_losses_and_rewards(tiny_dir, write_jsonl, tmp_path, monkeypatch):
    import trl.trainer.utils as trl_utils

    import swiftall.train.rlhf.offline as offline

    data = write_jsonl(preference_rows()[:12])
    monkeypatch.setattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", 32768)  # TRL's default; restored after the test
    small_seen: set = set()
    small = _dpo(tiny_dir, data, tmp_path / "small", monkeypatch, small_seen)
    monkeypatch.setattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", 32768)
    monkeypatch.setattr(offline, "small_lm_head_tiles", lambda model: None)
    trl_seen: set = set()
    default = _dpo(tiny_dir, data, tmp_path / "trl", monkeypatch, trl_seen)
    assert small_seen == {4096} and trl_seen == {32768}
    assert len(small) == len(default) == 3
    assert any(abs(r["rewards/margins"]) > 1e-3 for r in default), "the run must move the rewards to compare them"
    for a, b in zip(small, default):
        for key in KEYS:
            assert math.isclose(a[key], b[key], rel_tol=1e-3, abs_tol=1e-4), (key, a[key], b[key])
