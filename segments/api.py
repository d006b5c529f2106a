"""REST API v1: segments and their members."""

from datetime import datetime

from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ConfigDict, Field
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import CheckedCursorPagination
from core.permissions import ScopePermission
from core.schema import error_responses

from . import selectors


class SegmentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(description="Use it in /segments/{slug}/members and the customer list's segment filter.")
    name: str
    kind: str = Field(description="builtin, or the custom segment's kind.")
    size: int
    computed_at: datetime | None = Field(description="When its members were last computed; null before the first run.")


class SegmentListOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    results: list[SegmentOut]


class SegmentListApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "segments:read"}
    required_perms = {"GET": "segments.view_segment"}

    @extend_schema(
        responses={200: SegmentListOut, **error_responses()}, summary="Built-in and custom segments with their sizes"
    )
    def get(self, request):
        return Response(
            {
                "results": [
                    {**row, "computed_at": row["computed_at"].isoformat() if row["computed_at"] else None}
                    for row in selectors.segment_catalogue()
                ]
            }
        )


class MemberOut(serializers.Serializer):
    external_id = serializers.CharField()
    since = serializers.DateTimeField(source="member_since", allow_null=True)


class MemberCursor(CheckedCursorPagination):
    ordering = "id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


class SegmentMembersApi(ListAPIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "segments:read"}
    required_perms = {"GET": "segments.view_segment"}
    serializer_class = MemberOut
    pagination_class = MemberCursor
    filter_backends = []

    @extend_schema(responses={200: MemberOut(many=True), **error_responses(404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.segment_members(slug=self.kwargs["slug"]).only("id", "external_id")
