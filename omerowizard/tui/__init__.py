"""The full-screen Textual wizard: a thin layer over omerowizard.wizard (no deployment logic here)."""
