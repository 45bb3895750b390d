"""The per-epoch ``summary.csv`` of a training run and its plot ``curves.png``.

A resumed run keeps the rows of the epochs it does not repeat and appends from there, so the file
always describes one continuous run.
"""

import csv
import math
import os
from typing import Any, Dict, List, Optional

from ..utils.fs import atomic_write

__all__ = ["TrainingSummary", "SUMMARY_COLUMNS", "plot_curves"]

SUMMARY_COLUMNS = ["epoch", "lr", "train_loss", "val_top1", "val_top5", "val_loss", "epoch_time_s", "img_per_s"]


def _read_rows(path: str) -> List[Dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class TrainingSummary:
    """Writes ``summary.csv`` and ``curves.png`` in ``folder``, one row per epoch.

    Args:
        folder: The output folder.
        start_epoch: Completed epochs before this run (0 for a fresh run); later rows of an existing
            file are dropped.
        plot: Redraw ``curves.png`` after each row.
    """

    def __init__(self, folder: str, start_epoch: int = 0, plot: bool = True) -> None:
        self.csv_path = os.path.join(folder, "summary.csv")
        self.png_path = os.path.join(folder, "curves.png")
        self.plot = plot
        rows = _read_rows(self.csv_path) if start_epoch > 0 else []
        self.rows = [r for r in rows if r.get("epoch", "").isdigit() and int(r["epoch"]) <= start_epoch]
        self._write()

    def _write(self) -> None:
        with atomic_write(self.csv_path, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)

    def add(self, row: Dict[str, Any]) -> None:
        """Append one epoch (keys from :data:`SUMMARY_COLUMNS`; missing ones stay empty)."""
        self.rows.append({k: _fmt(row.get(k)) for k in SUMMARY_COLUMNS})
        self._write()
        if self.plot:
            plot_curves(self.rows, self.png_path)


def _column(rows: List[Dict[str, str]], key: str) -> List[float]:
    out = []
    for r in rows:
        try:
            out.append(float(r.get(key) or "nan"))
        except ValueError:
            out.append(math.nan)
    return out


def plot_curves(rows: List[Dict[str, str]], path: str, title: Optional[str] = None) -> None:
    """Draw loss, accuracy and learning rate per epoch into a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = _column(rows, "epoch")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, _column(rows, "train_loss"), "o-", label="train")
    axes[0].plot(epochs, _column(rows, "val_loss"), "s-", label="val")
    axes[0].set_title("loss")
    axes[1].plot(epochs, _column(rows, "val_top1"), "o-", label="val top-1")
    axes[1].plot(epochs, _column(rows, "val_top5"), "s-", label="val top-5")
    axes[1].set_title("accuracy (%)")
    axes[2].plot(epochs, _column(rows, "lr"), "o-")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=80)
    finally:
        plt.close(fig)
