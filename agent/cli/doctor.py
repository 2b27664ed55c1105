"""``adpilot doctor``: what works, what to fix — in plain words, in seconds, offline too.

Each check returns ok / warn / fail / skipped with one line of advice. Network checks run only for
what is configured, after one quick reachability probe per host (about 2 s at most, all hosts in
parallel): offline, the report says so instead of hanging or printing a traceback. Secrets are
never printed: a key is "set", a token "valid for 41 days".
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlparse

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json, settings_for
from agent.errors import EXIT_FAILURE, EXIT_OK, AdpilotError
from agent.settings import Settings

Status = Literal["ok", "warn", "fail", "skipped"]
MISTRAL_DEFAULT_BASE = "https://api.mistral.ai/v1"
GOOGLE_ADS_HOST = "googleads.googleapis.com"
GOOGLE_OAUTH_HOST = "oauth2.googleapis.com"
META_HOST = "graph.facebook.com"
PROBE_TIMEOUT_S = 2.0
HTTP_TIMEOUT_S = 5.0
TOKEN_WARN_DAYS = 7


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    item: str
    status: Status
    detail: str
    advice: str = ""


Probe = Callable[[str, int], bool]


def reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` (DNS included)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        # getaddrinfo has no timeout of its own: a dead resolver would otherwise hang the doctor.
        future = pool.submit(_connect, host, port, timeout)
        try:
            return future.result(timeout=timeout + 0.5)
        except Exception:  # timeout, DNS failure, blocked socket: all mean "not reachable now"
            return False


def _connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except Exception:  # any refusal (including a test's network blocker) means unreachable
        return False


def _mistral_base(settings: Settings) -> str:
    return (settings.mistral_base_url or MISTRAL_DEFAULT_BASE).rstrip("/")


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def check_home(settings: Settings) -> Check:
    """The home directory exists (or can be created) and is writable."""
    home = settings.home
    if home.exists():
        if not home.is_dir():
            return Check("home", "fail", f"{home} is a file", "point --home / ADPILOT_HOME at a directory")
        probe = home / ".doctor-write-test"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return Check("home", "fail", f"{home} is not writable ({exc.strerror})", "fix its permissions")
        warehouse = "warehouse present" if settings.warehouse_path.exists() else "no warehouse yet"
        return Check("home", "ok", f"{home} ({warehouse})",
                     "" if settings.warehouse_path.exists() else "run `adpilot demo` or `adpilot data init`")
    parent = next((p for p in home.parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return Check("home", "fail", f"{home} cannot be created", "choose another --home")
    return Check("home", "warn", f"{home} does not exist yet", "it is created on first use (`adpilot demo`)")


def check_policy(settings: Settings) -> Check:
    """The policy file loads (through the policy engine, with its line-precise errors)."""
    path = settings.policy_file
    if not path.exists():
        return Check("policy", "fail", f"{path} not found", "set ADPILOT_POLICY_FILE to your policy YAML")
    try:
        from policies.engine import PolicyEngine
    except ImportError:
        return Check("policy", "warn", f"{path} present; the policy engine is not installed", "")
    try:
        engine = PolicyEngine.load(path)
    except AdpilotError as exc:
        return Check("policy", "fail", exc.message, f"run `adpilot policy check {path}`; until fixed, "
                     "every action is denied")
    return Check("policy", "ok", f"{path.name} loaded (version {engine.version[:12]})")


def check_platforms(settings: Settings) -> Check:
    """Which accounts use which platform."""
    if not settings.platforms:
        return Check("platforms", "ok", "every account uses the sandbox",
                     "route real accounts with ADPILOT_PLATFORMS='{\"1234567890\": \"google_ads\"}'")
    routed = ", ".join(f"{a}→{c}" for a, c in sorted(settings.platforms.items()))
    bad = [a for a, c in settings.platforms.items() if c == "meta" and not a.startswith("act_")]
    if bad:
        return Check("platforms", "fail", routed, f"Meta ad account ids start with act_: {', '.join(bad)}")
    return Check("platforms", "ok", routed)


def check_mistral(settings: Settings, online: bool | None, client: Any = None) -> Check:
    """The Mistral key and endpoint, and whether the configured models are served."""
    base = _mistral_base(settings)
    if settings.mistral_api_key is None:
        if settings.mistral_base_url:
            return Check("mistral", "warn", f"endpoint {base}, no key",
                         "set MISTRAL_API_KEY (an on-prem server may accept any value)")
        return Check("mistral", "skipped", "no MISTRAL_API_KEY: the deterministic planner and template copy run",
                     "set MISTRAL_API_KEY to switch on the LLM planner and copy")
    if online is False:
        return Check("mistral", "warn", f"key set, endpoint {base}; offline, not verified", "")
    import httpx

    http = client or httpx.Client(timeout=HTTP_TIMEOUT_S)
    try:
        response = http.get(f"{base}/models",
                            headers={"Authorization": f"Bearer {settings.mistral_api_key.get_secret_value()}"})
    except httpx.HTTPError as exc:
        return Check("mistral", "fail", f"{base} unreachable ({type(exc).__name__})",
                     "check MISTRAL_BASE_URL and the network")
    finally:
        if client is None:
            http.close()
    if response.status_code in (401, 403):
        return Check("mistral", "fail", f"{base} refused the key (HTTP {response.status_code})",
                     "create a new key at console.mistral.ai or fix MISTRAL_API_KEY")
    if response.status_code != 200:
        return Check("mistral", "fail", f"{base}/models answered HTTP {response.status_code}", "try again later")
    served = {m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)}
    missing = []
    for tier, model, fallback in (("planner", settings.planner_model, settings.planner_fallback),
                                  ("bulk", settings.bulk_model, settings.bulk_fallback),
                                  ("code", settings.code_model, settings.code_fallback)):
        if model.startswith("scripted:") or model in served:
            continue
        if fallback and fallback in served:
            missing.append(f"{tier} {model} not served, fallback {fallback} is")
        else:
            missing.append(f"{tier} {model} not served")
    if missing:
        hard = any(not m.endswith(" is") for m in missing)
        return Check("mistral", "fail" if hard else "warn", f"key accepted at {base}; " + "; ".join(missing),
                     "set ADPILOT_<TIER>_MODEL to a served model" if hard else "")
    return Check("mistral", "ok", f"key accepted at {base}; planner, bulk and code models are served")


def check_google_ads(settings: Settings, online: bool | None) -> Check:
    """google-ads.yaml / GOOGLE_ADS_* present and complete; the refresh token works (online)."""
    accounts = [a for a, c in settings.platforms.items() if c == "google_ads"]
    if not accounts and settings.google_ads_yaml is None:
        return Check("google_ads", "skipped", "no account uses Google Ads", "")
    from tools.adapters.google_ads import load_google_ads_config

    try:
        config = load_google_ads_config(settings.google_ads_yaml)
    except AdpilotError as exc:
        return Check("google_ads", "fail", exc.message, "see the README section 'Real ad platforms'")
    managers = {a: settings.google_ads_login_customer_ids.get(a) or config.get("login_customer_id") for a in accounts}
    via = ", ".join(f"{a} via manager {m}" if m else f"{a} direct" for a, m in managers.items()) or "no account routed"
    if online is False:
        return Check("google_ads", "warn", f"credentials present ({via}); offline, not verified", "")
    if not config.get("refresh_token"):
        return Check("google_ads", "ok", f"service-account credentials present ({via})", "")
    try:
        _refresh_google_token(config)
    except Exception as exc:  # google-auth raises several types; none may leak the token into the report
        return Check("google_ads", "fail", f"the refresh token was refused ({type(exc).__name__})",
                     "create a new refresh token (e.g. with the google-ads generate_user_credentials example)")
    return Check("google_ads", "ok", f"refresh token accepted ({via})", "")


def _refresh_google_token(config: dict[str, Any]) -> None:
    import google.auth.transport.requests
    from google.oauth2.credentials import Credentials

    credentials = Credentials(None, client_id=config["client_id"], client_secret=config["client_secret"],
                              refresh_token=config["refresh_token"], token_uri="https://oauth2.googleapis.com/token")
    request = google.auth.transport.requests.Request()

    def with_timeout(*args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = HTTP_TIMEOUT_S  # google-auth would wait 120 s by default
        return request(*args, **kwargs)

    credentials.refresh(with_timeout)


def check_meta(settings: Settings, online: bool | None, now: datetime | None = None) -> Check:
    """The Meta access token: present, valid, and how many days are left."""
    accounts = [a for a, c in settings.platforms.items() if c == "meta"]
    if settings.meta_access_token is None:
        if accounts:
            return Check("meta", "fail", f"{', '.join(accounts)} use Meta but META_ACCESS_TOKEN is not set",
                         "create a system-user token in Business Manager and set META_ACCESS_TOKEN")
        return Check("meta", "skipped", "no account uses Meta", "")
    if online is False:
        return Check("meta", "warn", "token set; offline, validity and expiry not checked", "")
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    from tools.adapters.meta import MetaPlatform

    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else None
    # An instance, not FacebookAdsApi.init: no global default api and never the crash reporter.
    api = FacebookAdsApi(FacebookSession(settings.meta_app_id, secret, settings.meta_access_token.get_secret_value(),
                                         timeout=HTTP_TIMEOUT_S), api_version=settings.meta_api_version)
    try:
        status = MetaPlatform(api, []).check_token()
    except AdpilotError as exc:
        return Check("meta", "fail", exc.message, "create a new access token")
    if not status.valid:
        return Check("meta", "fail", "the token is invalid or expired", "create a new access token")
    missing = [s for s in ("ads_management",) if s not in status.scopes]
    days = status.days_left(now or datetime.now(UTC))
    expiry = "never expires" if days is None else f"expires in {days:.0f} days"
    if missing:
        return Check("meta", "fail", f"token valid, {expiry}, but lacks {', '.join(missing)}",
                     "grant ads_management to the token")
    if days is not None and days < TOKEN_WARN_DAYS:
        return Check("meta", "warn", f"token valid, {expiry}", "replace it now (system-user tokens do not expire)")
    return Check("meta", "ok", f"token valid, {expiry}")


def network_hosts(settings: Settings) -> dict[str, tuple[str, int]]:
    """The hosts the configured checks need, by check name."""
    hosts: dict[str, tuple[str, int]] = {}
    if settings.mistral_api_key is not None:
        hosts["mistral"] = _host_port(_mistral_base(settings))
    if any(c == "google_ads" for c in settings.platforms.values()) or settings.google_ads_yaml is not None:
        hosts["google_ads"] = (GOOGLE_OAUTH_HOST, 443)
    if settings.meta_access_token is not None:
        hosts["meta"] = (META_HOST, 443)
    return hosts


def run_checks(settings: Settings, probe: Probe = reachable) -> tuple[str, list[Check]]:
    """(network summary, checks). Probes every needed host in parallel, then checks what can be checked."""
    hosts = network_hosts(settings)
    online: dict[str, bool] = {}
    if hosts:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = {name: pool.submit(probe, host, port) for name, (host, port) in hosts.items()}
            online = {name: f.result() for name, f in futures.items()}
    if not hosts:
        network = "not needed (nothing online is configured)"
    elif all(online.values()):
        network = "online"
    elif not any(online.values()):
        unreachable = ", ".join(sorted({h for h, _ in hosts.values()}))
        network = f"offline: {unreachable} unreachable; network checks skipped"
    else:
        network = "partly offline: " + ", ".join(f"{hosts[n][0]} unreachable" for n, ok in online.items() if not ok)
    checks = [check_home(settings), check_policy(settings), check_platforms(settings),
              check_mistral(settings, online.get("mistral")), check_google_ads(settings, online.get("google_ads")),
              check_meta(settings, online.get("meta"))]
    return network, checks


_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skipped": "dim"}


def register(app: typer.Typer) -> None:
    """Add the ``doctor`` command."""

    @app.command()
    def doctor(json_out: JsonOpt = False, home: HomeOpt = None) -> int:
        """Check the configuration and say, in plain words, what works and what to fix."""
        settings = settings_for(home)
        network, checks = run_checks(settings)
        failed = any(c.status == "fail" for c in checks)
        if json_out:
            print_json({"network": network, "ok": not failed, "checks": [asdict(c) for c in checks]})
        else:
            from rich.table import Table

            out = console()
            out.print(f"network: {network}")
            table = Table(show_header=True, header_style="bold")
            for column in ("item", "status", "detail", "what to do"):
                table.add_column(column)
            for c in checks:
                table.add_row(c.item, f"[{_STYLE[c.status]}]{c.status}[/]", c.detail, c.advice)
            out.print(table)
            out.print("some checks failed: fix the items marked fail" if failed else "nothing failed")
        return EXIT_FAILURE if failed else EXIT_OK
