"""The features: one module (or small package) each; ``omerowizard.catalogue`` lists them in order."""
