import pytest

from gateway import Gateway


@pytest.fixture
def gw(tmp_path):
    """A started daemon with the records-desk recipient (local transport)."""
    g = Gateway(str(tmp_path))
    g.start()
    g.add_recipient("records-desk")
    yield g
    if g.proc is not None:
        rc = g.stop()
        assert rc == 0, "roigated did not stop cleanly:\n" + g.log()


@pytest.fixture
def gateway_factory(tmp_path):
    """For tests that configure the daemon themselves."""
    made = []

    def make(**overrides):
        g = Gateway(str(tmp_path), **overrides)
        made.append(g)
        return g
    yield make
    for g in made:
        if g.proc is not None:
            g.stop()
