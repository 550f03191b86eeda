"""The --where clause of ``select``: what it accepts, what it computes, what it refuses."""

from __future__ import annotations

import pyarrow as pa
import pytest

from muss_builder.subsets.where import WhereError, compile_where, filter_table

TABLE = pa.table(
    {
        "key": ["a_00000", "a_00001", "b_00000", "b_00000"],
        "track": ["montage", "montage", "montage", "subject"],
        "n_shots": pa.array([2, 4, 5, 5], pa.int32()),
        "worst_aesthetic": [6.5, None, 5.5, 4.0],
        "subjects": [[], ["s1"], ["s1", "s2"], ["s1", "s2"]],
        "it's": [1, 2, 3, 4],
    }
)
B_MONTAGE, B_SUBJECT = ("b_00000", "montage"), ("b_00000", "subject")


def keys(clause: str) -> list[tuple[str, str]]:
    rows = filter_table(TABLE, clause).to_pylist()
    return [(r["key"], r["track"]) for r in rows]


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("n_shots >= 4 AND worst_aesthetic > 5 AND track = 'subject'", []),
        ("n_shots >= 4 AND worst_aesthetic > 5", [("b_00000", "montage")]),
        ("n_shots >= 4 and (worst_aesthetic > 5 or track = 'subject')", [B_MONTAGE, B_SUBJECT]),
        ("NOT n_shots > 2", [("a_00000", "montage")]),
        ("track IN ('subject')", [("b_00000", "subject")]),
        ("track NOT IN ('montage') OR key = 'a_00000'", [("a_00000", "montage"), B_SUBJECT]),
        ("worst_aesthetic IS NULL", [("a_00001", "montage")]),
        ("worst_aesthetic IS NOT NULL AND len(subjects) = 0", [("a_00000", "montage")]),
        ("len(subjects) >= 2 AND worst_aesthetic <= 4.0", [("b_00000", "subject")]),
        ("n_shots <> 5 AND n_shots != 4", [("a_00000", "montage")]),
        ("worst_aesthetic > 5e0 AND n_shots < 5", [("a_00000", "montage")]),
        ('"it\'s" = 1', [("a_00000", "montage")]),
        ("key = 'a_00000' OR key = 'it''s'", [("a_00000", "montage")]),
    ],
)  # fmt: skip
def test_clauses_select_the_rows_sql_would(clause: str, expected: list) -> None:
    assert keys(clause) == expected


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ("", "empty"),
        ("n_shot >= 4", "no column 'n_shot' in the index (it has: key, track, n_shots"),
        ("n_shots >=", "expected a number"),
        ("n_shots >= 4 AND", "expected a number"),
        ("(n_shots >= 4", "expected ')'"),
        ("n_shots >= 4 extra", "expected AND, OR or the end"),
        ("len(track) > 1", "len() takes a list column"),
        ("track = 3", "cannot evaluate"),
        ("5", "is not a condition"),
        ("n_shots ; DROP TABLE x", "cannot read the clause"),
        ("__import__('os')", "no column '__import__'"),
    ],
)
def test_bad_clauses_say_why(clause: str, message: str) -> None:
    with pytest.raises(WhereError, match=None) as info:
        filter_table(TABLE, clause)
    assert message in str(info.value)


def test_the_clause_becomes_an_arrow_expression() -> None:
    expr = compile_where("n_shots >= 4 AND track = 'subject'", TABLE.schema)
    assert "n_shots" in str(expr) and "subject" in str(expr)
