"""Notes tools: let the agent remember things across sessions, in a small sqlite database.

The database file is ``$RTAGENT_NOTES_DB`` when set, else ``~/.rtagent/notes.sqlite3``
(or a file in the temporary directory when the home folder cannot be written). It is read
at every call, so changing the variable takes effect at once. Each call opens its own
connection: tools run in worker threads, and sqlite connections must not cross threads.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rtagent import ToolError, tool

MAX_LIMIT = 50
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
)
"""


def database_path() -> Path:
    """Where the notes live: $RTAGENT_NOTES_DB, ~/.rtagent/notes.sqlite3, or a temp file."""
    configured = os.environ.get("RTAGENT_NOTES_DB")
    if configured:
        return Path(configured).expanduser()
    home_dir = Path.home() / ".rtagent"
    try:
        home_dir.mkdir(parents=True, exist_ok=True)
        if os.access(home_dir, os.W_OK):
            return home_dir / "notes.sqlite3"
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "rtagent-notes.sqlite3"


@contextmanager
def _connect() -> Iterator[sqlite3.Connection]:
    path = database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:  # one transaction per tool call
            conn.execute(_SCHEMA)
            yield conn


def _row(row: sqlite3.Row) -> dict[str, Any]:
    tags = [t for t in row["tags"].split(",") if t]
    return {"id": row["id"], "text": row["text"], "tags": tags, "created_at": row["created_at"]}


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


@tool
def add_note(text: str, tags: list[str] | None = None) -> dict[str, Any]:
    """Save a note to remember later.

    Args:
        text: What to remember, in a full sentence.
        tags: Optional short labels such as "shopping" or "work".
    """
    text = text.strip()
    if not text:
        raise ToolError("The note is empty; say what to remember.")
    clean_tags = sorted({t.strip().lower().replace(",", " ") for t in tags or [] if t.strip()})
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with _connect() as conn:
        cur = conn.execute(
            "INSERT INTO notes (text, tags, created_at) VALUES (?, ?, ?)",
            (text, ",".join(clean_tags), created),
        )
        note_id = cur.lastrowid
    return {"id": note_id, "text": text, "tags": clean_tags, "created_at": created}


@tool
def list_notes(limit: int = 10, tag: str | None = None) -> list[dict[str, Any]]:
    """List the most recent notes, newest first.

    Args:
        limit: How many notes to return (1 to 50).
        tag: Only notes with this tag.
    """
    with _connect() as conn:
        if tag:
            rows = conn.execute(
                "SELECT * FROM notes WHERE ',' || tags || ',' LIKE ? ORDER BY id DESC LIMIT ?",
                (f"%,{tag.strip().lower()},%", _limit(limit)),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM notes ORDER BY id DESC LIMIT ?", (_limit(limit),)
            ).fetchall()
    return [_row(r) for r in rows]


@tool
def search_notes(query: str, limit: int = 10) -> list[dict[str, Any]]:
    """Find notes whose text or tags contain every word of a query (case-insensitive).

    Args:
        query: Words to look for, such as "dentist appointment".
        limit: How many notes to return at most (1 to 50).
    """
    words = query.lower().split()
    if not words:
        raise ToolError("The search query is empty.")
    clauses = " AND ".join(
        "(lower(text) LIKE ? ESCAPE '\\' OR tags LIKE ? ESCAPE '\\')" for _ in words
    )
    params: list[Any] = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    with _connect() as conn:
        rows = conn.execute(
            f"SELECT * FROM notes WHERE {clauses} ORDER BY id DESC LIMIT ?",
            (*params, _limit(limit)),
        ).fetchall()
    return [_row(r) for r in rows]


@tool
def delete_note(note_id: int) -> str:
    """Delete a note by its id (from add_note, list_notes or search_notes).

    Args:
        note_id: The note's id.
    """
    with _connect() as conn:
        deleted = conn.execute("DELETE FROM notes WHERE id = ?", (note_id,)).rowcount
    if not deleted:
        raise ToolError(f"There is no note with id {note_id}.")
    return f"Deleted note {note_id}."
