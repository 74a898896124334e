"""What the tests and the screenshot tooling share: the demonstration machine (demo.py) and its recorded runs."""
