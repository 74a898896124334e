"""The full-screen Textual wizard: a thin layer over omerowizard.ui.wizard (no deployment logic here)."""
