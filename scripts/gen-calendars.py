#!/usr/bin/python3
"""Generate calendars/cn.yaml, the mainland China working-day calendar.

Usage:
  /usr/bin/python3 scripts/gen-calendars.py FIRST_YEAR LAST_YEAR
        [--package DIR_OR_TGZ] [--spec chinese-days@VERSION] [--output FILE]

The holidays and make-up working days (调休) come from the MIT-licensed npm
package `chinese-days` (dist/years/YYYY.json), which transcribes the State
Council's yearly arrangement (国务院办公厅关于部分节假日安排的通知).
Without --package the script runs `npm pack SPEC` (default
`chinese-days@latest`) in a temporary directory; nothing is installed.
--package takes an unpacked package directory or a downloaded .tgz instead,
for machines without the npm registry.

Standard library only. Writes --output (default calendars/cn.yaml next to
this script's repository) and exits 1 when a requested year is missing or
lacks its Spring Festival or National Day holidays.
"""

import argparse
import datetime as dt
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# chinese-days names holidays "English,中文,N" (N: statutory days); the
# comments keep both names.
REQUIRED = ("Spring Festival", "National Day")


class Package:
    """Reads files of the npm package from a directory or a tarball."""

    def __init__(self, source: Path):
        self.source = source
        self.tar = tarfile.open(source) if source.is_file() else None

    def read(self, relative: str):
        if self.tar is None:
            path = self.source / relative
            return path.read_text(encoding="utf-8") if path.exists() else None
        try:
            member = self.tar.extractfile("package/" + relative)
        except KeyError:
            return None
        return member.read().decode("utf-8") if member else None

    def version(self) -> str:
        text = self.read("package.json")
        return json.loads(text).get("version", "?") if text else "?"


def fetch(spec: str, into: Path) -> Path:
    """Runs `npm pack SPEC` in `into` and returns the tarball."""
    try:
        out = subprocess.run(["npm", "pack", "--silent", spec], cwd=into, check=True,
                             capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"gen-calendars: 'npm pack {spec}' failed ({e}); pass --package DIR_OR_TGZ instead")
    return into / out[-1]


def parse_name(value: str):
    parts = value.split(",")
    english = parts[0].strip()
    chinese = parts[1].strip() if len(parts) > 1 else ""
    return english, chinese


def runs(days):
    """Groups (date, name) pairs into runs of consecutive dates with one name."""
    out = []
    for day, name in sorted(days):
        if out and out[-1][2] == name and out[-1][1] + dt.timedelta(days=1) == day:
            out[-1][1] = day
        else:
            out.append([day, day, name])
    return out


def entry(first: dt.date, last: dt.date) -> str:
    if first == last:
        return first.isoformat()
    return f'"{first.isoformat()}..{last.isoformat()}"'


def line(first: dt.date, last: dt.date, name) -> str:
    # A run is named by the year it belongs to: New Year's Day 2023 began on
    # 2022-12-31, so use the year of the run's last day.
    english, chinese = name
    return f"    - {entry(first, last):<26} # {last.year} {english} {chinese}".rstrip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=int, help="first year, e.g. 2020")
    ap.add_argument("last", type=int, help="last year, e.g. 2026")
    ap.add_argument("--package", type=Path, help="unpacked chinese-days directory or .tgz (skips npm)")
    ap.add_argument("--spec", default="chinese-days@latest", help="npm package spec to fetch")
    ap.add_argument("--output", type=Path, default=REPO / "calendars" / "cn.yaml")
    args = ap.parse_args()
    if args.last < args.first:
        ap.error("LAST_YEAR is before FIRST_YEAR")

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Package(args.package if args.package else fetch(args.spec, Path(tmp)))
        version = pkg.version()
        holidays, workdays = [], []
        problems = []
        for year in range(args.first, args.last + 1):
            text = pkg.read(f"dist/years/{year}.json")
            if text is None:
                problems.append(f"chinese-days {version} has no data for {year} (dist/years/{year}.json)")
                continue
            data = json.loads(text)
            names = set()
            for day, value in data.get("holidays", {}).items():
                name = parse_name(value)
                names.add(name[0])
                holidays.append((dt.date.fromisoformat(day), name))
            for day, value in data.get("workdays", {}).items():
                workdays.append((dt.date.fromisoformat(day), parse_name(value)))
            for required in REQUIRED:
                if required not in names:
                    problems.append(f"{year}: no {required} holidays in chinese-days {version}")
    clash = {d for d, _ in holidays} & {d for d, _ in workdays}
    problems += [f"{d} is both a holiday and a make-up working day" for d in sorted(clash)]
    if problems:
        for p in problems:
            print(f"gen-calendars: {p}", file=sys.stderr)
        return 1

    lines = [
        "# yaml-language-server: $schema=../schemas/onestop.schema.json",
        "#",
        "# Mainland China working-day calendar: weekends, public holidays and the",
        "# make-up working days (调休) of the State Council's yearly arrangement.",
        f"# GENERATED by scripts/gen-calendars.py {args.first} {args.last} from the npm",
        f"# package chinese-days {version} (MIT). Do not edit by hand; see docs/calendars.md.",
        "",
        "calendar:",
        "  id: cn",
        "  name: Mainland China",
        '  utc_offset: "+08:00"',
        "  rest_days: [saturday, sunday]",
        '  working_hours: ["09:00-12:00", "13:30-17:30"]',
        "  holidays:",
    ]
    lines += [line(first, last, name) for first, last, name in runs(holidays)]
    lines.append("  workdays:  # make-up working days: a weekend day worked in exchange for a holiday")
    lines += [line(first, last, name) for first, last, name in runs(workdays)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"gen-calendars: wrote {args.output} ({len(holidays)} holidays, {len(workdays)} make-up "
          f"working days, {args.first}-{args.last}, chinese-days {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
