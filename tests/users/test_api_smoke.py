def test_order_batch_replay_changes_nothing(api, db):
    from users.models import Order

    customers = {
        "items": [
            {
                "external_id": "c1",
                "name": "张伟",
                "phone": "13812341633",
                "tags": ["vip", "new"],
                "consent": {"sms": True},
            }
        ]
    }
    r = api.post("/api/v1/customers/batch", customers, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}
    orders = {
        "items": [
            {"external_id": f"o{i}", "customer": "c1", "amount": "10.50", "occurred_at": "2026-05-01T10:00:00+08:00"}
            for i in range(3)
        ]
    }
    first = api.post("/api/v1/orders/batch", orders, format="json").json()
    assert first == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    again = api.post("/api/v1/orders/batch", orders, format="json").json()
    assert again == {"created": 0, "updated": 0, "unchanged": 3, "errors": []}
    assert Order.objects.count() == 3
    profile = api.get("/api/v1/customers/c1").json()
    assert profile["tags"] == ["new", "vip"]
    assert profile["phone"] == "13812341633"  # the fixture key has customers:pii
