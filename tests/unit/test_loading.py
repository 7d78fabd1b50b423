"""The collector paused while the handler loads: off inside (nested too), frozen and on again after the
outermost block, and left off when it was off before."""

import gc
from collections.abc import Iterator

import pytest

from reframe_pipeline.loading import collector_paused


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not was_on:
        gc.disable()


def test_the_collector_is_off_inside_and_on_after_with_what_was_built_frozen():
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # the clients built inside the imports' pause, say
            built = [[index] for index in range(10)]
        assert not gc.isenabled()  # the outer block still runs
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    # Frozen: out of the generations that collections walk.
    assert gc.get_freeze_count() > len(built)
    assert not any(seen is built for seen in gc.get_objects())


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_the_collector_is_on_again_when_the_block_raises():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("import failed")
    assert gc.isenabled()
