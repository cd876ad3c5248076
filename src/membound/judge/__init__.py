"""judge: verdicts over plain numbers (growth over time, complexity, leaks, comparisons)."""
