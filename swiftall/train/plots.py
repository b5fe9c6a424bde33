"""PNG plots of the logged curves (loss, learning rate, eval loss)."""
from __future__ import annotations

from pathlib import Path

from ..utils.env import is_main_process
from .callbacks import read_log

CURVES = {"loss": "train loss", "learning_rate": "learning rate", "eval_loss": "eval loss", "grad_norm": "grad norm"}


def write_plots(output_dir: Path, curves: dict[str, str] | None = None) -> list[Path]:
    """One PNG per logged curve: CURVES, scores of evaluation during training (eval_<dataset>/<metric>) and a
    command's own (`curves`: log key -> title), e.g. rewards/margins. In a multi-process run only rank 0 writes
    them (none elsewhere)."""
    if not is_main_process():
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(output_dir)
    folder = Path(output_dir) / "images"
    written = []
    scores = {k: k[5:].replace("/", " ") for r in records for k in r if k.startswith("eval_") and "/" in k}
    for key, title in {**CURVES, **dict(sorted(scores.items())), **(curves or {})}.items():
        points = [(r["step"], r[key]) for r in records if key in r]
        if not points:
            continue
        folder.mkdir(exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(*zip(*points), marker="." if len(points) < 50 else None)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        path = folder / f"{key.replace('/', '_')}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
