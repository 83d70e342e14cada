"""Fixtures shared by the report tests."""

import matplotlib.pyplot as plt
import pytest


@pytest.fixture
def no_pyplot_figures():
    """The test leaves pyplot's figure registry as it found it: the library never opens pyplot
    figures (it builds matplotlib ``Figure`` objects directly). Use it per module with
    ``pytestmark = pytest.mark.usefixtures("no_pyplot_figures")``."""
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before
