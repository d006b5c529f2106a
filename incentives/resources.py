"""CSV/XLSX import and export of the catalogue. Each imported row is saved through
``incentives.services.catalogue`` (validated, audited from → to under the importing
operator), as an admin save is; the dry-run preview is rolled back by the library."""

from import_export import resources

from .models import Badge, EarningRule, Level, Reward
from .services import catalogue_delete, catalogue_save


class _CatalogueResource(resources.ModelResource):
    def __init__(self, *, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        if self.actor is None:
            self.actor = kwargs.get("user")

    def do_instance_save(self, instance, is_create):
        catalogue_save(obj=instance, actor=self.actor)

    def delete_instance(self, instance, row, **kwargs):
        self.before_delete_instance(instance, row, **kwargs)
        if self._is_using_transactions(kwargs) or not self._is_dry_run(kwargs):
            catalogue_delete(obj=instance, actor=self.actor)
        self.after_delete_instance(instance, row, **kwargs)


class EarningRuleResource(_CatalogueResource):
    class Meta:
        model = EarningRule
        import_id_fields = ["code"]
        fields = [
            "code",
            "name",
            "kind",
            "points",
            "points_per_yuan",
            "streak_days",
            "daily_cap",
            "counts_for_growth",
            "active_from",
            "active_until",
            "is_active",
        ]
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True


class RewardResource(_CatalogueResource):
    class Meta:
        model = Reward
        fields = ["id", "name", "description", "points_price", "stock", "valid_from", "valid_until", "is_active"]
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True


class LevelResource(_CatalogueResource):
    class Meta:
        model = Level
        import_id_fields = ["threshold"]
        fields = ["name", "threshold", "benefits"]
        clean_model_instances = True
        use_transactions = True


class BadgeResource(_CatalogueResource):
    class Meta:
        model = Badge
        import_id_fields = ["code"]
        fields = ["code", "name", "description", "kind", "threshold", "is_active"]
        clean_model_instances = True
        use_transactions = True
