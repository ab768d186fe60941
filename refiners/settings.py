"""What every kind's settings have besides their own: ``steps`` and a ``schedule`` of them
along training (``refiners.schedule``), the run's ``seed``, ``embedding`` for a kind that
uses z (its width; None: the width the adapter takes from its upstream) and the flag help
of each field (``described``)."""
from dataclasses import field
from typing import Any

from refiners.schedule import schedule_text
from declared.settings import Checked

SCHEDULE_HELP = ("the step count along training, TRAINING_STEP:STEPS,... (e.g. 0:10,2000:5,4000:0): from each "
                 "training step (optimizer step) on, that many steps; before the first, --steps (default: the "
                 "preset's, usually none; --steps alone drops it)")


def described(help: str, default: Any = ..., saved_before: Any = None) -> Any:
    """A settings field with its flag's ``help`` (and ``default``, when it has one);
    ``saved_before``: for a setting added after runs were saved, the value those runs were
    made with (their identity leaves it out, ``runners.common.invocation.refiner_identity``)."""
    metadata = {"help": help, "saved_before": saved_before}
    return field(metadata=metadata) if default is ... else field(default=default, metadata=metadata)


class KindSettings(Checked):
    """Base of every kind's frozen settings dataclass (fields: ``kind`` first; ``steps``
    and ``schedule`` (``Schedule | None``, help ``SCHEDULE_HELP``) and the kind's own;
    ``embedding`` if it uses z, and ``seed``)."""

    def summary(self) -> str:
        """The settings a report's first line names: "3 steps" (a kind with more to say
        adds it), with the schedule where there is one."""
        return self.with_schedule(f"{self.steps} steps")

    def with_schedule(self, text: str) -> str:
        """``text``, then ", schedule 0:10,2000:0" where the refiner has a schedule."""
        return text if self.schedule is None else f"{text}, schedule {schedule_text(self.schedule)}"

    def embedding_or(self, width: int) -> int:
        """The width of z: ``embedding``, or the upstream's ``width`` when it is None or the
        kind has none."""
        embedding = getattr(self, "embedding", None)
        return width if embedding is None else embedding
