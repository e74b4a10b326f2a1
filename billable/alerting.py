"""Alerts for an unattended run: a webhook message and healthcheck pings (docs/operations.md).

Configuration, `[billable.alerts]` in .dlt/config.toml (the URLs belong in .dlt/secrets.toml) or
the environment:

    [billable.alerts]
    webhook_url = "https://hooks.slack.com/services/..."   # BILLABLE__ALERTS__WEBHOOK_URL
    healthcheck_url = "https://hc-ping.com/<uuid>"        # BILLABLE__ALERTS__HEALTHCHECK_URL
    on = "failure"                                         # BILLABLE__ALERTS__ON: failure | always

- The webhook gets a POST of `{"text": ..., "summary": ..., "title": ..., "themeColor": ...}`:
  `text` is what Slack's incoming webhooks and Microsoft Teams' (Office 365 connector
  "MessageCard") webhooks both show; `summary` is the card summary Teams needs, `title` and
  `themeColor` its heading and colour; Slack ignores the rest. A failed run always posts, a
  good one only with `on = "always"`.
- The healthcheck URL is pinged healthchecks.io style: `<url>/start` when the run starts, `<url>`
  when it succeeds, `<url>/fail` when it fails (a POST with the summary as body).

An alert that cannot be sent never fails the run: the console says so in one line. The URLs are
secrets (a webhook URL is its own credential): only their scheme and host are ever printed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from billable import engine as engines

ON_CHOICES = ("failure", "always")
TIMEOUT_S = 10.0


class AlertConfigError(ValueError):
    """A bad `[billable.alerts]` setting: the run stops with exit 2 naming the key."""


def redact(url: str) -> str:
    """What may be printed of a URL: its scheme and host, never its path (the secret part)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"


@dataclass(frozen=True)
class Alerts:
    webhook_url: str | None = None
    healthcheck_url: str | None = None
    on: str = "failure"

    @classmethod
    def from_config(cls) -> Alerts:
        webhook = engines.configured("billable.alerts.webhook_url")
        healthcheck = engines.configured("billable.alerts.healthcheck_url")
        on = (engines.configured("billable.alerts.on") or "failure").strip().lower()
        if on not in ON_CHOICES:
            raise AlertConfigError(
                "billable.alerts.on (BILLABLE__ALERTS__ON) must be one of "
                f"{', '.join(ON_CHOICES)}, got {on!r}"
            )
        for key, url in (("webhook_url", webhook), ("healthcheck_url", healthcheck)):
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise AlertConfigError(
                    f"billable.alerts.{key} (BILLABLE__ALERTS__{key.upper()}) must be an http(s) URL"
                )
        return cls(webhook or None, (healthcheck or "").rstrip("/") or None, on)

    def describe(self) -> str:
        parts = []
        if self.webhook_url:
            parts.append(f"webhook {redact(self.webhook_url)} on {self.on}")
        if self.healthcheck_url:
            parts.append(f"healthcheck {redact(self.healthcheck_url)}")
        return ", ".join(parts) or "none configured"

    def ping_start(self) -> str | None:
        """Ping `<healthcheck>/start`; a one-line problem, or None."""
        if not self.healthcheck_url:
            return None
        return _post(self.healthcheck_url + "/start", b"", "text/plain", "healthcheck start ping")

    def finish(self, succeeded: bool, title: str, text: str) -> list[str]:
        """Ping the healthcheck's success or /fail URL, post the webhook if due; the problems, a line each."""
        problems = []
        if self.healthcheck_url:
            url = self.healthcheck_url + ("" if succeeded else "/fail")
            problem = _post(url, text.encode(), "text/plain; charset=utf-8", "healthcheck end ping")
            if problem:
                problems.append(problem)
        if self.webhook_url and (not succeeded or self.on == "always"):
            problem = _post(self.webhook_url, payload(succeeded, title, text), "application/json", "webhook")
            if problem:
                problems.append(problem)
        return problems


def payload(succeeded: bool, title: str, text: str) -> bytes:
    """One JSON body both Slack and Teams (MessageCard) accept."""
    body = {
        "text": f"*{title}*\n```\n{text}\n```" if text else f"*{title}*",
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title,
        "title": title,
        "themeColor": "2E7D32" if succeeded else "C62828",
    }
    return json.dumps(body).encode()


def _post(url: str, data: bytes, content_type: str, what: str) -> str | None:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as err:
        return f"{what} to {redact(url)} answered HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        said = str(reason)[:160].replace(url, redact(url))
        return f"{what} to {redact(url)} failed: {type(err).__name__}: {said}"
    return None
