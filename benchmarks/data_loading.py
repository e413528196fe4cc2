"""Dataset load + preprocess time: first load (decode the official files, write the cache) vs. cached load.

For each dataset whose real files are in the data dir, the files are linked into a scratch data dir (so
caches are written there, not beside the originals) and the datamodule of the real config
(`dataset=<name>`) is set up: read, split into train/val/test, standardised, turned into tensors.
Both the read step alone and the whole setup are timed, first (the cache deleted just before) and
cached. Medians over the repeats, in one process after a warm-up (imports, OS file cache), so it is
decoding that is measured, not the disk.

    python benchmarks/data_loading.py [--data-dir ../shared/data] [--repeats 3] [name ...]

Another dataset joins the table with one entry in DATASETS (its config name -> the folder of its files).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.build import build  # noqa: E402
from lightsweep.config import compose  # noqa: E402
from lightsweep.paths import PROJECT_ROOT  # noqa: E402

DATASETS = {  # dataset config name -> folder under the data dir holding its official files
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
    "imdb": "imdb",
}
CACHES = ("*.arrays.npz", "*_corpus.npz", ".*.part")  # caches left beside the originals by earlier runs


def datamodule(name: str, data_dir: Path, output_dir: Path):
    # caches in the scratch dir too, whatever LIGHTSWEEP_CACHE_DIR says: "first" loads must really decode
    overrides = [f"dataset={name}", f"paths.data_dir={data_dir}", f"paths.cache_dir={data_dir}"]
    return build(compose(overrides, output_dir=output_dir).dataset)


def read_step(module):
    """The datamodule's read of its files or cache alone: read_arrays (images) or load_corpus (text)."""
    return getattr(module, "read_arrays", None) or module.load_corpus


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(name: str, source: Path, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        folder = data_dir / DATASETS[name]
        shutil.copytree(
            source,
            folder,
            symlinks=True,
            ignore=shutil.ignore_patterns(*CACHES),
            copy_function=lambda src, dst: Path(dst).symlink_to(src),
        )
        originals = set(folder.rglob("*"))

        def clear_cache() -> None:
            for path in set(folder.rglob("*")) - originals:
                if path.is_file():
                    path.unlink()

        times: dict[str, list[float]] = {
            f"{kind}_{state}": [] for kind in ("read", "setup") for state in ("first", "cached")
        }
        for _ in range(repeats):
            for kind in ("read", "setup"):
                clear_cache()
                for state in ("first", "cached"):
                    module = datamodule(name, data_dir, Path(scratch))
                    action = read_step(module) if kind == "read" else partial(module.setup, "fit")
                    times[f"{kind}_{state}"].append(timed(action))
        samples = sum(len(split) for split in module.splits.values())
    return {"samples": samples, **{key: statistics.median(values) for key, values in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"datasets (default: those present of {', '.join(DATASETS)})")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = args.names or [n for n in DATASETS if (args.data_dir / DATASETS[n]).is_dir()]
    if not names:
        sys.exit(f"no dataset files under {args.data_dir}")
    datamodule("digits", args.data_dir, Path(tempfile.gettempdir())).setup()  # warm-up: imports, sklearn, torch
    rows = []
    for name in names:
        result = measure(name, args.data_dir / DATASETS[name], args.repeats)
        rows.append(
            f"| {name} | {result['samples']:,} | {result['read_first']:.3f} | {result['read_cached']:.3f} | "
            f"{result['setup_first']:.2f} | {result['setup_cached']:.2f} |"
        )
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            "## Dataset load + preprocess time (`benchmarks/data_loading.py`)",
            "",
            f"Machine: {machine()}. Medians of {args.repeats} repeats with the `dataset=<name>` datamodule. "
            "First: decode the official files and write the `.arrays.npz` cache; cached: read that cache instead. "
            "Read = the read step alone (images: uint8 arrays; text: the tokenised corpus); "
            "setup = what a run waits for (read, stratified train/val split, normalisation, tensors).",
            "",
            "| dataset | samples (train+val+test) | read, first (s) | read, cached (s) | setup, first (s) "
            "| setup, cached (s) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Command: `{' '.join(['python benchmarks/data_loading.py', f'--repeats {args.repeats}', *args.names])}`",
        ]
    )
    write_section("data_loading", body)


if __name__ == "__main__":
    main()
