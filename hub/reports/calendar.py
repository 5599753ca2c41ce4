"""Working days: the weekly rest days, public holidays and day swaps, as configurable data.

The bundled ``holidays_vn.json`` holds Saturday/Sunday off (Decision 188/1999/QĐ-TTg), the
fixed solar holidays of the Labour Code 2019 Art. 112(1), and per year the lunar and announced
days (Art. 112(3)) with the Government's swapped working days. A fixed holiday that falls on a
weekly rest day moves to the next working day (Art. 111(3)). ``reports.calendar_file`` names
another file of the same shape (docs/reports.md §4).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hub.reports.bundled import load_data_file

BUNDLED_CALENDAR = "holidays_vn.json"


class _Fixed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    name: str = ""


class _Year(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holidays: list[date] = Field(default_factory=list)
    working_days: list[date] = Field(default_factory=list)
    """Weekly rest days made working days by a swap (``làm bù``)."""


class CalendarData(BaseModel):
    """The shape of a calendar file."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(default="", alias="_source")
    weekend: list[int] = Field(default_factory=lambda: [5, 6])
    """``date.weekday()`` numbers of the weekly rest days (5 Saturday, 6 Sunday)."""
    fixed: list[_Fixed] = Field(default_factory=list)
    years: dict[int, _Year] = Field(default_factory=dict)


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days for the one-stop offices."""

    weekend: frozenset[int]
    holidays: frozenset[date]
    working: frozenset[date]

    @classmethod
    def from_data(cls, data: CalendarData, years: range = range(2000, 2100)) -> WorkCalendar:
        weekend = frozenset(data.weekend)
        off: set[date] = set()
        for entry in data.years.values():
            off.update(entry.holidays)
        for year in years:
            for fixed in data.fixed:
                try:
                    day = date(year, fixed.month, fixed.day)
                except ValueError:
                    continue
                if day.weekday() in weekend:  # Labour Code 2019 Art. 111(3): the next working day
                    day += timedelta(days=1)
                    while day.weekday() in weekend or day in off:
                        day += timedelta(days=1)
                off.add(day)
        swaps = {day for entry in data.years.values() for day in entry.working_days}
        return cls(weekend=weekend, holidays=frozenset(off), working=frozenset(swaps))

    @classmethod
    def load(cls, path: Path | None = None) -> WorkCalendar:
        """The calendar of ``path``, or the bundled one; a bad file is a configuration error."""
        return cls.from_data(load_data_file(CalendarData, path, BUNDLED_CALENDAR, "reports calendar"))

    def is_working(self, day: date) -> bool:
        if day in self.working:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def days_off(self, first: date, last: date) -> Iterator[date]:
        """Non-working days from ``first`` to ``last`` inclusive."""
        day = first
        while day <= last:
            if not self.is_working(day):
                yield day
            day += timedelta(days=1)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (processing times in working days)."""
        day = start
        while count > 0:
            day += timedelta(days=1)
            if self.is_working(day):
                count -= 1
        return day
