"""keybuzz-tui: install, repair and verify the KeyBuzz platform on K3s + Hetzner Cloud."""

__version__ = "0.1.0"
