"""Classifying an episode the detector could only guess: its alerts were led by metrics the
asset's equipment model does not name (``Alert.classified`` false). The desk names the failure
mode from the model's catalogue and may save it into the model, so the detect worker knows the
metric from then on (:func:`service_crm.services.episodes.episode_classify`)."""

from __future__ import annotations

from typing import Any

from django import forms

from service_crm.models import Episode, FailureMode
from service_crm.services import episodes as episode_services


class ClassifyForm(forms.Form):
    failure_mode = forms.ChoiceField(label="Failure mode")
    remember = forms.BooleanField(
        required=False, initial=True,
        label="Save into the equipment model (the detector names this metric's failure mode "
              "from now on)")

    def __init__(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        modes = FailureMode.objects.filter(
            equipment_model_id=episode.asset.equipment_model_id).order_by("name")
        field = self.fields["failure_mode"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = [(m.code, f"{m.name} ({m.code})") for m in modes]
        if episode.failure_mode_code in {m.code for m in modes}:
            field.initial = episode.failure_mode_code


def classify_context(episode: Episode, alerts: Any, form: ClassifyForm | None = None
                     ) -> dict[str, Any]:
    """What the episode page needs to offer classification: the metrics that led its
    unclassified alerts, and the form (None when nothing is left to classify)."""
    unclassified = [a for a in alerts if not a.classified]
    if not unclassified:
        return {"classify_form": None, "unclassified_metrics": []}
    metrics = sorted({m for a in unclassified if (m := episode_services.lead_metric(a))})
    return {"classify_form": form or ClassifyForm(episode=episode),
            "unclassified_metrics": metrics}
