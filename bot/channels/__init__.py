"""The chat platforms: one package per platform behind the contracts in `base`."""
