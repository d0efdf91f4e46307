"""The shipped model files (package data; see the README on how they were trained)."""
