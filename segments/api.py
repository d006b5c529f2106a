"""REST API v1: segments and their members."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import ScopePermission

from . import selectors


class SegmentListApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "segments:read"}
    required_perms = {"GET": "segments.view_segment"}

    @extend_schema(responses={200: dict}, summary="Built-in and custom segments with their sizes")
    def get(self, request):
        return Response({"results": [
            {**row, "computed_at": row["computed_at"].isoformat() if row["computed_at"] else None}
            for row in selectors.segment_catalogue()
        ]})


class MemberOut(serializers.Serializer):
    external_id = serializers.CharField()
    since = serializers.DateTimeField(source="member_since", allow_null=True)


class MemberCursor(CursorPagination):
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

    def get_queryset(self):
        return selectors.segment_members(slug=self.kwargs["slug"]).only("id", "external_id")
