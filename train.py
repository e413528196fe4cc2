"""`python train.py [overrides]`: compose a run from conf/ and train it (see lightsweep.train)."""

from lightsweep.cli import train_entry

if __name__ == "__main__":
    train_entry()
