"""Typed results built by hand, for tests of what the report and readers make of them."""

from __future__ import annotations

from engagekit.config import Config
from engagekit.heterogeneity import PowerResult, PowerSettings, Share

__all__ = ["power_result"]


def power_result(config: Config) -> PowerResult:
    """A result of engagekit power (estimate_power) for ``config``'s treatments."""
    return PowerResult(
        n_patients=500,
        reps=200,
        succeeded=198,
        failed=2,
        failure_examples=["AnalysisError: the GEE did not converge"],
        power_differs=Share(value=0.81, ci_low=0.75, ci_high=0.86),
        power_named=Share(value=0.78, ci_low=0.72, ci_high=0.83),
        false_flag_rate=Share(value=0.04, ci_low=0.02, ci_high=0.08),
        wrong_name_rate=Share(value=0.03, ci_low=0.01, ci_high=0.06),
        power_equivalence=Share(value=0.37, ci_low=0.31, ci_high=0.44),
        power_any_other_equivalent=Share(value=0.6, ci_low=0.53, ci_high=0.67),
        power_equivalence_attribute=Share(value=None, ci_low=None, ci_high=None),
        attribute_verdicts={"differs": 0.81, "equivalent": 0.0, "inconclusive": 0.19},
        equivalence_by_attribute={"empathy": 0.37},
        settings=PowerSettings(
            target="adherent",
            attribute="active_listening",
            treatment="listening_visits",
            deviation=0.3,
            deviation_unit="log-odds per rating point, on the target outcome only",
            treatments=config.treatment_names,
            shares={t.name: t.simulated.share for t in config.treatments},
            planned_sessions={t.name: [6, 6] for t in config.treatments},
            analysis=config.heterogeneity,
            seed=0,
            replicate_seeds="seed + replicate index",
            n_jobs=1,
            versions={"engagekit": "0.1"},
        ),
        seconds=12.5,
    )
