"""``python -m melrestore``, the form ``torchrun -m melrestore train ...`` runs."""

from .cli import cli

cli(prog_name="melrestore")
