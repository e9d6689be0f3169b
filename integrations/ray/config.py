""":class:`RayConfig`: where the rollout workers run and how much they may hold, as plain data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RayConfig"]


class RayConfig(BaseModel):
    """Settings of :class:`~dreamgym_sdk.integrations.ray.RayRollouts`.

    The same config runs on a laptop and on a cluster: only ``address`` changes (or the ``RAY_ADDRESS``
    environment variable, which Ray reads when ``address`` is ``None``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str | None = None
    """``None``: connect to ``RAY_ADDRESS`` if set, else start Ray on this machine; ``"auto"``: the
    cluster this machine belongs to; ``"ray://head:10001"``: a remote cluster through Ray Client. Ignored
    when Ray is already initialised in this process (the running instance is used, and left running)."""
    node_ip_address: str | None = None
    """The address of this machine inside the cluster, when Ray cannot find it (e.g. a cluster on loopback
    addresses, as the multi-node test runs one); ``None``: Ray's own guess."""
    num_workers: int = Field(default=2, ge=1)
    """Rollout worker actors."""
    episodes_per_worker: int = Field(default=8, ge=1)
    """Episodes one worker runs concurrently (the actor's ``max_concurrency``)."""
    max_in_flight: int = Field(default=64, ge=1)
    """Backpressure: episodes submitted but not yet published on the driver's bus. A new episode starts
    only when an earlier one has been handed to every subscriber, so a slow learner (a ``block``
    subscriber) holds the rollouts back instead of letting finished episodes pile up in memory."""
    worker_num_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves for each worker."""
    worker_num_gpus: float = Field(default=0.0, ge=0)
    """GPUs Ray reserves for each worker (for a policy running on the worker's GPU)."""
    spread: bool = True
    """Place workers on as many nodes as possible (Ray's ``SPREAD`` strategy)."""
    max_restarts: int = Field(default=0, ge=-1)
    """How often Ray restarts a worker that died (``-1``: without limit)."""
    max_task_retries: int = Field(default=0, ge=-1)
    """How often Ray retries an episode whose worker died; a retried episode is still published once."""
    num_cpus: int | None = Field(default=None, ge=1)
    """CPUs of a Ray instance started on this machine (``None``: all of them)."""
    namespace: str | None = None
    """Ray namespace of the job."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime environment of the workers (``pip``, ``env_vars``, ``working_dir``, ...)."""
    include_dashboard: bool = False
    """Start Ray's dashboard with a locally started instance."""
