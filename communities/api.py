"""REST API v1 for the group bots: messages, check-ins and activity sign-ups in batches
(scope ``communities:write``). The envelope, limits and answer are the batch
endpoints' everywhere (``core.batch``): at most 1,000 items, ``atomic`` → 422 and
nothing written, a malformed envelope → 400, a replay changes nothing.

An API key writes to any group (404 ``unknown_group`` for one that does not exist);
an operator's session (``communities.add_groupmessage``) only to a group they manage
(``communities.access``: 404 for a group they may not see, 403 without the right)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import validate_batch
from core.models import ApiKey
from core.permissions import ScopePermission
from core.schema import error_responses
from core.validation import validate_body

from .ingest_rows import (
    ActivityIn,
    ActivityOut,
    CheckInBatchIn,
    CheckInRow,
    IngestBatchOut,
    MessageBatchIn,
    MessageRow,
    SignupBatchIn,
    SignupRow,
)
from .selectors.ingest import ingest_activity_get, ingest_group_get
from .services import ingest as services

_GROUP = OpenApiParameter("group_id", int, OpenApiParameter.PATH, description="The community group's id.")


class _IngestApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "communities:write"}
    required_perms = {"POST": "communities.add_groupmessage"}

    def _group(self, request, group_id):
        viewer = None if isinstance(request.auth, ApiKey) else request.user
        return ingest_group_get(group_id=group_id, viewer=viewer)


class MessageBatchApi(_IngestApi):
    @extend_schema(
        parameters=[_GROUP],
        request=MessageBatchIn,
        responses={200: IngestBatchOut, **error_responses(400, 404, 422)},
        summary="Messages from a group bot (idempotent by external_id per group); queues the keyword scan",
    )
    def post(self, request, group_id: int):
        group = self._group(request, group_id)
        batch = validate_batch(request.data, MessageRow)
        return Response(services.messages_ingest_batch(group=group, batch=batch, actor=request.user).as_dict())


class CheckInBatchApi(_IngestApi):
    @extend_schema(
        parameters=[_GROUP],
        request=CheckInBatchIn,
        responses={200: IngestBatchOut, **error_responses(400, 404, 422)},
        summary="Check-ins from a group bot (once per member and local day); they earn check-in points",
    )
    def post(self, request, group_id: int):
        group = self._group(request, group_id)
        batch = validate_batch(request.data, CheckInRow, unique_field="external_id")
        return Response(services.checkins_ingest_batch(group=group, batch=batch, actor=request.user).as_dict())


class SignupBatchApi(_IngestApi):
    @extend_schema(
        parameters=[
            _GROUP,
            OpenApiParameter("code", str, OpenApiParameter.PATH, description="The activity's code in the group."),
        ],
        request=SignupBatchIn,
        responses={200: IngestBatchOut, **error_responses(400, 404, 422)},
        summary="Activity sign-ups from a group bot (once per member); they earn activity points",
    )
    def post(self, request, group_id: int, code: str):
        activity = ingest_activity_get(group=self._group(request, group_id), code=code)
        batch = validate_batch(request.data, SignupRow, unique_field=None)
        return Response(services.signups_ingest_batch(activity=activity, batch=batch, actor=request.user).as_dict())


class ActivityApi(_IngestApi):
    required_scopes = {"PUT": "communities:write"}
    required_perms = {"PUT": "communities.add_activity"}

    @extend_schema(
        parameters=[
            _GROUP,
            OpenApiParameter("code", str, OpenApiParameter.PATH, description="The activity's code in the group."),
        ],
        request=ActivityIn,
        responses={200: ActivityOut, 201: ActivityOut, **error_responses(400, 404)},
        summary="Create or update one of the group's activities (by code), before its sign-ups",
    )
    def put(self, request, group_id: int, code: str):
        group = self._group(request, group_id)
        body = validate_body(ActivityIn, request.data)
        activity, created = services.activity_upsert(
            group=group,
            code=code,
            title=body.title,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            actor=request.user,
        )
        out = {
            "code": activity.code,
            "title": activity.title,
            "starts_at": activity.starts_at.isoformat(),
            "ends_at": activity.ends_at.isoformat() if activity.ends_at else None,
            "created": created,
        }
        return Response(out, status=201 if created else 200)
