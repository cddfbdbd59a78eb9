"""Training metrics: tensorboard scalars, a TSV anyone can read, and a PNG of the curves."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Tuple

from torch.utils.tensorboard import SummaryWriter


class MetricsLog:
    """Appends ``(split, batch, name, value)`` rows and mirrors them to tensorboard.

    Args:
      exp_dir:
        Receives ``tensorboard/``, ``metrics.tsv`` and ``loss_curves.png``.
    """

    def __init__(self, exp_dir: Path) -> None:
        self.exp_dir = Path(exp_dir)
        self.writer = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))
        self.tsv = self.exp_dir / "metrics.tsv"
        if not self.tsv.exists():
            self.tsv.write_text("split\tbatch\tname\tvalue\n")

    def add(self, split: str, batch: int, values: Dict[str, float]) -> None:
        with open(self.tsv, "a") as f:
            for name, value in values.items():
                f.write(f"{split}\t{batch}\t{name}\t{value:.6g}\n")
                self.writer.add_scalar(f"{split}/{name}", value, batch)
        self.writer.flush()

    def plot(self) -> Path:
        """Write ``loss_curves.png`` (train and valid loss per frame against batches)."""
        return plot_loss_curves(self.tsv, self.exp_dir / "loss_curves.png")


def read_metrics(tsv: Path) -> Dict[Tuple[str, str], List[Tuple[int, float]]]:
    series: Dict[Tuple[str, str], List[Tuple[int, float]]] = {}
    with open(tsv) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            series.setdefault((row["split"], row["name"]), []).append((int(row["batch"]), float(row["value"])))
    return series


def plot_loss_curves(tsv: Path, png: Path) -> Path:
    """Plot train/valid loss (and the learning rate) from a metrics TSV into ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill.utils.io import atomic_path

    series = read_metrics(tsv)
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for split, style in (("train", "-"), ("valid", "o-")):
        points = series.get((split, "loss"), [])
        if points:
            ax_loss.plot(*zip(*points), style, label=f"{split} loss")
    ax_loss.set_ylabel("loss per frame")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    lr = series.get(("train", "lr"), [])
    if lr:
        ax_lr.plot(*zip(*lr))
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("batch")
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return png
