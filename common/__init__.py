"""Pieces every pipeline stage shares: the tick contract, settings helpers and logging."""
