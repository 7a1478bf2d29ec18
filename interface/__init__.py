"""interface layer."""
