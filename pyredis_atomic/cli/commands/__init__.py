"""One module per sub-command; each exports ``command`` (a click command or group)."""
