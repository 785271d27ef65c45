"""Where hooks come from: the hook model, its field rules, the store protocol and its sources."""
