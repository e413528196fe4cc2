"""TS2Vec's random cropping into two overlapping views and the long-series window (TS2Vec: ts2vec.py, fit)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def take_per_row(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """x (B, T, D): row i's slice [starts[i], starts[i] + length)."""
    index = starts[:, None] + torch.arange(length, device=x.device)
    return x[torch.arange(x.size(0), device=x.device)[:, None], index]


def random_window(x: torch.Tensor, max_length: int | None) -> torch.Tensor:
    """One window of max_length timestamps at a random offset shared by the batch (long series only)."""
    if max_length is None or x.size(1) <= max_length:
        return x
    offset = np.random.randint(x.size(1) - max_length + 1)
    return x[:, offset : offset + max_length]


def overlapping_views(x: torch.Tensor, temporal_unit: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(view1, view2, overlap): view1 ends and view2 starts with the same `overlap` raw timestamps.

    Cut points are shared by the batch; each series gets its own shift (numpy's RNG, so a seeded run
    repeats)."""
    overlap, view1_start, overlap_start, overlap_end, view2_end, shifts = _cut_points(x, temporal_unit)
    shifts = torch.from_numpy(shifts).to(x.device)
    view1 = take_per_row(x, shifts + view1_start, overlap_end - view1_start)
    view2 = take_per_row(x, shifts + overlap_start, view2_end - overlap_start)
    return view1, view2, overlap


class Crops(NamedTuple):
    """Both views of every series in one right-padded batch: rows 0..B-1 view 1, rows B..2B-1 view 2."""

    batch: torch.Tensor  # (2B, longest view, D); a row's steps past its view's length repeat its last step
    lengths: torch.Tensor  # (2B,) each row's view length
    overlap: int
    length1: int  # view 1's length (its last `overlap` steps are the shared ones; view 2's first)


def overlapping_crops(x: torch.Tensor, temporal_unit: int = 0) -> Crops:
    """overlapping_views' two views (the same random draws) gathered at once into one padded batch, as
    encode_pair pads them; the padding's values differ (encoders mask steps past `lengths`)."""
    overlap, view1_start, overlap_start, overlap_end, view2_end, shifts = _cut_points(x, temporal_unit)
    batch = x.size(0)
    length1, length2 = overlap_end - view1_start, view2_end - overlap_start
    lengths = np.repeat([length1, length2], batch)
    starts = np.concatenate([shifts + view1_start, shifts + overlap_start])
    index = starts[:, None] + np.minimum(np.arange(max(length1, length2)), lengths[:, None] - 1)
    rows = torch.arange(2 * batch, device=x.device)[:, None] % batch
    gathered = x[rows, torch.from_numpy(index).to(x.device)]
    return Crops(gathered, torch.from_numpy(lengths).to(x.device), overlap, length1)


def _cut_points(x: torch.Tensor, temporal_unit: int) -> tuple[int, int, int, int, int, np.ndarray]:
    length = x.size(1)
    overlap = np.random.randint(low=2 ** (temporal_unit + 1), high=length + 1)
    overlap_start = np.random.randint(length - overlap + 1)
    overlap_end = overlap_start + overlap
    view1_start = np.random.randint(overlap_start + 1)
    view2_end = np.random.randint(low=overlap_end, high=length + 1)
    shifts = np.random.randint(-view1_start, length - view2_end + 1, size=x.size(0))
    return overlap, view1_start, overlap_start, overlap_end, view2_end, shifts
