"""The baseline of the first-screen benchmark: a bare Textual app that draws one label."""

from textual.app import App, ComposeResult
from textual.widgets import Label


class Bare(App):
    def compose(self) -> ComposeResult:
        yield Label("Welcome to omerowizard")


if __name__ == "__main__":
    Bare().run()
