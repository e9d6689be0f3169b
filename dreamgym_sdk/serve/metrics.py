"""Server metrics: counters and latency quantiles, as JSON or in the Prometheus text format."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

__all__ = ["LatencyWindow", "Metrics"]


class LatencyWindow:
    """The latest ``size`` durations of one operation, for quantiles (constant memory)."""

    def __init__(self, size: int = 8192) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        """Durations recorded since the start (not only those in the window)."""

    def add(self, seconds: float) -> None:
        """Record one duration."""
        self._samples.append(seconds)
        self.count += 1

    def quantiles_ms(self) -> dict[str, float | int | None]:
        """``p50``, ``p90``, ``p99`` and ``max`` of the window in milliseconds, and the total ``count``."""
        ordered = sorted(self._samples)

        def pick(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 4)

        return {
            "count": self.count,
            "p50": pick(0.5),
            "p90": pick(0.9),
            "p99": pick(0.99),
            "max": round(ordered[-1] * 1e3, 4) if ordered else None,
        }


class Metrics:
    """What ``GET /metrics`` reports. Updated by the server; reading never blocks it."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.sessions_active = 0
        self.sessions_created = 0
        self.sessions_closed = 0
        self.sessions_expired = 0
        self.resets = 0
        self.steps = 0
        self.requests: Counter[str] = Counter()
        """Requests by transport (``http``, ``websocket``)."""
        self.errors: Counter[str] = Counter()
        """Error answers by error type."""
        self.websockets_open = 0
        self.latency = {"reset": LatencyWindow(), "step": LatencyWindow()}
        """Server-side time of resets and steps (the environment's work plus the server's)."""

    def snapshot(self) -> dict[str, Any]:
        """The metrics as a JSON-serialisable dict."""
        return {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "sessions": {
                "active": self.sessions_active,
                "created": self.sessions_created,
                "closed": self.sessions_closed,
                "expired": self.sessions_expired,
            },
            "websockets_open": self.websockets_open,
            "resets": self.resets,
            "steps": self.steps,
            "requests": dict(self.requests),
            "errors": dict(self.errors),
            "latency_ms": {name: window.quantiles_ms() for name, window in self.latency.items()},
        }

    def prometheus(self) -> str:
        """The metrics in the Prometheus text exposition format (latencies as summaries in seconds)."""
        snap = self.snapshot()
        lines = [
            "# TYPE dreamgym_serve_uptime_seconds gauge",
            f"dreamgym_serve_uptime_seconds {snap['uptime_s']}",
            "# TYPE dreamgym_serve_sessions gauge",
            f"dreamgym_serve_sessions {self.sessions_active}",
            "# TYPE dreamgym_serve_websockets gauge",
            f"dreamgym_serve_websockets {self.websockets_open}",
            "# TYPE dreamgym_serve_sessions_total counter",
            *(
                f'dreamgym_serve_sessions_total{{event="{event}"}} {value}'
                for event, value in (
                    ("created", self.sessions_created),
                    ("closed", self.sessions_closed),
                    ("expired", self.sessions_expired),
                )
            ),
            "# TYPE dreamgym_serve_resets_total counter",
            f"dreamgym_serve_resets_total {self.resets}",
            "# TYPE dreamgym_serve_steps_total counter",
            f"dreamgym_serve_steps_total {self.steps}",
            "# TYPE dreamgym_serve_requests_total counter",
            *(
                f'dreamgym_serve_requests_total{{transport="{k}"}} {v}'
                for k, v in sorted(self.requests.items())
            ),
            "# TYPE dreamgym_serve_errors_total counter",
            *(f'dreamgym_serve_errors_total{{type="{k}"}} {v}' for k, v in sorted(self.errors.items())),
        ]
        for name, window in self.latency.items():
            q = window.quantiles_ms()
            lines.append(f"# TYPE dreamgym_serve_{name}_seconds summary")
            for label, key in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99")):
                value = q[key]
                if value is not None:
                    lines.append(f'dreamgym_serve_{name}_seconds{{quantile="{label}"}} {value / 1e3}')
            lines.append(f"dreamgym_serve_{name}_seconds_count {q['count']}")
        return "\n".join(lines) + "\n"
