"""The guided engine: a corpus of programs, each replayed with fresh interleavings
past its explicit schedule prefix, favoured by the rarity of what it reached, and
mutated both as a program and as a schedule aimed at the conflicts it reached."""
