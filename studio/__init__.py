"""Voice acting studio: design, cast, direct, convert."""
