"""systemd units from a profile, for a host that runs OmniRT from a virtual environment (``install.prefix``).

One unit per front end (``omnirt-<name>.service``), a template unit per worker pool (``omnirt-<pool>@.service``, one
instance per replica: Celery node ``<pool>-<n>@<host>``), the owned Redis and Flower when the profile has them, and
``omnirt.target``, which wants them all (``systemctl enable --now omnirt.target``). Settings are ``Environment=``
lines of the ``OMNIRT_*`` variables; workers stop with SIGTERM to the main process (``KillMode=mixed``) and a stop
timeout above Celery's soft shutdown.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

from omnirt.profiles.plan import STOP_GRACE_S, Process, local_placement, processes
from omnirt.profiles.render import header
from omnirt.profiles.schema import Profile

REDIS_SERVER = "/usr/bin/redis-server"
MKDIR = "/usr/bin/mkdir"
INSTANCE = "\x00instance\x00"  # where an argument holds the template unit's instance name (%i)


def quote(argument: str) -> str:
    """One ExecStart argument: ``%`` doubled (systemd specifiers), quoted when it has spaces or quotes or is empty."""
    text = argument.replace("%", "%%").replace(INSTANCE, "%i")
    if text and not any(char in text for char in " \t\"'\\;$"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def environment_line(key: str, value: str) -> str:
    text = f"{key}={value}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{text}"'


def _exec(profile: Profile, argv: tuple[str, ...]) -> list[str]:
    head, *rest = argv
    if head in ("omnirt", "celery"):
        return [str(PurePosixPath(profile.install.prefix) / "bin" / head), *rest]
    if head == "redis-server":
        return [REDIS_SERVER, *rest]
    return list(argv)


def unit(
    profile: Profile,
    description: str,
    argv: list[str],
    env: dict[str, str],
    *,
    after: list[str],
    stop_s: int,
    kill_mode: str = "mixed",
    before: list[str] | None = None,
) -> str:
    lines = [
        header(profile).rstrip("\n"),
        "[Unit]",
        f"Description={description}",
        "PartOf=omnirt.target",
        f"After={' '.join(['network-online.target', *after])}",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={profile.install.user}",
        f"Group={profile.install.user}",
        f"WorkingDirectory={profile.install.workdir}",
        *(environment_line(key, value) for key, value in env.items()),
        *(f"ExecStartPre={line}" for line in before or ()),
        "ExecStart=" + " ".join(quote(argument) for argument in argv),
        "Restart=on-failure",
        "RestartSec=2",
        f"KillMode={kill_mode}",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={stop_s}",
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=omnirt.target",
        "",
    ]
    return "\n".join(lines)


def _process_unit(profile: Profile, process: Process, redis_unit: list[str]) -> tuple[str, str, list[str]]:
    """(file name, text, the instances omnirt.target wants) of one planned process."""
    argv = _exec(profile, process.argv)
    if process.role == "pool":
        assert process.pool is not None
        pool = process.pool
        node = f"{pool.name}-{INSTANCE}@%h"
        argv = [node if argument == f"{pool.name}@%h" else argument for argument in argv]
        text = unit(
            profile,
            f"OmniRT worker pool {pool.name}, replica %i (profile {profile.name})",
            argv,
            process.env,
            after=redis_unit,
            stop_s=STOP_GRACE_S,
        )
        instances = [f"omnirt-{pool.name}@{index}.service" for index in range(1, pool.replicas + 1)]
        return f"omnirt-{pool.name}@.service", text, instances
    if process.role == "frontend":
        description = f"OmniRT front end {process.name} on port {process.port} (profile {profile.name})"
    elif process.role == "flower":
        description = f"Flower for the OmniRT fleet (profile {profile.name})"
    else:
        description = f"Redis for the OmniRT fleet, append-only file (profile {profile.name})"
    after = [] if process.role == "redis" else redis_unit
    before = None
    if process.role == "redis":  # its data directory (the append-only file) must exist
        before = [f"{MKDIR} -p {quote(argv[argv.index('--dir') + 1])}"]
    text = unit(profile, description, argv, process.env, after=after, stop_s=STOP_GRACE_S, before=before)
    name = f"omnirt-{process.name}.service"
    return name, text, [name]


def render(profile: Profile) -> dict[str, str]:
    redis_dir = profile.redis.dir or str(PurePosixPath(profile.install.workdir) / "redis")
    placement = replace(local_placement(profile, None), redis_dir=redis_dir)
    files: dict[str, str] = {}
    wanted: list[str] = []
    redis_unit = ["omnirt-redis.service"] if profile.redis.owned else []
    for process in processes(profile, placement):
        name, text, instances = _process_unit(profile, process, redis_unit)
        files[name] = text
        wanted += instances
    files["omnirt.target"] = "\n".join(
        [
            header(profile).rstrip("\n"),
            "[Unit]",
            f"Description=OmniRT fleet (profile {profile.name})",
            f"Wants={' '.join(wanted)}",
            "After=network-online.target",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
    return files
