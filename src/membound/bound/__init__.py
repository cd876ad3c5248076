"""bound: building blocks that keep batch work in O(1) memory."""
