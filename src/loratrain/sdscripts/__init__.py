"""sd-scripts itself: its flag table and the docs for each flag, locating and setting up a checkout."""
