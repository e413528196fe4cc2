"""scikit-learn's real 8x8 digit images (1,797 of them, shipped with scikit-learn: works offline)."""

from __future__ import annotations

import numpy as np

from lightsweep.data.tensors import InMemoryDataModule, stratified_split


class DigitsDataModule(InMemoryDataModule):
    modality = "image"

    def __init__(
        self,
        batch_size: int = 64,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, val_fraction, split_seed, num_workers, pin_memory)
        self.test_fraction = test_fraction

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        images, labels = load_digits(return_X_y=True)
        images = images.reshape(-1, 1, 8, 8) / 16.0  # pixel intensities are 0..16
        return stratified_split(images, labels, self.test_fraction, self.split_seed, "test_fraction")
