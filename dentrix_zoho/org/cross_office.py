"""Patients seen at several offices: candidate same-person groups across the offices' staged snapshots.

Blocked by birth date and gender (``identity.same_person`` needs both to agree): the offices'
staging files are attached read-only to one in-memory DuckDB, which keeps only the (birth date,
gender) blocks that hold patients of two or more offices and hands them over sorted, a chunk at a
time; Python compares one block at a time with the project's fuzzy rules. Memory holds a block,
a chunk and the groups found (ids only), whatever the number of offices.

The Markdown report (the org reports folder, owner-only) lists groups by ``Source_System_ID`` and
match basis; like the single-office audit it never holds a name, birth date, phone or e-mail.
``DetectionResult.counts()`` is what logs and Dagster metadata may carry.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from dentrix_zoho.ledger import Ledger, MergeMember
from dentrix_zoho.mapping.identity import digits, norm, same_person
from dentrix_zoho.mapping.ids import source_system_id
from dentrix_zoho.org.policy import CrossOfficePolicy
from dentrix_zoho.source.audit import write_private

log = logging.getLogger(__name__)

PATIENT_OBJECT = "patient"
REPORT_NAME = "cross_office_audit.md"
# Rows fetched from DuckDB per round trip.
CHUNK_ROWS = 10_000
# DuckDB's budget for the sort; beyond it the sort spills to a temporary folder.
MEMORY_LIMIT = "256MB"
BASES: tuple[str, ...] = ("name", "phone", "email")
_COLUMNS = ("gender", "lastname", "firstname", "pager", "emailaddr")


class CrossOfficeAuditError(RuntimeError):
    """An office's staged snapshot cannot be read (names the office and the file, never a value)."""


@dataclass(frozen=True, slots=True)
class MatchPair:
    a: str  # Source_System_ID
    b: str
    basis: tuple[str, ...]  # of BASES, in that order


@dataclass
class CrossOfficeGroup:
    """Records of two or more offices taken for one person (ids only)."""

    key: str
    members: tuple[str, ...]  # Source_System_IDs, sorted
    pairs: list[MatchPair]
    offices: tuple[str, ...]

    @property
    def basis(self) -> tuple[str, ...]:
        found = {b for pair in self.pairs for b in pair.basis}
        return tuple(b for b in BASES if b in found)

    @property
    def repeated_offices(self) -> tuple[str, ...]:
        """Offices with two records in the group: a duplicate inside one office, for a person to resolve."""
        per_office: dict[str, int] = {}
        for member in self.members:
            office = member.split(":", 1)[0]
            per_office[office] = per_office.get(office, 0) + 1
        return tuple(sorted(o for o, n in per_office.items() if n > 1))

    @property
    def mergeable(self) -> bool:
        # Merging would also merge two records of one office: that is the single-office audit's
        # duplicate, which a person resolves; the policy never does it.
        return not self.repeated_offices


@dataclass
class DetectionResult:
    offices: tuple[str, ...]
    patients: dict[str, int] = field(default_factory=dict)  # per office: staged patients with a birth date
    compared: int = 0  # patients in blocks shared by two or more offices
    blocks: int = 0
    pairs_compared: int = 0
    groups: list[CrossOfficeGroup] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Counts only: safe for logs and Dagster metadata."""
        mergeable = [g for g in self.groups if g.mergeable]
        out = {
            "offices": len(self.offices),
            "patients_with_birth_date": sum(self.patients.values()),
            "patients_in_shared_blocks": self.compared,
            "birth_date_blocks": self.blocks,
            "pairs_compared": self.pairs_compared,
            "candidate_pairs": sum(len(g.pairs) for g in self.groups),
            "groups": len(self.groups),
            "records_in_groups": sum(len(g.members) for g in self.groups),
            "mergeable_groups": len(mergeable),
            "unmergeable_groups": len(self.groups) - len(mergeable),
        }
        for basis in BASES:
            out[f"pairs_by_{basis}"] = sum(1 for g in self.groups for p in g.pairs if basis in p.basis)
        return out

    def merge_members(self) -> list[MergeMember]:
        """The mergeable groups as the ledger keeps them for the loader."""
        return [
            MergeMember(g.key, sid.split(":", 1)[0], PATIENT_OBJECT, sid, ",".join(g.basis))
            for g in self.groups
            if g.mergeable
            for sid in g.members
        ]


# -- detection -------------------------------------------------------------------------------


def detect_cross_office(
    staging: Mapping[str, Path],
    *,
    chunk_rows: int = CHUNK_ROWS,
    memory_limit: str = MEMORY_LIMIT,
) -> DetectionResult:
    """Candidate same-person groups across offices; ``staging`` maps office id -> its staging DuckDB file.

    Several offices may name one file (the single-file layout keeps every office's rows, told apart
    by ``_office_id``); each file is attached once, read-only.
    """
    offices = tuple(sorted(staging))
    result = DetectionResult(offices=offices)
    if len(offices) < 2:
        result.patients = {o: 0 for o in offices}
        return result
    with tempfile.TemporaryDirectory(prefix="cross_office_") as spill:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{_quoted(spill)}'")
            aliases = _attach(con, staging)
            con.execute(f"CREATE TEMP VIEW org_patients AS {_union(aliases)}")
            result.patients = _patients_per_office(con, offices)
            _match_blocks(con, result, chunk_rows)
        finally:
            con.close()
    result.groups.sort(key=lambda g: g.members)
    log.info("cross-office audit: %s", result.counts())
    return result


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _attach(con: duckdb.DuckDBPyConnection, staging: Mapping[str, Path]) -> dict[str, str]:
    """Office -> the alias of its attached file."""
    by_file: dict[Path, str] = {}
    aliases: dict[str, str] = {}
    for office in sorted(staging):
        path = Path(staging[office]).expanduser().resolve()
        if path not in by_file:
            if not path.is_file():
                raise CrossOfficeAuditError(f"office {office}: no staged snapshot at {path} (stage the office first)")
            alias = f"office_{len(by_file)}"
            try:
                con.execute(f"ATTACH '{_quoted(str(path))}' AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                raise CrossOfficeAuditError(
                    f"office {office}: cannot open {path} read-only ({type(exc).__name__}); "
                    "is the office's staging still running?"
                ) from None
            has_patients = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'dentrix' "
                "AND table_name = 'patient'",
                [alias],
            ).fetchone()
            if not has_patients or not has_patients[0]:
                raise CrossOfficeAuditError(f"office {office}: {path} has no staged dentrix.patient table")
            by_file[path] = alias
        aliases[office] = by_file[path]
    return aliases


def _union(aliases: Mapping[str, str]) -> str:
    parts = []
    for office, alias in sorted(aliases.items()):
        literal = _quoted(office)
        parts.append(
            f"SELECT '{literal}' AS office_id, patid, CAST(birthdate AS DATE) AS birthdate, "
            "coalesce(CAST(gender AS INTEGER), -1) AS gender_block, gender, lastname, firstname, pager, emailaddr "
            f"FROM {alias}.dentrix.patient WHERE _office_id = '{literal}' AND birthdate IS NOT NULL "
            "AND patid IS NOT NULL"
        )
    return " UNION ALL ".join(parts)


def _patients_per_office(con: duckdb.DuckDBPyConnection, offices: Sequence[str]) -> dict[str, int]:
    counts = dict(con.execute("SELECT office_id, count(*) FROM org_patients GROUP BY office_id").fetchall())
    return {office: int(counts.get(office, 0)) for office in offices}


def _match_blocks(con: duckdb.DuckDBPyConnection, result: DetectionResult, chunk_rows: int) -> None:
    cursor = con.execute(
        f"""
        WITH shared AS (
            SELECT birthdate, gender_block FROM org_patients GROUP BY ALL HAVING count(DISTINCT office_id) > 1)
        SELECT p.birthdate, p.gender_block, p.office_id, p.patid, {", ".join(f"p.{c}" for c in _COLUMNS)}
        FROM org_patients p JOIN shared USING (birthdate, gender_block)
        ORDER BY p.birthdate, p.gender_block, p.office_id, p.patid
        """
    )
    for block in _blocks(cursor, chunk_rows):
        result.blocks += 1
        result.compared += len(block)
        result.groups.extend(_block_groups(block, result))


def _blocks(cursor: duckdb.DuckDBPyConnection, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of one (birth date, gender) block at a time, read ``chunk_rows`` at a time."""
    block: list[tuple[Any, ...]] = []
    current: tuple[Any, Any] | None = None
    while True:
        chunk = cursor.fetchmany(chunk_rows)
        if not chunk:
            break
        for row in chunk:
            key = (row[0], row[1])
            if key != current and block:
                yield block
                block = []
            current = key
            block.append(row)
    if block:
        yield block


def _block_groups(block: Sequence[tuple[Any, ...]], result: DetectionResult) -> list[CrossOfficeGroup]:
    people = [
        (str(row[2]), source_system_id(str(row[2]), PATIENT_OBJECT, int(row[3])), dict(zip(_COLUMNS, row[4:], strict=True)))
        for row in block
    ]
    parent = list(range(len(people)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs: list[tuple[int, int, tuple[str, ...]]] = []
    for i, (office_a, _, a) in enumerate(people):
        for j in range(i + 1, len(people)):
            office_b, _, b = people[j]
            if office_a == office_b:
                continue  # one office's own duplicates are the single-office audit's
            result.pairs_compared += 1
            if not same_person(a, b):
                continue
            pairs.append((i, j, match_basis(a, b)))
            parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i, j, _ in pairs:
        members.setdefault(find(i), [])
    for i in range(len(people)):
        root = find(i)
        if root in members:
            members[root].append(i)
    groups = []
    for root, indexes in members.items():
        ids = tuple(sorted(people[i][1] for i in indexes))
        group_pairs = sorted(
            (MatchPair(*sorted((people[i][1], people[j][1])), basis) for i, j, basis in pairs if find(i) == root),
            key=lambda p: (p.a, p.b),
        )
        offices = tuple(sorted({people[i][0] for i in indexes}))
        groups.append(CrossOfficeGroup(group_key(ids), ids, group_pairs, offices))
    return groups


def match_basis(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    """Which of name, phone (mobile) and e-mail two matched records agree on."""
    no_contact = {"pager": None, "emailaddr": None}
    basis = []
    if same_person({**a, **no_contact}, {**b, **no_contact}):
        basis.append("name")
    if digits(a.get("pager")) and digits(a.get("pager")) == digits(b.get("pager")):
        basis.append("phone")
    if norm(a.get("emailaddr")) and norm(a.get("emailaddr")) == norm(b.get("emailaddr")):
        basis.append("email")
    return tuple(basis)


def group_key(members: Iterable[str]) -> str:
    """Stable for the same records, whichever office's run computes it."""
    return hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:32]


# -- the report and the merge map ------------------------------------------------------------


@dataclass
class CrossOfficeAudit:
    path: Path
    result: DetectionResult
    policy: CrossOfficePolicy
    recorded: int  # records whose groups the ledger now holds for the loader (policy merge)

    def summary(self) -> dict[str, int | str]:
        return {**self.result.counts(), "policy": self.policy.policy, "merge_records_recorded": self.recorded}


def render_report(result: DetectionResult, policy: CrossOfficePolicy) -> str:
    counts = result.counts()
    lines = [
        "# Cross-office patient audit",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the staged snapshots of {len(result.offices)} offices.",
        "This file may list record ids; it holds no names, birth dates, phones or e-mails.",
        "",
        "Records of different offices are candidates for one person when their birth dates agree and their "
        "genders agree, and either their names are close, or their last names are close and their mobile "
        "phones or e-mails are the same (the rules that flag duplicates inside one office).",
        "",
        f"Policy: **{policy.policy}** — "
        + (
            "one Contact per person in a mergeable group: the first office to load it creates it, the others "
            "join it (docs/cross_office.md)."
            if policy.merge
            else "every office record stays a Contact of its own; this report is for review only "
            "(set DENTRIX_CROSS_OFFICE_POLICY=merge to merge; docs/cross_office.md)."
        ),
        "",
        "## Summary",
        "",
        "| | Count |",
        "|---|---:|",
    ]
    labels = {
        "offices": "Offices",
        "patients_with_birth_date": "Patients with a birth date",
        "patients_in_shared_blocks": "Patients sharing a birth date and gender with another office's",
        "pairs_compared": "Pairs compared",
        "candidate_pairs": "Matching pairs",
        "groups": "Groups",
        "records_in_groups": "Records in groups",
        "mergeable_groups": "Mergeable groups",
        "unmergeable_groups": "Groups not merged (two records of one office)",
        "pairs_by_name": "Pairs matched on name",
        "pairs_by_phone": "Pairs with the same mobile phone",
        "pairs_by_email": "Pairs with the same e-mail",
    }
    lines += [f"| {label} | {counts[key]:,} |" for key, label in labels.items()]
    lines += ["", "## Offices", "", "| Office | Patients with a birth date | Records in groups |", "|---|---:|---:|"]
    in_groups: dict[str, int] = {}
    for g in result.groups:
        for sid in g.members:
            office = sid.split(":", 1)[0]
            in_groups[office] = in_groups.get(office, 0) + 1
    lines += [f"| `{o}` | {result.patients.get(o, 0):,} | {in_groups.get(o, 0):,} |" for o in result.offices]
    pairs: dict[tuple[str, ...], int] = {}
    for g in result.groups:
        pairs[g.offices] = pairs.get(g.offices, 0) + 1
    if pairs:
        lines += ["", "## Groups per set of offices", "", "| Offices | Groups |", "|---|---:|"]
        lines += [f"| {', '.join(f'`{o}`' for o in offices)} | {n:,} |" for offices, n in sorted(pairs.items())]
    lines += ["", "## Groups", ""]
    if not result.groups:
        lines.append("No patient of one office matches a patient of another.")
    else:
        lines += ["| # | Group | Source_System_IDs | Basis | Merged under `merge` |", "|---:|---|---|---|---|"]
        for n, g in enumerate(result.groups, 1):
            merged = "yes" if g.mergeable else "no: two records of " + ", ".join(f"`{o}`" for o in g.repeated_offices)
            lines.append(
                f"| {n} | `{g.key[:12]}` | {', '.join(f'`{m}`' for m in g.members)} | {', '.join(g.basis)} | {merged} |"
            )
        multi = [g for g in result.groups if len(g.members) > 2]
        if multi:
            lines += ["", "### Pairs inside groups of three or more", "", "| Group | Pair | Basis |", "|---|---|---|"]
            lines += [f"| `{g.key[:12]}` | `{p.a}` ~ `{p.b}` | {', '.join(p.basis)} |" for g in multi for p in g.pairs]
    return "\n".join(lines) + "\n"


def run_cross_office_audit(
    staging: Mapping[str, Path],
    reports_dir: Path,
    *,
    ledger: Ledger | None = None,
    policy: CrossOfficePolicy | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CrossOfficeAudit:
    """Detect, write ``<reports_dir>/cross_office_audit.md`` (owner-only), and under ``merge`` put the
    mergeable groups in the ledger for the offices' loads (replacing the previous audit's)."""
    policy = policy or CrossOfficePolicy.from_env()
    result = detect_cross_office(staging, chunk_rows=chunk_rows)
    path = reports_dir / REPORT_NAME
    write_private(path, render_report(result, policy))
    recorded = 0
    if policy.merge:
        if ledger is None:
            raise ValueError("the merge policy needs the ledger: the loads read their merge groups from it")
        # With the offices compared: a load under merge refuses to start unless this audit covered its office.
        recorded = ledger.replace_merge_groups(result.merge_members(), offices=result.offices)
        log.info("cross-office audit: %d records in %d mergeable groups recorded for the load", recorded,
                 sum(1 for g in result.groups if g.mergeable))
    return CrossOfficeAudit(path=path, result=result, policy=policy, recorded=recorded)
