"""One router per stage of the loop."""
