"""EventBridge schedule rules that fire while the cloud is up.

Supported expressions (UTC, as EventBridge rules are):

* ``rate(N minute|minutes|hour|hours|day|days)`` — singular unit only for N = 1, as AWS
  demands. The first event fires one period after the scheduler starts.
* ``cron(minutes hours day-of-month month day-of-week year)`` — each field takes ``*``,
  numbers, ``a-b`` ranges, ``,`` lists and ``/`` steps; months ``JAN`` to ``DEC`` and days
  ``SUN`` to ``SAT`` (1 = Sunday, 7 = Saturday); exactly one of day-of-month and day-of-week
  must be ``?``. ``L``, ``W`` and ``#`` are refused with ``ScheduleExpressionError``.

A rule fires only while its State is ENABLED (read at fire time). Firing hands
EventBridge's scheduled event to ``deliver`` (the event bus), which gives each target what
its ``Input``/``InputPath``/``InputTransformer`` makes of it.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from tweetlens.localcloud.errors import ScheduleExpressionError
from tweetlens.localcloud.models import EventRuleConfig

logger = Logger(service="localcloud")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    name: i
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_SEARCH_YEARS = 5
# How often the scheduler compares the clock with the next due times (real seconds).
TICK_SECONDS = 0.2


@dataclass(frozen=True)
class RateSchedule:
    period: timedelta

    def next_after(self, moment: datetime, origin: datetime) -> datetime:
        elapsed = moment - origin
        periods = int(elapsed / self.period) + 1
        return origin + periods * self.period


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    years: frozenset[int] | None

    def next_after(self, moment: datetime, origin: datetime) -> datetime:
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * _SEARCH_YEARS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleExpressionError("cron expression never fires in the next five years")

    def _day_matches(self, day: datetime) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if day.month not in self.months:
            return False
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        # AWS numbers days 1 = Sunday … 7 = Saturday; isoweekday() is 1 = Monday … 7 = Sunday.
        return day.isoweekday() % 7 + 1 in self.days_of_week


Schedule = RateSchedule | CronSchedule


def parse_schedule(expression: str) -> Schedule:
    """Parse an EventBridge ``rate()``/``cron()`` expression (see the module doc for the subset)."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1:
            raise ScheduleExpressionError(f"{expression}: the rate must be at least 1")
        if (amount == 1) != (not unit.endswith("s")):
            raise ScheduleExpressionError(
                f"{expression}: use the singular unit for 1 and the plural otherwise"
            )
        return RateSchedule(timedelta(seconds=amount * _UNIT_SECONDS[unit.rstrip("s")]))
    cron = _CRON.match(expression)
    if not cron:
        raise ScheduleExpressionError(f"{expression!r} is neither rate(...) nor cron(...)")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"{expression}: cron needs 6 fields, got {len(fields)}")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{expression}: exactly one of day-of-month and day-of-week must be '?'"
        )
    return CronSchedule(
        minutes=_field(minutes, 0, 59, {}, expression),
        hours=_field(hours, 0, 23, {}, expression),
        days_of_month=None if dom == "?" else _field(dom, 1, 31, {}, expression),
        months=_field(month, 1, 12, _MONTHS, expression),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, _DAYS, expression),
        years=None if year == "*" else _field(year, 1970, 2199, {}, expression),
    )


def _field(
    text: str, low: int, high: int, names: dict[str, int], expression: str
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if any(marker in part.upper() for marker in ("L", "W", "#")) and not _is_name(part, names):
            raise ScheduleExpressionError(f"{expression}: '{part}' (L, W, #) is not supported")
        range_text, _, step_text = part.partition("/")
        step = _number(step_text, names, expression) if step_text else 1
        if range_text == "*":
            start, end = low, high
        elif "-" in range_text:
            first, _, last = range_text.partition("-")
            start, end = _number(first, names, expression), _number(last, names, expression)
        else:
            start = _number(range_text, names, expression)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end or step < 1:
            raise ScheduleExpressionError(f"{expression}: '{part}' is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _is_name(part: str, names: dict[str, int]) -> bool:
    return all(token.upper() in names for token in re.split(r"[-/]", part) if not token.isdigit())


def _number(text: str, names: dict[str, int], expression: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleExpressionError(f"{expression}: '{text}' is not a number")
    return int(text)


def scheduled_event(
    rule: EventRuleConfig, account_id: str, region: str, at: datetime
) -> dict[str, Any]:
    """EventBridge's scheduled event for ``rule`` at ``at``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule.arn],
        "detail": {},
    }


class Scheduler:
    """A thread that fires enabled schedule rules on time."""

    def __init__(
        self,
        rules: dict[str, EventRuleConfig],
        *,
        events: Any,
        deliver: Callable[[EventRuleConfig, dict[str, Any]], None],
        account_id: str,
        region: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self._tick_seconds = tick_seconds
        self._rules = rules
        self._schedules = {
            lid: parse_schedule(rule.schedule_expression or "") for lid, rule in rules.items()
        }
        self._events = events
        self._deliver = deliver
        self._account_id = account_id
        self._region = region
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._rules and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def event(self, rule_logical_id: str) -> dict[str, Any]:
        """The scheduled event ``rule_logical_id`` would send now."""
        return scheduled_event(
            self._rules[rule_logical_id], self._account_id, self._region, self._clock()
        )

    def _enabled(self, rule: EventRuleConfig) -> bool:
        state = self._events.describe_rule(Name=rule.name).get("State")
        return bool(state == "ENABLED")

    def _run(self) -> None:
        origin = self._clock()
        due = {lid: s.next_after(origin, origin) for lid, s in self._schedules.items()}
        while not self._stop.wait(self._tick_seconds):
            now = self._clock()
            for logical_id in [lid for lid, moment in due.items() if moment <= now]:
                # Missed periods are not replayed, as EventBridge does not replay them.
                due[logical_id] = self._schedules[logical_id].next_after(now, origin)
                self._fire_if_enabled(logical_id)

    def _fire_if_enabled(self, logical_id: str) -> None:
        rule = self._rules[logical_id]
        try:
            if self._enabled(rule):
                logger.info("Schedule fired", rule=logical_id)
                self._deliver(rule, self.event(logical_id))
        except Exception:
            logger.exception("Scheduled delivery failed", rule=logical_id)
