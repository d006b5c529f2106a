"""Hooks: how a lower app tells the apps above it that something happened,
without importing them.

A hook is a named, explicit list of subscribers. The app that owns a write
publishes it right after the write, inside its transaction, with ids and
plain values (``orders_changed.publish(customer_ids=[...], order_ids=[...])``).
The composition layer (``console``) subscribes the higher apps' reactions in
its ``AppConfig.ready()``, so the publisher never names them and the layers
contract in ``pyproject.toml`` holds.

A subscriber must only queue work for after the commit
(``task.delay_on_commit(ids)``): it runs inside the writer's transaction, so
anything it wrote or sent right away would outlive a rollback. This is not a
Django signal: nothing is sent from ``Model.save()``, and every publisher and
subscriber is one grep away.
"""

from collections.abc import Callable


class Hook:
    def __init__(self, name: str, *, arguments: tuple[str, ...]):
        self.name = name
        self.arguments = frozenset(arguments)
        self._subscribers: list[Callable[..., None]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._subscribers)} subscriber(s)>"

    @property
    def subscribers(self) -> tuple[Callable[..., None], ...]:
        return tuple(self._subscribers)

    def subscribe(self, subscriber: Callable[..., None]) -> Callable[..., None]:
        """Adds a subscriber (once: subscribing it again changes nothing)."""
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Callable[..., None]) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, **payload) -> None:
        """Calls every subscriber, in the order they subscribed, with the payload as keywords."""
        if set(payload) != self.arguments:
            raise TypeError(f"{self.name} takes {sorted(self.arguments)}, got {sorted(payload)}")
        for subscriber in self._subscribers:
            subscriber(**payload)
