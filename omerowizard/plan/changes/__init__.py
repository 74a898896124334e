"""The kinds of change a plan holds, one module each (model.change.Kind says how each shows itself and runs)."""
