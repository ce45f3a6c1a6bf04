"""One module per endpoint; each handler turns HTTP into core values and back."""
