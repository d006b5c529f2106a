"""Writes for the programme's catalogue: earning rules, rewards, levels and badges.

The admin's save and delete and the CSV/XLSX import both come here, so each change
leaves one audit row with the fields that moved, ``{field: [from, to]}``; a delete
records the values the row had.
"""

from django.db import models, transaction

from core.services import audit_record, audit_snapshot

from ..models import Badge, EarningRule, Level, Reward


def _stored_snapshot(obj: models.Model) -> dict | None:
    if obj.pk is None:
        return None
    stored = type(obj).objects.filter(pk=obj.pk).first()
    return audit_snapshot(stored) if stored is not None else None


def _save(*, obj: models.Model, actor) -> models.Model:
    """Validates (``full_clean``), saves and audits one catalogue row; an unchanged row writes nothing."""
    obj.full_clean()
    before = _stored_snapshot(obj)
    after = audit_snapshot(obj)
    if before == after:
        return obj
    with transaction.atomic():
        obj.save()
        audit_record(
            actor=actor,
            action=f"{obj._meta.model_name}.{'create' if before is None else 'change'}",
            obj=obj,
            before=before or {},
            after=after,
        )
    return obj


def _delete(*, obj: models.Model, actor) -> None:
    with transaction.atomic():
        # The audit row first: it names the primary key the delete clears.
        audit_record(
            actor=actor, action=f"{obj._meta.model_name}.delete", obj=obj, before=audit_snapshot(obj), after={}
        )
        obj.delete()


def earning_rule_save(*, rule: EarningRule, actor=None) -> EarningRule:
    return _save(obj=rule, actor=actor)


def reward_save(*, reward: Reward, actor=None) -> Reward:
    return _save(obj=reward, actor=actor)


def level_save(*, level: Level, actor=None) -> Level:
    return _save(obj=level, actor=actor)


def badge_save(*, badge: Badge, actor=None) -> Badge:
    return _save(obj=badge, actor=actor)


def catalogue_save(*, obj: models.Model, actor=None) -> models.Model:
    """The save service of the catalogue row's model (for interfaces generic over the four)."""
    return _SAVERS[type(obj)](obj, actor)


def catalogue_delete(*, obj: models.Model, actor=None) -> None:
    """Deletes a rule, reward, level or badge (the database refuses one still referenced)."""
    if type(obj) not in _SAVERS:
        raise TypeError(f"{type(obj).__name__} is not a catalogue model")
    _delete(obj=obj, actor=actor)


_SAVERS = {
    EarningRule: lambda obj, actor: earning_rule_save(rule=obj, actor=actor),
    Reward: lambda obj, actor: reward_save(reward=obj, actor=actor),
    Level: lambda obj, actor: level_save(level=obj, actor=actor),
    Badge: lambda obj, actor: badge_save(badge=obj, actor=actor),
}
