"""One question of the catalogue as a field: its prompt, an input, and the inline error.

A field never decides whether a value is allowed: it asks ``wizard.parse_field`` and the
check it is given (``wizard.field_error`` against the current answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, RadioButton, RadioSet

from omerowizard import wizard
from omerowizard.questions import Question

Check = Callable[[str, Any], "str | None"]


class ChoiceSet(RadioSet, inherit_bindings=False):
    """Radio buttons where the arrow keys choose at once (as in a dialog box), so that
    Enter is free to go on to the next step."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_button", "Next option", show=False),
        Binding("up,left", "previous_button", "Previous option", show=False),
        Binding("space", "toggle_button", "Choose", show=False),
    ]

    def on_mount(self) -> None:
        # RadioSet puts its cursor on the first button when mounted: put it on the chosen one
        pressed = self.pressed_button
        if pressed is not None:
            self._selected = self._nodes.index(pressed)

    def action_next_button(self) -> None:
        super().action_next_button()
        if self.has_focus:  # RadioSet also calls this while mounting: no choice is made then
            self.action_toggle_button()

    def action_previous_button(self) -> None:
        super().action_previous_button()
        if self.has_focus:
            self.action_toggle_button()

    def action_toggle_button(self) -> None:
        if self._selected is not None:
            button = self._nodes[self._selected]
            if isinstance(button, RadioButton) and not button.value:
                button.value = True


def default_of(q: Question, flat) -> Any:
    """The catalogue's default for ``q`` given the other answers (not its own current value)."""
    return q.default_for({k: v for k, v in flat.items() if k != q.key})


def as_text(q: Question, value: Any) -> str:
    return q.as_text(value)


def placeholder(q: Question) -> str:
    if q.placeholder:
        return q.placeholder
    if q.nullable:
        return "empty: the default"
    return q.allowed_text()


class QuestionField(Vertical):
    """A question: prompt, input (radio buttons for choices and yes/no) and an error line."""

    can_focus = False

    class Changed(Message):
        """A field now holds a valid value (posted only then)."""

        def __init__(self, field: "QuestionField", value: Any) -> None:
            super().__init__()
            self.field = field
            self.value = value

    def __init__(self, q: Question, value: Any, check: Check, provided: bool = True, blink: bool = True) -> None:
        super().__init__(classes="question", id=f"q-{q.key.replace('.', '-')}")
        self.q = q
        self.value = value
        self.check = check
        self.error: str | None = None
        self.edited = False  # typed or chosen by the user
        self.provided = provided  # came from the starting answers (else from the catalogue's default)
        self.blink = blink

    # ------------------------------------------------------------------ building
    def options(self) -> list[tuple[str, Any]]:
        return self.q.type.options(self.q)

    def compose(self) -> ComposeResult:
        yield Label(self.q.prompt, classes="prompt")
        if self.q.type.widget == "choices":
            with ChoiceSet(compact=True, classes="choices"):
                for label, value in self.options():
                    yield RadioButton(label, value=value == self.value)
        else:
            yield Input(as_text(self.q, self.value), placeholder=placeholder(self.q), compact=True,
                        select_on_focus=False, classes="text", type="text", password=self.q.hidden)
        yield Label("", classes="error")

    def on_mount(self) -> None:
        self.show_error(None)
        if not self.blink:
            for inp in self.query(Input):
                inp.cursor_blink = False

    @property
    def control(self) -> Input | ChoiceSet:
        return self.query_one(".choices, .text")  # type: ignore[return-value]

    def focus_control(self) -> None:
        self.control.focus()

    # ------------------------------------------------------------------ values
    def set_value(self, value: Any) -> None:
        """Show a value that did not come from the user (a default, or the installer's paths)."""
        self.value = value
        control = self.control
        if isinstance(control, Input):
            with control.prevent(Input.Changed):
                control.value = as_text(self.q, value)
        else:
            for button, (_, v) in zip(control.query(RadioButton), self.options()):
                with button.prevent(RadioButton.Changed):
                    button.value = v == value
        self.show_error(None)

    def validate_now(self) -> str | None:
        """Re-check the value shown (answers elsewhere may have changed); returns the error."""
        control = self.control
        if isinstance(control, Input):
            self._take_text(control.value, post=False)
        else:
            self.show_error(self.check(self.q.key, self.value))
        return self.error

    def _take_text(self, text: str, post: bool = True) -> None:
        try:
            value = wizard.parse_field(self.q, text)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        error = self.check(self.q.key, value)
        self.show_error(error)
        if error is None:
            changed = value != self.value
            self.value = value
            if post and changed:
                self.post_message(self.Changed(self, value))

    def show_error(self, error: str | None) -> None:
        self.error = error
        self.set_class(error is not None, "-invalid")
        label = self.query_one(".error", Label)
        label.update(error or "")
        label.display = error is not None

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.edited = True
        self._take_text(event.value)

    @on(RadioSet.Changed)
    def _choice_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.edited = True
        value = self.options()[event.index][1]
        self.value = value
        self.show_error(self.check(self.q.key, value))
        self.post_message(self.Changed(self, value))
