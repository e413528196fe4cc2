"""dataset.source=tfds on a dataset prepared here by a small tensorflow-datasets builder (array_record).

The builder runs in its own process, so this process reads the prepared dir the way a user's run does:
from the files alone, through tfds.data_source, without the builder's code and without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets not installed: pip install 'lightsweep[tfds]'")

from lightsweep.data.tfds_source import read_tfds_images  # noqa: E402
from lightsweep.errors import ConfigError  # noqa: E402

# Ten classes of 28x28 grey images whose pixels all equal 20 x label: pairing stays checkable after the
# shuffle tfds applies when writing. Images are given as PIL images, which tfds encodes to PNG itself.
BUILDER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow_datasets as tfds
    from PIL import Image

    class TinyDigits(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(100), "test": self._generate_examples(30)}

        def _generate_examples(self, n):
            for i in range(n):
                label = i % 10
                yield i, {"image": Image.fromarray(np.full((28, 28), 20 * label, np.uint8)), "label": label}

    TinyDigits(data_dir=sys.argv[1], file_format="array_record").download_and_prepare()
    assert "tensorflow" not in sys.modules
""")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    script = folder / "build_tiny_digits.py"
    script.write_text(BUILDER)
    subprocess.run([sys.executable, str(script), str(folder / "data")], check=True, capture_output=True, timeout=300)
    return folder / "data"


def test_prepared_dataset_is_read_without_its_builder(prepared):
    arrays = read_tfds_images("tiny_digits", prepared)
    assert arrays["x_train"].shape == (100, 1, 28, 28) and arrays["x_test"].shape == (30, 1, 28, 28)
    assert arrays["x_train"].dtype == np.uint8 and np.bincount(arrays["y_train"]).tolist() == [10] * 10
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert (images == 20 * labels[:, None, None, None]).all()  # every image still with its label
    assert "tensorflow" not in sys.modules
    cache = prepared / "tiny_digits-label.arrays.npz"
    assert cache.is_file()
    np.testing.assert_array_equal(read_tfds_images("tiny_digits", prepared)["y_test"], arrays["y_test"])


@pytest.mark.slow
def test_source_tfds_trains_through_the_real_config(prepared, run_cfg):
    result, record = run_cfg(
        [
            "dataset=mnist",
            "dataset.source=tfds",
            f"dataset.tfds_dir={prepared}",
            "dataset.tfds_name=tiny_digits",
            "dataset.val_fraction=0.2",
            "trainer.max_epochs=1",
        ]
    )
    assert result.model_family == "cnn" and record["status"] == "ok"
    assert record["config"]["dataset"]["source"] == "tfds"


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot open 'nope_digits' under .*tfds build nope_digits --data_dir"):
        read_tfds_images("nope_digits", tmp_path)
