"""The review step: the plan from the core, grouped by kind, before anything changes."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Collapsible, Label, LoadingIndicator, Static

from omerowizard.model.errors import AnswersError
from omerowizard.plan.plan import Plan
from omerowizard.ui.tui.steps import Step

NOTHING = "Nothing to change: the deployment already matches the answers."


def summary(n: int) -> str:
    what = "1 change will be made" if n == 1 else f"{n} changes will be made"
    return f"{what}. Nothing has changed yet: Apply asks you to confirm first; Escape goes back."


class ReviewStep(Step):
    title = "Review"

    def __init__(self) -> None:
        super().__init__(id="review")
        self.plan: Plan | None = None
        self.problems = False

    @property
    def next_label(self) -> str:  # type: ignore[override]
        return "Quit" if self.plan is not None and self.plan.empty else "Apply"

    def compose(self) -> ComposeResult:
        yield Label("Review the changes", classes="title")
        yield LoadingIndicator(id="planning")
        yield Vertical(id="plan")
        with Horizontal(id="review-actions"):
            yield Button("Save answers to file...", id="save", compact=True)

    def first_focus(self) -> None:
        self.scroll_home(animate=False)
        self.app.query_one("#next").focus()

    def planning(self) -> None:
        self.plan, self.problems = None, False
        self.query_one("#planning").display = True
        self.query_one("#plan").remove_children()
        self.query_one("#review-actions").display = False

    def show_plan(self, plan: Plan, derived: list[str] | None = None) -> None:
        self.plan = plan
        self.query_one("#planning").display = False
        self.query_one("#review-actions").display = True
        box = self.query_one("#plan", Vertical)
        box.remove_children()
        if plan.empty:
            box.mount(Static(Text(NOTHING, style="bold"), classes="summary"),
                      Static("Press Enter to quit: no changes will be made.", classes="hint"))
            self._derived(box, derived)
            self._notes(box, plan)
            return
        if plan.preflight_failures:  # first: nothing can be applied until it is fixed
            text = Text(f"Preflight refuses these {len(plan.changes)} changes; nothing can be applied until this "
                        "is fixed (Escape goes back):\n", style="bold")
            for failure in plan.preflight_failures:
                text.append(f"  {failure}\n")
            text.rstrip()
            box.mount(Static(text, classes="problems preflight"))
        else:
            box.mount(Static(Text(summary(len(plan.changes)), style="bold"), classes="summary"))
        self._derived(box, derived)
        for title, changes in plan.groups():
            box.mount(Label(f"{title} ({len(changes)})" if changes[0].values() else title, classes="group"))
            text = Text()
            for c in changes:
                if c.diff():  # a file: its difference, folded
                    if text:
                        text.rstrip()
                        box.mount(Static(text, classes="items"))
                        text = Text()
                    box.mount(Collapsible(Static(Syntax(c.diff(), "diff", theme="ansi_dark", word_wrap=True),
                                                 classes="diff"), title=c.title(), collapsed=True))
                    continue
                values = c.values()
                text.append(c.title() + "\n", style="bold" if values else "")
                if values:
                    text.append(f"  - {values[0]}\n", style="red")
                    text.append(f"  + {values[1]}\n", style="green")
                for d in c.details():
                    text.append(f"  {d}\n")
            if text:
                text.rstrip()
                box.mount(Static(text, classes="items"))
        self._notes(box, plan)

    def _derived(self, box: Vertical, derived: list[str] | None) -> None:
        if derived:
            box.mount(Label("Answers that followed their default (you did not choose them)", classes="group"))
            box.mount(Static("\n".join(derived), classes="items derived"))

    def _notes(self, box: Vertical, plan: Plan) -> None:
        if plan.notes:
            box.mount(Label("Warnings and notes", classes="group"))
            box.mount(Static("\n".join(f"! {n}" for n in plan.notes), classes="items notes"))

    def show_problems(self, exc: AnswersError, where: dict[str, str]) -> None:
        self.problems = True
        self.query_one("#planning").display = False
        box = self.query_one("#plan", Vertical)
        box.remove_children()
        text = Text("The answers have problems; nothing was changed. Go back (Escape) to fix:\n", style="bold")
        for p in exc.problems:
            text.append(f"  {where.get(p.key, '?')}: {p.key}: {p.message}" +
                        (f" (allowed: {p.allowed})" if p.allowed else "") + "\n")
        box.mount(Static(text, classes="problems"))

    def show_failure(self, message: str) -> None:
        self.problems = True
        self.query_one("#planning").display = False
        self.query_one("#plan", Vertical).mount(Static(Text(message, style="bold"), classes="problems"))
