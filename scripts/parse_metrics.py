"""Parses a Prometheus text exposition with the Prometheus client's own parser and prints its
samples back, one per line (name{labels} value), so a test can compare them with its own
reading. Exits non-zero when the parser refuses the text."""

import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        text = file.read()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            print(f"{sample.name}{{{labels}}} {sample.value}" if labels else f"{sample.name} {sample.value}")


if __name__ == "__main__":
    main()
