"""The bus delivers synchronously, in global order, and survives a failing subscriber."""

from __future__ import annotations

from lobterm.bus import Bus
from lobterm.engine.events import Trade, VenueStatus


def _trade(i: int) -> Trade:
    return Trade(i, "sim", "X", 100, 1, 0, i)


def test_events_reach_subscribers_of_their_type_in_order() -> None:
    bus = Bus()
    seen = []
    bus.subscribe(Trade, lambda e: seen.append(("t", e.ts)))
    bus.subscribe(VenueStatus, lambda e: seen.append(("s", e.ts)))
    bus.publish(_trade(1))
    bus.publish(VenueStatus(2, "sim", "up"))
    bus.publish_many([_trade(3), _trade(4)])
    assert seen == [("t", 1), ("s", 2), ("t", 3), ("t", 4)]


def test_event_published_during_delivery_is_delivered_after_the_current_one() -> None:
    bus = Bus()
    seen = []

    def first(e: Trade) -> None:
        seen.append(("first", e.ts))
        if e.ts == 1:
            bus.publish(_trade(2))

    bus.subscribe(Trade, first)
    bus.subscribe(Trade, lambda e: seen.append(("second", e.ts)))
    bus.publish(_trade(1))
    # Both subscribers see event 1 before anyone sees event 2.
    assert seen == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]


def test_failing_subscriber_is_counted_and_others_still_get_the_event() -> None:
    bus = Bus()
    seen = []

    def broken(e: Trade) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Trade, broken)
    bus.subscribe(Trade, lambda e: seen.append(e.ts))
    bus.publish(_trade(1))
    bus.publish(_trade(2))
    assert seen == [1, 2]
    assert bus.errors == 2
    assert "boom" in bus.last_errors[-1]


def test_subscribe_all_sees_every_event_including_types_subscribed_later() -> None:
    bus = Bus()
    seen = []
    bus.subscribe_all(lambda e: seen.append(type(e).__name__))
    bus.subscribe(Trade, lambda e: None)
    bus.publish(_trade(1))
    bus.publish(VenueStatus(2, "sim", "up"))
    assert seen == ["Trade", "VenueStatus"]
    assert bus.published == 2
