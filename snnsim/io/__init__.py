"""snnsim's one output writer (DESIGN.md "Conventions", "Layout"): every command writes its
files through :func:`open_output` (a folder), :func:`open_output_file` (one file) or
:func:`open_resumable` (a folder filled piece by piece and continued by a rerun)."""
from .output import (MARKER, OutputBusyError, OutputError, OutputFile, OutputFolder, ResumableFolder, Terminated,
                     check_output, install_signal_handlers, open_output, open_output_file, open_resumable,
                     writing_into)

__all__ = ["MARKER", "OutputBusyError", "OutputError", "OutputFile", "OutputFolder", "ResumableFolder", "Terminated",
           "check_output", "install_signal_handlers", "open_output", "open_output_file", "open_resumable",
           "writing_into"]
