"""US states, DC, territories and military postal codes, for ``{lookup: us_states}``."""
from __future__ import annotations

import re

STATE_CODES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "District of Columbia": "DC", "Washington DC": "DC", "Washington D.C.": "DC",
    "Puerto Rico": "PR", "Guam": "GU", "U.S. Virgin Islands": "VI", "US Virgin Islands": "VI",
    "Virgin Islands": "VI", "American Samoa": "AS", "Northern Mariana Islands": "MP",
    "United States Minor Outlying Islands": "UM",
    "Armed Forces Americas": "AA", "Armed Forces Europe": "AE", "Armed Forces Pacific": "AP",
}

CODES: frozenset[str] = frozenset(STATE_CODES.values())

_NOT_LETTERS = re.compile(r"[^a-z]+")


def normalize(text: str) -> str:
    """Case-, space- and punctuation-insensitive form: "New  York" and "new-york" agree."""
    return _NOT_LETTERS.sub("", text.lower())


BY_NORMALIZED_NAME: dict[str, str] = {normalize(name): code for name, code in STATE_CODES.items()}
BY_NORMALIZED_NAME.update({code.lower(): code for code in CODES})


def state_code(text: str) -> str | None:
    return BY_NORMALIZED_NAME.get(normalize(text))
