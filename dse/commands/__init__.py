"""One module per ``dse`` sub-command, each with ``register(subparsers)`` and ``run(args)``.

Commands are the I/O edge: they parse options, load files, call the pure model/search code and
write results. Heavy imports (torch, pynq) happen inside ``run`` of the commands that need them.
"""

#: Sub-command modules, in the order ``dse --help`` lists them.
COMMANDS = ("profile", "import_report", "boards", "project", "explore", "matrix", "compare",
            "calibrate", "weights")
