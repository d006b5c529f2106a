"""REST API v1 endpoints composed from several apps: the customer list (filtered by
users' fields and by segments' stage, tier and segment) and the customer profile
(users' fields plus each engine's section). Paths are the ones users served before."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from communities.selectors import members as communities_members
from core.errors import ApplicationError
from core.models import ApiKey
from core.pagination import CheckedCursorPagination
from core.permissions import ScopePermission, request_can_see_pii
from core.validation import validate_form_instant
from segments import selectors as segments_selectors
from segments.models import Stage, Tier
from users import selectors as users_selectors
from users.api import CustomerOut
from users.models import Customer

from . import selectors


class CustomerFilter(filters.FilterSet):
    tag = filters.CharFilter(help_text="customers carrying this tag")
    updated_since = filters.IsoDateTimeFilter(
        help_text="changed at or after this instant (ISO 8601, 1970–2100)", validators=[validate_form_instant]
    )
    stage = filters.ChoiceFilter(choices=Stage.choices, help_text="lifecycle stage in the published recompute")
    tier = filters.ChoiceFilter(choices=Tier.choices, help_text="value tier in the published recompute")
    segment = filters.CharFilter(help_text="a segment slug (built-in like stage-mature, or custom)")

    class Meta:
        model = Customer
        fields = []


class CustomerCursor(CheckedCursorPagination):
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
                "Invalid filter.",
                code="invalid_filter",
                details={name: [str(m) for m in messages] for name, messages in form.errors.items()},
            )
        data = form.form.cleaned_data
        stage, tier, segment = data.get("stage") or None, data.get("tier") or None, data.get("segment") or None
        return users_selectors.customer_list(
            tag=data.get("tag") or None,
            updated_since=data.get("updated_since"),
            ids=segments_selectors.customer_ids_in(stage=stage, tier=tier, segment=segment)
            if stage or tier or segment
            else None,
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "pii": request_can_see_pii(self.request)}

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="customers carrying this tag"),
            OpenApiParameter("updated_since", str, description="changed at or after this ISO 8601 instant"),
            OpenApiParameter(
                "stage", str, description="lifecycle stage (prospect, new, growing, mature, churn_warning, churned)"
            ),
            OpenApiParameter("tier", str, description="value tier (super_vip, core, active, normal, potential)"),
            OpenApiParameter(
                "segment", str, description="segment slug, e.g. stage-mature, rfm-high_value, or a custom slug"
            ),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CommunityMembershipOut(serializers.Serializer):
    """One open membership (``communities.selectors.members.customer_communities``)."""

    group = serializers.CharField(help_text="the group's code")
    name = serializers.CharField()
    platform = serializers.CharField(help_text="wechat, wecom, qq, app_forum, douyin, other")
    role = serializers.CharField(help_text="member, admin or koc")
    joined_at = serializers.DateTimeField()


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
    communities = CommunityMembershipOut(many=True, help_text="open memberships of community groups")


class CustomerProfileApi(APIView):
    required_scopes = {"GET": "customers:read"}
    required_perms = {"GET": "users.view_customer"}
    permission_classes = [ScopePermission]

    @extend_schema(responses=CustomerProfileOut, summary="A customer's profile")
    def get(self, request, external_id: str):
        customer = users_selectors.customer_get(external_id=external_id)
        data = CustomerOut(customer, context={"pii": request_can_see_pii(request)}).data
        sections = selectors.customer_profile_sections(customer=customer)
        if not isinstance(request.auth, ApiKey):
            # An operator's session sees the memberships of the groups they may see only.
            sections["communities"] = communities_members.memberships_visible(
                viewer=request.user, memberships=sections["communities"]
            )
        return Response({**data, **sections})
