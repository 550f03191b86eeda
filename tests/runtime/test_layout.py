"""Removing a film's outputs before it is rebuilt leaves nothing of an interrupted attempt."""

from __future__ import annotations

from muss_builder.core.naming import OutputLayout
from muss_builder.core.storage import Storage
from muss_builder.runtime.layout import remove_film_outputs


def test_remove_film_outputs_takes_finished_and_partial_files(tmp_path) -> None:
    layout = OutputLayout(tmp_path)
    layout.make()
    mine = [
        "shards/abc-00000.tar",
        "shards/.abc-00001.tar.partial",
        "films/abc.json",
        "films/.abc.json.k2j3h4.part",  # a record whose write was cut by a lost node
    ]
    others = ["shards/abd-00000.tar", "films/abd.json", "films/.abd.json.x.part"]
    for rel in mine + others:
        (tmp_path / rel).write_bytes(b"x")
    remove_film_outputs(Storage.open(str(tmp_path)), "abc")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == (
        sorted(others)
    )
