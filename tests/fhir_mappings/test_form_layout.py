"""Staff enter a PHQ-9 / GAD-7 as a compact grid (issue 28, "Clinician (chart)"): consecutive questions on one
answer scale are one grid; anything else stands alone, in order, with the form's numbering kept."""

from __future__ import annotations

import pytest

from fhir_mappings.screening.instruments import INSTRUMENTS, Answer, Item
from fhir_mappings.screening.layout import blocks

SCALE = (Answer("a", "Not at all", 0), Answer("b", "Several days", 1), Answer("c", "Most days", 2))


def item(link_id: str, answers: tuple[Answer, ...] = SCALE, **extra: object) -> Item:
    return Item(link_id, f"Question {link_id}", answers, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("items", "shape"),
    [
        # Three or more in a row on one scale: one grid.
        ([item("1"), item("2"), item("3")], [("grid", 1, 3)]),
        # Two are no grid.
        ([item("1"), item("2")], [("alone", 1, 1), ("alone", 2, 1)]),
        # Another scale breaks the run (the PHQ-9's difficulty question); numbering continues.
        ([item("1"), item("2"), item("3"), item("d", SCALE[:2])], [("grid", 1, 3), ("alone", 4, 1)]),
        # A question shown only after another answer is never a grid row.
        (
            [item("1"), item("2"), item("3", enable_when=("1", ("b",)))],
            [("alone", 1, 1), ("alone", 2, 1), ("alone", 3, 1)],
        ),
        # An entered score is never a grid row; more than five answers do not fit as columns.
        (
            [item("t", (), kind="integer"), *[item(str(i)) for i in range(3)]],
            [("alone", 1, 1), ("grid", 2, 3)],
        ),
        (
            [item(str(i), tuple(Answer(str(n), str(n), n) for n in range(6))) for i in range(3)],
            [("alone", 1, 1), ("alone", 2, 1), ("alone", 3, 1)],
        ),
        ([], []),
    ],
)
def test_blocks(items: list[Item], shape: list[tuple[str, int, int]]) -> None:
    assert [("grid" if b.grid else "alone", b.first, len(b.items)) for b in blocks(items)] == shape


@pytest.mark.parametrize(
    ("key", "grid_rows", "after"),
    [
        (
            "phq9",
            9,
            1,
        ),  # items 1–9 on the frequency scale, then the difficulty question (phq9.questionnaire.json)
        ("gad7", 7, 0),  # items 1–7 (gad7.questionnaire.json has no difficulty question)
    ],
)
def test_phq9_and_gad7_are_one_grid(key: str, grid_rows: int, after: int) -> None:
    instrument = INSTRUMENTS[key]
    laid_out = blocks(instrument.form_items)
    assert laid_out[0].grid and len(laid_out[0].items) == grid_rows
    assert [len(b.items) for b in laid_out[1:]] == [1] * after and not any(b.grid for b in laid_out[1:])
