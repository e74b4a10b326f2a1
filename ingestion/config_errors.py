"""A setting the loaders need but cannot find, said in one line instead of dlt's lookup trace.

dlt resolves a source's arguments (`base_url: str = dlt.config.value`, `access_token: str =
dlt.secrets.value`) when the source is built, and a missing one raises
`ConfigFieldMissingException`, whose text is about 30 lines: every environment variable and file
it tried. The runner builds each source it is asked to load before loading any of them
(`source_config_problem`), so a missing key stops the run with exit 2 and one line naming the key,
the environment variable and the file section to set it in; nothing is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dlt.common.configuration.exceptions import ConfigFieldMissingException, LookupTrace

# dlt's name for the environment provider in its lookup traces.
ENVIRONMENT = "Environment Variables"


def where_to_set(key: str, secret: bool) -> str:
    """`set ENV_VAR or <name> under [section] in .dlt/<file>` for a dotted key (`sources.x.token`)."""
    section, _, name = key.rpartition(".")
    env = key.upper().replace(".", "__")
    file = ".dlt/secrets.toml" if secret else ".dlt/config.toml"
    return f"set {env} in the environment or {name} under [{section}] in {file}"


def canonical_key(traces: Iterable[LookupTrace], field: str) -> str:
    """The dotted key an operator sets for a missing field: the shortest `SOURCES__<SOURCE>__<FIELD>`
    dlt looked for in the environment (without the pipeline-name prefix), lower-cased with dots."""
    candidates = [
        trace.key
        for trace in traces
        if isinstance(trace, LookupTrace)
        and trace.provider == ENVIRONMENT
        and trace.key.startswith("SOURCES__")
        and trace.key.count("__") == 2
    ]
    if not candidates:
        return field
    return candidates[0].lower().replace("__", ".")


def missing_keys(err: ConfigFieldMissingException) -> list[tuple[str, bool]]:
    """(dotted key, is a secret) of every field `err` found missing."""
    keys = []
    for field, traces in err.traces.items():
        flat = [trace for trace in traces if isinstance(trace, LookupTrace)]
        secret = any(word in field for word in ("token", "secret", "password", "key"))
        keys.append((canonical_key(flat, field), secret))
    return keys


def missing_key_message(err: ConfigFieldMissingException, what: str) -> str:
    """One line: which key(s) `what` (a system's name) lacks and where to set each. Never a value."""
    return describe_missing([(what, key, secret) for key, secret in missing_keys(err)])


def describe_missing(missing: list[tuple[str, str, bool]]) -> str:
    """One line for (system, key, secret) triples: one key in full (its variable and its file);
    several as a list of keys and their variables."""
    if len(missing) == 1:
        [(what, key, secret)] = missing
        return f"missing configuration for {what}: {key} is not set ({where_to_set(key, secret)})"
    keys = ", ".join(f"{key} ({key.upper().replace('.', '__')})" for _, key, _ in missing)
    return (
        f"missing configuration: {keys}; set each in the environment or in .dlt/config.toml "
        "(tokens in .dlt/secrets.toml); `make check` says where, system by system"
    )


def config_missing(err: BaseException) -> ConfigFieldMissingException | None:
    """The ConfigFieldMissingException `err` is or wraps (dlt wraps a source's errors), else None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConfigFieldMissingException):
            return current
        current = current.__cause__ or current.__context__
    return None


def source_config_problem(builds: Iterable[tuple[str, Callable[[], object]]]) -> str | None:
    """Build each source (`(system name, build)`), as dlt resolves its configuration, without loading
    anything; every missing key in one line, or None when every source has its settings."""
    missing: list[tuple[str, str, bool]] = []
    for what, build in builds:
        try:
            build()
        except Exception as err:  # only a missing setting is reported here; the rest when it loads
            found = config_missing(err)
            if found is not None:
                missing += [(what, key, secret) for key, secret in missing_keys(found)]
    return describe_missing(missing) if missing else None


def credentials_problem(systems: Iterable[tuple[str, str]]) -> str | None:
    """The credentials of each `(name, system)` that authenticates (ingestion.auth reads them lazily,
    so building a source does not): a missing key in the same one line, any other credentials
    problem as its own message; None when every system has what it needs."""
    from ingestion.auth import DIALECTS, AuthConfigError, load_auth_settings

    missing: list[tuple[str, str, bool]] = []
    for what, system in systems:
        if system not in DIALECTS:
            continue
        try:
            load_auth_settings(system)
        except AuthConfigError as err:
            if err.key is None:
                return str(err)
            missing.append((what, err.key, not err.key.endswith(".username")))
    return describe_missing(missing) if missing else None
