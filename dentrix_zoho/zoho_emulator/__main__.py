"""``python -m dentrix_zoho.zoho_emulator``: the same command as ``dentrix-zoho zoho-emulator``."""

from .cli import zoho_emulator

if __name__ == "__main__":
    zoho_emulator(prog_name="python -m dentrix_zoho.zoho_emulator")
