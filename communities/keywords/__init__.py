"""Normalising text and matching it against the keyword rules (危机预警).

``normalise`` folds what people vary to dodge a filter; ``Matcher`` runs every
keyword in one Aho–Corasick pass and every pattern in one RE2 set, so 1,000 rules
cost about what 10 do and no admin-entered pattern can backtrack."""
