"""The bots' REST endpoints under /api/v1/communities/."""

urlpatterns = []
