"""The host layer: items a host should hold, the facts read from it, the planners that decide and the applier that acts."""
