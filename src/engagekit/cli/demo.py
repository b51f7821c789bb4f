"""``demo``: the main job, end to end, on the embedded default data."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._app import app, err, out
from ._common import (
    ConfigOption,
    Source,
    percent,
    print_validation_report,
    read_config,
    simulate_with_progress,
)

if TYPE_CHECKING:
    from ..config import Config

# --------------------------------------------------------------------------- demo
TARGETS = ("attended_next", "adherent")


def _step(number: int, text: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    out.rule(f"[bold]{number}. {text}[/bold] [dim](at {elapsed:.0f} s)[/dim]", align="left")


#: The deviation the demo plants by default: active listening matters more for
#: adherence in online CBT (the benchmarks' and the issue's acceptance setting).
DEFAULT_PLANT = "active_listening:cbt_online:0.5:adherent"


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "engagekit-demo"
    ),
    patients: Annotated[int, typer.Option(help="Patients to simulate.", min=1)] = 8000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    plant: Annotated[
        str,
        typer.Option(
            help="One deviation planted in the simulated service, as "
            "ATTRIBUTE:TREATMENT:EXTRA[:OUTCOME] (extra log-odds per rating point), for the "
            "cross-treatment analysis to find; 'none' for none. The default is left out "
            "where a config lacks its attribute or treatment.",
        ),
    ] = DEFAULT_PLANT,
    config: ConfigOption = None,
) -> None:
    """Run the main job end to end on the embedded default data (a simulated service).

    The steps are the commands a service would run on its own export: simulate an
    encounter table with known truth (encounters.csv, truth.csv), validate it
    (validation.json) and summarise it (summary.json); train a model of each outcome
    (models/<outcome>/, with metrics.json and a model card; both metrics also in
    metrics.json); the cross-treatment analysis of each outcome
    (heterogeneity_<outcome>.json and a forest plot); score, explain and flag every
    encounter (scores_<outcome>.parquet and the scores.sqlite database), with each
    patient's latest risk as FHIR R4 resources (fhir_<outcome>.ndjson); monitor the
    re-attendance model's score history by month (monitoring_attended_next.json, also
    recorded in the database for the service page); forecast
    missed next sessions per treatment (forecast.csv); and the report (report.html).
    """
    from .._labels import in_sentence, outcome_label
    from ..errors import AnalysisError
    from ..io import read_encounters, write_json, write_table
    from ..io._model_store import read_metrics
    from ..io._write import check_writable
    from ..summary import summarize_encounters
    from ..validation import coerce_encounters, validate_encounters
    from .analysis import heterogeneity
    from .forecast import forecast
    from .models import train
    from .monitor import monitor_and_record
    from .report import report as write_report
    from .score import score

    started = time.perf_counter()
    cfg = read_config(config)
    check_writable(out_dir / "report.html", what=f"the demo folder {str(out_dir)!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    planted = _planted(plant, cfg)
    data = simulate_with_progress(patients, seed, cfg, [planted] if planted else [])
    encounters_file = write_table(data.encounters, out_dir / "encounters.csv")
    write_table(data.truth, out_dir / "truth.csv")
    data_path = str(encounters_file)
    _step(1, "Simulate", started)
    out.print(
        f"{len(data.encounters):,} encounters of {patients:,} patients → "
        f"{str(encounters_file)!r} (the simulator's true probabilities in truth.csv)",
        highlight=False,
    )
    if planted is not None:
        out.print(_planted_words(planted, cfg), highlight=False)

    _step(2, "Validate and summarise", started)
    # read the export back as any service file would be, so the demo checks the file
    raw = read_encounters(encounters_file)
    validation = validate_encounters(raw, cfg)
    write_json(validation.to_dict(), out_dir / "validation.json")
    out.print("Against the encounter contract: ", end="")
    print_validation_report(validation, max_problems=10, config=cfg, columns=raw.columns)
    if not validation.valid:
        raise typer.Exit(1)
    summary = summarize_encounters(coerce_encounters(raw, cfg), cfg)
    write_json(summary.to_dict(), out_dir / "summary.json")
    _print_summary(summary, cfg)

    models = {target: out_dir / "models" / target for target in TARGETS}
    for target, model_dir in models.items():
        _step(
            3, f"Train and validate a model of {in_sentence(outcome_label(cfg, target))}", started
        )
        train(data_path, target, model_dir, seed=seed, config=config)
    write_json(
        {target: read_metrics(model_dir).to_dict() for target, model_dir in models.items()},
        out_dir / "metrics.json",
    )

    analyses = {}
    for target in TARGETS:
        _step(
            4,
            "Does each quality matter differently by treatment? "
            f"({in_sentence(outcome_label(cfg, target))})",
            started,
        )
        result = out_dir / f"heterogeneity_{target}.json"
        try:
            heterogeneity(
                data_path, target, result, plot=out_dir / f"forest_{target}.png", config=config
            )
        except AnalysisError as e:
            # small services can be too small for the analysis; the rest still runs
            result.unlink(missing_ok=True)
            err.print(f"[yellow]not analysed:[/yellow] {e}", highlight=False, soft_wrap=True)
        else:
            analyses[target] = result
            if planted is not None and target in planted.outcomes:
                out.print(_found_words(planted, result, cfg), highlight=False)

    # the demo's database starts afresh, as its models do: a model of another kind has
    # other score columns, which the scores table of the previous demo would refuse
    database = out_dir / "scores.sqlite"
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    for target, model_dir in models.items():
        _step(5, f"Score, explain and flag every encounter ({target})", started)
        score(
            model_dir,
            data_path,
            out_dir / f"scores_{target}.parquet",
            db=f"sqlite:///{database}",
            db_table=f"scores_{target}",
            allow_unfit_model=True,  # a model unfit for use is shown as such in the report
            fhir=out_dir / f"fhir_{target}.ndjson",
        )

    _step(6, "Monitor the re-attendance model's score history", started)
    monitoring = out_dir / "monitoring_attended_next.json"
    monitored, _recorded = monitor_and_record(
        models["attended_next"],
        f"sqlite:///{database}",
        Source(str(data_path)),
        db_table="scores_attended_next",
        seed=seed,
        out_file=monitoring,
    )
    out.print(_monitoring_words(monitored), highlight=False, soft_wrap=True)

    _step(7, "Forecast who will miss their next session", started)
    forecast(
        models["attended_next"],
        data_path,
        out_file=out_dir / "forecast.csv",
        allow_unfit_model=True,
    )

    _step(8, "Report", started)
    report_file = out_dir / "report.html"
    write_report(
        data_path,
        list(models.values()),
        report_file,
        heterogeneity=list(analyses.values()),
        monitoring=monitoring,
        title="engagekit demo: a simulated primary-care service",
        seed=seed,
        config=config,
    )
    _step(9, "Sign-ins for the clinicians' page", started)
    _demo_users(database, data.encounters, "scores_attended_next")

    out.rule()
    out.print(
        f"Done in {time.perf_counter() - started:.0f} s. Open the report: "
        f"[bold]{report_file.resolve().as_uri()}[/bold]",
        highlight=False,
        soft_wrap=True,
    )


def _monitoring_words(result: Any) -> str:
    """What monitoring the score history found, in a sentence or two."""
    alerts = len(result.alerts)
    off = len(result.miscalibrated)
    return (
        f"{len(result.windows)} {result.window.value}s of scores monitored: "
        + (f"{alerts} alert(s), " if alerts else "no alert, ")
        + (
            f"{off} subgroup calibration measure(s) off"
            if off
            else "no subgroup whose calibration is off"
        )
        + (
            f" (of {result.calibration_intervals} checked; about "
            f"{result.calibration_intervals * (1 - result.ci_level):.1f} would be by chance)"
            if result.calibration_intervals
            else ""
        )
        + ". Recorded for the service page of engagekit serve, and in the report."
    )


#: The demo's sign-ins: (user name, role, what they see).
DEMO_USERS = (
    ("clinician", "clinician", "the patients of two practitioners"),
    ("team-lead", "team_lead", "the patients of the team's six practitioners"),
    ("analyst", "analyst", "the service's aggregates, no identifiers"),
    ("admin", "admin", "the users and the audit log"),
)


def _demo_users(database: Path, encounters, table: str) -> None:
    """One user of each role on the demo's database, with random passwords printed
    once (only their hashes are kept), and the command that serves the caseload."""
    import secrets

    from rich.table import Table

    from ..errors import ConfigError
    from ..web import add_user, open_database, require_web_extra, set_team

    try:
        require_web_extra()
    except ConfigError:
        out.print(
            'The clinicians\' page needs the web extra: pip install "engagekit[web]", '
            "then run the demo again.",
            highlight=False,
            markup=False,  # "[web]" is text, not rich markup
        )
        return
    url = f"sqlite:///{database.resolve()}"
    practitioners = sorted(encounters["practitioner_id"].dropna().astype(str).unique())
    team = practitioners[:6]
    engine = open_database(url, create=True)
    shown = Table(title="Sign-ins (the passwords are shown once: only their hashes are kept)")
    for column in ("user", "role", "password", "sees"):
        shown.add_column(column)
    try:
        set_team(engine, "demo-team", team, actor="demo", route="cli:demo")
        for username, role, sees in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            add_user(
                engine,
                username,
                role,
                password,
                practitioners=practitioners[:2] if role == "clinician" else (),
                team="demo-team" if role == "team_lead" else None,
                actor="demo",
                route="cli:demo",
            )
            shown.add_row(username, role, password, sees)
    finally:
        engine.dispose()
    out.print(shown)
    out.print(
        "Open the clinicians' page (the caseload of re-attendance risk) with:\n"
        f"  engagekit serve --db {url} --table {table}\n"
        "then http://127.0.0.1:8000 in a browser, signed in as one of the users above.",
        highlight=False,
        soft_wrap=True,
    )


def _print_summary(summary, cfg: Config) -> None:
    from rich.table import Table

    from .._labels import attribute_label, outcome_label

    treatments = {t.name: t.label for t in cfg.treatments} | {"all": "All treatments"}

    t = Table(header_style="bold")
    for col in (
        "treatment",
        "patients",
        "encounters",
        "sessions/patient\nmean (max)",
        "missed next\n(encounters)",
        "dropped out\n(patients)",
        f"{outcome_label(cfg, 'adherent')}\n(encounters)",
    ):
        t.add_column(col, justify="left" if col == "treatment" else "right")
    for r in summary.by_treatment.itertuples(index=False):
        t.add_row(
            treatments.get(r.treatment, r.treatment),
            f"{r.patients:,}",
            f"{r.encounters:,}",
            f"{r.sessions_mean:.1f} ({r.sessions_max})",
            percent(r.not_attended_next),
            percent(r.dropped_out),
            percent(r.adherent),
        )
    out.print(t)
    m = Table(header_style="bold")
    m.add_column("attribute")
    m.add_column("ratings missing", justify="right")
    for r in summary.missing_ratings.itertuples(index=False):
        m.add_row(attribute_label(cfg, r.attribute), f"{r.missing:,} ({percent(r.share_missing)})")
    out.print(m)


def _planted(spec: str, cfg: Any) -> Any:
    """The planted deviation, or None (``none``, or the default on a config that lacks
    its attribute or treatment)."""
    from ..simulation import parse_heterogeneity

    if spec.strip().lower() == "none":
        return None
    if spec == DEFAULT_PLANT:
        attribute, treatment = spec.split(":")[:2]
        if attribute not in cfg.attribute_names or treatment not in cfg.treatment_names:
            return None
    return parse_heterogeneity(spec, cfg)


def _planted_words(planted: Any, cfg: Any) -> str:
    from .._labels import attribute_label, in_sentence, outcome_label

    labels = {t.name: t.label for t in cfg.treatments}
    outcomes = " and ".join(in_sentence(outcome_label(cfg, o)) for o in planted.outcomes)
    return (
        f"Planted for the analysis to find: the effect of "
        f"{in_sentence(attribute_label(cfg, planted.attribute))} on {outcomes} is "
        f"{planted.extra_log_odds:+g} log-odds per rating point in "
        f"{labels[planted.treatment]} beyond the other treatments."
    )


def _found_words(planted: Any, result_file: Path, cfg: Any) -> str:
    """Whether the analysis found the planted deviation (the attribute ``differs`` and
    the closed tests name the planted treatment first, the furthest out), and what it
    made of the other qualities."""
    from ..io import read_heterogeneity_result

    result = read_heterogeneity_result(result_file)
    attribute = next(a for a in result.attributes if a.attribute == planted.attribute)
    labels = {t.name: t.label for t in cfg.treatments}
    named = [labels[t] for t in attribute.deviating]
    found = attribute.verdict == "differs" and attribute.deviating[:1] == [planted.treatment]
    names = ", ".join(named) or "no treatment"
    rest = ""
    if attribute.rest_equal_p is not None:
        still = "still differ" if attribute.rest_equal_p < result.method.alpha else "do not differ"
        rest = f" (without {named[0]}, the others {still}: p = {attribute.rest_equal_p:.2g})"
    verdicts = Counter(a.verdict for a in result.attributes if a.attribute != planted.attribute)
    others = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    return (
        f"The planted deviation was {'found' if found else 'not found'}: "
        f"{attribute.label} {attribute.verdict}, the closed tests name {names}{rest}. "
        f"The other qualities: {others}."
    )
