"""What a failing run means: its signature, its minimized form, exhaustive exploration
of its schedules, and the text and HTML reports. Imports ``fuzz.runtime`` and below.
"""
