"""The install engine: plain Python (never Textual), driven by the TUI and the headless CLI alike."""
