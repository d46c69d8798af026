"""The sales pipeline: chances to sell new equipment, upgrades, retrofits and contracts."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from service_crm.models.account import Account
from service_crm.models.asset import Asset
from service_crm.models.choices import OpportunityKind, OpportunitySource, OpportunityStage

OPEN_STAGES = (OpportunityStage.QUALIFY, OpportunityStage.PROPOSE, OpportunityStage.NEGOTIATE)
# How likely a sale in each stage is to close, unless the owner says otherwise.
STAGE_PROBABILITY_PCT = {OpportunityStage.QUALIFY: 10, OpportunityStage.PROPOSE: 30,
                         OpportunityStage.NEGOTIATE: 60, OpportunityStage.WON: 100,
                         OpportunityStage.LOST: 0}


class Opportunity(models.Model):
    """A sale the office is working on with an account: new equipment, an upgrade or retrofit of
    an installed machine, or a service contract. It moves through stages (qualify, propose,
    negotiate) to won or lost; its value times its probability is what the forecast counts. It
    is won when the customer accepts its quote (an offer, approved like every other)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="opportunities")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="opportunities")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=OpportunityKind.choices)
    stage = models.CharField(max_length=20, choices=OpportunityStage.choices,
                             default=OpportunityStage.QUALIFY)
    value = models.DecimalField(max_digits=14, decimal_places=2,
                                validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, validators=[RegexValidator(
        r"^[A-Z]{3}$", "An ISO 4217 code, three capital letters (EUR).")])
    probability_pct = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(100)], help_text="chance of winning, 0..100")
    probability_manual = models.BooleanField(
        default=False, help_text="set by hand rather than the stage's default")
    expected_close = models.DateField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="opportunities")
    source = models.CharField(max_length=20, choices=OpportunitySource.choices,
                              default=OpportunitySource.DESK)
    source_note = models.CharField(max_length=300, blank=True,
                                   help_text="why it was started (the at-risk reasons, the age)")
    lost_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expected_close", "pk"]
        verbose_name_plural = "opportunities"
        indexes = [models.Index(fields=["stage", "expected_close"], name="opportunity_stage_close")]
        constraints = [
            models.CheckConstraint(condition=models.Q(probability_pct__lte=100),
                                   name="opportunity_probability_pct"),
            models.CheckConstraint(condition=models.Q(value__gte=0),
                                   name="opportunity_value_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.title}"

    @property
    def number(self) -> str:
        return f"OP-{self.pk or 0:06d}"

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    @property
    def weighted_value(self) -> Decimal:
        return (self.value * self.probability_pct / 100).quantize(Decimal("0.01"))
