"""lint: a static checker for memory anti-patterns. It never imports the rest of membound."""
