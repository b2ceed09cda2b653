"""Pure matchers that decide facts about text: phrases, identifiers, labels, access codes."""
