"""circuits: patching, abstraction, discovery and circuit graphs."""
