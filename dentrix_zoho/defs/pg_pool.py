"""Dagster's PostgreSQL storages holding one connection per process instead of one per query.

``dagster-postgres`` builds its engines with SQLAlchemy's ``NullPool``: every event a run writes, every
partition-key check and every pool-slot claim opens a new connection (SCRAM authentication and a
backend process each) and closes it. Measured on the offices benchmark (6 offices, 4 runs at once,
2 cores) that was about 15 s of a 65 s office run, spent in ``psycopg2.connect``.

These subclasses keep Dagster's own storages and tables and change only the engine: a ``QueuePool``
that keeps one connection per storage and process, opens more only while more are in use at once
(and closes those when they come back, as ``NullPool`` does, so a busy daemon never waits for the
pool), and pings the kept one before use, so after a PostgreSQL restart it is replaced instead of
failing the next query (the connect itself stays inside Dagster's connect retries).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

KEPT_CONNECTIONS = 1
# Beyond the kept connection: as many as are wanted at once, each closed when it is returned.
UNBOUNDED_OVERFLOW = -1
RECYCLE_SECONDS = 3_600  # a kept connection is renewed hourly (idle timeouts of proxies and firewalls)


def pooled_engine(storage: Any) -> sqlalchemy.engine.Engine:
    """The storage's engine, pooled: same URL, AUTOCOMMIT and token hook as ``dagster-postgres`` sets."""
    old: sqlalchemy.engine.Engine = storage._engine
    engine = create_pg_engine(
        storage.postgres_url, getattr(storage, "_token_provider", None), isolation_level="AUTOCOMMIT",
        pool_size=KEPT_CONNECTIONS, max_overflow=UNBOUNDED_OVERFLOW, pool_pre_ping=True,
        pool_recycle=RECYCLE_SECONDS,
    )
    old.dispose()
    return engine


class _Pooled:
    """Mixed in before a dagster-postgres storage: its engine pooled once the storage is built."""

    _engine: sqlalchemy.engine.Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine = pooled_engine(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        # The parents' from_config_value build the parent class by name, not ``cls``.
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    pass


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    pass


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    pass
