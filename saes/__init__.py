"""saes: sparse autoencoders over hooked models."""
