"""Words the reports build from the run's parameters: the landmark window, the dropout
horizon, the number of risk groups. A report never hard-codes "six weeks" or "tenths": a
researcher who sets ``features.window_days: 28`` gets "four weeks" throughout."""

from __future__ import annotations

from dataclasses import dataclass

NUMBER_WORDS = (  # noqa: SIM905
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()
PARTS = {2: "halves", 3: "thirds", 4: "quarters", 5: "fifths", 10: "tenths"}
PART = {2: "half", 3: "third", 4: "quarter", 5: "fifth", 10: "tenth"}


def number_word(n: int) -> str:
    """``6`` → ``six``; numbers above twenty stay as digits."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def duration(days: int) -> str:
    """A number of days in words: whole weeks as weeks (``42`` → ``six weeks``), else days
    (``45`` → ``45 days``)."""
    if days % 7 == 0:
        weeks = days // 7
        return f"{number_word(weeks)} week{'s' if weeks != 1 else ''}"
    return f"{days} days"


def parts(n: int) -> str:
    """The name of ``n`` equal groups: ``10`` → ``tenths``, ``7`` → ``7 equal groups``."""
    return PARTS.get(n, f"{n} equal groups")


def part(n: int) -> str:
    """One of ``n`` equal groups: ``5`` → ``fifth``, ``7`` → ``1/7``."""
    return PART.get(n, f"1/{n}")


@dataclass(frozen=True)
class Window:
    """The landmark window in words, from ``features.window_days``."""

    days: int

    @property
    def length(self) -> str:
        """``six weeks``"""
        return duration(self.days)

    @property
    def first(self) -> str:
        """``the first six weeks``"""
        return f"the first {self.length}"

    @property
    def at(self) -> str:
        """``at six weeks``"""
        return f"at {self.length}"

    @property
    def weeks(self) -> float:
        return self.days / 7

    def after(self, weeks: float) -> str:
        """A time ``weeks`` after the landmark, counted from the first appointment too:
        ``12 weeks after the first six weeks (week 18 from the first appointment)``."""
        total = self.weeks + weeks
        since = f"week {total:g}" if float(total).is_integer() else f"day {round(total * 7)}"
        return (
            f"{number_word(int(weeks)) if float(weeks).is_integer() else f'{weeks:g}'} "
            f"weeks after {self.first} ({since} from the first appointment)"
        )
