from import_export import resources

from .models import Badge, EarningRule, Level, Reward


class EarningRuleResource(resources.ModelResource):
    class Meta:
        model = EarningRule
        import_id_fields = ["code"]
        fields = ["code", "name", "kind", "points", "points_per_yuan", "streak_days", "daily_cap",
                  "counts_for_growth", "active_from", "active_until", "is_active"]
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True


class RewardResource(resources.ModelResource):
    class Meta:
        model = Reward
        fields = ["id", "name", "description", "points_price", "stock", "valid_from", "valid_until", "is_active"]
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True


class LevelResource(resources.ModelResource):
    class Meta:
        model = Level
        import_id_fields = ["threshold"]
        fields = ["name", "threshold", "benefits"]
        clean_model_instances = True
        use_transactions = True


class BadgeResource(resources.ModelResource):
    class Meta:
        model = Badge
        import_id_fields = ["code"]
        fields = ["code", "name", "description", "kind", "threshold", "is_active"]
        clean_model_instances = True
        use_transactions = True
