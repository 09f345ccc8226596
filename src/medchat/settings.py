"""Every setting of medchat, read from ``MEDCHAT_*`` environment variables into one typed object.

``Settings.load()`` validates everything at start-up; a bad value raises ``SettingsError`` with a
message that names the variable, so ``medchat serve`` can print it and stop.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from medchat.heartbeat import default_heartbeat_file

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_KEY_LENGTH = 32
FILE_SUFFIX = "_FILE"
SECRET_FIELDS = ("secret_key", "mongodb_uri", "redis_url", "qdrant_url", "qdrant_api_key", "llm_api_key")
"""Settings that may also be read from a file named by ``MEDCHAT_<NAME>_FILE`` (a mounted Secret)."""


class SettingsError(Exception):
    """A setting is missing or invalid; the message is meant for the operator."""


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("medchat", appauthor=False))


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SecretFilesSource(PydanticBaseSettingsSource):
    """``MEDCHAT_<NAME>_FILE=/path``: the file's content, stripped, is the value of ``MEDCHAT_<NAME>``.

    Setting a variable and its ``_FILE`` variant together, or naming a file that cannot be read, is an error
    that names them (never the value). Every such problem is reported at once.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in SECRET_FIELDS:
            variable = f"MEDCHAT_{field.upper()}"
            file_variable = variable + FILE_SUFFIX
            path = os.environ.get(file_variable)
            if path is None:
                continue
            if variable in os.environ:
                problems.append(f"{variable} and {file_variable} are both set: keep one of them")
                continue
            try:
                values[field] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                problems.append(f"{file_variable}: cannot read {path}: {reason}")
        if problems:
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems))
        return values


class Settings(BaseSettings):
    """medchat's configuration. Each field is read from ``MEDCHAT_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix="MEDCHAT_", extra="ignore", frozen=True)

    # --- process -------------------------------------------------------------------------------
    environment: Literal["development", "production", "test"] = "development"
    """``production`` requires real secrets and switches logs to JSON."""
    data_dir: Path = Field(default_factory=_default_data_dir)
    """Holds all embedded state: databases, vector index, uploaded files, the generated secret."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    """The address users reach (``https://...``); cookies are marked Secure when it is https."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: JSON in production, readable lines in a terminal."""
    secret_key: str | None = Field(default=None, repr=False)
    """Signs tokens and cookies. Required in production; generated once into the data dir otherwise."""
    worker_heartbeat_path: Path = Field(default_factory=default_heartbeat_file)
    """``medchat worker`` touches this file while its Redis answers; ``medchat worker --check`` (a container
    probe) exits 0 while it is fresh. Default: ``medchat-worker.alive`` in the temporary directory."""
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """How often the worker touches its heartbeat file."""
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    """``medchat worker`` serves ``/metrics`` for Prometheus on this port (on ``host``); 0 serves none. Inside
    ``medchat serve`` the jobs' metrics are in the web ``/metrics``."""
    worker_shutdown_grace_seconds: int = Field(default=300, ge=0)
    """On SIGTERM ``medchat worker`` takes no new jobs and lets running ones finish for up to this long, then
    cancels the rest, which go back on the queue for another worker. Keep it below the pod's
    ``terminationGracePeriodSeconds``."""
    instance_ttl_seconds: float = Field(default=15.0, gt=0)
    """Each process keeps ``medchat:instance:<id>`` in Redis with this TTL; answers and ingestion jobs of an
    instance whose key has lapsed are orphans (failed, or requeued) at the next sweep."""
    instance_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """How often a process refreshes its instance key (well under ``instance_ttl_seconds``)."""
    orphan_sweep_seconds: float = Field(default=5.0, gt=0)
    """How often serving and worker processes look for answers and ingestion jobs left by a dead process."""

    # --- stores: a URL means a real server; none means an embedded stand-in ---------------------
    mongodb_uri: str | None = None
    mongodb_database: str = "medchat"
    mongodb_write_concern: str = Field(default="majority", pattern=r"^(majority|\d+)$")
    """Write concern of every write (``w``), journaled: ``majority`` survives the loss of a replica-set member;
    a number counts members. The embedded store and a standalone server treat ``majority`` as their one node."""
    mongodb_read_concern: Literal["local", "majority"] = "majority"
    """Read concern of every read: ``majority`` reads only what a majority has written (never rolled back)."""
    redis_url: str | None = None
    qdrant_url: str | None = None
    qdrant_api_key: str | None = Field(default=None, repr=False)
    qdrant_collection: str = "passages"
    store_timeout_seconds: float = Field(default=4.0, gt=0)
    """How long a MongoDB or Redis operation may wait for its server (connecting, selecting it, each reply)
    before the request answers 503 ``dependency_unavailable``; a retried read may take it twice."""
    embedded_restart_delay_seconds: float = Field(default=1.0, gt=0)
    """First wait before an embedded store server that died is started again; doubles while it keeps
    failing, up to 30 s."""

    # --- auth ------------------------------------------------------------------------------------
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    session_days: int = Field(default=14, ge=1, le=365)
    registration: Literal["open", "closed"] = "open"
    registration_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """When set, only emails in these domains may register (comma-separated)."""
    login_attempts_per_minute: int = Field(default=5, ge=1)
    """Failed logins allowed per account *from one client address* in any 60 s; the next attempt from that
    address answers 429 until the window slides. The owner signing in from elsewhere is not affected."""
    login_attempts_per_minute_per_address: int = Field(default=30, ge=1)
    """Failed logins allowed per client address in any 60 s, whatever the accounts (higher: many people share
    one address)."""
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_hash_time_cost: int = Field(default=2, ge=1)
    """argon2id passes. The defaults are OWASP's (19 MiB, 2 passes, 1 lane): ~75 ms per hash on 2 cores, where
    RFC 9106's 64 MiB/3 passes takes ~510 ms. Changing a cost rehashes each password at its next login."""
    password_hash_memory_kib: int = Field(default=19456, ge=8)
    """argon2id memory in KiB."""
    password_hash_parallelism: int = Field(default=1, ge=1)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    login_attempts_per_minute_per_account: int = Field(default=100, ge=1)
    """Failed logins allowed per account from all addresses together in any 60 s: guessing spread over many
    addresses. Much roomier than ``login_attempts_per_minute``, so a stranger cannot lock the owner out cheaply."""
    registrations_per_hour_per_address: int = Field(default=20, ge=1)
    """Sign-up attempts (API and page) allowed per client address in any hour; more answer 429."""
    password_failures_per_hour: int = Field(default=10, ge=1)
    """Wrong current passwords allowed per account in any hour when changing the password or deleting the
    account (API and page); more answer 429, so a stolen session cannot be used to guess the password."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Networks of the reverse proxies in front of medchat (comma-separated CIDRs, e.g. ``10.42.0.0/16``;
    default none). Only a peer in them is believed about the client's address (``X-Forwarded-For``, else
    ``Forwarded``: the right-most address not in these networks); every limit and the audit log use it."""
    api_key_requests_per_minute: int = Field(default=60, ge=1)
    """Requests each personal API key may make to ``/v1/`` in any 60 s; more answer 429 with ``Retry-After``."""
    api_keys_per_user: int = Field(default=20, ge=1, le=1000)
    """Unrevoked personal API keys one account may hold; creating one more answers 409 ``too_many_api_keys``."""

    # --- llm -------------------------------------------------------------------------------------
    llm_provider: Literal["auto", "remote", "local", "sources-only"] = "auto"
    """``auto``: the remote model with an API key, else the local model if installed, else sources-only."""
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_model: str = "openai/gpt-4o-mini"
    """The default model: ``medchat`` on ``/v1`` and the composer's first choice."""
    llm_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """The model ids the endpoint serves that users may choose (comma-separated); ``llm_model`` is always one
    of them (added first when missing: see ``offered_llm_models``), each other id is offered as
    ``medchat/<id>``. Default: just ``llm_model``."""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_output_tokens: int = Field(default=1024, ge=16)
    llm_context_tokens: int = Field(default=8000, ge=512)
    """Token budget for the prompt: system prompt, passages and as much history as fits."""

    # --- retrieval -------------------------------------------------------------------------------
    max_upload_mb: int = Field(default=50, ge=1)
    originals_store: Literal["mongodb", "files"] = "mongodb"
    """Where uploaded originals are kept: ``mongodb`` (GridFS, bucket ``originals``: no shared volume between
    web and worker processes) or ``files`` (``<data dir>/uploads``: one machine, or a volume all of them mount)."""
    search_top_k: int = Field(default=6, ge=1, le=50)
    search_score_threshold: float = Field(default=0.3, ge=0)
    search_chunks_per_document: int = Field(default=2, ge=1, le=50)
    """Passages of one document a search returns at most (adjacent chunks merged count once each)."""
    chunk_tokens: int = Field(default=220, ge=32)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    max_media_mb: int = Field(default=25, ge=1)
    """The largest image (OCR) or recording (speech) the composer's helpers and the API accept."""
    parse_max_extracted_mb: int = Field(default=200, ge=1)
    """What the members of a DOCX (a zip archive) may expand to in total; larger archives fail unread."""
    parse_max_compression_ratio: int = Field(default=100, ge=1)
    """How many times its compressed size one archive member may expand to (members over 1 MB expanded)."""
    parse_max_archive_members: int = Field(default=5000, ge=1)
    parse_memory_mb: int = Field(default=2048, ge=256)
    """Address space of a parse worker (a child process): a parse needing more fails the document."""
    parse_cpu_seconds: int = Field(default=300, ge=1)
    """CPU time one parse, OCR or transcription may use in its worker before the worker is stopped."""
    parse_timeout_seconds: float = Field(default=600.0, gt=0)
    """Wall-clock time one parse, OCR or transcription may take before its worker is stopped."""
    heavy_work_concurrency: int = Field(default=2, ge=1, le=32)
    """Parses, OCR and transcriptions running at once in a process (one parse worker each)."""
    heavy_work_wait_seconds: float = Field(default=5.0, ge=0)
    """How long an OCR or speech request waits for a free worker before answering 503 ``busy``."""
    media_requests_per_hour_user: int = Field(default=60, ge=0)
    """OCR and speech requests (each counted apart) a user may make per clock hour; 0 = unlimited."""
    ingest_stale_minutes: float = Field(default=30.0, gt=0)
    """A document ``processing`` this long without progress, stored before ingestion jobs had an owner
    instance, was orphaned by a crash and is queued again."""

    # --- safety ----------------------------------------------------------------------------------
    emergency_number: str = "112"
    ungrounded_policy: Literal["warn", "refuse"] = "warn"
    redact_phi_for_llm: bool = False
    audit_retention_days: int = Field(default=365, ge=1)
    """Audit events older than this are purged daily by the worker."""
    out_of_scope_topics: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["individual_dosing"])
    """Requests refused without asking the model (comma-separated topics of ``chat/safety/scope_rules.tsv``:
    ``individual_dosing``, ``personal_diagnosis``, ``medication_change``; empty refuses nothing). The default
    refuses working out a dose for a particular person, which needs a prescriber who knows that person;
    dose information in general is still answered from the sources. An unknown name stops start-up."""
    out_of_scope_message: str = ""
    """What a refused request is told; empty: the reviewed message of the matched topic (``chat/safety/scope.py``)."""

    # --- per-user limits (0 = unlimited) --------------------------------------------------------
    messages_per_hour_user: int = Field(default=60, ge=0)
    """Questions (new, edited or regenerated) a ``user`` may send per clock hour (UTC)."""
    messages_per_hour_admin: int = Field(default=0, ge=0)
    tokens_per_day_user: int = Field(default=200_000, ge=0)
    """Model tokens (prompt + completion, as the model reports them) a ``user``'s answers may use per UTC day.
    Counted when an answer completes; a question is refused once the day's budget is used up."""
    tokens_per_day_admin: int = Field(default=0, ge=0)

    # --- chat ----------------------------------------------------------------------------------
    chat_max_message_chars: int = Field(default=8000, ge=100, le=100_000)
    """The longest question a user may send."""
    chat_history_turns: int = Field(default=8, ge=0, le=100)
    """Earlier question/answer pairs of the thread sent with a question (the llm module trims to its budget)."""
    chat_follow_up_queries: Literal["auto", "terms", "off"] = "auto"
    """How a follow-up ("and how is it treated?") is searched: ``auto`` has a remote model rewrite it as a
    standalone question (one short call; the thread's topic words when that fails), ``terms`` always uses
    the topic words of the thread's earlier questions, ``off`` searches the question as asked."""
    chat_model_titles: bool = True
    """A new conversation is titled by the question's first words at once and then, with a model, by a title
    the model writes (one short call, beside the answer, never delaying it); false keeps the first words and
    saves that call."""
    chat_stale_streaming_minutes: float = Field(default=10.0, gt=0)
    """An answer still ``streaming`` this long after it started, stored before answers had an owner instance,
    was orphaned by a crash and is marked failed (owned answers fail once their owner's heartbeat lapses)."""
    openai_store_conversations: bool = True
    """Keep the conversations the OpenAI-compatible ``/v1`` endpoint starts; false: each is deleted as soon
    as its answer is finished (the audit log keeps its create and delete events)."""

    _split = field_validator(
        "registration_domains", "cors_origins", "out_of_scope_topics", "trusted_proxies", "llm_models", mode="before"
    )(_split_csv)

    @field_validator("llm_models")
    @classmethod
    def _distinct_models(cls, models: list[str]) -> list[str]:
        return list(dict.fromkeys(model.strip() for model in models if model.strip()))

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_network(network, strict=False)) for network in networks]
        except ValueError as error:
            raise ValueError(f"{error} (write CIDRs such as 10.42.0.0/16, comma-separated)") from None

    @field_validator("registration_domains")
    @classmethod
    def _lowercase_domains(cls, domains: list[str]) -> list[str]:
        return [domain.lower().lstrip("@") for domain in domains]

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.environment == "production" and not self.secret_key:
            raise ValueError(
                "MEDCHAT_SECRET_KEY (or MEDCHAT_SECRET_KEY_FILE) is required when MEDCHAT_ENVIRONMENT=production"
            )
        # Every environment: a short key makes tokens, sessions' CSRF tokens and cookies guessable.
        if self.secret_key is not None and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"MEDCHAT_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings, file_secret_settings)

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment (plus ``overrides``), or raise ``SettingsError`` naming each bad variable."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as error:
            problems = []
            for item in error.errors():
                field = ".".join(str(part) for part in item["loc"])
                name = f"MEDCHAT_{field.upper()}" if field else "settings"
                problems.append(f"{name}: {item['msg']}")
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None

    @property
    def offered_llm_models(self) -> list[str]:
        """``llm_models`` with ``llm_model`` (the default) in it: first when the list did not name it."""
        return self.llm_models if self.llm_model in self.llm_models else [self.llm_model, *self.llm_models]

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded_mongodb(self) -> bool:
        return self.mongodb_uri is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def embedded_qdrant(self) -> bool:
        return self.qdrant_url is None

    @property
    def any_store_embedded(self) -> bool:
        """True when at least one store is embedded: serving is then pinned to one process, which also
        runs the arq worker (``medchat worker`` and ``serve --workers N`` need every store real)."""
        return bool(self.embedded_store_variables)

    @property
    def embedded_store_variables(self) -> tuple[str, ...]:
        """The URL variables left unset, whose stores are embedded (in the order mongodb, redis, qdrant)."""
        embedded = {
            "MEDCHAT_MONGODB_URI": self.embedded_mongodb,
            "MEDCHAT_REDIS_URL": self.embedded_redis,
            "MEDCHAT_QDRANT_URL": self.embedded_qdrant,
        }
        return tuple(variable for variable, is_embedded in embedded.items() if is_embedded)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    @cached_property
    def signing_key(self) -> str:
        """The configured secret, or one generated once and kept in the data dir (not in production)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            candidate = path.with_suffix(".tmp")
            candidate.write_text(secrets.token_urlsafe(48))
            candidate.chmod(0o600)
            candidate.replace(path)
        return path.read_text().strip()
