"""One module per ``dse`` sub-command, each with ``register(subparsers)`` and ``run(args)``.

Commands are the I/O edge: they parse options, load files, call the pure model/search code and
write results. Heavy imports (torch, pynq) happen inside ``run`` of the commands that need them.
"""

#: Sub-command modules, in the order ``dse --help`` lists them.
COMMANDS = ("profile", "import_report", "boards", "project", "explore", "matrix", "compare",
            "calibrate", "weights")
#: The command word each module registers and its one-line help, so that ``dse`` imports
#: only the module of the command it runs (``dse --help`` imports none; a test holds these
#: equal to what each module registers).
COMMAND_OF = {
    "profile": ("profile", "measure a BitNet model on this CPU (needs the [profile] extra)"),
    "import_report": ("import", "read a profile report (Markdown, zh or en) into a profile "
                                "JSON"),
    "boards": ("boards", "list or validate board files"),
    "project": ("project", "project one plan file on a board"),
    "explore": ("explore", "search offload plans and append them to the report"),
    "matrix": ("matrix", "which model fits which board (presets x boards)"),
    "compare": ("compare", "print plans from explore/project JSON side by side"),
    "calibrate": ("calibrate", "measure layers on the overlay (board or RTL sim), fit the cost "
                               "model, report projected vs measured"),
    "weights": ("weights", "inspect the ternary weights of a checkpoint"),
}
