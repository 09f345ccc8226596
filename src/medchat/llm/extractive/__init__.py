"""Extractive answers: whole sentences taken out of the retrieved passages, scored against the
question and the best few picked — nothing is generated.

``sentences`` splits passages into quotable sentences and list items; ``scoring`` scores them (by
meaning and shared terms) and picks them (maximal marginal relevance). ``medchat.llm.sources_only``
words the answer.
"""
