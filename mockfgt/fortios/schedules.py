"""Recurring schedules (FortiOS ``config firewall schedule recurring``) and the device's wall time.

An API user with a ``schedule`` may use its key only inside it; outside, the device refuses the key
as it refuses a wrong one (401). A recurring schedule names weekdays and a start and end time of day;
an end earlier than the start runs into the next day, and an end equal to the start means the whole
day (FortiOS's own reading of both). The schedule is read against the device's wall time:
:class:`WallTime` is the device clock (:mod:`mockfgt.clock`), optionally started at a given time
(FortiOS ``execute date`` / ``execute time``, the scenario's ``device.settings.system_time``) so a
scenario is inside or outside its schedule whatever the real time is. It only moves forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from ..clock import Clock
from ..kernel import parse_moment

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # datetime.weekday() order


def parse_time_of_day(text: str) -> time:
    """'08:00' or '8:00' (FortiOS writes hh:mm); ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError("write it hh:mm, e.g. 08:00")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError("hours 0-23, minutes 0-59")
    return time(int(hours), int(minutes))


#: ``execute date`` / ``execute time`` and ``settings.system_time``: an ISO date and time, naive is UTC.
parse_wall_time = parse_moment


@dataclass
class Schedule:
    name: str
    days: tuple[str, ...]
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        now, today, yesterday = moment.time(), DAYS[moment.weekday()], DAYS[(moment.weekday() - 1) % 7]
        if self.start == self.end:  # the whole day
            return today in self.days
        if self.start < self.end:
            return today in self.days and self.start <= now < self.end
        # Ends the next day: from start on a listed day, or before end on the day after one.
        return (today in self.days and now >= self.start) or (yesterday in self.days and now < self.end)


class WallTime:
    """The device's wall time: its clock, or a time it was set to plus the clock's progress since."""

    def __init__(self, clock: Clock, start: datetime | None = None) -> None:
        self.clock = clock
        self._start = start
        self._origin = clock.monotonic()

    def now(self) -> datetime:
        if self._start is None:
            return self.clock.now()
        return self._start + timedelta(seconds=self.clock.monotonic() - self._origin)

    def move_to(self, moment: datetime) -> None:
        """Set the time forward to ``moment`` (``execute time``); a moment already past changes nothing."""
        if moment > self.now():
            self._start, self._origin = moment, self.clock.monotonic()
