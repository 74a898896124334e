"""omerowizard: deploy and configure OMERO.web in one run, and again safely on every rerun."""

__version__ = "0.1.0"
