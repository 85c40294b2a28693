"""The ledger's tables, in portable SQLAlchemy Core (SQLite and PostgreSQL).

Timestamps are stored as ISO-8601 UTC text: they sort correctly, round-trip
exactly on both databases, and are hashed into the audit chain byte for byte.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)

# 2: the cross-office tables (merge_groups, merge_claims, shared_owners). ``create_all`` makes new
# tables in an existing ledger; the version stops older code, which would not see a shared Contact's
# other owners, from opening a ledger that has them.
# 3: approvals.office_id (NULL: the approval covers every office), added by ``upgrade``. Older code
# would take one office's approval for every office's, so it must not open a ledger of version 3.
SCHEMA_VERSION = 3

metadata = MetaData()

_ID = 191  # fits an index key on every backend we target
_TS = 40

ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(_ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("office_id", String(_ID), nullable=False),
    Column("started_at", String(_TS), nullable=False),
    Column("finished_at", String(_TS)),
    Column("status", String(16), nullable=False),
    Column("spec_hash", String(128)),
    Column("notes", Text),
)

crosswalk = Table(
    "crosswalk",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("office_id", String(_ID), nullable=False),
    Column("source_object", String(64), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("zoho_module", String(64), nullable=False),
    Column("zoho_id", String(64), nullable=False),
    Column("row_hash", String(128)),
    Column("last_run_id", String(_ID), nullable=False),
    # NULL when the Zoho record existed before us and we only updated it.
    Column("created_by_run", String(_ID)),
    Column("first_written_at", String(_TS), nullable=False),
    Column("last_written_at", String(_TS), nullable=False),
    # Modified_Time Zoho reported after our last write: a different value later
    # means someone else edited the record.
    Column("zoho_modified_time", String(_TS)),
    Column("parent_module", String(64)),
    Column("parent_zoho_id", String(64)),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("deleted_by_run", String(_ID)),
    Column("deleted_at", String(_TS)),
    UniqueConstraint("office_id", "source_object", "source_id", name="uq_crosswalk_source"),
    UniqueConstraint("zoho_module", "zoho_id", name="uq_crosswalk_zoho"),
)
Index("ix_crosswalk_created_by_run", crosswalk.c.created_by_run)
Index("ix_crosswalk_last_run_id", crosswalk.c.last_run_id)

audit_log = Table(
    "audit_log",
    metadata,
    # Assigned by the appender (tip + 1), never by the database, so the chain
    # is gap-free by construction and a missing row shows as a gap.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", String(_ID), nullable=False),
    Column("time", String(_TS), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("module", String(64), nullable=False),
    Column("source_id", String(_ID)),
    Column("zoho_id", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("code", String(64)),
    Column("credits", Integer, nullable=False),
    Column("http_status", Integer),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_run", audit_log.c.run_id)

# One row: the last seq and hash. Appenders lock it (SELECT ... FOR UPDATE on
# PostgreSQL, BEGIN IMMEDIATE on SQLite), and verify compares it with the last
# entry so that cutting rows off the end of the log also shows.
audit_tip = Table(
    "audit_tip",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

api_calls = Table(
    "api_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(_ID), nullable=False),
    Column("time", String(_TS), nullable=False),
    Column("method", String(8)),
    Column("path_template", String(255)),
    Column("module", String(64)),
    Column("record_count", Integer),
    Column("http_status", Integer),
    Column("credits", Integer),
    Column("latency_ms", Integer),
    Column("outcome", String(16)),
)
Index("ix_api_calls_run", api_calls.c.run_id)

pre_images = Table(
    "pre_images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(_ID), nullable=False),
    Column("module", String(64), nullable=False),
    Column("zoho_id", String(64), nullable=False),
    Column("captured_at", String(_TS), nullable=False),
    Column("record_json", Text, nullable=False),
    Column("restored_by_run", String(_ID)),
    Column("restored_at", String(_TS)),
    UniqueConstraint("run_id", "module", "zoho_id", name="uq_pre_image_run_record"),
)
Index("ix_pre_images_record", pre_images.c.module, pre_images.c.zoho_id)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(_ID), nullable=False),
    Column("office_id", String(_ID), nullable=False),
    Column("source_object", String(64), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("field", String(128)),
    Column("value_class", String(64), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", String(_TS), nullable=False),
)
Index("ix_quarantine_run", quarantine.c.run_id)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("spec_hash", String(128), nullable=False),
    Column("approved_by", String(128), nullable=False),
    Column("approved_at", String(_TS), nullable=False),
    Column("spec_path", String(1024)),
    # The one office this approval opens; NULL: every office (what every approval before version 3 was).
    Column("office_id", String(_ID)),
)
Index("ix_approvals_spec_hash", approvals.c.spec_hash)


# -- patients seen at several offices (policy ``merge``, see docs/cross_office.md) ---------------

# The org-level audit's groups of records taken for one person, as the loader merges them:
# Source_System_IDs only, replaced whole by each audit.
merge_groups = Table(
    "merge_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_key", String(64), nullable=False),
    Column("office_id", String(_ID), nullable=False),
    Column("source_object", String(64), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("basis", String(64), nullable=False),
    Column("detected_at", String(_TS), nullable=False),
    UniqueConstraint("office_id", "source_object", "source_id", name="uq_merge_groups_source"),
)
Index("ix_merge_groups_key", merge_groups.c.group_key)

# Which member of a group creates its Contact: the first office to load it. Two offices loading
# the same person at once both see this row (their decisions are serialised on the audit tip),
# so only one of them creates; the other joins once the Contact is in the crosswalk.
merge_claims = Table(
    "merge_claims",
    metadata,
    Column("group_key", String(64), primary_key=True, autoincrement=False),
    Column("office_id", String(_ID), nullable=False),
    Column("source_object", String(64), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("run_id", String(_ID), nullable=False),
    Column("claimed_at", String(_TS), nullable=False),
)

# Every owner of a Contact that several offices share. The crosswalk keeps one row per Zoho record
# (the office that created it, whose Source_System_ID the record carries); this table lists that
# office ('created') and each office whose patient joined it ('joined'), each until its rollback
# releases it. A Zoho record with no rows here is not shared.
shared_owners = Table(
    "shared_owners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("zoho_module", String(64), nullable=False),
    Column("zoho_id", String(64), nullable=False),
    Column("office_id", String(_ID), nullable=False),
    Column("source_object", String(64), nullable=False),
    Column("source_id", String(_ID), nullable=False),
    Column("role", String(16), nullable=False),
    # The run that created the record or joined it (``rollback --run`` releases what it joined).
    Column("run_id", String(_ID), nullable=False),
    # The joined row's shaped hash: the load's accounting counts it loaded while it is current.
    Column("row_hash", String(128)),
    Column("since", String(_TS), nullable=False),
    Column("released", Boolean, nullable=False, default=False),
    Column("released_by_run", String(_ID)),
    Column("released_at", String(_TS)),
    UniqueConstraint("office_id", "source_object", "source_id", "zoho_module", "zoho_id", name="uq_shared_owner"),
)
Index("ix_shared_owners_zoho", shared_owners.c.zoho_module, shared_owners.c.zoho_id)
Index("ix_shared_owners_run", shared_owners.c.run_id)


# -- upgrades ---------------------------------------------------------------------------------------


def _add_approval_office(conn: Connection) -> None:
    # A ledger another process upgraded while this one waited already has the column.
    if "office_id" in {c["name"] for c in inspect(conn).get_columns(approvals.name)}:
        return
    column = approvals.c.office_id
    conn.exec_driver_sql(f"ALTER TABLE {approvals.name} ADD COLUMN {column.name} "
                         f"{column.type.compile(dialect=conn.dialect)}")


# Version -> what brings a ledger of the version before it there (new tables need nothing: create_all).
_UPGRADES = {3: _add_approval_office}


def upgrade(conn: Connection, version: int) -> None:
    """Bring a ledger of ``version`` to SCHEMA_VERSION, in the caller's transaction (after create_all)."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        step = _UPGRADES.get(target)
        if step is not None:
            step(conn)
