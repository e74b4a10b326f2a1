"""`make check` / `python -m billable check`: is everything the daily run needs configured, and does
each system answer with it?

One line per system, in the order the daily run uses them: `ok` with what was checked, or what is
missing (the exact key, its environment variable and where in `.dlt/` to set it), or what the
system answered (the HTTP status and the system's own message). Every system makes one cheap
read-only call: Salesforce a `LIMIT 1` query, Kantata one workspace, Harvest one user, QuickBooks
each realm's preferences. Exit 0 when every line is ok, 2 otherwise. Nothing here prints a secret:
a token is only ever sent to its system, and scrubbed from anything a system answers.

The pipeline can run the same before a `--live` run: `check_configuration()` returns the results,
`main(argv)` prints them and returns the exit code.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests import Response
from requests.auth import AuthBase

Auth = AuthBase | str  # what ingestion.http.make_client takes: ingestion.auth.auth_for's, or a token

SYSTEMS = ("firm", "salesforce", "kantata", "harvest", "hr_drop", "quickbooks", "sync", "engine", "dashboard")
OK, FAILED = "ok", "FAILED"


@dataclass(frozen=True)
class CheckResult:
    """One system's verdict: `ok`, and one line saying what was checked or what is wrong."""

    system: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.system:<11} {OK if self.ok else FAILED}: {self.detail}"


@dataclass(frozen=True)
class Setting:
    """One configuration key (`sources.harvest.access_token`), read as dlt reads it: the
    environment (`SOURCES__HARVEST__ACCESS_TOKEN`), then `.dlt/secrets.toml` / `.dlt/config.toml`."""

    key: str
    secret: bool = False

    @property
    def env(self) -> str:
        return self.key.upper().replace(".", "__")

    def where(self) -> str:
        from ingestion.config_errors import where_to_set

        return where_to_set(self.key, self.secret)

    def value(self) -> str | None:
        """The value as text, stripped; None when unset or blank."""
        import dlt

        found: Any = os.environ.get(self.env)
        if found in (None, ""):
            found = dlt.secrets.get(self.key)
        if found in (None, "") and not self.secret:
            found = dlt.config.get(self.key)
        text = "" if found is None else str(found).strip()
        return text or None


class Missing(Exception):
    """Settings that are not set; the message names each key and where to set it."""

    def __init__(self, settings: list[Setting]) -> None:
        super().__init__("missing " + "; ".join(f"{setting.key} ({setting.where()})" for setting in settings))


def read(*settings: Setting) -> list[str]:
    """The values of `settings`, in order; Missing naming every one that is not set."""
    values = [setting.value() for setting in settings]
    missing = [setting for setting, value in zip(settings, values, strict=True) if value is None]
    if missing:
        raise Missing(missing)
    return [value for value in values if value is not None]


def source(system: str, name: str, secret: bool = False) -> Setting:
    return Setting(f"sources.{system}.{name}", secret)


# --- the one read-only call per system: each takes the base URL and the token, as the loaders do ---


def salesforce_call(base_url: str, auth: Auth) -> Response:
    from ingestion.http import make_client
    from ingestion.salesforce.objects import API_VERSION

    client = make_client(base_url, auth)
    return client.get(f"/services/data/{API_VERSION}/query", params={"q": "SELECT Id FROM User LIMIT 1"})


def kantata_call(base_url: str, auth: Auth) -> Response:
    from ingestion.http import make_client

    return make_client(base_url, auth).get("/api/v1/workspaces", params={"per_page": 1})


def harvest_call(base_url: str, auth: Auth, account_id: str) -> Response:
    from ingestion.http import make_client

    client = make_client(base_url, auth, headers={"Harvest-Account-Id": account_id})
    return client.get("/v2/users", params={"per_page": 1})


def quickbooks_call(base_url: str, auth: Auth, realm: str) -> Response:
    from ingestion.http import make_client

    return make_client(base_url, auth).get(f"/v3/company/{realm}/preferences")


@dataclass(frozen=True)
class Connection:
    """A system's API as the loaders reach it: where calls go, their auth (`ingestion.auth`: a static
    token or OAuth 2, renewed here as in a run), and the secrets to scrub from anything shown."""

    base_url: str
    auth: Auth
    secrets: tuple[str, ...]
    keys: str  # the settings to check when the system refuses the credentials


def connection(system: str) -> Connection:
    """`sources.<system>.*` as the loaders use them; CheckFailed naming what is missing or refused.
    With OAuth, a token is obtained (or renewed) now, so a refused grant is this system's line."""
    from requests import RequestException

    from ingestion.auth import AuthError, OAuth2, auth_for, load_auth_settings

    (base_url,) = read(source(system, "base_url"))
    check_base_url(base_url, f"sources.{system}.base_url")
    if source(system, "client_id").value() is None:  # no OAuth app: the static token is the key
        read(source(system, "access_token", secret=True))
    try:
        settings = load_auth_settings(system)
        auth = auth_for(system)
        if isinstance(auth, OAuth2):
            base_url = auth.api_base_url(base_url) or base_url  # Salesforce: the instance_url
    except AuthError as err:
        raise CheckFailed(str(err)) from None
    except RequestException as err:  # the token endpoint did not answer
        raise CheckFailed(f"no token: {' '.join(str(err).split())[:300]}") from None
    keys = (
        f"sources.{system}.access_token"
        if settings.mode == "static"
        else f"sources.{system}.client_id/client_secret and the token store ({settings.token_store})"
    )
    return Connection(base_url, auth, tuple(settings.secrets()), keys)


# --- what a system answered, in one line, without the token ---


def system_message(response: Response) -> str:
    """The system's own error message from its error body (each system's shape), else the body's start."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, list) and body and isinstance(body[0], dict):  # Salesforce
        parts = [str(body[0].get(name)) for name in ("errorCode", "message") if body[0].get(name)]
    elif isinstance(body, dict):
        fault = body.get("Fault")
        if isinstance(fault, dict) and fault.get("Error"):  # QuickBooks
            first = fault["Error"][0]
            parts = [str(first.get(name)) for name in ("Message", "Detail") if first.get(name)]
        elif isinstance(body.get("errors"), list) and body["errors"]:  # Kantata
            parts = [str(body["errors"][0].get("message", body["errors"][0]))]
        else:  # Harvest and others
            parts = [str(body[name]) for name in ("error", "error_description", "message") if body.get(name)]
    text = ": ".join(parts) if parts else (response.text or "").strip()
    return " ".join(text.split())[:300] or "(no body)"


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def probe(call: Callable[[], Response], secrets: tuple[str, ...], token_key: str) -> str:
    """Make the call; what it answered when 2xx (`GET <url> answered 200`), else CheckFailed with
    one line: what the system answered, or why there was no answer (the URL and the cause)."""
    from requests import RequestException

    from ingestion.http import public_url

    try:
        response = call()
    except RequestException as err:  # SystemUnreachable names the URL and the cause already
        raise CheckFailed(scrub(" ".join(str(err).split())[:400], secrets)) from None
    except Exception as err:  # a malformed URL or header: say what, never a traceback
        raise CheckFailed(
            scrub(f"{type(err).__name__}: {' '.join(str(err).split())[:300]}", secrets)
        ) from None
    answered = f"{response.request.method} {public_url(response.url)} answered {response.status_code}"
    if response.status_code < 300:
        return scrub(answered, secrets)
    hint = f" (check {token_key})" if response.status_code in (401, 403) else ""
    raise CheckFailed(scrub(f"{answered} {response.reason}: {system_message(response)}{hint}", secrets))


def check_base_url(base_url: str, key: str) -> None:
    if not base_url.startswith(("http://", "https://")):
        raise CheckFailed(f"{key} must be an http:// or https:// URL, got {base_url!r}")


# --- the systems ---


def check_firm() -> str:
    from ingestion.firm.declaration import declared_legal_entities

    entities = declared_legal_entities()
    codes = ", ".join(entity.code for entity in entities)
    return f"{len(entities)} legal entit{'y' if len(entities) == 1 else 'ies'} declared ({codes})"


def check_http(system: str, call: Callable[[str, Auth], Response]) -> str:
    api = connection(system)
    return probe(lambda: call(api.base_url, api.auth), api.secrets, api.keys)


def check_salesforce() -> str:
    return check_http("salesforce", salesforce_call)


def check_kantata() -> str:
    return check_http("kantata", kantata_call)


def check_harvest() -> str:
    (account_id,) = read(source("harvest", "account_id"))
    api = connection("harvest")
    keys = f"{api.keys} and sources.harvest.account_id"
    call = functools.partial(harvest_call, api.base_url, api.auth, account_id)
    return probe(call, api.secrets, keys) + f" (account {account_id})"


def quickbooks_realms() -> list[str]:
    import dlt

    from ingestion.quickbooks import realms_to_load

    return realms_to_load(dlt.config.get("sources.quickbooks.realms"))


def check_quickbooks() -> str:
    api = connection("quickbooks")
    keys = f"{api.keys} and the realm ids in firm.legal_entities"
    answers: list[str] = []
    failures: dict[str, list[str]] = {}  # the answer (its realm as {realm}) -> the realms that got it
    realms = quickbooks_realms()
    for realm in realms:
        try:
            call = functools.partial(quickbooks_call, api.base_url, api.auth, realm)
            answers.append(probe(call, api.secrets, keys))
        except CheckFailed as err:
            failures.setdefault(str(err).replace(realm, "{realm}"), []).append(realm)
            if " answered " not in str(err):  # no answer at all: the other realms would say the same
                break
    if failures:
        raise CheckFailed("; ".join(f"realm {', '.join(ids)}: {said}" for said, ids in failures.items()))
    return f"{answers[0].replace(realms[0], '{realm}')} for {len(realms)} realm(s): {', '.join(realms)}"


def check_hr_drop() -> str:
    (folder,) = read(Setting("sources.hr_drop.drop_folder"))
    path = Path(folder).expanduser()
    where = "(sources.hr_drop.drop_folder, SOURCES__HR_DROP__DROP_FOLDER)"
    if not path.exists():
        raise CheckFailed(f"the HR drop folder {path} does not exist {where}")
    if not path.is_dir():
        raise CheckFailed(f"the HR drop folder {path} is not a folder {where}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise CheckFailed(f"the HR drop folder {path} is not readable by this user {where}")
    files = sorted(path.glob("*.csv"))
    return f"folder {path} readable, {len(files)} CSV file(s)"


def check_sync() -> str:
    """The ERP sync's connection (reverse_etl.quickbooks.*, else the loaders' sources.quickbooks.*);
    its own call only when it uses another URL or token than the loaders (checked above)."""
    from reverse_etl.client import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as err:
        raise CheckFailed(str(err)) from None
    if settings.auth is not None:  # OAuth: the loaders' app and token store (checked above)
        return f"uses the loaders' QuickBooks OAuth app and token store ({settings.base_url})"
    loaders = (source("quickbooks", "base_url").value(), source("quickbooks", "access_token", True).value())
    if (settings.base_url, settings.access_token) == (loaders[0] and loaders[0].rstrip("/"), loaders[1]):
        return f"uses the loaders' QuickBooks connection ({settings.base_url})"
    check_base_url(settings.base_url, "reverse_etl.quickbooks.base_url")
    realm = quickbooks_realms()[0]
    token = settings.access_token or ""
    return "its own connection: " + probe(
        lambda: quickbooks_call(settings.base_url, token, realm),
        (token,),
        "reverse_etl.quickbooks.access_token",
    )


def check_engine(data_dir: Path) -> str:
    from billable.engine import engine_name
    from ingestion.destination import engine_problem

    problem = engine_problem(data_dir)
    if problem:
        raise CheckFailed(problem)
    engine = engine_name()
    if engine == "duckdb":
        from billable.duckdb_config import duckdb_config

        config = duckdb_config()
        return (
            f"duckdb, memory_limit {config['memory_limit']}, threads {config['threads']}, data in {data_dir}"
        )
    return engine


def check_dashboard() -> str:
    # the dashboard's modules are read outside a Streamlit server here: its bare-mode warnings
    # ("No runtime found", "missing ScriptRunContext") would break the one line per system
    import logging

    logging.disable(logging.WARNING)
    try:
        return _check_dashboard()
    finally:
        logging.disable(logging.NOTSET)


def _check_dashboard() -> str:
    from dashboards import auth, settings

    try:
        users = settings.users_file()
    except settings.SignInMisconfigured as error:
        raise CheckFailed(str(error)) from None
    if users is None:
        return f"sign-in off ({settings.USERS_FILE_ENV} not set); warehouse {settings.warehouse_path()}"
    try:
        listed = auth.load_users(users)
        for username in listed:
            auth.access_of(listed, username)
    except (auth.UsersFileError, ValueError) as error:  # AccessConfigError is a ValueError
        raise CheckFailed(str(error)) from None
    if not settings.cookie_key():
        raise CheckFailed(f"sign-in is on but {settings.COOKIE_KEY_ENV} is not set (a long random secret)")
    return f"sign-in on ({users}); warehouse {settings.warehouse_path()}"


class CheckFailed(Exception):
    """A system's check failed; the message is its one line."""


def check_configuration(
    systems: tuple[str, ...] = SYSTEMS, data_dir: Path | None = None
) -> list[CheckResult]:
    """Check each of `systems` (default: all); one result each, in the order given."""
    data = data_dir or Path(os.environ.get("BILLABLE_RAW_DB", "data/raw.duckdb")).parent
    checks: dict[str, Callable[[], str]] = {
        "firm": check_firm,
        "salesforce": check_salesforce,
        "kantata": check_kantata,
        "harvest": check_harvest,
        "hr_drop": check_hr_drop,
        "quickbooks": check_quickbooks,
        "sync": check_sync,
        "engine": lambda: check_engine(data),
        "dashboard": check_dashboard,
    }
    results = []
    for system in systems:
        try:
            results.append(CheckResult(system, True, checks[system]()))
        except (Missing, CheckFailed, ValueError) as err:  # DeclarationError, EngineError: one line
            results.append(CheckResult(system, False, " ".join(str(err).split())))
        except Exception as err:  # anything else is still one line, never a traceback
            results.append(
                CheckResult(system, False, f"{type(err).__name__}: {' '.join(str(err).split())[:400]}")
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billable check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--systems", default="", help=f"check only these (comma-separated): {', '.join(SYSTEMS)}"
    )
    parser.add_argument(
        "--raw-db",
        type=Path,
        default=None,
        help="the raw DuckDB file the run loads (its folder holds the data)",
    )
    args = parser.parse_args(argv)
    wanted = tuple(name.strip() for name in args.systems.split(",") if name.strip()) or SYSTEMS
    unknown = [name for name in wanted if name not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    results = check_configuration(wanted, args.raw_db.parent if args.raw_db else None)
    for result in results:
        print(result.line(), flush=True)
    failed = [result.system for result in results if not result.ok]
    if failed:
        print(
            f"check: {len(failed)} of {len(results)} FAILED ({', '.join(failed)}): fix the lines above",
            file=sys.stderr,
        )
        return 2
    print(f"check: all {len(results)} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
