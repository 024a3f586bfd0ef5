"""Worked examples: a user strategy (`touch_quoter`) that runs in every mode."""
