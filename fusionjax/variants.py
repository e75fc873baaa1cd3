"""Experiment variants: the comma-separated list after a config file's path."""


def parse_variants(arg: str | None, allowed: tuple[str, ...], experiment: str) -> list[str]:
  """The variants of `arg` (e.g. 'orionbar,smoke'); ValueError naming the experiment file for
  any not in `allowed`."""
  variants = [v for v in (arg or "").split(",") if v]
  unknown = sorted(set(variants) - set(allowed))
  if unknown:
    raise ValueError(f"{experiment}: unknown variant(s) {unknown}; expected {allowed}")
  return variants
