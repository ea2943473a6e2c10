"""The full-text index: token columns on items, an FTS5 table kept by triggers (SQLite) or a
generated tsvector column with a GIN index (PostgreSQL); the search_text column it replaces
is dropped. And search_queries, what readers search for.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("search_title", "search_tags", "search_body")

SQLITE_INDEX = [
    # external content: the tokens live in items, the index only refers to them
    "CREATE VIRTUAL TABLE items_fts USING fts5(search_title, search_tags, search_body, "
    "content='items', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, search_title, search_tags, search_body) "
    "VALUES (new.id, new.search_title, new.search_tags, new.search_body); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_title, search_tags, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_tags, old.search_body); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF search_title, search_tags, search_body "
    "ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, search_title, search_tags, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_tags, old.search_body); "
    "INSERT INTO items_fts(rowid, search_title, search_tags, search_body) "
    "VALUES (new.id, new.search_title, new.search_tags, new.search_body); END",
]

POSTGRES_INDEX = [
    "ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, search_title), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, search_tags), 'B') || "
    "to_tsvector('simple'::regconfig, search_body)) STORED",
    "CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)",
]


def upgrade() -> None:
    from bot.store.search_index import backfill_tokens

    bind = op.get_bind()
    for column in COLUMNS:
        op.add_column("items", sa.Column(column, sa.Text(), nullable=False, server_default=""))
    backfill_tokens(bind)
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE items DROP COLUMN search_text")  # SQLite 3.35+
        for statement in SQLITE_INDEX:
            op.execute(statement)
        op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")
    else:
        op.drop_column("items", "search_text")
        for statement in POSTGRES_INDEX:
            op.execute(statement)
    op.create_table(
        "search_queries",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("query", sa.String(200), primary_key=True),
        sa.Column("asked", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("no_hits", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("search_queries")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE items_fts")
    else:
        op.drop_index("ix_items_search_vector", "items")
        op.drop_column("items", "search_vector")
    op.add_column("items", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    for column in COLUMNS:
        op.drop_column("items", column)
