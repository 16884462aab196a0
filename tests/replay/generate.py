"""Regenerate the replay fixtures from recorded real Realtime traffic.

Usage (from the repository root)::

    python tests/replay/generate.py [RECORDINGS_DIR]

``RECORDINGS_DIR`` defaults to ``../shared/recordings`` (one ``.jsonl`` per recorded
WebSocket session, one ``{"dir": "client"|"server", "event": {...}}`` frame a line).
Each recording becomes ``fixtures/<name>.json``: the frames unchanged, plus what a
test needs to know without re-deriving it (the service, whether it is a sideband, the
model, the source file and its licence). Frames are never edited: replay tests
substitute only what a real server would echo or derive from the client.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "recordings"

SOURCE_NOTE = (
    "Recorded against api.openai.com and Azure OpenAI (GA) by the test cassettes of "
    "pydantic/pydantic-ai (tests/realtime/cassettes/, commit "
    "4fda38988f2939fa6ea9cdefcf120693e10ef491), converted from YAML to JSON lines; "
    "audio payloads truncated to 32 bytes by the recorder."
)
LICENCE = "MIT, Copyright (c) Pydantic Services Inc."


def fixture(path: Path) -> dict[str, Any]:
    """The fixture of one recording."""
    frames = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    name = path.stem
    sessions = [
        f["event"]["session"]
        for f in frames
        if f["dir"] == "server" and f["event"]["type"] in ("session.created", "session.updated")
    ]
    return {
        "name": name,
        "source": f"shared/recordings/{path.name}",
        "source_note": SOURCE_NOTE,
        "licence": LICENCE,
        "service": "azure" if "azure" in name else "openai",
        "sideband": "_sideband__" in name,
        "model": sessions[0]["model"] if sessions else None,
        "frames": frames,
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    out = HERE / "fixtures"
    out.mkdir(exist_ok=True)
    recordings = sorted(source.glob("*.jsonl"))
    if not recordings:
        print(f"no recordings in {source}", file=sys.stderr)
        return 1
    for path in recordings:
        data = fixture(path)
        (out / f"{data['name']}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    print(f"wrote {len(recordings)} fixtures to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
