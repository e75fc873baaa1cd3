"""An evaluation report (eval.json) printed as tables for the console."""


def print_report(report: dict, title: str = "") -> None:
  """Prints the methods' metrics (entries holding an 'ssim' or an 'rmse') of `report` as a
  table, then those of each of its sections (e.g. 'validation', 'test', their 'scenes'),
  titled by their path."""
  rows = [(name, values) for name, values in report.items()
          if isinstance(values, dict) and {"ssim", "rmse"} & set(values)]
  if rows:
    columns = [column for column, value in rows[0][1].items() if isinstance(value, (int, float))]
    lines = [f"{title or 'method':<20}" + "".join(f"{column:>20}" for column in columns)]
    for name, values in rows:
      lines.append(f"{name:<20}" + "".join(f"{values.get(column, float('nan')):>20.4g}"
                                           for column in columns))
    print("\n".join(lines), flush=True)
  for name, section in report.items():
    if isinstance(section, dict) and not {"ssim", "rmse"} & set(section):
      print_report(section, f"{title} / {name}" if title else name)
