"""Pure logic of ThrillRing's gaming domain: parsing IGDB, Steam and OpenCritic answers, matching
game names across them and fusing them into catalogue rows; esports news feeds; and validating
the tournaments and players exports dropped into the watched folder."""
