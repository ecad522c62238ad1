from __future__ import annotations

import gc

import pytest

from analytics_pipeline.gc_pauses import cycle_collection_paused


def test_the_collector_is_off_in_the_block_and_back_on_after_even_on_error():
    assert gc.isenabled()
    with pytest.raises(ValueError), cycle_collection_paused():
        assert not gc.isenabled()
        with cycle_collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer pause as it was
        raise ValueError("bulk work failed")
    assert gc.isenabled()


def test_a_block_in_a_process_that_had_the_collector_off_leaves_it_off():
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cycles_made_in_the_block_are_collected_after_it():
    class Node:
        pass

    with cycle_collection_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is Node]
