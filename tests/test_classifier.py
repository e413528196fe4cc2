"""The classifiers' epoch metrics equal the same figures computed directly over the whole split."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import quiet_trainer
from lightsweep.data.digits import DigitsDataModule
from lightsweep.models.cnn import CNNClassifier


def test_epoch_loss_and_accuracy_are_exact_over_uneven_batches():
    torch.manual_seed(0)
    data = DigitsDataModule(batch_size=64)
    data.setup()
    inputs, targets = data.splits["test"].tensors
    assert len(targets) % 64, "the last test batch must be smaller for this test to weigh batches"
    model = CNNClassifier(data.input_shape, data.num_classes)
    trainer = quiet_trainer(
        max_epochs=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=data)
    logged = trainer.test(model, datamodule=data, verbose=False)[0]

    model.eval()
    with torch.no_grad():
        logits = model(inputs)
    assert abs(logged["test/loss"] - F.cross_entropy(logits, targets).item()) < 1e-5
    assert logged["test/acc"] == (logits.argmax(-1) == targets).float().mean().item()
    assert 0.5 < logged["test/acc"] < 1.0
