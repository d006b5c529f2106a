"""REST API v1 for customers, orders and events: the batch writes and unsubscribe.
The customer list and profile read other apps' parts too, so they are composed in
``console.api`` (same paths); ``CustomerOut`` is this app's part of them."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import validate_batch
from core.permissions import ScopePermission
from core.pii import mask_email, mask_phone
from core.validation import validate_body

from . import selectors, services
from .rows import (
    BatchOut,
    CustomerBatchIn,
    CustomerRow,
    EventBatchIn,
    EventRow,
    OrderBatchIn,
    OrderRow,
    UnsubscribeIn,
)


class CustomerOut(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    nickname = serializers.CharField()
    phone = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()
    gender = serializers.CharField()
    birthday = serializers.DateField()
    city = serializers.CharField()
    timezone = serializers.CharField()
    signup_at = serializers.DateTimeField()
    channel = serializers.CharField()
    referred_by = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()
    do_not_contact = serializers.BooleanField()
    updated_at = serializers.DateTimeField()

    def _pii(self) -> bool:
        return self.context.get("pii", False)

    def get_phone(self, obj) -> str:
        return obj.phone if self._pii() else mask_phone(obj.phone)

    def get_email(self, obj) -> str:
        return obj.email if self._pii() else mask_email(obj.email)

    def get_referred_by(self, obj) -> str | None:
        return obj.referred_by.external_id if obj.referred_by_id else None

    def get_tags(self, obj) -> list[str]:
        return [t.tag for t in obj.tags.all()]

    def get_consent(self, obj) -> dict[str, bool]:
        return obj.consent()


class _Batch(APIView):
    """A batch endpoint: envelope + rows validated, then one service call."""

    required_scopes = {"POST": "customers:write"}
    required_perms = {"POST": "users.add_customer"}
    permission_classes = [ScopePermission]
    row_model: type
    service = None

    def post(self, request):
        batch = validate_batch(request.data, self.row_model)
        result = type(self).service(batch=batch)
        return Response(result.as_dict())


@extend_schema(request=CustomerBatchIn, responses=BatchOut, summary="Upsert customers by external_id")
class CustomerBatchApi(_Batch):
    row_model = CustomerRow
    service = staticmethod(services.customers_upsert_batch)


@extend_schema(request=OrderBatchIn, responses=BatchOut, summary="Upsert orders by external_id")
class OrderBatchApi(_Batch):
    row_model = OrderRow
    service = staticmethod(services.orders_upsert_batch)


@extend_schema(request=EventBatchIn, responses=BatchOut, summary="Append events (deduplicated)")
class EventBatchApi(_Batch):
    row_model = EventRow
    service = staticmethod(services.events_append_batch)


class CustomerUnsubscribeApi(APIView):
    required_scopes = {"POST": "customers:write"}
    required_perms = {"POST": "users.change_customer"}
    permission_classes = [ScopePermission]

    @extend_schema(request=UnsubscribeIn, responses={200: dict}, summary="Withdraw marketing consent")
    def post(self, request, external_id: str):
        body = validate_body(UnsubscribeIn, request.data)
        customer = selectors.customer_get(external_id=external_id)
        customer = services.customer_unsubscribe(customer=customer, channel=body.channel, actor=request.user)
        return Response({"external_id": customer.external_id, "consent": customer.consent()})
