"""Forms posted after their launch ended: kept (parked), encrypted, until the next launch that may see them."""
