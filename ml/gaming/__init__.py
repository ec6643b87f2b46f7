"""Pure logic of the ThrillRing game catalogue: parsing IGDB, Steam and OpenCritic answers,
matching game names across them, and fusing the three into one catalogue row per game."""
