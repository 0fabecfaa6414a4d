"""A profile checked against the registry and itself, every problem at once (``omnirt profile validate``).

Errors (the profile cannot work as written): unknown models (with a "did you mean"), a model named for a task it does
not have, preloads a pool does not serve, queues a front end routes to that no pool consumes, a model whose memory
need (its registry ``resource_hint``) exceeds its pool's memory budget or preloads that together exceed it, two
processes on one port, duplicate names, and settings that :mod:`omnirt.settings` does not declare (or that the
profile sets through its own fields). Warnings (it works, perhaps not as meant): a model routed by ``backend: auto``
to a pool that does not list it, a CPU pool for a model that needs an accelerator, no shared artifact path.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from omnirt.profiles.plan import STRUCTURAL_OPTIONS, declared_variables, pool_queues
from omnirt.profiles.schema import Frontend, Pool, Profile

RESERVED_NAMES = ("redis", "flower", "prometheus", "grafana")


@dataclass(frozen=True)
class Problem:
    level: str  # error | warning
    where: str  # where in the profile: pools.avatar.models, frontends.api.port, ...
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class Report:
    profile: Profile
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem("error", where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem("warning", where, message))


def validate_profile(profile: Profile) -> Report:
    """Every problem of ``profile`` (structure is already checked by :func:`omnirt.profiles.schema.load_profile`)."""
    report = Report(profile)
    _check_names(profile, report)
    _check_options(report, "settings", profile.settings, profile.env)
    for frontend in profile.frontends:
        _check_frontend(frontend, report)
    served: dict[str, list[Pool]] = {}  # queue -> the pools consuming it
    for pool in profile.pools:
        for queue in _check_pool(pool, report):
            served.setdefault(queue, []).append(pool)
    _check_routing(profile, served, report)
    _check_unserved(profile, served, report)
    _check_ports(profile, report)
    if not profile.storage.artifacts:
        report.warn(
            "storage.artifacts",
            "not set: each process writes artifacts to ./outputs in its own working directory; a fleet needs one "
            "shared path",
        )
    return report


def _check_names(profile: Profile, report: Report) -> None:
    seen: dict[str, str] = {}
    for kind, names in (("frontends", [f.name for f in profile.frontends]), ("pools", [p.name for p in profile.pools])):
        for name in names:
            if name in RESERVED_NAMES:
                report.error(f"{kind}.{name}", f"'{name}' is reserved for the fleet's own {name} process")
            if name in seen:
                report.error(f"{kind}.{name}", f"the name '{name}' is already used by {seen[name]}")
            seen.setdefault(name, f"{kind}.{name}")


def _known_model(model_id: str, where: str, report: Report) -> list[Any]:
    """The registry specs of ``model_id`` (every task), or an error with suggestions."""
    from omnirt.registry.registry import all_specs, nearby_models

    specs = [spec for spec in all_specs() if spec.id == model_id]
    if not specs:
        close = nearby_models(model_id)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        report.error(where, f"unknown model '{model_id}'{hint}")
    return specs


def _check_frontend(frontend: Frontend, report: Report) -> None:
    where = f"frontends.{frontend.name}"
    for model_id in frontend.models:
        _known_model(model_id, f"{where}.models", report)
    _check_options(report, f"{where}.settings", frontend.settings, frontend.env)


def _check_pool(pool: Pool, report: Report) -> list[str]:
    """Checks one pool; returns the queues it consumes."""
    from omnirt.tasks.routing import tier_queue

    where = f"pools.{pool.name}"
    if not (pool.models or pool.tiers or pool.queues):
        report.error(where, "serves nothing: give models, tiers or queues")
    specs_by_model: dict[str, list[Any]] = {}
    for model in pool.models:
        specs = _known_model(model.id, f"{where}.models", report)
        if not specs:
            continue
        specs_by_model[model.id] = specs
        tasks = [spec.task for spec in specs]
        for task in model.tasks:
            if task not in tasks:
                report.error(f"{where}.models", f"'{model.id}' does not do {task}; its tasks: {', '.join(tasks)}")
        claimed = specs[0].capabilities.backend_status
        if pool.device == "cpu" and claimed and "cpu" not in claimed:  # CPU-only models also run on GPU hosts
            report.warn(f"{where}.models", f"'{model.id}' runs on {', '.join(sorted(claimed))}, not on the CPU")
    queues = _pool_queues(pool, report)
    for model_id, specs in specs_by_model.items():
        needed = specs[0].capabilities.queue or tier_queue(specs[0].tier, pool.device)
        if needed not in queues:
            report.error(f"{where}.queues", f"'{model_id}' is routed to {needed}, which this pool does not consume")
    for model_id in pool.preload:
        if model_id not in specs_by_model and not _in_tiers(model_id, pool, report):
            report.error(f"{where}.preload", f"'{model_id}' is preloaded but not among the models this pool serves")
    _check_memory(pool, specs_by_model, report)
    if pool.session_capacity and specs_by_model and not pool.tiers:
        if not any(spec.capabilities.realtime for specs in specs_by_model.values() for spec in specs):
            report.warn(f"{where}.session_capacity", "no model of this pool runs realtime sessions")
    if pool.autoscale and pool.autoscale.min_replicas > pool.autoscale.max_replicas:
        report.error(f"{where}.autoscale", "min_replicas is above max_replicas")
    _check_options(report, f"{where}.settings", pool.settings, pool.env)
    return queues


def _pool_queues(pool: Pool, report: Report) -> list[str]:
    from omnirt.contracts.errors import ModelNotRegisteredError
    from omnirt.registry.registry import all_specs
    from omnirt.tasks.routing import all_tier_queues

    if pool.queues:
        named = {spec.capabilities.queue for spec in all_specs() if spec.capabilities.queue}
        for queue in pool.queues:
            if queue not in named and queue not in all_tier_queues():
                report.warn(f"pools.{pool.name}.queues", f"'{queue}' is no OmniRT queue: nothing routes there")
        return list(pool.queues)
    known = replace(pool, models=tuple(model for model in pool.models if _registered(model.id)))
    try:
        return pool_queues(known)
    except (ModelNotRegisteredError, ValueError):  # reported by the model checks
        return []


def _registered(model_id: str) -> bool:
    from omnirt.registry.registry import tasks_of

    return bool(tasks_of(model_id))


def _in_tiers(model_id: str, pool: Pool, report: Report) -> bool:
    """Whether a preloaded model outside the pool's list is served through one of its tiers."""
    from omnirt.registry.registry import get_model, tasks_of

    if not tasks_of(model_id):
        _known_model(model_id, f"pools.{pool.name}.preload", report)
        return True  # reported as unknown already
    return get_model(model_id).tier in pool.tiers


def _need_gb(spec: Any) -> float:
    return float(spec.resource_hint.get("min_vram_gb") or 0)


def _check_memory(pool: Pool, specs_by_model: dict[str, list[Any]], report: Report) -> None:
    """The models' memory needs (registry ``resource_hint.min_vram_gb``) against the pool's budget."""
    budget = pool.memory_budget_gb
    if budget <= 0:
        return
    where = f"pools.{pool.name}.memory_budget_gb"
    for model_id, specs in specs_by_model.items():
        need = max(_need_gb(spec) for spec in specs)
        if need > budget:
            report.error(where, f"'{model_id}' needs about {need:g} GB, above the pool's budget of {budget:g} GB")
    preloaded = [
        (model_id, max(_need_gb(s) for s in specs_by_model[model_id]))
        for model_id in pool.preload
        if model_id in specs_by_model
    ]
    total = sum(need for _, need in preloaded)
    if len(preloaded) > 1 and total > budget:
        listed = ", ".join(f"{model_id} {need:g} GB" for model_id, need in preloaded)
        report.error(where, f"the preloaded models need about {total:g} GB together ({listed}), above {budget:g} GB")


def _check_options(report: Report, where: str, settings: dict[str, Any], env: dict[str, str]) -> None:
    """``settings:`` names declared options (by field) with values their parsers accept; ``env:`` holds no
    declared option and no undeclared ``OMNIRT_*`` name."""
    from omnirt.settings import Settings, variable_text

    options = {name: variable for name, variable, _, _ in Settings.options()}
    for name, value in settings.items():
        if name in STRUCTURAL_OPTIONS:
            report.error(where, f"'{name}' is set through {STRUCTURAL_OPTIONS[name]}, not settings")
            continue
        if name not in options:
            close = difflib.get_close_matches(name, sorted(options), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            report.error(where, f"'{name}' is not an OmniRT setting{hint}")
            continue
        try:
            Settings.value(name, {options[name]: variable_text(value)})
        except (ValueError, TypeError) as exc:
            report.error(where, f"'{name}': {exc}")
    env_where = where.rsplit(".", 1)[0] + ".env" if "." in where else "env"
    by_variable = {variable: name for name, variable in options.items()}
    declared = declared_variables()
    for variable in env:
        if variable in by_variable:
            report.error(env_where, f"{variable} is a setting: write settings: {{{by_variable[variable]}: ...}}")
        elif variable.startswith("OMNIRT_") and variable not in declared:
            close = difflib.get_close_matches(variable, sorted(declared), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            report.error(env_where, f"{variable} is not an OmniRT variable{hint}")


def _enabled_models(frontend: Frontend) -> list[str]:
    """What a front end enables explicitly (OMNIRT_MODELS, OMNIRT_MODEL_TIERS): readiness needs a pool for each."""
    from omnirt.registry.registry import list_available_models, tasks_of

    models = [model_id for model_id in frontend.models if tasks_of(model_id)]
    for tier in frontend.tiers:
        models += [spec.id for spec in list_available_models(include_aliases=False, tier=tier)]
    return list(dict.fromkeys(models))


def _check_unserved(profile: Profile, served: dict[str, list[Pool]], report: Report) -> None:
    """Every model a front end enables must route to a queue some pool consumes."""
    from omnirt.registry.registry import all_specs
    from omnirt.tasks.routing import candidate_queues

    for frontend in profile.frontends:
        for model_id in _enabled_models(frontend):
            for spec in (spec for spec in all_specs() if spec.id == model_id):
                queues = candidate_queues(spec)
                if not any(queue in served for queue in queues):
                    report.error(
                        f"frontends.{frontend.name}.models",
                        f"'{model_id}' ({spec.task}) goes to {_queue_names(queues)}, which no pool consumes",
                    )
                    break


def _queue_names(queues: Iterable[str]) -> str:
    queues = list(queues)
    if len(queues) > 1 and all(queue.startswith("omnirt.") for queue in queues):
        stem = queues[0].rsplit(".", 1)[0]
        return f"{stem}.{{{','.join(queue.rsplit('.', 1)[1] for queue in queues)}}}"
    return ", ".join(queues)


def _check_routing(profile: Profile, served: dict[str, list[Pool]], report: Report) -> None:
    """``backend: auto`` picks the first of cuda, ascend, cpu that a live worker serves for the model's tier: warn
    when that lands a pool's model on a pool that does not list it (every pool on a tier queue takes the tier)."""
    from omnirt.registry.registry import get_model, tasks_of
    from omnirt.tasks.routing import DEVICES, tier_queue

    warned: set[str] = set()
    for pool in profile.pools:
        for model_id in pool.model_ids:
            if model_id in warned or not tasks_of(model_id):
                continue
            spec = get_model(model_id)
            if spec.capabilities.queue:
                continue
            for device in DEVICES:
                queue = tier_queue(spec.tier, device)
                if queue not in served:
                    continue
                takers = served[queue]
                if not any(model_id in taker.model_ids or spec.tier in taker.tiers for taker in takers):
                    warned.add(model_id)
                    names = ", ".join(taker.name for taker in takers)
                    report.warn(
                        f"pools.{pool.name}.models",
                        f"'{model_id}' with backend auto goes to {queue} (pool {names}), which does not list it; "
                        f"requests must say backend {pool.device}, or list it there",
                    )
                break


def _check_ports(profile: Profile, report: Report) -> None:
    used: dict[int, str] = {}

    def claim(port: int | None, owner: str, where: str) -> None:
        if port is None:
            return
        if port in used:
            report.error(where, f"port {port} is also used by {used[port]}")
        else:
            used[port] = owner

    if profile.redis.owned:
        claim(profile.redis.port, "redis", "redis.port")
    for frontend in profile.frontends:
        claim(frontend.port, f"front end {frontend.name}", f"frontends.{frontend.name}.port")
    observability = profile.observability
    claim(observability.flower_port, "flower", "observability.flower.port")
    claim(observability.prometheus_port, "prometheus", "observability.prometheus.port")
    claim(observability.grafana_port, "grafana", "observability.grafana.port")


def summary(profile: Profile) -> list[str]:
    """What the profile runs, one line per process kind (``validate`` prints it when the profile is valid)."""
    lines = [f"profile {profile.name}: {len(profile.frontends)} front end(s), {len(profile.pools)} pool(s)"]
    redis = f"owned, port {profile.redis.port}, append-only file" if profile.redis.owned else profile.redis.url
    lines.append(f"  redis: {redis}")
    for frontend in profile.frontends:
        lines.append(
            f"  front end {frontend.name}: port {frontend.port}, {frontend.workers} worker(s), "
            f"{frontend.replicas} replica(s)"
        )
    for pool in profile.pools:
        served = ", ".join(pool.model_ids) or "-"
        tiers = f"; tiers {', '.join(pool.tiers)}" if pool.tiers else ""
        lines.append(
            f"  pool {pool.name} ({pool.device}, {pool.replicas} x {pool.concurrency}): {served}{tiers}; "
            f"queues {', '.join(pool_queues(pool))}"
        )
    if profile.observability.flower_port:
        lines.append(f"  flower: port {profile.observability.flower_port}")
    return lines
