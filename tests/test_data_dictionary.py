"""docs/data-dictionary.md documents every table and column of ``db.schema.metadata`` and every
view and column of schema ``analytics`` (read from a migrated database: views exist only there).

The rules, so that the document cannot silently fall behind the schema:

* every table has exactly one ``###`` section whose heading names it: the heading's first code
  span (backticks) is the table, e.g. ``### `gmail_messages` — key `message_id` ``; a view is
  named with its schema, e.g. ``### `analytics.ad_performance_daily` ``;
* every column of the table is a code span holding exactly its name somewhere in that section
  (the section runs to the next heading of level 1 to 3; ``####`` subsections belong to it);
* a provider table (one with all of ``db.schema.TENANT_COLUMNS``) may leave those tenant columns
  to the section "Conventions of every provider table"; its own columns are in its section;
* every ``###`` heading names a table or view the database has (a stale section fails too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from db import agencydb, tenancy
from db.schema import TENANT_COLUMNS, agency_metadata, metadata

DOC = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"
CONVENTIONS = "Conventions of every provider table"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Section:
    level: int
    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def code(self) -> set[str]:
        """Every code span of the section, heading included, with surrounding spaces removed."""
        text = "\n".join([self.title, *self.lines])
        return {span.strip() for span in _CODE.findall(text)}

    @property
    def table(self) -> str | None:
        """The table a ``###`` heading names: its first code span."""
        first = _CODE.search(self.title)
        return first.group(1).strip() if first else None


def sections(markdown: str) -> list[Section]:
    """Headings with the text under them, up to the next heading of the same or a higher level
    (a ``###`` section keeps its ``####`` subsections). Fenced code blocks are not headings."""
    found: list[Section] = []
    open_: list[Section] = []  # the sections the current line belongs to
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            open_ = [s for s in open_ if s.level < level]
            section = Section(level, heading.group(2))
            found.append(section)
            open_.append(section)
            continue
        for section in open_:
            section.lines.append(line)
    return found


def is_provider_table(table: sa.Table) -> bool:
    return set(TENANT_COLUMNS) <= set(table.columns.keys())


def analytics_views(engine: sa.Engine) -> dict[str, list[str]]:
    """``{"analytics.<view>": [columns]}`` of an agency's database, from the catalog (not from
    ``information_schema``, which hides what the reading role may not select)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname || '.' || c.relname, a.attname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                "AND NOT a.attisdropped "
                "WHERE n.nspname = 'analytics' AND c.relkind IN ('v', 'm') "
                "ORDER BY 1, a.attnum"
            )
        ).all()
    views: dict[str, list[str]] = {}
    for name, column in rows:
        views.setdefault(name, []).append(column)
    return views


def _both() -> sa.MetaData:
    """The control database's tables and an agency database's, in one MetaData. The two tables
    of the same name (an agency's copy of its clients and integrations) become one, with the
    columns of both: the document gives each of them a section of its own, and their columns
    together must be in them."""
    both = sa.MetaData()
    for source in (metadata, agency_metadata):
        for table in source.sorted_tables:
            if table.name in both.tables:
                have = both.tables[table.name]
                for column in table.columns:
                    if column.name not in have.c:
                        have.append_column(sa.Column(column.name, column.type))
                continue
            table.to_metadata(both)
    return both


def problems(
    markdown: str,
    schema: sa.MetaData | None = None,
    views: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Everything the document lacks or has too much of, one line each (empty: complete)."""
    schema = _both() if schema is None else schema
    twice = set(metadata.tables) & set(agency_metadata.tables)
    views = views or {}
    found: list[str] = []
    all_sections = sections(markdown)
    by_table: dict[str, list[Section]] = {}
    for section in all_sections:
        if section.level != 3:
            continue
        name = section.table
        if name is None:
            found.append(f"### heading {section.title!r} names no table in backticks")
        elif name not in schema.tables and name not in views:
            found.append(f"### heading {section.title!r} names table {name!r}, not in the schema")
        else:
            by_table.setdefault(name, []).append(section)

    conventions = [s for s in all_sections if s.level == 2 and s.title.startswith(CONVENTIONS)]
    conventions_code = conventions[0].code if len(conventions) == 1 else set()
    if any(is_provider_table(t) for t in schema.tables.values()) and len(conventions) != 1:
        found.append(f"{len(conventions)} '## {CONVENTIONS}' sections (expected one)")

    for name, table in sorted(schema.tables.items()):
        documented = by_table.get(name, [])
        if not documented:
            found.append(f"table {name!r}: no ### section naming it in backticks")
            continue
        expected = 2 if name in twice else 1
        if len(documented) != expected:
            count = "one" if expected == 1 else "two"
            found.append(f"table {name!r}: {len(documented)} ### sections (expected {count})")
        code = set().union(*(s.code for s in documented))
        shared = set(TENANT_COLUMNS) & conventions_code if is_provider_table(table) else set()
        missing = [c for c in table.columns.keys() if c not in code and c not in shared]
        if missing:
            found.append(f"table {name!r}: column(s) not in backticks in its section: {missing}")
    for name, columns in sorted(views.items()):
        documented = by_table.get(name, [])
        if len(documented) != 1:
            found.append(f"view {name!r}: {len(documented)} ### sections (expected one)")
            continue
        missing = [c for c in columns if c not in documented[0].code]
        if missing:
            found.append(f"view {name!r}: column(s) not in backticks in its section: {missing}")
    return found


def test_every_table_view_and_column_is_documented(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        agency_id = tenancy.create_agency(conn, "Dictionary")
    views = analytics_views(agencydb.engine_for(engine, agency_id))
    assert {
        "analytics.ad_performance_daily",
        "analytics.campaign_performance_daily",
        "analytics.client_activity_daily",
    } <= set(views)
    found = problems(DOC.read_text(encoding="utf-8"), views=views)
    assert not found, f"{DOC.name} is out of date with the database:\n" + "\n".join(found)


# -- the checker itself -----------------------------------------------------------------------
def _schema() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table("plain", md, sa.Column("id", sa.Integer), sa.Column("name", sa.Text))
    sa.Table(
        "things",
        md,
        *(sa.Column(c, sa.Integer) for c in TENANT_COLUMNS),
        sa.Column("thing_id", sa.Text),
    )
    return md


COMPLETE = """# Dictionary

## Conventions of every provider table

`integration_id`, `agency_id`, `client_id`, `synced_at`, `deleted_at`.

## Tables

### `plain` — key `id`

| column | meaning |
|---|---|
| `id` | identity |
| `name` | a name |

### `things` — key `thing_id`

#### Columns

`thing_id`: the provider's id.

```
### `fenced` is no heading
```
"""


def test_a_complete_document_passes() -> None:
    assert problems(COMPLETE, _schema()) == []


def test_a_missing_column_is_named() -> None:
    doc = COMPLETE.replace("| `name` | a name |\n", "")
    assert problems(doc, _schema()) == [
        "table 'plain': column(s) not in backticks in its section: ['name']"
    ]


def test_a_column_mentioned_only_in_another_section_is_missing() -> None:
    doc = COMPLETE.replace("`thing_id`: the provider's id.", "the provider's id.")
    doc = doc.replace("— key `thing_id`", "— key `id`") + "\n### `plain` extra `thing_id`\n"
    assert problems(doc, _schema()) == [
        "table 'plain': 2 ### sections (expected one)",
        "table 'things': column(s) not in backticks in its section: ['thing_id']",
    ]


def test_a_code_span_must_be_the_column_itself() -> None:
    doc = COMPLETE.replace("| `name` | a name |", "| `plain.name` | a name |")
    assert problems(doc, _schema()) == [
        "table 'plain': column(s) not in backticks in its section: ['name']"
    ]


def test_tenant_columns_come_from_the_conventions_section() -> None:
    doc = COMPLETE.replace("`client_id`, ", "")
    assert problems(doc, _schema()) == [
        "table 'things': column(s) not in backticks in its section: ['client_id']"
    ]
    # A platform table does not get them from there.
    md = _schema()
    sa.Table("other", md, sa.Column("agency_id", sa.Integer))
    assert problems(COMPLETE + "\n### `other`\n", md) == [
        "table 'other': column(s) not in backticks in its section: ['agency_id']"
    ]


def test_a_missing_table_and_a_stale_heading_are_named() -> None:
    doc = COMPLETE.replace("### `plain` — key `id`", "### `plane` — key `id`")
    doc += "\n### Notes\n"
    assert problems(doc, _schema()) == [
        "### heading '`plane` — key `id`' names table 'plane', not in the schema",
        "### heading 'Notes' names no table in backticks",
        "table 'plain': no ### section naming it in backticks",
    ]


def test_views_are_checked_like_tables() -> None:
    views = {"analytics.v": ["day", "spend"]}
    doc = COMPLETE + "\n### `analytics.v` — per day\n\n| `day` | the day |\n"
    assert problems(doc, _schema(), views) == [
        "view 'analytics.v': column(s) not in backticks in its section: ['spend']"
    ]
    assert problems(COMPLETE, _schema(), views) == [
        "view 'analytics.v': 0 ### sections (expected one)"
    ]
    assert problems(doc.replace("| `day` |", "| `day` | `spend` |"), _schema(), views) == []
    assert problems(doc, _schema()) == [
        "### heading '`analytics.v` — per day' names table 'analytics.v', not in the schema"
    ]


def test_the_real_document_fails_without_one_column(engine: sa.Engine) -> None:
    """Deleting one column's mention from the real document is caught, and named exactly (on
    top of whatever else is missing while tables are being added)."""
    with engine.begin() as conn:
        agency_id = tenancy.create_agency(conn, "Dictionary spoiled")
    views = analytics_views(agencydb.engine_for(engine, agency_id))
    text = DOC.read_text(encoding="utf-8")
    before = set(problems(text, views=views))
    for row, problem in (
        (
            "| `snippet` |",
            "table 'gmail_messages': column(s) not in backticks in its section: ['snippet']",
        ),
        (
            "| `gmail_outbound` |",
            "view 'analytics.client_activity_daily': column(s) not in backticks in its "
            "section: ['gmail_outbound']",
        ),
    ):
        assert text.count(row) == 1
        spoiled = text.replace(row, "| " + row.strip("|` ") + " |")
        after = problems(spoiled, views=views)
        assert len(after) == len(before) + 1 and set(after) - before == {problem}
