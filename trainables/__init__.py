"""One trial: its config, its data, its task stream, its training loop and its Tune function."""
