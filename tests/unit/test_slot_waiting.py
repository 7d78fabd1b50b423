"""Waiting for a shared provider slot: when a waiter looks again (from the holders' expected ends, on a given
clock), what a process learns of its holds, and the queue of one process's waiting calls. No sleeps, no table."""

import pytest

from reframe_pipeline.adapters.providers.slot_queue import HANDOVERS_IN_A_ROW, SlotQueue
from reframe_pipeline.adapters.providers.slot_waiting import (
    AFTER_END_S,
    FIRST_S,
    LONGEST_S,
    Due,
    TypicalHold,
    first_due,
    next_look_s,
)

NOW = 1_000_000


def test_a_waiter_looks_again_just_after_the_first_expected_end():
    assert next_look_s(NOW, [NOW + 700, NOW + 300, NOW + 900], rounds=1) == pytest.approx(0.3 + AFTER_END_S)


def test_an_expected_end_far_away_is_looked_at_no_later_than_the_longest_wait():
    assert next_look_s(NOW, [NOW + 30_000], rounds=1) == LONGEST_S


def test_without_expected_ends_the_waits_double_up_to_the_longest():
    waits = [next_look_s(NOW, [None, None], rounds) for rounds in range(1, 10)]
    assert waits[:3] == [FIRST_S, 2 * FIRST_S, 4 * FIRST_S]
    assert waits[-1] == LONGEST_S
    assert waits == sorted(waits)


def test_a_holder_that_did_not_say_when_it_ends_keeps_the_backoff_short():
    assert next_look_s(NOW, [None, NOW + 800], rounds=1) == FIRST_S


def test_the_slot_due_first_is_the_one_whose_holder_ends_first_later_than_now():
    busy = {0: NOW + 700, 1: NOW + 300, 2: None, 3: NOW - 50}
    assert first_due(NOW, busy) == Due(1, NOW + 300)
    # A holder already late, or one that did not say, is not due: it is looked at, not written to.
    assert first_due(NOW, {2: None, 3: NOW - 50}) is None


def test_a_late_holder_is_looked_at_again_once_it_is_as_late_again():
    # Just late: its release is likely a write away, so soon (every 50 ms left slots idle under load).
    assert next_look_s(NOW, [NOW - 10], rounds=5) == AFTER_END_S
    assert next_look_s(NOW, [NOW - 400, NOW + 900], rounds=5) == pytest.approx(0.4)
    assert next_look_s(NOW, [NOW - 60_000], rounds=1) == LONGEST_S


def test_no_busy_slot_seen_falls_back_to_the_backoff():
    assert next_look_s(NOW, [], rounds=2) == 2 * FIRST_S


def test_the_typical_hold_is_unknown_until_one_ends_then_follows_the_holds():
    typical = TypicalHold()
    assert typical.expected_end_ms(NOW) is None
    typical.observe(1.0)
    assert typical.expected_end_ms(NOW) == NOW + 1000
    for _ in range(20):
        typical.observe(3.0)
    assert typical.expected_end_ms(NOW) == pytest.approx(NOW + 3000, abs=5)


def expires() -> int:
    return NOW + 60_000


INVOCATION = object()  # the queue's calls here are of one invocation; handovers are SharedSlots'


def test_only_the_first_waiter_looks_and_the_next_is_woken_when_it_leaves():
    queue = SlotQueue()
    first, second = queue.join("a", expires, INVOCATION), queue.join("b", expires, INVOCATION)
    assert queue.start_looking(first)
    assert not queue.start_looking(second)
    queue.stop_looking(first)
    queue.took(first, 2)
    assert second.woken.is_set()
    assert queue.start_looking(second)


def test_a_finished_call_hands_its_slot_to_a_waiter_not_looking():
    queue = SlotQueue()
    first, second = queue.join("a", expires, INVOCATION), queue.join("b", expires, INVOCATION)
    assert queue.start_looking(first)  # reading the table: not handed a slot meanwhile
    heir = queue.heir(3)
    assert heir is second and second.claimed
    assert not queue.give_up(second)  # a handover is being written: it may not leave now
    queue.handed(second, 3)
    assert second.slot == 3 and second.woken.is_set() and not second.claimed
    assert queue.heir(1) is None  # the first is still looking: nobody to hand to


def test_a_failed_handover_puts_the_heir_back_first_in_line():
    queue = SlotQueue()
    first, second = queue.join("a", expires, INVOCATION), queue.join("b", expires, INVOCATION)
    assert queue.heir(0) is first
    queue.handed(first, None)
    assert first.slot is None and queue.give_up(second)
    assert queue.start_looking(first)


def test_a_slot_goes_back_to_everyone_after_some_handovers_in_a_row():
    queue = SlotQueue()
    for index in range(HANDOVERS_IN_A_ROW):
        waiter = queue.join(str(index), expires, INVOCATION)
        heir = queue.heir(0)
        assert heir is waiter
        queue.handed(heir, 0)
    queue.join("next", expires, INVOCATION)
    assert queue.heir(0) is None  # released: other instances get their turn
    taker = queue.join("taker", expires, INVOCATION)
    queue.took(taker, 0)  # taken from the table again: handed over again from then on
    assert queue.heir(0) is not None


def test_a_waiter_that_gives_up_leaves_and_wakes_the_next():
    queue = SlotQueue()
    first, second = queue.join("a", expires, INVOCATION), queue.join("b", expires, INVOCATION)
    assert queue.give_up(first)
    assert second.woken.is_set() and queue.start_looking(second)
    assert queue.heir(0) is None  # nobody waiting but the one looking
