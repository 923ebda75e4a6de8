"""What a failing run means: its signature, its minimized form, exhaustive exploration
of its schedules, the text and HTML reports, the signatures already known, and the
index of a crash folder. Imports ``fuzz.runtime`` and below.
"""
