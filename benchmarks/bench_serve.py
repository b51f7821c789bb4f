"""``engagekit serve`` under load: 50 signed-in clinicians on a 100,000-encounter database.

A SQLite score database in a temporary folder is built directly with SQLAlchemy, with
the scores table exactly as ``engagekit score --db`` defines it
(``engagekit.io._scores.scores_table``: ``run_id`` + ``encounter_id`` primary key, the
writer's indexes, 86 ``shap_*``, 10 ``grouped_*`` and the six ``rating_*`` columns, 5% of
ratings left out) and one complete run in ``score_runs``: 10,000 patients, 100,000 scored
encounters, 200 practitioners and 50 clinician users of 4 practitioners each (about 200
patients a caseload). The real ``engagekit serve --db URL --port P --table scores`` then
runs as a subprocess on the loopback address, with ``ENGAGEKIT_SECRET_KEY`` set.

Each clinician is its own ``httpx.AsyncClient`` (one process, asyncio), signed in through
the form (GET /login for the CSRF token and cookie, POST /login). After one warm-up
patient page each, every clinician requests its caseload (``/caseload``: the first page,
50 patients), reads it, opens one of its patients (``/patients/{id}``, at random), reads
it, and so on, for ``--seconds`` in total. Reading is a pause drawn uniformly between
``--think-min`` and ``--think-max`` seconds (1 to 5: a person reads a page for longer;
this is the pause of load-testing tools' examples, e.g. Locust's ``between(1, 5)``). Every
request's latency is recorded; any answer but 200 (or a failed request) is an error.
Then the same without pauses, for ``--busy-seconds``: 50 clients each sending its next
request as soon as the last answers, which measures how many pages a second the server
completes (no person works so).

Baseline, measured in the same run: the same clients and the same loop against the same
two pages saved as static files (the exact bytes the server answered), served by Uvicorn
with Starlette's ``StaticFiles`` and engagekit's own Uvicorn settings, in its own process.
The two loads alternate in ``--rounds`` slices so that a noisy moment of the shared
machine shows in both. Afterwards: each page unloaded (one client, one request at a
time), and the page's database work alone, in this process (``ScoresSource``).

Target: caseload and patient pages at p95 under 200 ms, with no errors, for the 50
clinicians who pause between pages. ::

    python benchmarks/bench_serve.py [--patients 10000] [--encounters 100000]
        [--clinicians 50] [--seconds 60] [--think-min 1] [--think-max 5]
        [--busy-seconds 15] [--rounds 3]

Writes ``benchmarks/results/serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from engagekit.db import SCORE_RUNS, upgrade_database
from engagekit.io._scores import scores_table
from engagekit.web import add_user

TARGET_P95_MS = 200.0
PASSWORD = "correct horse battery staple"
SECRET = "a benchmark secret of at least thirty-two characters"
PRACTITIONERS_PER_CLINICIAN = 4
TREATMENTS = ("CBT", "IPT", "Counselling", "Behavioural activation", "Online CBT", "Group CBT")
HIGH, MEDIUM = 0.6, 0.35
CHUNK_ROWS = 50_000  # the score writer's chunk
QUALITIES = (
    "approachability",
    "empathy",
    "support",
    "active_listening",
    "decision_making",
    "self_kindness",
)
GROUPS = (*QUALITIES, "treatment", "session", "missingness", "age_band")
MISSING_RATING = 0.05  # the share of ratings left out
REASONS = "Low rating of empathy: ask how the last session felt|Fewer sessions attended so far"
STATIC_APP = """
import sys
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles
import uvicorn
from engagekit.cli.serve import server_config

app = Starlette()
app.mount("/static", StaticFiles(directory=sys.argv[1]), name="static")
uvicorn.Server(server_config(app, "127.0.0.1", int(sys.argv[2]))).run()
"""


# --------------------------------------------------------------------------- the database
def sessions_per_patient(patients: int, encounters: int, rng: random.Random) -> list[int]:
    """Sessions of each patient, summing to ``encounters`` exactly (from 1 to about twice
    the mean)."""
    base, extra = divmod(encounters, patients)
    sessions = [base + (k < extra) for k in range(patients)]
    for k in range(0, patients - 1, 2):  # move sessions between neighbours, total unchanged
        shift = rng.randint(-(sessions[k] - 1), sessions[k + 1] - 1)
        sessions[k] += shift
        sessions[k + 1] -= shift
    return sessions


def score_columns(shap_columns: int) -> list[str]:
    """The score columns of a run of a model with ``shap_columns`` features, in the
    writer's order (engagekit.io._scores), with each quality's ``rating_*`` column."""
    return [
        "encounter_id",
        "patient_id",
        "treatment",
        "practitioner_id",
        "session_number",
        "encounter_date",
        "p_adherent",
        "risk",
        "flag",
        "reasons",
        "shap_base_value",
        *(f"shap_f{j:02d}" for j in range(shap_columns)),
        *(f"grouped_{g}" for g in GROUPS),
        *(f"rating_{q}" for q in QUALITIES),
    ]


def build_database(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The score database; the clinicians' practitioners and patients."""
    rng = random.Random(args.seed)
    nrng = np.random.default_rng(args.seed)
    n_practitioners = args.clinicians * PRACTITIONERS_PER_CLINICIAN
    sessions = sessions_per_patient(args.patients, args.encounters, rng)
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    start = time.perf_counter()
    clinicians = {}
    for c in range(args.clinicians):
        practitioners = [
            f"PRAC-{c * PRACTITIONERS_PER_CLINICIAN + j:03d}"
            for j in range(PRACTITIONERS_PER_CLINICIAN)
        ]
        add_user(engine, f"clin{c:02d}", "clinician", PASSWORD, practitioners=practitioners)
        clinicians[f"clin{c:02d}"] = {"practitioners": practitioners, "patients": []}
    users_s = time.perf_counter() - start

    start = time.perf_counter()
    table = scores_table("scores", score_columns(args.shap_columns))
    n_float = args.shap_columns + len(GROUPS)
    rows: list[tuple[Any, ...]] = []
    n_high = n_medium = 0
    written = 0
    for k, n in enumerate(sessions):
        patient = f"PAT-{k:05d}"
        practitioner = f"PRAC-{k % n_practitioners:03d}"
        clinicians[f"clin{(k % n_practitioners) // PRACTITIONERS_PER_CLINICIAN:02d}"][
            "patients"
        ].append(patient)
        treatment = TREATMENTS[k % len(TREATMENTS)]
        level = rng.uniform(0.05, 0.7)
        floats = nrng.normal(0.0, 0.2, size=(n, n_float)).round(6).tolist()
        rated = nrng.integers(1, 6, size=(n, len(QUALITIES))).astype(float)
        rated[nrng.random(size=rated.shape) < MISSING_RATING] = np.nan
        ratings = [[None if np.isnan(v) else v for v in session] for session in rated.tolist()]
        for s in range(1, n + 1):
            risk = round(min(0.97, max(0.02, level + rng.uniform(-0.08, 0.08))), 4)
            flag = "high" if risk >= HIGH else "medium" if risk >= MEDIUM else "low"
            if s == n:
                n_high += flag == "high"
                n_medium += flag == "medium"
            day = 1 + (k * 7 + s * 9) % 700
            date = f"{2025 + day // 365}-{1 + (day % 365) // 31:02d}-{1 + day % 28:02d}"
            rows.append(
                (
                    1,
                    f"ENC-{k:05d}-{s:02d}",
                    patient,
                    treatment,
                    practitioner,
                    s,
                    date,
                    1 - risk,
                    risk,
                    flag,
                    REASONS if flag != "low" else "",
                    -0.4,
                    *floats[s - 1],
                    *ratings[s - 1],
                    written // CHUNK_ROWS,
                )
            )
            written += 1
    columns = ", ".join(c.name for c in table.columns)
    insert = f"INSERT INTO scores ({columns}) VALUES ({', '.join('?' * len(table.columns))})"
    with engine.begin() as connection:
        table.create(connection)
        run = {
            "scores_table": "scores",
            "run_key": "bench",
            "status": "complete",
            "started_at": "2026-11-01T00:00:00.000000+00:00",
            "finished_at": "2026-11-01T01:00:00.000000+00:00",
            "model": "model",
            "model_sha256": "0" * 64,
            "target": "adherent",
            "data_sha256": "1" * 64,
            "flag_rule": json.dumps(
                {"rule": "top_percent", "value": 10, "threshold": HIGH, "medium_threshold": MEDIUM}
            ),
            "n_encounters": args.encounters,
            "n_patients": args.patients,
            "n_high": n_high,
            "n_medium": n_medium,
        }
        run_id = connection.execute(SCORE_RUNS.insert().values(**run)).inserted_primary_key[0]
        assert run_id == 1, run_id
        for first in range(0, len(rows), CHUNK_ROWS):
            connection.exec_driver_sql(insert, rows[first : first + CHUNK_ROWS])
    engine.dispose()
    caseloads = [len(c["patients"]) for c in clinicians.values()]
    return {
        "clinicians": clinicians,
        "facts": {
            "patients": args.patients,
            "encounters": len(rows),
            "practitioners": n_practitioners,
            "clinician_users": args.clinicians,
            "columns": len(table.columns),
            "sessions_per_patient": {"min": min(sessions), "max": max(sessions)},
            "caseload_patients": {
                "min": min(caseloads),
                "median": statistics.median(caseloads),
                "max": max(caseloads),
            },
            "current_flags": {"high": n_high, "medium": n_medium},
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "add_users_s": round(users_s, 2),
            "write_scores_s": round(time.perf_counter() - start, 2),
        },
    }


# --------------------------------------------------------------------------- the servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not answer within 60 s:\n{log.read_text()}")


def start(cmd: list[str], url: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_until_up(url, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- the load
class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, dict[str, int]] = {}
        self.seconds: dict[str, float] = {}

    def add(self, kind: str, seconds: float, status: int | str) -> None:
        if status == 200:
            self.latencies.setdefault(kind, []).append(seconds)
        else:
            bucket = self.errors.setdefault(kind, {})
            bucket[str(status)] = bucket.get(str(status), 0) + 1

    def report(self, kind: str, phase: str) -> dict[str, Any]:
        times = [t * 1000 for t in self.latencies.get(kind, [])]
        errors = sum(self.errors.get(kind, {}).values())
        out: dict[str, Any] = {"requests": len(times) + errors, "ok": len(times)}
        if len(times) >= 2:
            q = statistics.quantiles(times, n=100, method="inclusive")
            out.update(
                p50_ms=round(q[49], 1),
                p95_ms=round(q[94], 1),
                p99_ms=round(q[98], 1),
                mean_ms=round(statistics.fmean(times), 1),
                max_ms=round(max(times), 1),
            )
        out["requests_per_s"] = round(out["requests"] / self.seconds[phase], 1)
        out["errors"] = errors
        out["errors_by_status"] = self.errors.get(kind, {})
        return out


async def request(client: httpx.AsyncClient, url: str) -> tuple[float, int | str, bytes]:
    begin = time.perf_counter()
    try:
        response = await client.get(url)
        body = response.content
        status: int | str = response.status_code
    except httpx.HTTPError as e:
        body, status = b"", type(e).__name__
    return time.perf_counter() - begin, status, body


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = await client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    if answer.status_code != 303:
        raise SystemExit(f"{username} could not sign in: {answer.status_code}")


async def clinician_loop(
    client: httpx.AsyncClient,
    pages: tuple[str, list[str]],
    prefix: str,
    deadline: float,
    recorder: Recorder,
    rng: random.Random,
    think: tuple[float, float],
) -> None:
    """One clinician: the caseload, a pause, one of their patients, a pause, and again
    until ``deadline`` (the pause: uniform between ``think``'s two seconds; none for
    (0, 0)). The first request waits a pause too, so that clinicians do not all start at
    once."""
    caseload, patients = pages

    async def pause() -> None:
        if think[1] > 0:
            await asyncio.sleep(min(rng.uniform(*think), max(deadline - time.perf_counter(), 0)))

    await pause()
    while time.perf_counter() < deadline:
        seconds, status, _ = await request(client, caseload)
        recorder.add(f"{prefix}caseload", seconds, status)
        await pause()
        if time.perf_counter() >= deadline:
            break
        seconds, status, _ = await request(client, rng.choice(patients))
        recorder.add(f"{prefix}patient", seconds, status)
        await pause()


async def run_load(
    app_url: str,
    static_url: str,
    clinicians: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    timeout = httpx.Timeout(args.timeout)
    app_clients = {
        name: httpx.AsyncClient(base_url=app_url, timeout=timeout, follow_redirects=False)
        for name in clinicians
    }
    static_clients = [httpx.AsyncClient(base_url=static_url, timeout=timeout) for _ in clinicians]
    try:
        begin = time.perf_counter()
        for name, client in app_clients.items():  # argon2: one at a time, as people do
            await sign_in(client, name)
        sign_in_s = time.perf_counter() - begin
        app_pages = {
            name: ("/caseload", [f"/patients/{p}" for p in c["patients"]])
            for name, c in clinicians.items()
        }
        # warm-up (not recorded): one page of each clinician; keep the bytes for the
        # static baseline
        first = next(iter(app_clients))
        _, status, caseload_html = await request(app_clients[first], "/caseload")
        _, status2, patient_html = await request(app_clients[first], app_pages[first][1][0])
        if status != 200 or status2 != 200:
            raise SystemExit(f"warm-up failed: caseload {status}, patient {status2}")
        await asyncio.gather(
            *(
                request(client, rng.choice(app_pages[name][1]))
                for name, client in app_clients.items()
            )
        )
        static_pages = ("/static/caseload.html", ["/static/patient.html"])
        recorder = Recorder()
        # clinicians who read between pages (the target), then the same without pauses
        for label, seconds, think in (
            ("", args.seconds, (args.think_min, args.think_max)),
            ("busy_", args.busy_seconds, (0.0, 0.0)),
        ):
            slice_s = seconds / args.rounds
            for _ in range(args.rounds):
                for phase, clients, pages in (
                    ("app", list(app_clients.values()), list(app_pages.values())),
                    ("static", static_clients, [static_pages] * len(static_clients)),
                ):
                    prefix = label + ("" if phase == "app" else "static_")
                    begin = time.perf_counter()
                    deadline = begin + slice_s
                    await asyncio.gather(
                        *(
                            clinician_loop(client, page, prefix, deadline, recorder, rng, think)
                            for client, page in zip(clients, pages, strict=True)
                        )
                    )
                    # the phase lasts until its last request answers
                    elapsed = time.perf_counter() - begin
                    key = label + phase
                    recorder.seconds[key] = recorder.seconds.get(key, 0.0) + elapsed
        # unloaded: one client, one request at a time
        unloaded = Recorder()
        client = app_clients[first]
        begin = time.perf_counter()
        for j in range(args.unloaded):
            seconds, status, _ = await request(client, "/caseload")
            unloaded.add("caseload", seconds, status)
            seconds, status, _ = await request(client, app_pages[first][1][j % 7])
            unloaded.add("patient", seconds, status)
        unloaded.seconds["app"] = time.perf_counter() - begin
        return {
            "sign_in_s": round(sign_in_s, 2),
            "recorder": recorder,
            "unloaded": unloaded,
            "caseload_html": caseload_html,
            "patient_html": patient_html,
        }
    finally:
        for c in [*app_clients.values(), *static_clients]:
            await c.aclose()


def database_alone(url: str, clinicians: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The pages' database work in this process, no HTTP: ``ScoresSource.caseload`` and
    ``ScoresSource.view_patient`` (which writes its audit row) for the first clinician."""
    from engagekit.web._data import ScoresSource
    from engagekit.web._scope import Scope

    name, clinician = next(iter(clinicians.items()))
    engine = sa.create_engine(url)
    source = ScoresSource(engine, "scores")
    scope = Scope(
        username=name,
        role="clinician",
        team=None,
        practitioners=frozenset(clinician["practitioners"]),
    )
    source.caseload(scope)  # reflect the table, cache the run
    caseload, patient = [], []
    for j in range(repeats):
        begin = time.perf_counter()
        rows = source.caseload(scope).rows
        caseload.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        found = source.view_patient(scope, clinician["patients"][j % 7], "/patients/{patient_id}")
        patient.append(time.perf_counter() - begin)
        assert found is not None and rows
    engine.dispose()
    return {
        "caseload_rows": len(rows),
        "caseload_median_ms": round(statistics.median(caseload) * 1000, 1),
        "patient_median_ms": round(statistics.median(patient) * 1000, 1),
        "repeats": repeats,
    }


def source_state() -> dict[str, Any]:
    """The commit measured, and which files under src/ differed from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *words], capture_output=True, text=True
        ).stdout

    status = git("status", "--porcelain", "--", "src").splitlines()
    changed = [line[3:] for line in status if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "src_changed_from_commit": changed}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--encounters", type=int, default=100_000)
    parser.add_argument("--clinicians", type=int, default=50, help="users, and clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="of load on the app")
    parser.add_argument("--think-min", type=float, default=1.0, help="seconds between pages")
    parser.add_argument("--think-max", type=float, default=5.0, help="seconds between pages")
    parser.add_argument(
        "--busy-seconds", type=float, default=15.0, help="of load without pauses on the app"
    )
    parser.add_argument("--rounds", type=int, default=3, help="app/static alternations")
    parser.add_argument("--shap-columns", type=int, default=86, help="the model's features")
    parser.add_argument("--unloaded", type=int, default=20, help="requests of each page")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if args.encounters < args.patients:
        raise SystemExit("--encounters must be at least --patients")
    if not 0 <= args.think_min <= args.think_max:
        raise SystemExit("--think-min must be at least 0 and at most --think-max")
    load_before, source = uptime(), source_state()
    engagekit = str(Path(sys.executable).parent / "engagekit")
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as folder:
        tmp = Path(folder)
        begin = time.perf_counter()
        built = build_database(tmp / "scores.db", args)
        build_s = time.perf_counter() - begin
        print(
            f"database: {built['facts']['encounters']:,} encounters of "
            f"{args.patients:,} patients, {built['facts']['file_mb']} MB, {build_s:.1f} s"
        )
        url = f"sqlite:///{tmp / 'scores.db'}"
        app_port, static_port = free_port(), free_port()
        (tmp / "static").mkdir()
        env = {**os.environ, "ENGAGEKIT_SECRET_KEY": SECRET}
        serve_cmd = [engagekit, "serve", "--db", url, "--port", str(app_port)]
        serve_cmd += ["--table", "scores"]
        app_url, static_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{static_port}"
        server = start(serve_cmd, f"{app_url}/login", tmp / "serve.log", env)
        static_server = None
        try:
            # the static server's pages: the app's own, saved once it answers (see
            # load_with_static_pages)
            static_cmd = [sys.executable, "-c", STATIC_APP, str(tmp / "static"), str(static_port)]
            (tmp / "static" / "up.txt").write_text("up")
            static_server = start(static_cmd, f"{static_url}/static/up.txt", tmp / "st.log", env)
            measured = asyncio.run(load_with_static_pages(app_url, static_url, tmp, built, args))
        finally:
            stop(server)
            if static_server is not None:
                stop(static_server)
        log_lines = (tmp / "serve.log").read_text().splitlines()
        server_errors = [line for line in log_lines if " ERROR " in line][:5]
        alone = database_alone(url, built["clinicians"], args.unloaded)
    load_after = uptime()

    recorder: Recorder = measured["recorder"]
    unloaded: Recorder = measured["unloaded"]

    def figures(label: str) -> dict[str, Any]:
        return {
            "caseload": recorder.report(f"{label}caseload", f"{label}app"),
            "patient": recorder.report(f"{label}patient", f"{label}app"),
            "static caseload-sized file (baseline)": recorder.report(
                f"{label}static_caseload", f"{label}static"
            ),
            "static patient-sized file (baseline)": recorder.report(
                f"{label}static_patient", f"{label}static"
            ),
        }

    pages, busy = figures(""), figures("busy_")
    errors = pages["caseload"]["errors"] + pages["patient"]["errors"]
    met = (
        errors == 0
        and pages["caseload"].get("p95_ms", float("inf")) < TARGET_P95_MS
        and pages["patient"].get("p95_ms", float("inf")) < TARGET_P95_MS
    )
    think = f"{args.think_min:g}-{args.think_max:g} s"
    path = write_result(
        "serve",
        {
            "settings": vars(args),
            "versions": {
                name: version(name)
                for name in ("fastapi", "starlette", "uvicorn", "httpx", "sqlalchemy")
            },
            "source": source,
            "uptime_before": load_before,
            "uptime_after": load_after,
            "command": "engagekit serve --db sqlite:///TMP/scores.db --port P --table scores",
            "database": {**built["facts"], "build_s": round(build_s, 1)},
            "page_bytes": {
                "caseload": len(measured["caseload_html"]),
                "patient": len(measured["patient_html"]),
            },
            "sign_in_all_s": measured["sign_in_s"],
            "target": (
                f"caseload and patient p95 < {TARGET_P95_MS:.0f} ms, no errors, with "
                f"{args.clinicians} clinicians pausing {think} between pages"
            ),
            "meets_target": met,
            "under_load": pages,
            "without_pauses": busy,
            "load_seconds": {k: round(v, 1) for k, v in recorder.seconds.items()},
            "unloaded": {  # one request at a time: no requests/s
                kind: {
                    k: v for k, v in unloaded.report(kind, "app").items() if k != "requests_per_s"
                }
                for kind in ("caseload", "patient")
            },
            "database_alone": alone,
            "server_log_errors": server_errors,
        },
    )
    c, p = pages["caseload"], pages["patient"]
    s = pages["static caseload-sized file (baseline)"]
    bc, bp = busy["caseload"], busy["patient"]
    bs = busy["static caseload-sized file (baseline)"]
    print(
        f"{args.clinicians} clinicians pausing {think}: caseload p50/p95/p99 {c.get('p50_ms')}/"
        f"{c.get('p95_ms')}/{c.get('p99_ms')} ms, patient {p.get('p50_ms')}/{p.get('p95_ms')}/"
        f"{p.get('p99_ms')} ms ({c['requests_per_s'] + p['requests_per_s']:.1f}/s), {errors} "
        f"errors; static baseline p95 {s.get('p95_ms')} ms; target p95 < "
        f"{TARGET_P95_MS:.0f} ms {'met' if met else 'NOT met'}. Without pauses: caseload p95 "
        f"{bc.get('p95_ms')} ms, patient {bp.get('p95_ms')} ms "
        f"({bc['requests_per_s'] + bp['requests_per_s']:.1f}/s), static p95 {bs.get('p95_ms')} "
        f"ms → {path}"
    )


async def load_with_static_pages(
    app_url: str, static_url: str, tmp: Path, built: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Save the real pages as the static files, then run the load."""
    async with httpx.AsyncClient(base_url=app_url, timeout=args.timeout) as client:
        name = next(iter(built["clinicians"]))
        await sign_in(client, name)
        caseload = (await client.get("/caseload")).content
        first_patient = built["clinicians"][name]["patients"][0]
        patient = (await client.get(f"/patients/{first_patient}")).content
    (tmp / "static" / "caseload.html").write_bytes(caseload)
    (tmp / "static" / "patient.html").write_bytes(patient)
    return await run_load(app_url, static_url, built["clinicians"], args)


if __name__ == "__main__":
    main()
