"""snnsim's one output writer (DESIGN.md "Conventions", "Layout"): every command writes its
files through :func:`open_output` (a folder) or :func:`open_output_file` (one file)."""
from .output import (MARKER, OutputBusyError, OutputError, OutputFile, OutputFolder, Terminated, check_output,
                     install_signal_handlers, open_output, open_output_file, writing_into)

__all__ = ["MARKER", "OutputBusyError", "OutputError", "OutputFile", "OutputFolder", "Terminated", "check_output",
           "install_signal_handlers", "open_output", "open_output_file", "writing_into"]
