"""Run one job exactly once, whatever the broker delivers: claim, plan, apply, audit, finish.

1. **Claim** the job (`lease.claim`); a final job or one a live worker holds is skipped.
2. **Plan**: load the model (warm LRU, checksums verified), fix the job's base version
   (the head when the run first starts), move the weights there, compute the method's
   resources on the base weights, score the probes before the edit (kept in the job row).
3. **Run** the steps (batches of `batch_size` requests). The ledger is read first: steps
   the run already committed are re-applied from their delta files, never recomputed, and
   the method's cross-batch state is rebuilt. Each new step's deltas are written, then
   recorded as versions with the head moved, in one transaction.
4. **Audit**: score the probes again and check the thresholds; a miss reverts the job's
   deltas, discards its versions and ends `rolled_back` with the failing figures. A job
   submitted without probes gets them from the model's graph (`workers.jobs.probes`); one
   with nothing to check it by (no probes, or no threshold measured anything) keeps its
   deltas but ends `unverified`, never `succeeded`.

Cancellation and lost leases are checked at every progress report and, through
`editor.cancel`, inside every optimisation, statistics and training loop; a transient error puts
the job back to `queued` with a backoff; any other error ends it `failed`, its deltas
rolled back. An error in the middle of a step leaves the warm weights unknown, so the warm
entry is dropped and the next job reloads from disk.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
from sqlalchemy.exc import OperationalError

from contracts.types import Probe
from editor.cancel import cancellable
from editor.sequence import call_method
from kg.store import open_store
from workers.db import Database, JobRow, get_database, retry_stale, utcnow
from workers.errors import JobCancelledError, TransientJobError, WorkersError
from workers.jobs import gate
from workers.jobs.codec import from_plain, to_plain
from workers.jobs.dispatch import resolve
from workers.jobs.lease import Claim, Heartbeat, claim, worker_identity
from workers.jobs.probes import derive_job_probes
from workers.jobs.reporter import LeaseLostError, Reporter
from workers.jobs.resources import prepare_job
from workers.jobs.spec import JobSpec, parse_spec
from workers.jobs.states import TERMINAL, JobState, transition
from workers.jobs.warm import WarmModel, WarmModels, default_max_bytes
from workers.ledger.registry import model_row
from workers.ledger.store import (
    commit_step,
    delta_relpath,
    discard_job_versions,
    job_versions,
    write_delta,
)
from workers.ledger.versions import version_hashes
from workers.settings import Settings

log = logging.getLogger(__name__)
S = JobState


@dataclass
class RunContext:
    """What a worker process brings to every job: settings, warm models, its identity."""

    settings: Settings
    warm: WarmModels
    worker_id: str = field(default_factory=worker_identity)
    after_step: Callable[[str, int], None] | None = None  # called after each committed step

    @classmethod
    def create(cls, settings: Settings, **kwargs: Any) -> RunContext:
        """Return a context with a warm LRU bounded as the settings say."""
        return cls(settings, WarmModels(default_max_bytes(settings)), **kwargs)


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended: a final state, `retry` (after `countdown` s) or `skipped`."""

    status: str
    detail: str = ""
    countdown: float = 0.0


def backoff_seconds(retry: int, cap: float, base: float = 1.0) -> float:
    """Return the delay before automatic retry number `retry` (1, 2, ...): exponential, capped."""
    delay = min(cap, base * 2 ** max(0, retry - 1))
    return delay + random.uniform(0, 0.25 * delay)


def execute_job(job_id: str, ctx: RunContext) -> Outcome:
    """Run one delivery of a job; safe to call any number of times for the same job."""
    db = get_database(ctx.settings.metadata_db_url)
    reason, taken = claim(db, job_id, ctx.worker_id, ctx.settings.job_lease_seconds)
    if taken is None:
        log.info("job %s not run here: %s", job_id, reason)
        return Outcome("skipped", reason)
    interval = max(0.5, ctx.settings.job_lease_seconds / 4)
    with Heartbeat(db, job_id, ctx.worker_id, interval):
        return _Run(db, taken, ctx).execute()


class _Run:
    """One claimed delivery of a job."""

    def __init__(self, db: Database, taken: Claim, ctx: RunContext) -> None:
        self.db, self.claim, self.ctx = db, taken, ctx
        self.job_id = taken.job_id
        self.settings = ctx.settings
        self.ledger = ctx.settings.ledger_path
        self.reporter = Reporter(db, taken.job_id, ctx.worker_id)
        self.state = taken.state
        self.entry: WarmModel | None = None
        self.model_name = ""
        self.base_id: int | None = None
        self.mid_step = False

    # -- outcome handling ----------------------------------------------------------------

    def execute(self) -> Outcome:
        """Run the job and turn every way it can end into an `Outcome`."""
        try:
            with cancellable(self.reporter.poll):
                return self._execute()
        except LeaseLostError as exc:
            self._forget_weights()
            return Outcome("skipped", str(exc))
        except JobCancelledError:
            return self._end(S.CANCELLED, "cancelled")
        except (TransientJobError, OperationalError, torch.OutOfMemoryError) as exc:
            return self._transient(exc)
        except Exception as exc:
            log.exception("job %s failed", self.job_id)
            text = f"{type(exc).__name__}: {exc}"
            tail = "".join(traceback.format_exception(exc)[-3:])
            return self._end(S.FAILED, text, error=f"{text}\n{tail}")

    def _forget_weights(self) -> None:
        """Drop the warm model when its weights may hold uncommitted changes."""
        if self.model_name:
            self.ctx.warm.drop(self.model_name)

    def _restore_base(self) -> None:
        """Move the warm weights back to the job's base (or drop them if that is unsafe)."""
        if self.entry is None:
            return
        if self.mid_step or self.base_id is None:
            self._forget_weights()
            return
        try:
            self.entry.checkout(self.db, self.base_id, self.ledger)
        except Exception:
            log.exception("could not restore the warm weights of %s; dropping them", self.job_id)
            self._forget_weights()

    def _end(self, state: JobState, message: str, error: str | None = None) -> Outcome:
        """Roll back the run's versions and finish as cancelled or failed."""
        self._restore_base()

        def finish() -> int:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                if row.state in TERMINAL:  # e.g. cancelled while queued, meanwhile
                    return 0
                discarded = discard_job_versions(session, row)
                note = f"; {len(discarded)} delta(s) rolled back" if discarded else ""
                row.error = error
                row.result = {**(row.result or {}), "rolled_back_versions": discarded}
                transition(session, row, state, message + note, self.ctx.worker_id)
                return len(discarded)

        retry_stale(finish)
        return Outcome(state.value, message)

    def _transient(self, exc: BaseException) -> Outcome:
        """Queue the job again after a backoff, or fail it when the retries are used up."""
        self._forget_weights()
        limit = self.settings.job_max_retries

        def requeue() -> float | None:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                if row.retries >= limit:
                    return None
                row.retries += 1
                delay = backoff_seconds(row.retries, self.settings.job_retry_backoff_max)
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                message = f"transient error, retry {row.retries}/{limit} in {delay:.1f}s: {exc}"
                transition(session, row, S.QUEUED, message, self.ctx.worker_id)
                row.worker_id = None
                return delay

        delay = retry_stale(requeue)
        if delay is None:
            text = f"gave up after {limit} retries: {type(exc).__name__}: {exc}"
            return self._end(S.FAILED, text, error=text)
        return Outcome("retry", str(exc), countdown=delay)

    # -- the job -------------------------------------------------------------------------

    def _move(self, state: JobState, message: str) -> None:
        """Transition the job (checking it is still ours and not cancelled)."""

        def move() -> None:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                self.reporter._check(row)
                transition(session, row, state, message, self.ctx.worker_id)

        retry_stale(move)
        self.state = state.value

    def _load(self) -> tuple[JobSpec, dict[str, Any]]:
        """Read the job's spec and stored result."""
        with self.db.session() as session:
            row = session.get(JobRow, self.job_id)
            payload, result = row.payload, dict(row.result or {})
            self.model_name, self.base_id = row.model_name, row.base_version_id
        return parse_spec(payload), result

    def _fix_base(self) -> int:
        """Return the job's base version, fixing it to the model's head on the run's start."""
        if self.base_id is not None:
            return self.base_id

        def fix() -> int:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                if row.base_version_id is None:
                    row.base_version_id = model_row(session, row.model_name).head_version_id
                return row.base_version_id

        self.base_id = retry_stale(fix)
        return self.base_id

    def _save_result(self, **values: Any) -> None:
        """Merge values into the job's result."""

        def save() -> None:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                row.result = {**(row.result or {}), **values}

        retry_stale(save)

    def _execute(self) -> Outcome:
        """Plan, run the remaining steps, audit, finish."""
        spec, result = self._load()
        method = resolve(spec.kind, spec.method)
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        who = self.ctx.worker_id
        if self.state == S.QUEUED:
            self._move(S.PLANNING, f"planning on {who}")
        elif self.claim.resumed:
            lost = self.claim.previous_owner or "an earlier delivery"
            self._move(
                JobState(self.state),
                f"resumed on {who} after {lost} stopped (attempt {self.claim.attempts})",
            )
        report = self.reporter
        report.stage(0.0, 0.1)
        report(0.0, "loading model", force=True)
        entry = self.entry = self.ctx.warm.get(self.db, self.model_name, self.settings.device)
        base = self._fix_base()
        entry.checkout(self.db, base, self.ledger)
        report(0.2, "statistics", force=True)
        prepared = prepare_job(
            spec, method, entry, self.db, self.settings, lambda f, m: report(0.2 + 0.6 * f, m)
        )
        hparams, resources = prepared.hparams, prepared.resources
        spec = self._with_probes(spec, result)
        before = None
        if spec.probes:
            stored = result.get("gate_before")
            if stored is not None and len(stored) == len(spec.probes):
                before = gate.scores_from_json(stored)
            else:
                report(0.8, "scoring probes before the edit", force=True)
                before = gate.score(entry.model, entry.tokenizer, spec.probes)
                self._save_result(gate_before=gate.scores_to_json(before))
        if self.state == S.PLANNING:
            self._move(S.RUNNING, "applying deltas")
        parent = self._run_steps(spec, method, hparams, resources)
        return self._audit(spec, before, parent)

    def _with_probes(self, spec: JobSpec, result: dict[str, Any]) -> JobSpec:
        """Return the spec with probes derived from the model's graph when it has none.

        The derived probes are kept in the job's result, so a resumed run checks the same.
        """
        if spec.probes:
            return spec
        stored = result.get("derived_probes")
        if stored is None:
            assert self.entry is not None
            store = open_store(self.entry.graph_url or self.settings.graph_store_url)
            try:
                probes = derive_job_probes(store, spec.kind, spec.requests)
            finally:
                store.close()
            stored = to_plain(probes)
            unplaced = sorted({p.meta["change"] for p in probes if p.meta.get("placed") == "no"})
            note = {"locality_unchecked": unplaced} if unplaced else {}
            self._save_result(derived_probes=stored, **note)
        probes = tuple(from_plain(Probe, p, "derived_probes") for p in stored)
        return dataclasses.replace(spec, probes=probes)

    def _committed_steps(self) -> list[list[Any]]:
        """Return this run's committed versions grouped by step, refusing gaps."""
        with self.db.session() as session:
            rows = job_versions(session, session.get(JobRow, self.job_id))
        steps: dict[int, list[Any]] = {}
        for row in rows:
            steps.setdefault(row.step, []).append(row)
        if sorted(steps) != list(range(len(steps))):
            raise WorkersError(f"job {self.job_id}: committed steps {sorted(steps)} have gaps")
        return [steps[i] for i in range(len(steps))]

    def _replay(
        self, spec: JobSpec, method: Any, hparams: Any, resources: dict, done: list[list[Any]]
    ) -> dict[str, Any]:
        """Re-apply the committed steps from the ledger; rebuild the method's state."""
        entry, state = self.entry, {}
        assert entry is not None
        rebuild = method.rebuild
        if method.stateful and rebuild is None and done:
            raise WorkersError(
                f"method {spec.method} keeps state across batches and cannot resume mid-job; "
                "retry the job to run it again from its base version"
            )
        if rebuild is None:
            if done:
                entry.checkout(self.db, done[-1][-1].id, self.ledger)
            return state
        for step, rows in enumerate(done):
            entry.checkout(self.db, rows[-1].id, self.ledger)
            ids = {r.id for r in rows}
            deltas = [d for vid, d in entry.chain if vid in ids]
            requests = spec.step_requests(step)
            rebuild(entry.model, entry.tokenizer, requests, deltas, hparams, resources, state)
        return state

    def _run_steps(self, spec: JobSpec, method: Any, hparams: Any, resources: dict) -> int:
        """Apply the steps not yet in the ledger; return the version the job ends at."""
        entry, report = self.entry, self.reporter
        assert entry is not None
        done = self._committed_steps()
        report.stage(0.1, 0.9)
        if done:
            report(len(done) / spec.steps, f"replaying {len(done)} committed step(s)", force=True)
        state = self._replay(spec, method, hparams, resources, done)
        with self.db.session() as session:
            hashes = version_hashes(session, self.model_name, entry.version_id)
        parent = entry.version_id
        # a teaching method counts its training updates, a locate-and-edit method its requests
        doing, unit = ("training", "update") if method.teaches else ("optimising", "request")
        for step in range(len(done), spec.steps):
            report.check()
            requests = spec.step_requests(step)

            def on_request(n: int, total: int, step: int = step) -> None:
                report(
                    (step + n / max(1, total)) / spec.steps,
                    f"{doing}: step {step + 1}/{spec.steps}, {unit} {n}/{total}",
                )

            self.mid_step = True
            deltas, _ = call_method(
                method,
                entry.model,
                entry.tokenizer,
                requests,
                hparams,
                state=state,
                on_request=on_request,
                **resources,
            )
            files = []
            for index, delta in enumerate(deltas):
                rel = delta_relpath(self.model_name, self.job_id, self.claim.run, step, index)
                files.append((rel, write_delta(delta, self.ledger, rel)))
            ids, hashes = self._commit(step, parent, hashes, deltas, files, spec.steps)
            entry.chain.extend(zip(ids, deltas, strict=True))
            parent = ids[-1]
            self.mid_step = False
            if self.ctx.after_step is not None:
                self.ctx.after_step(self.job_id, step)
        return parent

    def _commit(
        self, step: int, parent: int, hashes: dict, deltas: list, files: list, steps: int
    ) -> tuple[list[int], dict[str, str]]:
        """Record one step in the ledger and the job row, in one transaction."""
        with self.db.session() as session:
            row = session.get(JobRow, self.job_id)
            self.reporter._check(row)
            rows, hashes = commit_step(session, row, step, parent, hashes, deltas, files)
            row.steps_done = step + 1
            row.progress = round(0.1 + 0.8 * (step + 1) / steps, 4)
            row.message = f"committed step {step + 1}/{steps}"
            row.updated_at = utcnow()
            return [r.id for r in rows], hashes

    def _audit(self, spec: JobSpec, before: list | None, parent: int) -> Outcome:
        """Check the gate (when the job has probes) and finish."""
        entry = self.entry
        assert entry is not None
        if not spec.probes or before is None:
            return self._succeed(parent, {"gate": None}, S.UNVERIFIED, "no probes to check by")
        if self.state != S.AUDITING:
            self._move(S.AUDITING, "scoring probes after the edit")
        self.reporter.stage(0.9, 1.0)
        self.reporter(0.0, "audit", force=True)
        after = gate.score(entry.model, entry.tokenizer, spec.probes)
        verdict = gate.evaluate(spec.probes, before, after, spec.thresholds)
        self._save_result(gate=verdict)
        if verdict["passed"] and not verdict["checked"]:
            return self._succeed(parent, {}, S.UNVERIFIED, "no gate threshold measured anything")
        if verdict["passed"]:
            return self._succeed(parent, {})
        failing = "; ".join(f"{g['group']}: {g['reason']}" for g in verdict["failing"])
        return self._end(S.ROLLED_BACK, f"audit gate failed ({failing})")

    def _succeed(
        self, version_id: int, extra: dict[str, Any], state: JobState = S.SUCCEEDED, why: str = ""
    ) -> Outcome:
        """Finish at `version_id`: succeeded, or unverified (kept, but nothing checked it)."""

        def finish() -> None:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                self.reporter._check(row)
                row.result_version_id = version_id
                row.result = {**(row.result or {}), **extra, "version_id": version_id}
                message = f"{state.value}: version {version_id}" + (f" ({why})" if why else "")
                transition(session, row, state, message, self.ctx.worker_id)

        retry_stale(finish)
        return Outcome(state.value, f"version {version_id}")
