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
from textual.strip import Strip
from textual.widgets import Input, Label, RadioButton, RadioSet, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

from omerowizard.catalogue import Question
from omerowizard.ui import wizard

Check = Callable[[str, Any], "str | None"]


MARK = "\u25cf"  # the selected option's mark: text, so it shows without colour (NO_COLOR, monochrome)


class ChoiceButton(RadioButton):
    """A radio button whose selection is a character, not only a colour."""

    @property
    def _button(self):  # type: ignore[override]
        inner = self.BUTTON_INNER
        try:
            self.BUTTON_INNER = MARK if self.value else " "
            return super()._button
        finally:
            self.BUTTON_INNER = inner


class ChoiceSet(RadioSet, inherit_bindings=False):
    """Radio buttons where the arrow keys choose at once (as in a dialog box), so that
    Enter is free to go on to the next step.

    The arrows move from the chosen option, whether the user, the starting answers or the
    app chose it, and stop at the ends (no wrapping from the first option to the last:
    on CORS that would be `all`). Options hidden because the other answers rule them out
    are skipped."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_button", "Next option", show=False),
        Binding("up,left", "previous_button", "Previous option", show=False),
        Binding("space", "toggle_button", "Choose", show=False),
    ]

    def follow_pressed(self) -> None:
        """Put the cursor on the chosen option."""
        pressed = self.pressed_button
        if pressed is not None and pressed in self._nodes:
            self._selected = self._nodes.index(pressed)

    def _offered(self) -> list[int]:
        return [i for i, b in enumerate(self._nodes) if b.display and not b.disabled]

    def _move(self, direction: int) -> None:
        offered = self._offered()
        if not offered:
            return
        here = self.pressed_index if self.pressed_index >= 0 else self._selected
        if here in offered:
            at = offered[max(0, min(len(offered) - 1, offered.index(here) + direction))]
        else:  # the chosen option is no longer offered: the nearest one in that direction
            after = [i for i in offered if (i - (here or 0)) * direction > 0]
            at = after[0] if after and direction > 0 else (after[-1] if after else offered[0 if direction > 0 else -1])
        self._selected = at
        self.action_toggle_button()

    def action_next_button(self) -> None:
        if not self.has_focus:  # RadioSet calls this when it is mounted: the cursor goes to the chosen option
            chosen = [i for i, b in enumerate(self._nodes) if isinstance(b, RadioButton) and b.value]
            self._selected = chosen[0] if chosen else (0 if self._nodes else None)
            return
        self._move(1)

    def action_previous_button(self) -> None:
        self._move(-1)

    def action_toggle_button(self) -> None:
        if self._selected is not None:
            button = self._nodes[self._selected]
            if isinstance(button, RadioButton) and not button.value:
                button.value = True


class MultiSet(SelectionList, inherit_bindings=False):
    """Several of a fixed set (``apps.enabled``): the arrows move, space toggles the option under
    the cursor. A chosen option shows the same mark as a chosen radio button (``MARK``, a character,
    so the choice shows without colour); an unchosen one a blank box. Enter is left to the screen
    (it goes on to the next step) and Tab to the focus chain."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "cursor_down", "Next option", show=False),
        Binding("up", "cursor_up", "Previous option", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("space", "select", "Choose or leave out", show=False),
    ]

    # like the radio sets (ChoiceSet), the cursor stops at the first and the last option: wrapping
    # round would put Up on the first option onto the last, and Space would then tick an app unseen
    def action_cursor_up(self) -> None:
        if self.highlighted is None or self.highlighted > 0:
            super().action_cursor_up()

    def action_cursor_down(self) -> None:
        if self.highlighted is None or self.highlighted < self.option_count - 1:
            super().action_cursor_down()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        if len(segments) < 2:
            return strip
        inner = segments[1]
        segments[1] = type(inner)(MARK if selection.value in self._selected else " ", inner.style, inner.control)
        return Strip(segments, strip.cell_length)


default_of = wizard.default_of


def as_text(q: Question, value: Any) -> str:
    return q.as_text(value)


def placeholder(q: Question) -> str:
    if q.placeholder:
        return q.placeholder
    if q.nullable:
        return "empty: the default"
    return q.allowed_text()


class QuestionField(Vertical):
    """A question: prompt, input (radio buttons for choices and yes/no, a selection list for several
    choices) and an error line."""

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
                    yield ChoiceButton(label, value=value == self.value)
        elif self.q.type.widget == "multi":
            chosen = set(self.value or ())
            yield MultiSet(*((label, value, value in chosen) for label, value in self.options()), compact=True,
                           classes="multi")
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
    def control(self) -> Input | ChoiceSet | MultiSet:
        return self.query_one(".choices, .multi, .text")  # type: ignore[return-value]

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
        elif isinstance(control, MultiSet):
            with control.prevent(SelectionList.SelectedChanged):
                control.deselect_all()
                for v in value or ():
                    control.select(v)
        else:
            buttons = list(control.query(RadioButton))
            with control.prevent(RadioButton.Changed):
                for button, (_, v) in zip(buttons, self.options()):
                    button.value = v == value
                    if button.value:
                        control._pressed_button = button  # what RadioSet does when a button is clicked on
            control.follow_pressed()
        self.show_error(None)

    def typed(self) -> Any:
        """The value shown, parsed (raises ValueError with the message when it cannot be)."""
        control = self.control
        if isinstance(control, Input):
            return wizard.parse_field(self.q, control.value)
        return self.value

    def offer(self, allowed: Callable[[Any], bool]) -> None:
        """Show only the options the other answers allow (iis only on Windows), and the chosen one."""
        control = self.control
        if not isinstance(control, ChoiceSet):
            return
        for button, (_, v) in zip(control.query(RadioButton), self.options()):
            button.display = v == self.value or allowed(v)

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
        if event.value == as_text(self.q, self.value) and self.error is None:
            return  # the Input reports its first value when mounted: not an edit
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

    @on(SelectionList.SelectedChanged)
    def _multi_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        value = self.q.type.ordered(self.q, event.selection_list.selected)  # type: ignore[attr-defined]
        if value == list(self.value or ()):
            return  # the initial selection, reported when mounted: not an edit
        self.edited = True
        self.value = value
        self.show_error(self.check(self.q.key, value))
        self.post_message(self.Changed(self, value))
