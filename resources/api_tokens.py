"""API tokens of the SQL server: issued once, stored only as SHA-256 digests, checked in constant time.

Tokens are 256-bit random strings, so a plain SHA-256 digest (not a slow password hash) is
enough: nobody can guess one from its digest. Checking compares the presented token's digest
with every stored digest with `hmac.compare_digest`, without stopping at a match, so the time
taken says nothing about which digest, or how much of one, matched. The digests live in the
catalog's database (SQLite embedded, PostgreSQL in production).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa

from resources.sql_database import metadata, sql_engine

_tokens = sa.Table(
    "thanosql_api_tokens",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The API tokens of the SQL server whose catalog database is at `url`."""

    def __init__(self, url: str):
        self.engine = sql_engine(url)
        metadata.create_all(self.engine)  # the engine may have been made before this module's table was defined

    def create(self, name: str) -> str:
        """A new token for `name` (replacing its previous one); shown once, never stored."""
        token = "thanosql_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_tokens).where(_tokens.c.name == name))
            conn.execute(sa.insert(_tokens).values(name=name, digest=digest(token), created_at=dt.datetime.now(dt.timezone.utc)))
        return token

    def revoke(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.delete(_tokens).where(_tokens.c.name == name)).rowcount)

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.select(_tokens.c.name).order_by(_tokens.c.name))]

    def check(self, token: str | None) -> str | None:
        """The name of the token's holder, or None."""
        presented = digest(token or "")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_tokens.c.name, _tokens.c.digest)).all()
        holder = None
        for name, stored in rows:
            if hmac.compare_digest(presented, stored) and token:
                holder = name
        return holder
