"""How a staff member's screening form lays out its questions (issue 28, "Clinician (chart)"): a run of questions
that share one answer scale (the PHQ-9's nine, the GAD-7's seven) is one compact grid, a row per question and the
answers as columns; any other question stands alone. The patient portal asks one question per screen and does
not use this. Pure and total."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_mappings.screening.instruments import Answer, Item

#: A grid needs this many questions in a row on one scale (two are no easier as a grid) …
MIN_GRID_ROWS = 3
#: … and at most this many answers: wider scales do not fit a 1024 px EHR frame as columns.
MAX_GRID_COLUMNS = 5


@dataclass(frozen=True)
class ItemBlock:
    """Questions shown together: a grid (`answers` are its columns) or one question alone. `first` is the
    1-based number of its first question on the form."""

    items: tuple[Item, ...]
    first: int
    grid: bool

    @property
    def answers(self) -> tuple[Answer, ...]:
        return self.items[0].answers if self.items else ()

    @property
    def numbered(self) -> list[tuple[int, Item]]:
        return [(self.first + i, item) for i, item in enumerate(self.items)]


def _scale(item: Item) -> tuple[tuple[str, str, int], ...] | None:
    """The item's answer scale, when it could be a grid row: chosen answers, always shown."""
    if item.kind != "choice" or item.enable_when is not None or not item.answers:
        return None
    if len(item.answers) > MAX_GRID_COLUMNS or any(a.integer for a in item.answers):
        return None
    return tuple((a.code, a.display, a.score) for a in item.answers)


def blocks(items: Iterable[Item]) -> list[ItemBlock]:
    """The form's questions in order, consecutive ones on one scale grouped into grids."""
    result: list[ItemBlock] = []
    run: list[Item] = []
    number = 1

    def flush() -> None:
        nonlocal number
        if len(run) >= MIN_GRID_ROWS:
            result.append(ItemBlock(tuple(run), number, True))
            number += len(run)
        else:
            for item in run:
                result.append(ItemBlock((item,), number, False))
                number += 1
        run.clear()

    for item in items:
        scale = _scale(item)
        if run and (scale is None or scale != _scale(run[0])):
            flush()
        if scale is None:
            result.append(ItemBlock((item,), number, False))
            number += 1
        else:
            run.append(item)
    flush()
    return result
