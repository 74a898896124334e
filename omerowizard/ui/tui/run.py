"""The run step: the plan's steps as a checklist that ticks as apply reports them, and a live log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Label, RichLog, Static

from omerowizard.model.events import Event, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.ui.tui.steps import Step

MARKS = {"pending": ("[ ]", "dim"), "running": ("[>]", "bold"), "done": ("[x]", "green"), "failed": ("[!]", "bold red")}


class RunStep(Step):
    title = "Run"
    next_label = "Quit"

    def __init__(self) -> None:
        super().__init__(id="run")
        self.steps: dict[str, str] = {}
        self.details: dict[str, str] = {}
        self.finished: Finished | None = None

    def compose(self) -> ComposeResult:
        yield Label("Applying the changes", classes="title", id="run-title")
        # the final message goes first once the run ends: at 80x24 it is never below a long checklist and the log
        yield Static("", id="result")
        yield Static("", id="checklist")
        yield RichLog(id="log", highlight=False, markup=False, wrap=True, min_width=20, max_lines=10000)

    def start(self, labels: list[str]) -> None:
        self.steps = {label: "pending" for label in labels}
        self.details = {}
        self.finished = None
        self.query_one("#log", RichLog).clear()
        self.query_one("#result", Static).update("")
        self._draw()

    def _draw(self) -> None:
        text = Text()
        for label, state in self.steps.items():
            mark, style = MARKS[state]
            text.append(f" {mark} ", style=style)
            text.append(label, style="bold" if state == "running" else "")
            if self.details.get(label):
                text.append(f": {self.details[label]}", style="dim" if state != "failed" else "red")
            text.append("\n")
        self.query_one("#checklist", Static).update(text)

    def handle(self, event: Event) -> None:
        log = self.query_one("#log", RichLog)
        if isinstance(event, StepStarted):
            if event.step not in self.steps:  # a step the plan does not list (a preflight check): in run order
                items = list(self.steps.items())
                at = next((i for i, (_, state) in enumerate(items) if state == "pending"), len(items))
                items.insert(at, (event.step, "running"))
                self.steps = dict(items)
            self.steps[event.step] = "running"
            log.write(f"==> {event.step}")
        elif isinstance(event, Output):
            log.write(event.line)
        elif isinstance(event, StepDone):
            self.steps[event.step] = "done"
            self.details[event.step] = event.detail
            log.write(f"ok  {event.step}" + (f": {event.detail}" if event.detail else ""))
        elif isinstance(event, StepFailed):
            self.steps[event.step] = "failed"
            self.details[event.step] = event.error.splitlines()[0] if event.error else ""
            log.write(f"FAILED {event.step}: {event.error}")
        elif isinstance(event, Finished):
            self.finish(event)
        self._draw()

    def finish(self, event: Finished) -> None:
        self.finished = event
        # the log renders its lines lazily: once they are laid out, show its end (the last step's output)
        log = self.query_one("#log", RichLog)
        self.call_after_refresh(log.scroll_end, animate=False)
        title = self.query_one("#run-title", Label)
        result = self.query_one("#result", Static)
        # what to do next is in the title too: a long final message may not fit below the log at 80x24
        again = not event.ok and not event.changed
        if event.ok:
            title.update("Done. Press Enter to quit.")
            lines = event.message.splitlines()
            shown = "\n".join(lines[1:]) if lines and lines[0] == "Done." and len(lines) > 1 else event.message
            text = Text(shown, style="bold green")  # (a bare "Done." is the title already)
        else:
            title.update("Failed. Press Escape to go back, or Enter to quit." if again else "Failed. Press Enter to quit.")
            text = Text(event.message, style="bold red")
        if not event.ok:  # (done: the title says to press Enter)
            text.append("\nNothing was changed: press Escape to go back and fix it, or Enter to quit."
                        if again else "\nPress Enter to quit.")
        result.update(text)
        result.add_class("ok" if event.ok else "failed")
