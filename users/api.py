"""REST API v1 for customers, orders and events."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import validate_batch
from core.errors import ApplicationError
from core.permissions import ScopePermission, request_can_see_pii
from core.pii import mask_email, mask_phone
from core.validation import validate_body
from segments.models import Stage, Tier

from . import selectors, services
from .models import Customer
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


class CustomerFilter(filters.FilterSet):
    tag = filters.CharFilter(help_text="customers carrying this tag")
    updated_since = filters.IsoDateTimeFilter(help_text="changed at or after this instant (ISO 8601)")
    stage = filters.ChoiceFilter(choices=Stage.choices, help_text="lifecycle stage in the published recompute")
    tier = filters.ChoiceFilter(choices=Tier.choices, help_text="value tier in the published recompute")
    segment = filters.CharFilter(help_text="a segment slug (built-in like stage-mature, or custom)")

    class Meta:
        model = Customer
        fields = []


class CustomerCursor(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class CustomerListApi(ListAPIView):
    required_scopes = {"GET": "customers:read"}
    required_perms = {"GET": "users.view_customer"}
    permission_classes = [ScopePermission]
    serializer_class = CustomerOut
    pagination_class = CustomerCursor
    filterset_class = CustomerFilter
    filter_backends = []  # the filterset is applied by the selector below

    def get_queryset(self):
        form = CustomerFilter(self.request.query_params)
        if not form.is_valid():
            raise ApplicationError(
                "Invalid filter.", code="invalid_filter",
                details={name: [str(m) for m in messages] for name, messages in form.errors.items()},
            )
        data = form.form.cleaned_data
        return selectors.customer_list(
            tag=data.get("tag") or None, updated_since=data.get("updated_since"),
            stage=data.get("stage") or None, tier=data.get("tier") or None, segment=data.get("segment") or None,
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "pii": request_can_see_pii(self.request)}

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="customers carrying this tag"),
            OpenApiParameter("updated_since", str, description="changed at or after this ISO 8601 instant"),
            OpenApiParameter("stage", str, description="lifecycle stage (prospect, new, growing, mature, churn_warning, churned)"),
            OpenApiParameter("tier", str, description="value tier (super_vip, core, active, normal, potential)"),
            OpenApiParameter("segment", str, description="segment slug, e.g. stage-mature, rfm-high_value, or a custom slug"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CustomerProfileOut(CustomerOut):
    rfm = serializers.JSONField(allow_null=True)
    tier = serializers.CharField(allow_null=True)
    stage = serializers.CharField(allow_null=True)
    churn = serializers.JSONField(allow_null=True)
    operating_class = serializers.CharField(allow_null=True)
    segments = serializers.ListField(child=serializers.CharField())
    points = serializers.JSONField(allow_null=True)
    level = serializers.JSONField(allow_null=True)
    badges = serializers.ListField(child=serializers.JSONField())
    communities = serializers.ListField(child=serializers.JSONField())


class CustomerProfileApi(APIView):
    required_scopes = {"GET": "customers:read"}
    required_perms = {"GET": "users.view_customer"}
    permission_classes = [ScopePermission]

    @extend_schema(responses=CustomerProfileOut, summary="A customer's profile")
    def get(self, request, external_id: str):
        customer = selectors.customer_get(external_id=external_id)
        data = CustomerOut(customer, context={"pii": request_can_see_pii(request)}).data
        return Response({**data, **selectors.customer_profile_sections(customer=customer)})


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

