"""idaw: the `idaw` command (idaw.cli) above realtime/ and sidecar/, and the base both sides use (idaw.base).

Nothing is imported here: importing idaw.base must not import the command, and the command imports its parts
only once Ctrl-C is taken over (idaw/cli.py).
"""
