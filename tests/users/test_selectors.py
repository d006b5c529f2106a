"""users.selectors' SQL names: what other apps' set-based SQL reads instead of
spelling users' tables itself."""

from decimal import Decimal

from django.db import connection

from users import selectors
from users.models import Customer, Order, OrderStatus

from .factories import CustomerFactory, OrderFactory


def test_sql_tables_are_the_models_tables():
    assert selectors.sql_tables() == {"customer": Customer._meta.db_table, "order": Order._meta.db_table}


def test_paid_order_sql_selects_the_paid_orders_only(db):
    customer = CustomerFactory()
    for status in (OrderStatus.PAID, OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.CANCELLED):
        OrderFactory(customer=customer, status=status, amount=Decimal("10.00"))
    tables = selectors.sql_tables()
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {tables['order']} o WHERE {selectors.paid_order_sql('o')}")
        assert cur.fetchone()[0] == 2
        cur.execute(f"SELECT COUNT(*) FROM {tables['order']} WHERE {selectors.paid_order_sql()}")
        assert cur.fetchone()[0] == Order.objects.filter(status=OrderStatus.PAID).count() == 2
