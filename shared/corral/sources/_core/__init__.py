"""What every source is built on: one reader, one time parser, one image parser, the Source facts.

- `reader.Fields`: field access that records what was mapped, so `unmapped` is the rest;
  `Fields.folded` (module `folded`) is its case-insensitive mode, for vendors that vary key casing;
- `times.epoch_ms`: epoch numbers of any unit and ISO 8601 text to epoch milliseconds, with
  one plausibility range;
- `images.image`: an image reference to the one OCSF `image` shape;
- `source.Facts` and `source.Source`: what a source module declares about itself and the
  functions it exposes.
"""
