from django.urls import path

from . import api

urlpatterns = [
    path("points/entries", api.PointsEntryApi.as_view(), name="points-entries"),
    path("points/entries/batch", api.PointsEntryBatchApi.as_view(), name="points-entries-batch"),
    path("customers/<str:external_id>/points", api.CustomerPointsApi.as_view(), name="customer-points"),
    path("rewards/", api.RewardListApi.as_view(), name="rewards-list"),
    path("rewards/<int:reward_id>/redeem", api.RewardRedeemApi.as_view(), name="reward-redeem"),
    path("redemptions/<int:redemption_id>/cancel", api.RedemptionCancelApi.as_view(), name="redemption-cancel"),
]
