"""`rambench check` on multi-frame clips (the CREMA-D-shaped fixture, ResNet-18 encoders):
the methods pass the method contract. A file of its own, so that the suite's workers share
the contract checks (each test file runs on one worker).

Methods that only read `self.encode(batch)` features see clips through the encoders alone,
which late fusion's case covers; theirs run with RAMBENCH_SLOW=1. Every method whose own
code reads raw inputs or encoder internals (augmentations, dropped inputs, gradient hooks
on convolutions, tokens of the encoder's map, encoders of its own), and every new method,
runs here by default."""

import pytest

from rambench.methods import methods
from tests.test_check import passes_the_contract

# their own code reads nothing but `self.encode(batch)` (or one encoder's output)
FEATURES_ONLY = {"audio_only", "etmc", "md", "pdf", "qmf", "reconstruct", "tmc",
                 "visual_only"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in FEATURES_ONLY else n
    for n in methods.names()])
def test_every_registered_method_passes_on_clips(name):
    passes_the_contract(name, "clips")
