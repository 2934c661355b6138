"""Reading words: all-MiniLM-L6-v2 sentence embeddings (embedding.py) and the mood a text names (mood.py), shared
by the semantic EQ's synonyms, the MIDI generator's --mood and the song sketch."""
