"""core.hooks.Hook: the explicit registry a lower app publishes and higher apps subscribe to."""

import pytest

from core.hooks import Hook


def test_publish_calls_every_subscriber_in_order_with_the_payload():
    hook, calls = Hook("test.changed", arguments=("ids",)), []
    hook.subscribe(lambda *, ids: calls.append(("first", ids)))
    hook.subscribe(lambda *, ids: calls.append(("second", ids)))
    hook.publish(ids=[3, 1])
    assert calls == [("first", [3, 1]), ("second", [3, 1])]


def test_a_payload_that_is_not_the_declared_one_is_refused():
    hook, calls = Hook("test.changed", arguments=("ids",)), []
    hook.subscribe(lambda **payload: calls.append(payload))
    for wrong in ({}, {"ids": [1], "extra": 2}, {"other": [1]}):
        with pytest.raises(TypeError, match=r"test\.changed takes"):
            hook.publish(**wrong)
    assert calls == []


def test_subscribing_twice_subscribes_once_and_unsubscribe_removes():
    hook, calls = Hook("test.changed", arguments=("ids",)), []

    def subscriber(*, ids):
        calls.append(ids)

    assert hook.subscribe(subscriber) is subscriber
    hook.subscribe(subscriber)  # AppConfig.ready() may run more than once
    assert hook.subscribers == (subscriber,)
    hook.publish(ids=[1])
    hook.unsubscribe(subscriber)
    hook.unsubscribe(subscriber)  # already gone: nothing to do
    hook.publish(ids=[2])
    assert calls == [[1]]
