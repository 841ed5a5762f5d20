"""The ``otlp`` block of an exporter configuration, checked (no OpenTelemetry import).

What ``ecc exporter`` pushes over OTLP and where: ecc/exporter/otlp.py pushes it.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ConfigError

if TYPE_CHECKING:
    from .config import ProgramSpec


PROTOCOLS = ("http/protobuf", "grpc")
OTLP_KEYS = ("endpoint", "logs_endpoint", "headers", "interval", "timeout", "protocol",
             "ca_file", "client_cert", "client_key", "service_name", "resource", "max_queue")
DEFAULT_INTERVAL = 10.0
DEFAULT_TIMEOUT = 10.0
MIN_TIMEOUT = 2.0
DEFAULT_MAX_QUEUE = 2048
LOG_BATCH = 512
# Log records wait at most this long for a batch to fill.
LOG_FLUSH_SECONDS = 1.0
MAX_BACKOFF_INTERVALS = 8
SIGNALS = ("metrics", "logs")
# The loggers of the SDK's OTLP exporters (and of the HTTP client they share).
SDK_LOGGER = "opentelemetry.exporter"
INSTALL = "pip install 'ecc-bpf[otel]' (or scripts/install.sh --dev)"


@dataclass(frozen=True)
class OtlpSettings:
    """The ``otlp:`` block of the configuration, checked, with the command line applied."""

    endpoint: str  # metrics are posted to this URL as it is
    logs_endpoint: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    protocol: str = "http/protobuf"
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    service_name: str = "ecc"
    resource: tuple[tuple[str, str], ...] = ()
    max_queue: int = DEFAULT_MAX_QUEUE


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a URL such as http://127.0.0.1:4318/v1/metrics")
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{where}: {value!r} is no http:// or https:// URL (for example "
                          f"http://127.0.0.1:4318/v1/metrics)")
    return value


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 < value < math.inf):
        raise ConfigError(f"{where}: must be a positive number of seconds, got {value!r}")
    return float(value)


def _timeout(value: Any, where: str) -> float:
    seconds = _seconds(value, where)
    if seconds < MIN_TIMEOUT:
        # The SDK's first retry waits up to 1.2 s; with less time it gives up without
        # logging why, and the failure's kind (see failure_kind) would be unknown.
        raise ConfigError(f"{where}: must be at least {MIN_TIMEOUT:g} seconds, got {value!r}")
    return seconds


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping of names to strings")
    out = []
    for key, item in value.items():
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise ConfigError(f"{where}.{key}: must be a string, got {item!r}")
        out.append((str(key), str(item)))
    return tuple(out)


def _file(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a file name")
    return value


def parse_settings(block: Any, origin: str, base_dir: str = ".",
                   endpoint: str | None = None,
                   interval: float | None = None) -> OtlpSettings | None:
    """The ``otlp:`` block (None when absent) with ``--otlp-endpoint`` and ``--otlp-interval``
    over it; None when neither gives an endpoint. Imports nothing of the SDK."""

    where = f"{origin}: otlp"
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: must be a mapping with at least 'endpoint'")
    for key in block:
        if key not in OTLP_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(OTLP_KEYS)})")
    if endpoint is None:
        if "endpoint" not in block:
            if block:
                raise ConfigError(f"{where}: no 'endpoint': give the URL metrics are posted "
                                  f"to (http://HOST:4318/v1/metrics)")
            if interval is not None:
                raise ConfigError("--otlp-interval needs --otlp-endpoint or an otlp block")
            return None
        endpoint = _url(block["endpoint"], f"{where}.endpoint")
    else:
        endpoint = _url(endpoint, "--otlp-endpoint")
    protocol = block.get("protocol", "http/protobuf")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where}.protocol: {protocol!r} is not one of "
                          f"{', '.join(PROTOCOLS)}")
    if protocol == "grpc":
        raise ConfigError(f"{where}.protocol: grpc is not supported (its exporter, "
                          f"opentelemetry-exporter-otlp-proto-grpc, is no dependency of ecc); "
                          f"use http/protobuf (the collector's port 4318)")
    logs_endpoint = block.get("logs_endpoint")
    if logs_endpoint is not None:
        logs_endpoint = _url(logs_endpoint, f"{where}.logs_endpoint")
    elif endpoint.rstrip("/").endswith("/v1/metrics"):
        logs_endpoint = endpoint.rstrip("/")[: -len("metrics")] + "logs"
    files = {}
    for key in ("ca_file", "client_cert", "client_key"):
        name = _file(block.get(key), f"{where}.{key}")
        files[key] = (name if name is None or os.path.isabs(name)
                      else os.path.join(base_dir, name))
    if files["client_key"] and not files["client_cert"]:
        raise ConfigError(f"{where}: client_key needs client_cert")
    service_name = block.get("service_name", "ecc")
    if not isinstance(service_name, str) or not service_name:
        raise ConfigError(f"{where}.service_name: must be a non-empty string")
    max_queue = block.get("max_queue", DEFAULT_MAX_QUEUE)
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ConfigError(f"{where}.max_queue: must be a positive number of log records")
    return OtlpSettings(
        endpoint=endpoint,
        logs_endpoint=logs_endpoint,
        headers=_pairs(block.get("headers"), f"{where}.headers"),
        interval=(interval if interval is not None
                  else _seconds(block.get("interval", DEFAULT_INTERVAL), f"{where}.interval")),
        timeout=_timeout(block.get("timeout", DEFAULT_TIMEOUT), f"{where}.timeout"),
        protocol=str(protocol),
        ca_file=files["ca_file"], client_cert=files["client_cert"],
        client_key=files["client_key"],
        service_name=service_name,
        resource=_pairs(block.get("resource"), f"{where}.resource"),
        max_queue=max_queue,
    )


def check_logs(settings: OtlpSettings | None, specs: Iterable[ProgramSpec], origin: str) -> None:
    """Programs with ``logs: true`` need somewhere to send them."""
    wanting = [s.name for s in specs if s.logs]
    if not wanting:
        return
    if settings is None:
        raise ConfigError(f"{origin}: program {wanting[0]} has 'logs: true' but there is no "
                          f"otlp block (nor --otlp-endpoint) to send the logs to")
    if settings.logs_endpoint is None:
        raise ConfigError(f"{origin}: program {wanting[0]} has 'logs: true': give "
                          f"otlp.logs_endpoint (the metrics endpoint does not end in "
                          f"/v1/metrics, so the logs one cannot be derived from it)")
