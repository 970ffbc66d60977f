"""`rambench check` on multi-frame clips (the CREMA-D-shaped fixture, ResNet-18 encoders):
every registered method passes the method contract. A file of its own, so that the suite's
workers share the contract checks (each test file runs on one worker)."""

import pytest

from rambench.methods import methods
from tests.test_check import passes_the_contract


@pytest.mark.parametrize("name", methods.names())
def test_every_registered_method_passes_on_clips(name):
    passes_the_contract(name, "clips")
