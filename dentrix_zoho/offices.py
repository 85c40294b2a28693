"""The offices of a dental service organisation, one Zoho org: ``offices.yaml``.

No Dagster here: the file's model, its loader (errors name the file, the line and the key)
and the resolved :class:`Office` every layer uses. The file lives at
``DENTRIX_OFFICES_FILE``, else ``$DENTRIX_ZOHO_HOME/offices.yaml``::

    offices:
      north:
        dentrix:
          odbc: "DRIVER={c-treeACE ODBC Driver};HOST=10.1.0.5;PORT=6597;DATABASE=DentrixSQL;UID=dxread"
          password_env: NORTH_DENTRIX_PWD     # the NAME of the variable; the password is never in the file
          schema: admin                       # optional, default admin
        image_dir: /mnt/north/Dentrix/Images  # relative paths are relative to this file
        provider_map: providers/north.yaml
        time_zone: America/Denver             # how Dentrix's local times are read for this office
        cutover:                              # optional: this office's delta window
          start: 2026-11-27T18:00:00-07:00
          length_hours: 36
      south:
        dentrix:
          url: "mssql+pyodbc://dxread@south-srv/DentrixSQL?driver=..."
          password_env: SOUTH_DENTRIX_PWD
        time_zone: America/Chicago

With no offices file there is exactly one office, from ``DENTRIX_OFFICE_ID`` and
``DENTRIX_SOURCE`` as before, and its state stays directly in ``$DENTRIX_ZOHO_HOME``. With
a file, each office keeps its state in ``$DENTRIX_ZOHO_HOME/offices/<office>/`` (staging
DuckDB, reports, schema and owner hand-offs); the ledger stays one database for all.

The loader reads YAML with PyYAML's composer, whose nodes carry their line numbers, and
builds the values from those nodes itself, so a mapping key keeps its text (an office
``03`` stays ``"03"``) and a duplicated key is caught with both lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote_plus

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dentrix_zoho.cutover.window import CutoverWindow

ENV_FILE = "DENTRIX_OFFICES_FILE"
DEFAULT_FILE_NAME = "offices.yaml"
OFFICES_DIR = "offices"
# A folder name, a Dagster partition key and the first part of Source_System_ID (<office>:<object>:<key>).
OFFICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ODBC_SECRET_KEYS = ("pwd", "password")


class OfficesError(ValueError):
    """The offices file is wrong, or an office was asked for that it does not list. Never carries a password."""


class OfficeConnectionError(RuntimeError):
    """An office's Dentrix connection cannot be built (its password variable is unset). Never carries a password."""


def check_office_id(value: str) -> str:
    if not OFFICE_ID_PATTERN.match(value):
        raise ValueError(
            f"office id {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(it names a folder, a Dagster partition and the first part of every Source_System_ID)"
        )
    return value


def _odbc_keys(conn_str: str) -> list[str]:
    from dentrix_zoho.source.connection import odbc_pairs

    return [key.strip().lower() for key, _ in odbc_pairs(conn_str)]


class DentrixConnectionSpec(BaseModel):
    """How to reach one office's Dentrix database; the password only by the name of a variable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str | None = Field(default=None, description="A SQLAlchemy URL, without a password.")
    odbc: str | None = Field(default=None, description="An ODBC connection string, without PWD=.")
    password_env: str | None = Field(
        default=None, description="Name of the environment variable holding the password, read at connect time."
    )
    schema_name: str = Field(default="admin", alias="schema", min_length=1)
    # Listed so that an inline password is named for what it is, not as an unknown key.
    password: Any = Field(default=None, exclude=True, repr=False)

    @field_validator("password", mode="before")
    @classmethod
    def _no_inline_password(cls, value: object) -> None:
        # Called only when the key is present (defaults are not validated), whatever its value.
        raise ValueError(
            "a password may not be written in the offices file: put it in an environment variable "
            "and give that variable's name as password_env"
        )

    @field_validator("url")
    @classmethod
    def _url_without_password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(value)
        except Exception:  # noqa: BLE001 - SQLAlchemy's message quotes the URL, which may hold a password
            raise ValueError("not a SQLAlchemy URL (dialect+driver://user@host/database)") from None
        if parsed.password:
            raise ValueError(
                "the URL carries a password: remove it and name the environment variable that holds it "
                "as password_env"
            )
        return value

    @field_validator("odbc")
    @classmethod
    def _odbc_without_password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "=" not in value:
            raise ValueError("not an ODBC connection string (KEY=value;KEY=value)")
        if any(key in _ODBC_SECRET_KEYS for key in _odbc_keys(value)):
            raise ValueError(
                "the ODBC string carries PWD=/Password=: remove it and name the environment variable that "
                "holds the password as password_env"
            )
        return value

    @field_validator("password_env")
    @classmethod
    def _is_a_variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (letters, digits, '_'), not a password")
        return value

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> DentrixConnectionSpec:
        if (self.url is None) == (self.odbc is None):
            raise ValueError("give exactly one of url (SQLAlchemy) or odbc (ODBC connection string)")
        return self

    @property
    def template(self) -> str:
        """The connection string as written (no password): safe to show."""
        return self.url if self.url is not None else self.odbc  # type: ignore[return-value]

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password from ``password_env``, or None when the connection takes none."""
        if self.password_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.password_env)
        if not value:
            raise OfficeConnectionError(
                f"the environment variable {self.password_env} (password_env) is not set: "
                "set it to the Dentrix password before this office runs"
            )
        return value

    def connection_string(self, environ: Mapping[str, str] | None = None) -> str:
        """The connection string with the password put in: only ever passed to the driver, never shown."""
        secret = self.secret(environ)
        if secret is None:
            return self.template
        if self.url is not None:
            from sqlalchemy.engine import make_url

            return make_url(self.url).set(password=secret).render_as_string(hide_password=False)
        braced = "{" + secret.replace("}", "}}") + "}"
        return f"{self.template.rstrip().rstrip(';')};PWD={braced}"

    def scrub(self, message: str, environ: Mapping[str, str] | None = None) -> str:
        """``message`` with this connection's password (as given and as URL-escaped) replaced by ***."""
        try:
            secret = self.secret(environ)
        except OfficeConnectionError:
            return message
        if not secret:
            return message
        for form in sorted({secret, quote_plus(secret), secret.replace("}", "}}")}, key=len, reverse=True):
            message = message.replace(form, "***")
        return message


class OfficeEntry(BaseModel):
    """One office as the file describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dentrix: DentrixConnectionSpec
    image_dir: Path | None = Field(default=None, description="The office's Dentrix image folder.")
    provider_map: Path | None = Field(default=None, description="Provider id -> e-mail map (YAML).")
    time_zone: str = Field(description="IANA zone Dentrix's local times are read in, e.g. America/Denver.")
    cutover: CutoverWindow | None = Field(default=None, description="This office's delta window.")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Denver)") from None
        return value


OfficeId = Annotated[str, AfterValidator(check_office_id)]


class OfficesFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offices: dict[OfficeId, OfficeEntry] = Field(min_length=1)


@dataclass(frozen=True)
class Office:
    """One office, resolved: where its Dentrix is, where its state lives, how its times read."""

    office_id: str
    state_dir: Path
    connection: DentrixConnectionSpec | None = None  # None: DENTRIX_SOURCE / the demo practice (no file)
    image_dir: Path | None = None
    provider_map: Path | None = None
    time_zone: str | None = None  # None: the mapping spec's practice time zone
    cutover: CutoverWindow | None = None
    origin: str = "the environment"  # "offices.yaml:12", for messages

    @property
    def staging_path(self) -> Path:
        return self.state_dir / "staging.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    def describe_source(self) -> str:
        """The connection as written in the file (never with a password)."""
        if self.connection is None:
            return "DENTRIX_SOURCE"
        from dentrix_zoho.source.connection import parse_source

        return parse_source(self.connection.template).redacted()


@dataclass(frozen=True)
class Offices:
    """Every office this code location migrates: from the offices file, or the one from the environment."""

    home: Path
    file: Path | None
    by_id: Mapping[str, Office]

    @property
    def from_file(self) -> bool:
        return self.file is not None

    def __iter__(self) -> Iterator[Office]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    @property
    def ids(self) -> list[str]:
        return list(self.by_id)

    def get(self, office_id: str) -> Office:
        office = self.by_id.get(office_id)
        if office is None:
            where = f"{self.file}" if self.file else "the environment (DENTRIX_OFFICE_ID; no offices file)"
            raise OfficesError(f"office {office_id!r} is not in {where}; offices: {', '.join(self.by_id) or 'none'}")
        return office

    def select(self, office_id: str | None, environ: Mapping[str, str] | None = None) -> Office:
        """The office a command works on: the one named, else DENTRIX_OFFICE_ID, else the only one."""
        if office_id:
            return self.get(office_id)
        env = os.environ if environ is None else environ
        named = (env.get("DENTRIX_OFFICE_ID") or "").strip()
        if named and self.from_file:
            return self.get(named)
        if len(self.by_id) == 1:
            return next(iter(self.by_id.values()))
        raise OfficesError(
            f"{self.file} lists {len(self.by_id)} offices: say which with --office "
            f"(one of {', '.join(self.by_id)})"
        )


def offices_file_path(home: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The offices file's path, and whether it was named explicitly (DENTRIX_OFFICES_FILE)."""
    env = os.environ if environ is None else environ
    named = (env.get(ENV_FILE) or "").strip()
    if named:
        return Path(named).expanduser(), True
    return Path(home).expanduser() / DEFAULT_FILE_NAME, False


def office_state_dir(home: Path, office_id: str) -> Path:
    return Path(home).expanduser().resolve() / OFFICES_DIR / office_id


def read_offices_file(path: Path, home: Path) -> Offices:
    """Parse and validate ``path``; every error names the file, the line and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OfficesError(f"{path}: cannot read the offices file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise OfficesError(f"{path}: the offices file is not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise OfficesError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if root is None:
        raise OfficesError(f"{path}: the offices file is empty; it needs `offices:` with one entry per office")
    lines: dict[tuple[str, ...], int] = {}
    data = _build(root, (), lines, path)
    if not isinstance(data, dict):
        raise OfficesError(f"{path}:{root.start_mark.line + 1}: the offices file must be a mapping with `offices:`")
    try:
        model = OfficesFileModel.model_validate(data)
    except ValidationError as exc:
        raise OfficesError(_describe(exc, lines, path, root.start_mark.line + 1)) from None
    folder = path.resolve().parent
    by_id: dict[str, Office] = {}
    for office_id, entry in model.offices.items():
        by_id[office_id] = Office(
            office_id=office_id,
            state_dir=office_state_dir(home, office_id),
            connection=entry.dentrix,
            image_dir=_relative_to(folder, entry.image_dir),
            provider_map=_relative_to(folder, entry.provider_map),
            time_zone=entry.time_zone,
            cutover=entry.cutover,
            origin=f"{path}:{lines.get(('offices', office_id), 0)}",
        )
    return Offices(home=Path(home).expanduser().resolve(), file=path.resolve(), by_id=by_id)


def _relative_to(folder: Path, value: Path | None) -> Path | None:
    if value is None:
        return None
    value = value.expanduser()
    return value if value.is_absolute() else folder / value


_SCALARS = yaml.constructor.SafeConstructor()


def _build(node: yaml.Node, at: tuple[str, ...], lines: dict[tuple[str, ...], int], path: Path) -> Any:
    """Python values from the composed nodes, recording each key's line; duplicate keys are errors."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise OfficesError(f"{path}:{key_node.start_mark.line + 1}: {_dotted(at)}: keys must be plain text")
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in out:
                first = lines[(*at, key)]
                what = f"duplicate office id {key!r}" if at == ("offices",) else f"duplicate key {_dotted((*at, key))!r}"
                raise OfficesError(f"{path}:{line}: {what}: also at line {first}; each may appear once")
            if at == ("offices",):
                # Zoho compares unique text fields and COQL `like` without case, so the Source_System_IDs
                # of offices 'b1' and 'B1' would be one record's key.
                twin = next((k for k in out if k.casefold() == key.casefold()), None)
                if twin is not None:
                    raise OfficesError(f"{path}:{line}: office id {key!r} differs from {twin!r} (line "
                                       f"{lines[(*at, twin)]}) only in case; Zoho would take their records' "
                                       "Source_System_IDs for the same: rename one")
            lines[(*at, key)] = line
            out[key] = _build(value_node, (*at, key), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*at, str(index))] = item.start_mark.line + 1
            items.append(_build(item, (*at, str(index)), lines, path))
        return items
    return _SCALARS.construct_object(node, deep=True)


def _dotted(at: tuple[str, ...]) -> str:
    return ".".join(at) or "<top>"


def _describe(exc: ValidationError, lines: dict[tuple[str, ...], int], path: Path, top_line: int) -> str:
    """One line per error: file:line: dotted.key: message (pydantic's message, never the input value)."""
    messages = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(str(part) for part in err["loc"])
        line = top_line
        for size in range(len(loc), 0, -1):
            if loc[:size] in lines:
                line = lines[loc[:size]]
                break
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown key"
        messages.append(f"{path}:{line}: {_dotted(loc)}: {message}")
    if len(messages) == 1:
        return messages[0]
    return f"{len(messages)} problems in the offices file:\n" + "\n".join(messages)
